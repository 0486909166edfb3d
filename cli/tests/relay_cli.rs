//! `vscard relay pair | list | forget` and the refusals of `relay` and
//! `serve --link` that need no pcscd.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt as _;

use support::{run, run_ok, vscard};

#[test]
fn pair_prints_the_uri_and_writes_it_private_and_each_pairing_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("pair.uri");
    let printed = run_ok(
        vscard(&state)
            .args([
                "relay",
                "pair",
                "--expires",
                "90s",
                "--address",
                "192.0.2.7:4000",
                "--out",
            ])
            .arg(&out),
    );
    let uri = std::fs::read_to_string(&out).unwrap();
    let uri = uri.trim();
    assert!(
        uri.starts_with("vscard-pair://192.0.2.7:4000?name="),
        "{uri}"
    );
    assert!(printed.contains(uri));
    assert!(printed.contains("works once, for 90 s"), "{printed}");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pairings = state.join("link/pairings");
    assert_eq!(std::fs::read_dir(&pairings).unwrap().count(), 1);
    let mode = std::fs::metadata(&pairings).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // The URI's key fingerprint is this relay's, the same every time; the
    // secret is new every time.
    let again = run_ok(vscard(&state).args(["relay", "pair", "--address", "192.0.2.7:4000"]));
    let second = again
        .lines()
        .find(|l| l.starts_with("vscard-pair://"))
        .unwrap();
    let param = |uri: &str, key: &str| {
        uri.split(['?', '&'])
            .find_map(|p| p.strip_prefix(&format!("{key}=")).map(str::to_owned))
            .unwrap()
    };
    assert_eq!(param(uri, "key"), param(second, "key"));
    assert_ne!(param(uri, "secret"), param(second, "secret"));
    assert_eq!(std::fs::read_dir(&pairings).unwrap().count(), 2);
}

#[test]
fn list_forget_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert_eq!(
        run_ok(vscard(&state).args(["relay", "list"])),
        "no paired cards (pair one with `vscard relay pair`)\n"
    );
    let forget = run(vscard(&state).args(["relay", "forget", "nobody"]));
    assert_eq!(forget.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&forget.stderr).contains("no paired card is named \"nobody\""));
    let remote = run(vscard(&state).args(["relay", "--vpcd", "192.0.2.1:35963"]));
    assert_eq!(remote.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("--vpcd-peer any"));
    let unpaired = run(vscard(&state).args(["serve", "--link", "desk"]));
    assert_eq!(unpaired.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unpaired.stderr).contains("desk is not a paired relay"),
        "{unpaired:?}"
    );
    let bad = run(vscard(&state).args(["serve", "--link", "vscard-pair://h:1?key=00"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("pairing URI has a malformed key fingerprint"),
        "{bad:?}"
    );
    let expires = run(vscard(&state).args(["relay", "pair", "--expires", "soon"]));
    assert_eq!(expires.status.code(), Some(2));
}
