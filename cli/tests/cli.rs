//! The `vscard` binary: serve into a private pcscd, trace, control socket,
//! clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{Serve, issue, p256_card, p256_profile, serve_fails};
use vscard_testkit::{private_pcscd, transmit};

const VSCARD: &str = env!("CARGO_BIN_EXE_vscard");
const SECOND: Duration = Duration::from_secs(1);

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
    let card_file = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    issue(
        dir.path(),
        &card_file,
        "cli",
        &["--profile", profile.to_str().unwrap()],
    );
    let started = Instant::now();
    let mut serve = Serve::start(
        dir.path(),
        &[
            card_file.to_str().unwrap(),
            "--trace",
            "--control",
            control.to_str().unwrap(),
            "--vpcd",
            "127.0.0.1:35963",
        ],
    );
    pcscd.wait_for_card(0, SECOND).unwrap();
    println!(
        "card in the reader {:?} after starting vscard",
        started.elapsed()
    );
    serve.expect_line("is in Virtual PCD 00 00");

    let card = pcscd.connect(0).unwrap();
    // VERIFY status query: three tries left, and the trace names it.
    assert_eq!(
        transmit(&card, &[0x00, 0x20, 0x00, 0x80]).unwrap(),
        [0x63, 0xC3]
    );
    let line = serve.expect_line("VERIFY PIN (status) -> 63C3 (3 tries left)");
    // Issue 18 item 8: a UTC timestamp first, the card's time last.
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert_eq!(stamp.len(), "2026-12-02T17:51:21.750Z".len(), "{line}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{line}"
    );
    assert!(
        rest.starts_with("VERIFY PIN (status) -> 63C3 (3 tries left) in "),
        "{line}"
    );
    assert!(rest.ends_with(" µs"), "{line}");
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

    serve.terminate();
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
        .args(["serve", "--vpcd", "localhost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}

/// Issue 18 item 8: one image named twice is bad input (exit code 2), not
/// "in use by another process" (its own lock, taken by the first).
#[test]
fn serve_refuses_one_image_named_twice_as_bad_input() {
    let (dir, state, card) = p256_card("serve-twice");
    let again = dir.path().join(".").join("card.json");
    let (code, stderr) = serve_fails(&state, &[card.to_str().unwrap(), again.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "vscard: CARD.json: {} is given twice (cards 0 and 1); one image can be in one reader only",
            again.display()
        )
    );
    assert!(!stderr.contains("in use"), "{stderr}");
}

/// Issue 18 item 8: log lines carry no ANSI colour codes when stderr is not
/// a terminal (a CI log, a file).
#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let (_dir, state, card) = p256_card("no-colour");
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = Command::new(VSCARD)
        .env("RUST_LOG", "vscard=debug")
        .arg("--state-dir")
        .arg(&state)
        .args(["serve", card.to_str().unwrap(), "--vpcd", &address])
        .args(["--vpcd-timeout", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The bridge's debug line while it retries: proof that log lines were
    // written at all.
    assert!(stderr.contains("vpcd not reachable yet"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// Issue 18 item 8: `ctl --card 5` on a 2-card bridge is bad input (exit
/// code 2), for a command and for `wait` alike.
#[test]
fn ctl_card_beyond_the_bridge_is_bad_input() {
    let (dir, state, card) = p256_card("ctl-no-such-card");
    let second = dir.path().join("second.json");
    std::fs::copy(&card, &second).unwrap();
    let socket = dir.path().join("ctl.sock");
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let serve = Serve::start(
        &state,
        &[
            card.to_str().unwrap(),
            second.to_str().unwrap(),
            "--vpcd",
            &address,
            "--control",
            socket.to_str().unwrap(),
        ],
    );
    for action in [&["status"][..], &["remove"], &["wait", "--timeout", "1"]] {
        let out = Command::new(VSCARD)
            .arg("ctl")
            .arg(&socket)
            .args(action)
            .args(["--card", "5"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{action:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            "vscard: --card: no card 5 (the bridge has 2)",
            "{action:?}"
        );
        assert!(out.stdout.is_empty(), "{action:?}");
    }
    serve.stop();
}

/// `vscard ctl SOCKET ARGS...` run from `dir`: (exit code, stdout, stderr).
fn ctl_in(dir: &std::path::Path, socket: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(VSCARD)
        .current_dir(dir)
        .arg("ctl")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    println!(
        "ctl {args:?} -> {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Issue 18 item 8: `--card` takes the card's file name (as served) or
/// path, or its user ID, besides the index; an unknown or ambiguous name
/// is bad input naming the cards. A swapped card goes by its new name.
#[test]
fn ctl_card_takes_a_file_name_a_path_or_a_user_id() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = p256_profile(dir.path());
    let issue_as = |path: &std::path::Path, uuid: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        issue(
            &state,
            path,
            uuid,
            &["--profile", profile.to_str().unwrap(), "--uuid", uuid],
        );
        std::fs::canonicalize(path).unwrap()
    };
    let x = issue_as(&dir.path().join("x/card.json"), "000123456789");
    let y = issue_as(&dir.path().join("y/card.json"), "555500001111");
    let nurse = issue_as(&dir.path().join("nurse.json"), "555500002222");
    let other = issue_as(&dir.path().join("other.json"), "555500003333");
    let socket = dir.path().join("ctl.sock");
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let serve = Serve::start(
        &state,
        &[
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            nurse.to_str().unwrap(),
            "--vpcd",
            &address,
            "--control",
            socket.to_str().unwrap(),
        ],
    );
    let elsewhere = tempfile::tempdir().unwrap();
    for (name, from, index) in [
        ("nurse.json", elsewhere.path(), 2),
        ("555500001111", elsewhere.path(), 1),
        ("000123456789", elsewhere.path(), 0),
        (x.to_str().unwrap(), elsewhere.path(), 0),
        ("y/card.json", dir.path(), 1),
        ("./nurse.json", dir.path(), 2),
        ("1", elsewhere.path(), 1),
    ] {
        let (code, stdout, stderr) = ctl_in(from, &socket, &["status", "--json", "--card", name]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let cards: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(cards.as_array().unwrap().len(), 1, "{name}: {stdout}");
        assert_eq!(cards[0]["card"], index, "{name}: {stdout}");
    }
    let listing = format!(
        "0: {} (user 000123456789), 1: {} (user 555500001111), 2: {} (user 555500002222)",
        x.display(),
        y.display(),
        nurse.display()
    );
    let (code, stdout, stderr) = ctl_in(elsewhere.path(), &socket, &["remove", "--card", "z.json"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        format!("vscard: --card: no card is \"z.json\"; the cards are {listing}\n")
    );
    assert!(stdout.is_empty());
    for action in [&["remove"][..], &["wait", "--timeout", "0.2"]] {
        let args = [action, &["--card", "card.json"]].concat();
        let (code, stdout, stderr) = ctl_in(elsewhere.path(), &socket, &args);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "vscard: --card: \"card.json\" names more than one card (0: {} (user \
                 000123456789), 1: {} (user 555500001111)); give the index, the path or the \
                 user ID\n",
                x.display(),
                y.display()
            )
        );
        assert!(stdout.is_empty());
    }
    // Nothing was removed by the refused commands; by name, it is.
    let (_, stdout, _) = ctl_in(elsewhere.path(), &socket, &["status", "--json"]);
    assert!(!stdout.contains("\"inserted\":false"), "{stdout}");
    let (code, stdout, _) = ctl_in(
        elsewhere.path(),
        &socket,
        &["remove", "--card", "555500002222"],
    );
    assert_eq!(code, 0);
    assert!(stdout.starts_with("card 2: removed"), "{stdout}");
    // Swapped by name, the card goes by the new image's names.
    let (code, _, stderr) = ctl_in(
        dir.path(),
        &socket,
        &["insert", "--card", "nurse.json", "other.json"],
    );
    assert_eq!(code, 0, "{stderr}");
    for name in ["other.json", "555500003333"] {
        let (code, stdout, _) = ctl_in(
            elsewhere.path(),
            &socket,
            &["status", "--json", "--card", name],
        );
        assert_eq!(code, 0);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap()[0]["card"],
            2
        );
    }
    let (code, _, stderr) = ctl_in(
        elsewhere.path(),
        &socket,
        &["status", "--card", "nurse.json"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("2: {} (user 555500003333)", other.display())),
        "{stderr}"
    );
    serve.stop();
}
