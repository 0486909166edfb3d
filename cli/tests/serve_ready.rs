//! Readiness of `vscard serve` (issue 18 items 2 and 3). When nothing
//! listens as vpcd it says what is missing within 2 s and keeps retrying;
//! `--vpcd-timeout` makes it give up with exit code 1 (no pcscd needed: a
//! port nobody listens on is the case of pcscd not running). Through a
//! private pcscd: `vscard ctl PATH wait` returns once the card is present
//! and fails naming the card at its timeout, `status --json --card N`, and
//! `--ready-file`. The README's `serve --control ... & vscard ctl ...
//! remove` works as written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Serve, p256_card, run, serve_fails, vscard};
use vscard_testkit::private_pcscd;

fn card() -> (tempfile::TempDir, PathBuf, PathBuf) {
    p256_card("serve-ready")
}

/// A loopback address on which nothing listens (bound, then let go).
fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `vscard serve CARD --control SOCKET` towards a vpcd address nobody
/// listens on.
fn serve_without_vpcd(state: &Path, card: &Path, socket: &Path) -> Serve {
    let address = dead_address();
    Serve::start(
        state,
        &[
            card.to_str().unwrap(),
            "--vpcd",
            &address,
            "--control",
            socket.to_str().unwrap(),
        ],
    )
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

#[test]
fn ctl_wait_status_json_and_the_ready_file_through_pcscd() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let (dir, state, card) = card();
    let socket = dir.path().join("ctl.sock");
    let ready = dir.path().join("ready");
    let mut args = vec![
        card.to_str().unwrap().to_owned(),
        "--control".to_owned(),
        socket.to_str().unwrap().to_owned(),
        "--ready-file".to_owned(),
        ready.to_str().unwrap().to_owned(),
    ];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&state, &args);
    let ctl = |extra: &[&str]| {
        run(vscard(&state)
            .arg("ctl")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null()))
    };

    // Started at once: ctl waits for the socket, then for the card.
    let waited = ctl(&["wait", "--timeout", "10"]);
    assert_eq!(waited.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(waited.stdout).unwrap(),
        "card 0 is present\n"
    );
    // PC/SC agrees (vpcd spoke, so pcscd has the ATR).
    pcscd.wait_for_card(0, Duration::from_secs(1)).unwrap();

    let status = ctl(&["status", "--json", "--card", "0"]);
    assert_eq!(status.status.code(), Some(0));
    let cards: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(cards.as_array().unwrap().len(), 1);
    assert_eq!(cards[0]["card"], 0);
    assert_eq!(cards[0]["present"], true);
    assert_eq!(cards[0]["link"], "serving");
    assert_eq!(cards[0]["reader"], "Virtual PCD 00 00");
    let text = ctl(&["status", "--card", "0"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("card 0: inserted, in Virtual PCD 00 00"),
        "{text}"
    );
    // Bad input (issue 18 item 8: exit codes follow the README).
    let none = ctl(&["status", "--card", "7"]);
    assert_eq!(none.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr).trim_end(),
        "vscard: --card: no card 7 (the bridge has 1)"
    );

    serve.expect_line(&format!("ready: {}", ready.display()));
    let written = std::fs::read_to_string(&ready).unwrap();
    assert!(
        written.starts_with("card 0: inserted, in Virtual PCD 00 00"),
        "{written}"
    );

    // Pulled out: wait names the card at its timeout.
    assert_eq!(ctl(&["remove"]).status.code(), Some(0));
    pcscd.wait_for_no_card(0, Duration::from_secs(2)).unwrap();
    let started = Instant::now();
    let timed_out = ctl(&["wait", "--card", "0", "--timeout", "1"]);
    assert_eq!(timed_out.status.code(), Some(1));
    assert!(started.elapsed() >= Duration::from_secs(1));
    let stderr = String::from_utf8(timed_out.stderr).unwrap();
    assert!(
        stderr.contains("card 0 is not in a reader pcscd reports present after 1 s"),
        "{stderr}"
    );
    assert!(stderr.contains("removed"), "{stderr}");

    // Back in: wait succeeds again.
    assert_eq!(ctl(&["insert"]).status.code(), Some(0));
    assert_eq!(ctl(&["wait", "--card", "0"]).status.code(), Some(0));
    pcscd.wait_for_card(0, Duration::from_secs(1)).unwrap();

    serve.stop();
    assert!(!ready.exists(), "the ready file outlived serve");
}

#[test]
fn ctl_wait_times_out_naming_the_card_when_vpcd_never_comes() {
    let (dir, state, card) = card();
    let socket = dir.path().join("ctl.sock");
    let serve = serve_without_vpcd(&state, &card, &socket);
    let output = run(vscard(&state)
        .arg("ctl")
        .arg(&socket)
        .args(["wait", "--timeout", "1"]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr
            .contains("card 0 is not in a reader pcscd reports present after 1 s (link: waiting)"),
        "{stderr}"
    );
    serve.stop();
}

/// The README's `vscard serve --control /tmp/vscard.sock & vscard ctl
/// /tmp/vscard.sock remove`: ctl starts before serve has bound the socket
/// and must wait for it, not fail.
#[test]
fn the_readme_serve_and_ctl_example_works_as_written() {
    let (dir, state, card) = card();
    let socket = dir.path().join("vscard.sock");
    let serve = serve_without_vpcd(&state, &card, &socket);
    let output = run(vscard(&state).arg("ctl").arg(&socket).arg("remove"));
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("card 0: removed"), "{stdout}");
    serve.stop();
}

#[test]
fn ctl_without_a_serve_fails_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = run(vscard(dir.path())
        .arg("ctl")
        .arg(dir.path().join("none.sock"))
        .args(["status", "--timeout", "0.3"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() >= Duration::from_millis(300));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot reach"), "{stderr}");
}
