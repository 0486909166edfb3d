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

    // A served card keeps its lock file: issue and renew, refused while it
    // is served, leave it in place (no pcscd here: serve keeps retrying
    // vpcd, holding the lock).
    let served = cards.join("a.json");
    let mut serve =
        support::Serve::start(&state, &[served.to_str().unwrap(), "--vpcd", "127.0.0.1:9"]);
    serve.expect_line("connecting to vpcd");
    let lock = ["a.json", "a.json.lock", "b.json", "p256.toml"];
    assert_eq!(names_in(&cards), lock);
    assert_eq!(issue("a.json", &["--force"]).status.code(), Some(1));
    assert_eq!(
        run(vscard(&state).arg("renew").arg(&served)).status.code(),
        Some(1)
    );
    assert_eq!(names_in(&cards), lock);
    let second = support::serve_fails(&state, &[served.to_str().unwrap(), "--vpcd", "127.0.0.1:9"]);
    assert!(second.1.contains("in use by another process"), "{second:?}");
    serve.stop();
    // The lock file a server leaves is taken, and removed, by the next
    // one-shot command.
    run_ok(vscard(&state).arg("renew").arg(&served));
    assert_eq!(names_in(&cards), ["a.json", "b.json", "p256.toml"]);
}

/// Whole days from `now` (Unix seconds) to an RFC 3339 time, rounded
/// towards zero.
fn days_until(now: i64, text: &str) -> i64 {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (at.unix_timestamp() - now) / 86_400
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A P-256 card (fast) issued with `extra`, in a fresh folder.
fn card_with(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let profile = p256_profile(dir.path());
    let card = dir.path().join("card.json");
    support::issue(
        &dir.path().join("state"),
        &card,
        "inspect",
        &[&["--profile", profile.to_str().unwrap()], extra].concat(),
    );
    (dir, card)
}

fn inspect(card: &Path, json: bool) -> String {
    let mut command = std::process::Command::new(support::VSCARD);
    command.arg("inspect").arg(card);
    if json {
        command.arg("--json");
    }
    run_ok(&mut command)
}

/// `openssl x509 -fingerprint -sha256` of a certificate file, the value
/// only.
fn openssl_fingerprint(path: &Path, der: bool) -> String {
    let mut command = std::process::Command::new("openssl");
    command.args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]);
    command.arg(path);
    if der {
        command.args(["-inform", "DER"]);
    }
    let out = run_ok(&mut command);
    out.trim().split_once('=').unwrap().1.to_owned()
}

#[test]
fn inspect_marks_expired_not_yet_valid_and_valid_certificates() {
    for (state, expired, not_yet_valid, text) in [
        (None, false, false, " days left"),
        (Some("expired"), true, false, ": EXPIRED 1 day ago"),
        (Some("not-yet-valid"), false, true, ": NOT YET VALID"),
    ] {
        let extra: Vec<&str> = state.map(|s| vec!["--state", s]).unwrap_or_default();
        let (dir, card) = card_with(&extra);
        let before = unix_now();
        let json: serde_json::Value = serde_json::from_str(&inspect(&card, true)).unwrap();
        let after = unix_now() + 1;
        let text_out = inspect(&card, false);
        let slots = json["slots"].as_array().unwrap();
        assert_eq!(slots.len(), 4);
        for slot in slots {
            let certificate = &slot["certificate"];
            assert_eq!(certificate["expired"], expired, "{state:?}: {certificate}");
            assert_eq!(certificate["not_yet_valid"], not_yet_valid, "{certificate}");
            let days = certificate["days_left"].as_i64().unwrap();
            // As the clock read between `before` and `after` gives it.
            let not_after = certificate["not_after"].as_str().unwrap();
            let range = days_until(after, not_after)..=days_until(before, not_after);
            assert!(range.contains(&days), "{days} not in {range:?}");
            match state {
                Some("expired") => assert_eq!(days, -1),
                // Two years from a day after now, or from now.
                _ => assert!((729..=732).contains(&days), "{days}"),
            }
            // The PEM is the certificate openssl fingerprints alike.
            let pem = dir.path().join("cert.pem");
            std::fs::write(&pem, certificate["pem"].as_str().unwrap()).unwrap();
            let fingerprint = certificate["sha256_fingerprint"].as_str().unwrap();
            assert_eq!(openssl_fingerprint(&pem, false), fingerprint);
            let line = format!("              SHA-256 {fingerprint}");
            assert!(text_out.lines().any(|l| l == line), "{line} in {text_out}");
        }
        let marked = text_out
            .lines()
            .filter(|l| l.starts_with("slot ") && l.contains(text))
            .count();
        assert_eq!(marked, 4, "{text:?} in {text_out}");
        if state.is_none() {
            let days = slots[0]["certificate"]["days_left"].as_i64().unwrap();
            assert!(
                text_out.contains(&format!(": {days} days left")),
                "{text_out}"
            );
        }
    }
}

#[test]
fn export_cert_writes_the_cards_certificate_in_pem_or_der() {
    let (dir, card) = card_with(&[]);
    let json: serde_json::Value = serde_json::from_str(&inspect(&card, true)).unwrap();
    let applet = vscard_issuance::cards::read_applet(&card).unwrap();
    for (index, slot) in ["9a", "9C", "9d", "9e"].into_iter().enumerate() {
        let expected = &json["slots"][index]["certificate"];
        let on_card =
            vscard_issuance::certificate(applet.state(), vscard_issuance::CARD_SLOTS[index])
                .unwrap()
                .unwrap();
        let der_on_card = vscard_issuance::certificate_der(&on_card).unwrap();
        // PEM on stdout.
        let output = run(std::process::Command::new(support::VSCARD)
            .args(["export-cert"])
            .arg(&card)
            .args(["--slot", slot]));
        assert!(output.status.success());
        assert_eq!(String::from_utf8(output.stdout).unwrap(), expected["pem"]);
        // DER into a file; PEM into another.
        let der_file = dir.path().join(format!("{slot}.der"));
        let pem_file = dir.path().join(format!("{slot}.pem"));
        for (file, der) in [(&der_file, true), (&pem_file, false)] {
            let mut command = std::process::Command::new(support::VSCARD);
            command.arg("export-cert").arg(&card).args(["--slot", slot]);
            command.arg("--out").arg(file);
            if der {
                command.arg("--der");
            }
            assert_eq!(run_ok(&mut command), format!("{}\n", file.display()));
            assert_eq!(
                openssl_fingerprint(file, der),
                expected["sha256_fingerprint"].as_str().unwrap()
            );
        }
        assert_eq!(std::fs::read(&der_file).unwrap(), der_on_card);
        let subject = run_ok(
            std::process::Command::new("openssl")
                .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
                .arg(&pem_file),
        );
        // openssl spells the attribute serialNumber.
        let expected = format!("subject={}", expected["subject"].as_str().unwrap());
        assert!(subject.trim().eq_ignore_ascii_case(&expected), "{subject}");
    }
}

#[test]
fn export_cert_refuses_an_unknown_or_empty_slot() {
    let (dir, card) = card_with(&[]);
    for slot in ["9b", "82", "", "9a9c"] {
        let output = run(std::process::Command::new(support::VSCARD)
            .arg("export-cert")
            .arg(&card)
            .args(["--slot", slot]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "vscard: --slot: unknown slot {slot:?}; the card's key slots are 9a, 9c, 9d and 9e\n"
            )
        );
        assert!(output.stdout.is_empty());
    }
    // A PIV card image with no certificate at all (not issued by vscard).
    let blank = dir.path().join("blank.json");
    use vscard_emulator::Applet as _;
    let mut image = vscard_emulator::CardImage::new();
    image.set_applet(
        &vscard_applet::PIV_AID.to_hex(),
        vscard_applet::PivApplet::with_defaults().save().unwrap(),
    );
    vscard_emulator::FileStore::write(&blank, &image).unwrap();
    let out = dir.path().join("none.pem");
    let output = run(std::process::Command::new(support::VSCARD)
        .arg("export-cert")
        .arg(&blank)
        .args(["--slot", "9e", "--out"])
        .arg(&out));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "vscard: --slot: {} has no certificate in slot 9E\n",
            blank.display()
        )
    );
    assert!(!out.exists());
}

/// The keys of a TOML document as dotted paths (`roles`, `roles[].code`,
/// `slots.9a`; not the tables themselves).
fn key_paths(value: &toml::Value, prefix: &str, paths: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                // A table's keys are named by their own paths.
                if !value.is_table() {
                    paths.push(path.clone());
                }
                key_paths(value, &path, paths);
            }
        }
        toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), paths);
            }
        }
        _ => {}
    }
}

/// A TOML document as one value.
fn document(text: &str) -> toml::Value {
    toml::Value::Table(text.parse::<toml::Table>().unwrap())
}

fn sorted_unique(mut paths: Vec<String>) -> Vec<String> {
    paths.sort();
    paths.dedup();
    paths
}

/// The README's "Card profiles" section: its key table and its TOML
/// example.
fn readme_profile_doc() -> (Vec<String>, String) {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Card profiles\n")
        .nth(1)
        .unwrap()
        .split("\n### ")
        .next()
        .unwrap();
    let table = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .map(|rest| rest.split_once('`').unwrap().0.to_owned())
        .collect();
    let example = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .to_owned();
    (table, example)
}

#[test]
fn the_readme_documents_every_profile_key_and_its_example_is_accepted() {
    let (table, example) = readme_profile_doc();
    // The example uses every key of the table, and nothing else...
    let mut example_keys = Vec::new();
    key_paths(&document(&example), "", &mut example_keys);
    assert_eq!(sorted_unique(example_keys), sorted_unique(table.clone()));
    // ...and the parser (which refuses unknown keys) takes it as written.
    let profile = vscard_issuance::CardProfile::from_toml(&example).unwrap();
    assert_eq!(profile.uuid, "555500001111");
    assert_eq!(profile.roles.len(), 2);
    assert_eq!(profile.pin_policy.pin_tries, 5);
    assert_eq!(profile.environment.name(), "integration");
    // Every key the format writes is in the table (a profile with every
    // optional key set).
    let written = profile.to_toml().unwrap();
    let mut written_keys = Vec::new();
    key_paths(&document(&written), "", &mut written_keys);
    let capacity = vscard_issuance::CardProfile {
        capacity: 65_536,
        ..profile
    };
    key_paths(
        &document(&capacity.to_toml().unwrap()),
        "",
        &mut written_keys,
    );
    assert_eq!(sorted_unique(written_keys), sorted_unique(table));
    // A key the table does not name is refused.
    let unknown = format!("{example}\ncolour = \"blue\"\n");
    assert!(vscard_issuance::CardProfile::from_toml(&unknown).is_err());
}

#[test]
fn the_printed_profile_is_the_demo_card_and_issues_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let printed = run_ok(vscard(&state).args(["issue", "--print-profile"]));
    assert!(printed.starts_with("# A vscard card profile"), "{printed}");
    // Nothing is issued or created by printing.
    assert!(!state.exists());
    let profile = dir.path().join("demo.toml");
    std::fs::write(&profile, &printed).unwrap();
    let from_file = dir.path().join("from-file.json");
    let builtin = dir.path().join("builtin.json");
    let start = ["--not-before", "2026-06-01T00:00:00Z"];
    support::issue(
        &state,
        &from_file,
        "round-trip",
        &[&["--profile", profile.to_str().unwrap()][..], &start].concat(),
    );
    support::issue(&state, &builtin, "round-trip", &start);
    // The same seed and state directory: the printed profile is the
    // embedded demo profile, the same card (the image's era, and so its
    // checksum, depends on the file's path).
    let applets = |path: &Path| {
        let image: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        image["applets"].to_string()
    };
    assert!(applets(&from_file) == applets(&builtin), "different cards");
    let json: serde_json::Value = serde_json::from_str(&inspect(&from_file, true)).unwrap();
    assert_eq!(json["holder"], "Sample Specimen");
    assert_eq!(json["uuid"], "000123456789");
    // --print-profile goes alone.
    let output = run(vscard(&state).args(["issue", "--print-profile", "--out", "x.json"]));
    assert_eq!(output.status.code(), Some(2));
}
