//! A running process (`vscard`, `tcpdump`...) whose stdout and stderr are
//! read line by line as they come, echoed with its name (shown when a
//! test fails), and killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

const SECOND: Duration = Duration::from_secs(1);

/// A running process and the lines it printed.
pub struct Process {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Process {
    /// Starts `command` with its stdout and stderr read line by line.
    pub fn start(mut command: Command, name: &'static str) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for reader in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    println!("{name}| {line}");
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `timeout`) for an output line containing `text`.
    pub fn expect_line_within(&mut self, text: &str, timeout: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; got {:?}", self.seen),
            }
        }
    }

    /// Waits (up to 10 s) for an output line containing `text`.
    pub fn expect_line(&mut self, text: &str) -> String {
        self.expect_line_within(text, 10 * SECOND)
    }

    pub fn signal(&mut self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        kill_process(pid, signal).unwrap();
    }

    /// SIGTERM; the exit must be clean.
    pub fn stop(mut self) {
        self.signal(Signal::TERM);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "after SIGTERM: {status}");
    }

    /// SIGKILL, as a power cut or a crash.
    pub fn kill9(mut self) {
        self.signal(Signal::KILL);
        let _ = self.child.wait();
    }

    /// Waits (20 s at most) for the process to end by itself; its code.
    pub fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + 20 * SECOND;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The output threads end with the process.
                while let Ok(line) = self.lines.recv_timeout(SECOND) {
                    self.seen.push(line);
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("still running after 20 s; output {:?}", self.seen);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
