//! The `vscard` binary: serve into a private pcscd, trace, control socket,
//! clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use vscard_vpcd::testing::{private_pcscd, transmit};

const VSCARD: &str = env!("CARGO_BIN_EXE_vscard");
const SECOND: Duration = Duration::from_secs(1);

/// A running `vscard serve` and its stdout, line by line.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(VSCARD)
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("vscard| {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Serve {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `text`.
    fn expect_line(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
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
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctl(path: &std::path::Path, action: &str) -> String {
    let out = Command::new(VSCARD)
        .args(["ctl"])
        .arg(path)
        .arg(action)
        .output()
        .unwrap();
    assert!(out.status.success(), "vscard ctl {action}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn serve_traces_obeys_ctl_and_stops_cleanly_on_sigterm() {
    let Some(pcscd) = private_pcscd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let started = Instant::now();
    let mut serve = Serve::start(&[
        "--fixture-echo-cards",
        "1",
        "--trace",
        "--control",
        control.to_str().unwrap(),
        "--vpcd",
        "127.0.0.1:35963",
    ]);
    pcscd.wait_for_card(0, SECOND).unwrap();
    println!(
        "card in the reader {:?} after starting vscard",
        started.elapsed()
    );
    serve.expect_line("is in Virtual PCD 00 00");

    let card = pcscd.connect(0).unwrap();
    assert_eq!(
        transmit(&card, &[0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00]).unwrap(),
        [0xAB, 0x90, 0x00]
    );
    serve.expect_line("ECHO -> 9000 (1 byte)");
    assert_eq!(
        transmit(&card, &[0x00, 0x7F, 0x00, 0x00]).unwrap(),
        [0x6D, 0x00]
    );
    serve.expect_line("-> 6D00");
    drop(card);

    assert!(ctl(&control, "remove").contains("card 0: removed"));
    pcscd.wait_for_no_card(0, SECOND).unwrap();
    serve.expect_line("left the reader: card removed");
    assert!(ctl(&control, "status").contains("card 0: removed"));
    ctl(&control, "insert");
    pcscd.wait_for_card(0, SECOND).unwrap();
    serve.expect_line("is back in Virtual PCD 00 00");
    assert!(ctl(&control, "status").contains("card 0: inserted"));

    let pid = Pid::from_raw(i32::try_from(serve.child.id()).unwrap()).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "{status}");
    serve.expect_line("stopped");
    assert!(!control.exists(), "the control socket was not removed");
    pcscd.wait_for_no_card(0, SECOND).unwrap();
}

#[test]
fn ctl_without_a_server_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(VSCARD)
        .args(["ctl"])
        .arg(dir.path().join("none.sock"))
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

#[test]
fn serve_refuses_bad_addresses() {
    let out = Command::new(VSCARD)
        .args(["serve", "--fixture-echo-cards", "1", "--vpcd", "localhost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}
