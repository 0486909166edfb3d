//! Helpers shared by the tests that run the `vscard` binary: running it
//! with a private state directory, issuing seeded cards, a running
//! `vscard serve` whose output is read line by line, and the middleware
//! tools.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

pub mod hosted;
pub mod process;

pub const VSCARD: &str = env!("CARGO_BIN_EXE_vscard");

/// `vscard` with `--state-dir` (and `VSCARD_HOME`, so nothing can reach
/// the developer's own state) set to `state_dir`.
pub fn vscard(state_dir: &Path) -> Command {
    let mut command = Command::new(VSCARD);
    command
        .env("VSCARD_HOME", state_dir)
        .env_remove("XDG_DATA_HOME")
        .arg("--state-dir")
        .arg(state_dir);
    command
}

/// Runs a command to completion and echoes it (shown when a test fails).
pub fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    println!(
        "$ {command:?}\n-> {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(output.status.success(), "failed: {command:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Issues a card with `seed` (reproducible keys) into `out`, with extra
/// `vscard issue` arguments.
pub fn issue(state_dir: &Path, out: &Path, seed: &str, extra: &[&str]) {
    run_ok(
        vscard(state_dir)
            .args(["issue", "--out"])
            .arg(out)
            .args(["--seed", seed])
            .args(extra),
    );
}

/// A fresh folder holding a state directory and one seeded P-256 card
/// image: `(folder, state directory, card)`.
pub fn p256_card(seed: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    issue(
        &state,
        &card,
        seed,
        &["--profile", profile.to_str().unwrap()],
    );
    (dir, state, card)
}

/// A profile whose keys are all P-256 (fast), written into `dir`.
pub fn p256_profile(dir: &Path) -> PathBuf {
    let path = dir.join("p256.toml");
    std::fs::write(
        &path,
        r#"name = "Pat Example"
uuid = "000123456789"
pin = "123456"
unlock_code = "654321"

[[roles]]
code = "R8000"
name = "Clinical Practitioner Access Role"
business_functions = ["B0264"]
ods_code = "RX1"

[slots]
9a = "p256"
9c = "p256"
9d = "p256"
9e = "p256"
"#,
    )
    .unwrap();
    path
}

/// A running `vscard serve`, its stdout read line by line.
pub struct Serve {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    pub started: Instant,
}

impl Serve {
    /// Starts `vscard serve ARGS` with `state_dir`.
    pub fn start(state_dir: &Path, args: &[&str]) -> Serve {
        Serve::start_with_env(state_dir, args, &[])
    }

    /// [`Serve::start`] with extra environment variables (a PKCS#11
    /// module's configuration).
    pub fn start_with_env(
        state_dir: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Serve {
        let started = Instant::now();
        let mut command = vscard(state_dir);
        command.envs(env.iter().copied());
        let mut child = command
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
            started,
        }
    }

    /// Waits (up to 10 s) for a stdout line containing `text`.
    pub fn expect_line(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
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

    /// Every line seen so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap()
    }

    /// SIGTERM, and the exit must be clean; the output stays readable.
    pub fn terminate(&mut self) {
        kill_process(self.pid(), Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "vscard serve after SIGTERM: {status}");
    }

    /// [`Serve::terminate`], when the output is no longer needed.
    pub fn stop(mut self) {
        self.terminate();
    }

    /// SIGKILL: a crash.
    pub fn kill9(mut self) {
        kill_process(self.pid(), Signal::KILL).unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a `vscard serve` that must fail by itself (within 10 s); returns
/// its exit code and stderr.
pub fn serve_fails(state_dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = vscard(state_dir)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vscard serve {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = reader.join().unwrap();
    println!("vscard serve {args:?} -> {status}: {stderr}");
    (status.code().unwrap_or(-1), stderr)
}

/// Runs a middleware tool in `dir`, with HOME there too (OpenSC's cache
/// must not leak between tests), and echoes it.
pub fn tool_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .unwrap();
    println!(
        "$ {program} {}\n-> {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Stdout and stderr of a tool that must succeed.
pub fn success(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// Signs `data.txt` in `dir` with key `id` through OpenSC's PKCS#11
/// module (`pkcs11-tool`), and verifies the signature with `openssl` and
/// the public key of the certificate `pkcs15-tool` reads; a signature of
/// `other.txt` must not verify.
pub fn sign_and_verify(dir: &Path, id: &str, mechanism: &str) {
    let signature = format!("signature-{id}");
    let mut sign = vec![
        "--login", "--pin", "123456", "--sign", "--id", id, "-m", mechanism, "-i", "data.txt",
        "-o", &signature,
    ];
    if mechanism.starts_with("ECDSA") {
        sign.extend(["--signature-format", "openssl"]);
    }
    success(tool_in(dir, "pkcs11-tool", &sign));
    let pem = success(tool_in(dir, "pkcs15-tool", &["--read-certificate", id]));
    let begin = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    let certificate = format!("certificate-{id}.pem");
    std::fs::write(dir.join(&certificate), &pem[begin..]).unwrap();
    let public = success(tool_in(
        dir,
        "openssl",
        &["x509", "-in", &certificate, "-pubkey", "-noout"],
    ));
    let key = format!("public-{id}.pem");
    std::fs::write(dir.join(&key), public).unwrap();
    // RSA-PKCS signs the input itself (no hash): pkeyutl checks the raw
    // PKCS #1 v1.5 block; the hashing mechanisms are checked by dgst.
    let verify = |data: &str| {
        let args: Vec<&str> = if mechanism == "RSA-PKCS" {
            let pkeyutl = ["pkeyutl", "-verify", "-pubin", "-inkey", &key];
            [&pkeyutl[..], &["-sigfile", &signature, "-in", data]].concat()
        } else {
            let dgst = ["dgst", "-sha256", "-verify", &key];
            [&dgst[..], &["-signature", &signature, data]].concat()
        };
        tool_in(dir, "openssl", &args)
    };
    let ok = success(verify("data.txt"));
    assert!(
        ok.contains("Verified OK") || ok.contains("Signature Verified Successfully"),
        "{ok}"
    );
    assert!(
        !verify("other.txt").status.success(),
        "a signature of other data verified"
    );
}
