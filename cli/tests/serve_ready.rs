//! `vscard serve` when nothing listens as vpcd (issue 18 item 2): it says
//! what is missing within 2 s and keeps retrying; `--vpcd-timeout` makes
//! it give up with exit code 1. No pcscd needed: a port nobody listens on
//! is the case of pcscd not running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{issue, p256_profile, serve_fails, vscard};

/// A state directory and one P-256 card image in a fresh folder.
fn card() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    issue(
        &state,
        &card,
        "serve-ready",
        &["--profile", profile.to_str().unwrap()],
    );
    (dir, state, card)
}

/// A loopback address on which nothing listens (bound, then let go).
fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn serve_without_vpcd_says_what_is_missing_within_two_seconds_and_keeps_trying() {
    let (_dir, state, card) = card();
    let address = dead_address();
    let started = Instant::now();
    let mut child = vscard(&state)
        .arg("serve")
        .arg(&card)
        .args(["--vpcd", &address])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            println!("vscard| {line}");
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // Measured from the spawn: the card was issued before.
    let hint = lines
        .recv_timeout(Duration::from_secs(2).saturating_sub(started.elapsed()))
        .expect("no message within 2 s");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(
        hint.contains(&format!("nothing answers as vpcd at {address}")),
        "{hint}"
    );
    assert!(hint.contains("sudo systemctl start pcscd"), "{hint}");
    assert!(hint.contains("still retrying"), "{hint}");
    // Still running: it keeps retrying, since pcscd may start later.
    assert!(child.try_wait().unwrap().is_none(), "serve gave up");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn vpcd_timeout_makes_serve_exit_with_code_1() {
    let (_dir, state, card) = card();
    let address = dead_address();
    let started = Instant::now();
    let (code, stderr) = serve_fails(
        &state,
        &[
            card.to_str().unwrap(),
            "--vpcd",
            &address,
            "--vpcd-timeout",
            "1",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no vpcd after 1 s (--vpcd-timeout) for card 0"),
        "{stderr}"
    );
    assert!(stderr.contains(&address), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn a_bad_vpcd_timeout_is_bad_usage() {
    let (_dir, state, card) = card();
    let (code, stderr) = serve_fails(&state, &[card.to_str().unwrap(), "--vpcd-timeout", "soon"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--vpcd-timeout"), "{stderr}");
}
