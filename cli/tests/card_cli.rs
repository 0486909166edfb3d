//! `vscard issue`, `inspect`, `export-ca` and `renew` as a person runs
//! them: exit codes, one-line errors naming the field, no secret in the
//! output, certificates that chain (checked by `openssl verify`), renewal
//! that keeps the PIN counter, reproducible seeded issuance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{issue, p256_profile, run, run_ok, serve_fails, vscard};
use vscard_applet::{DataObjectTag, PivApplet, piv_atr};
use vscard_emulator::{Card, FileStore};
use vscard_issuance::cards::read_applet;

/// PIN and unlock code that appear nowhere else in a card's output (the
/// demo ones are substrings of the demo user ID).
const PIN: &str = "480317";
const UNLOCK_CODE: &str = "917264";
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

/// One seeded default card (RSA 9A/9D) and its state directory, issued
/// once per test binary; tests copy it.
fn issued_once() -> &'static (tempfile::TempDir, PathBuf) {
    static ISSUED: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let card = dir.path().join("card.json");
        issue(
            &dir.path().join("state"),
            &card,
            "card-cli",
            &["--pin", PIN, "--unlock-code", UNLOCK_CODE],
        );
        (dir, card)
    })
}

/// A copy of the issued card and its state directory in a fresh folder:
/// (folder, state dir, card).
fn fresh_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (source, card) = issued_once();
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(source.path().join("state"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let copy = dir.path().join("card.json");
    std::fs::copy(card, &copy).unwrap();
    let state = dir.path().join("state");
    (dir, state, copy)
}

fn inspect_json(card: &Path) -> serde_json::Value {
    let text = run_ok(
        Command::new(support::VSCARD)
            .arg("inspect")
            .arg(card)
            .arg("--json"),
    );
    serde_json::from_str(&text).unwrap()
}

/// Asserts a failed run: exit code 2 and one stderr line containing
/// every one of `words`.
fn assert_bad_input(output: &std::process::Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("vscard: "), "{stderr}");
    for word in words {
        assert!(stderr.contains(word), "{word:?} not in {stderr:?}");
    }
}

/// No secret: neither the PIN nor the unlock code, and no long hex run
/// (private keys would be one).
fn assert_no_secret(text: &str) {
    assert!(!text.contains(PIN), "PIN in {text}");
    assert!(!text.contains(UNLOCK_CODE), "unlock code in {text}");
    let longest_hex = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_hex < 64, "a long hex string in {text}");
    assert!(!text.to_lowercase().contains("private"), "{text}");
}

#[test]
fn the_default_card_is_the_demo_holder_and_inspect_shows_no_secret() {
    let (_dir, _state, card) = fresh_copy();
    let text = run_ok(Command::new(support::VSCARD).arg("inspect").arg(&card));
    for expected in [
        "Sample Specimen",
        "000123456789",
        "R8000",
        "Clinical Practitioner Access Role",
        "RX1",
        "sandbox",
        "9A",
        "9C",
        "9D",
        "9E",
        "3 tries left",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
    assert_no_secret(&text);

    let json = inspect_json(&card);
    assert_no_secret(&json.to_string());
    assert_eq!(json["holder"], "Sample Specimen");
    assert_eq!(json["uuid"], "000123456789");
    assert_eq!(json["environment"], "sandbox");
    assert_eq!(json["pin"]["tries_left"], 3);
    assert_eq!(json["pin"]["blocked"], false);
    assert_eq!(json["unlock_code"]["tries_left"], 3);
    assert_eq!(json["roles"].as_array().unwrap().len(), 1);
    let slots = json["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 4);
    for slot in slots {
        let certificate = &slot["certificate"];
        assert!(
            certificate["subject"]
                .as_str()
                .unwrap()
                .contains("000123456789")
        );
        assert!(certificate["issuer"].as_str().unwrap().contains("Sub CA"));
    }
    let key = |slot: usize| slots[slot]["certificate"]["key_algorithm"].clone();
    assert_eq!((key(0), key(1)), ("rsa2048".into(), "p256".into()));
}

#[test]
fn flags_override_the_profile_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("nested/folder/card.json");
    // `issue --out` creates no folder (issue 18 item 8).
    std::fs::create_dir_all(card.parent().unwrap()).unwrap();
    let profile = p256_profile(dir.path());
    let output = run_ok(
        vscard(&state)
            .args(["issue", "--out"])
            .arg(&card)
            .arg("--profile")
            .arg(&profile)
            .args(["--name", "Alex Flag", "--uuid", "555566667777"])
            .args(["--environment", "integration"])
            .args(["--role", "R8001:Nurse Access Role:B0058,B0264:RX2"])
            .args(["--role", "R8000:Clinical Practitioner Access Role::RX1"]),
    );
    assert!(output.contains("Alex Flag"), "{output}");
    let json = inspect_json(&card);
    assert_eq!(json["holder"], "Alex Flag");
    assert_eq!(json["uuid"], "555566667777");
    assert_eq!(json["environment"], "integration");
    let roles = json["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0]["code"], "R8001");
    assert_eq!(roles[0]["business_functions"][1], "B0264");
    assert_eq!(roles[1]["ods_code"], "RX1");
    for slot in json["slots"].as_array().unwrap() {
        assert_eq!(slot["certificate"]["key_algorithm"], "p256", "{slot}");
    }
    // The integration PKI was created beside the (unused) sandbox one.
    assert!(state.join("pki/integration/sub-ca.cert.pem").exists());
}

#[test]
fn bad_input_exits_2_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("card.json");
    let unknown_field = dir.path().join("unknown.toml");
    let profile = std::fs::read_to_string(p256_profile(dir.path())).unwrap();
    std::fs::write(&unknown_field, format!("colour = \"blue\"\n{profile}")).unwrap();
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (args(&["--uuid", "12345678901"]), &["uuid", "12 digits"]),
        (args(&["--pin", "12345"]), &["pin", "6 to 8 digits"]),
        (args(&["--unlock-code", "12a456"]), &["unlock_code"]),
        (args(&["--role", "R8000"]), &["--role", "CODE:NAME"]),
        (args(&["--role", "X1:Name::RX1"]), &["--role.code"]),
        (args(&["--environment", "Bad Env"]), &["environment"]),
        (
            args(&["--not-before", "yesterday"]),
            &["--not-before", "RFC 3339"],
        ),
        (
            args(&[
                "--not-before",
                "2025-01-01T00:00:00Z",
                "--not-after",
                "2024-01-01T00:00:00Z",
            ]),
            &["not_after", "later than"],
        ),
        (
            vec!["--profile".into(), unknown_field.display().to_string()],
            &["colour", "unknown field"],
        ),
        (
            args(&["--profile", "/nonexistent/profile.toml"]),
            &["profile.toml"],
        ),
    ];
    for (extra, words) in cases {
        let output = run(vscard(&state)
            .args(["issue", "--out"])
            .arg(&out)
            .args(&extra));
        assert_bad_input(&output, words);
        assert!(!out.exists(), "{extra:?} wrote a card");
    }
    // A usage error from the parser is one line and exit code 2 as well.
    assert_bad_input(&run(vscard(&state).args(["issue"])), &["--out"]);
    assert_bad_input(
        &run(vscard(&state).args(["serve", "--vpcd", "localhost"])),
        &["--vpcd", "HOST:PORT"],
    );
    assert_bad_input(
        &run(vscard(&state).args(["serve", "--listen", "x:1"])),
        &["--listen"],
    );
}

#[test]
fn issue_puts_the_card_in_the_states_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = p256_profile(dir.path());
    let profile = profile.to_str().unwrap();
    let blocked = dir.path().join("blocked.json");
    let states = [
        "--state",
        "pin-blocked",
        "--state",
        "puk-blocked",
        "--state",
        "management-key-locked",
        "--state",
        "expired",
    ];
    issue(
        &state,
        &blocked,
        "states",
        &[&["--profile", profile][..], &states].concat(),
    );
    let summary = inspect_json(&blocked);
    assert_eq!(summary["pin"]["tries_left"], 0);
    assert_eq!(summary["pin"]["blocked"], true);
    assert_eq!(summary["unlock_code"]["blocked"], true);
    let two = dir.path().join("two.json");
    issue(
        &state,
        &two,
        "states",
        &["--profile", profile, "--state", "pin-tries=2"],
    );
    assert_eq!(inspect_json(&two)["pin"]["tries_left"], 2);
    assert_eq!(inspect_json(&two)["unlock_code"]["tries_left"], 3);
    let out = dir.path().join("refused.json");
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--state", "blocked"], &["--state", "pin-tries=N"]),
        (&["--state", "pin-tries=9"], &["--state", "at most 3"]),
        (
            &["--state", "expired", "--state", "not-yet-valid"],
            &["--state", "exclude"],
        ),
        (
            &["--state", "expired", "--not-after", "2030-01-01T00:00:00Z"],
            &["--state", "--not-after"],
        ),
    ];
    for (extra, words) in cases {
        let output = run(vscard(&state)
            .args(["issue", "--profile", profile, "--out"])
            .arg(&out)
            .args(extra));
        assert_bad_input(&output, words);
        assert!(!out.exists(), "{extra:?} wrote a card");
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn damaged_missing_and_existing_card_files_are_bad_input() {
    let (dir, state, card) = fresh_copy();
    // Refused without --force, and the image is left as it was.
    let before = std::fs::read(&card).unwrap();
    let output = run(vscard(&state).args(["issue", "--out"]).arg(&card));
    assert_bad_input(&output, &["already exists", "--force"]);
    assert_eq!(std::fs::read(&card).unwrap(), before);

    let missing = dir.path().join("missing.json");
    for command in ["inspect", "renew"] {
        let output = run(vscard(&state).arg(command).arg(&missing));
        assert_bad_input(&output, &["missing.json", "no card image"]);
    }
    let (code, stderr) = serve_fails(&state, &[missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!dir.path().join("missing.json.lock").exists());

    let damaged = dir.path().join("damaged.json");
    let text = String::from_utf8(before).unwrap();
    assert!(text.contains("\"pin_tries\": 3"));
    std::fs::write(
        &damaged,
        text.replacen("\"pin_tries\": 3", "\"pin_tries\": 9", 1),
    )
    .unwrap();
    for command in ["inspect", "renew"] {
        let output = run(vscard(&state).arg(command).arg(&damaged));
        assert_bad_input(&output, &["damaged.json", "damaged"]);
    }
    let (code, stderr) = serve_fails(&state, &[damaged.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("damaged"), "{stderr}");

    // --force replaces the image with a new card (a new seed: new keys).
    let old = inspect_json(&card);
    run_ok(
        vscard(&state)
            .args(["issue", "--force", "--seed", "another", "--out"])
            .arg(&card),
    );
    let new = inspect_json(&card);
    assert_ne!(
        old["slots"][1]["certificate"]["serial"],
        new["slots"][1]["certificate"]["serial"]
    );
}

#[test]
fn exported_cas_verify_the_card_certificates_with_openssl() {
    let (dir, state, card) = fresh_copy();
    let ca = dir.path().join("ca");
    let output = run_ok(vscard(&state).args(["export-ca", "--out"]).arg(&ca));
    assert!(
        output.contains("root.pem") && output.contains("sub.pem"),
        "{output}"
    );
    let (root, sub) = (ca.join("root.pem"), ca.join("sub.pem"));
    let applet = read_applet(&card).unwrap();
    for (slot, tag) in [
        ("9a", 0x5FC105),
        ("9c", 0x5FC10A),
        ("9d", 0x5FC10B),
        ("9e", 0x5FC101),
    ] {
        let container = applet
            .state()
            .object(DataObjectTag::new(tag).unwrap())
            .unwrap();
        let der = vscard_applet::objects::certificate_der(container).unwrap();
        let path = dir.path().join(format!("{slot}.der"));
        std::fs::write(&path, der).unwrap();
        let pem = dir.path().join(format!("{slot}.pem"));
        run_ok(
            Command::new("openssl")
                .args(["x509", "-inform", "DER", "-in"])
                .arg(&path)
                .arg("-out")
                .arg(&pem),
        );
        let verified = run_ok(
            Command::new("openssl")
                .args(["verify", "-x509_strict", "-CAfile"])
                .arg(&root)
                .arg("-untrusted")
                .arg(&sub)
                .arg(&pem),
        );
        assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    }
    // The card's attestation key certificate (5FFF01) is the attestation
    // CA's, which export-ca writes beside the others.
    assert!(output.contains("attestation-ca.pem"), "{output}");
    let container = applet
        .state()
        .object(DataObjectTag::new(0x5FFF01).unwrap())
        .unwrap();
    let der = vscard_applet::objects::certificate_der(container).unwrap();
    let device = dir.path().join("f9.der");
    std::fs::write(&device, der).unwrap();
    let pem = dir.path().join("f9.pem");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&device)
            .arg("-out")
            .arg(&pem),
    );
    let verified = run_ok(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(ca.join("attestation-ca.pem"))
            .arg(&pem),
    );
    assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    // Another environment has another chain: the card does not verify.
    // It does not exist yet: refused (issue 18 item 8) unless --create.
    let other = dir.path().join("other");
    let output = run(vscard(&state)
        .args(["export-ca", "--environment", "integration", "--out"])
        .arg(&other));
    assert_bad_input(
        &output,
        &["--environment", "no environment integration", "--create"],
    );
    assert!(!state.join("pki/integration").exists());
    assert!(!other.exists());
    run_ok(
        vscard(&state)
            .args([
                "export-ca",
                "--environment",
                "integration",
                "--create",
                "--out",
            ])
            .arg(&other),
    );
    let output = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(other.join("root.pem"))
        .arg("-untrusted")
        .arg(other.join("sub.pem"))
        .arg(dir.path().join("9a.pem")));
    assert!(!output.status.success());
}

/// The PIV card of the image at `path`, powered on (the card commits to
/// the image as a served one does).
fn open_image(path: &Path) -> Card {
    // Another test thread's fork (to spawn a tool) holds a copy of every
    // open descriptor until its exec, the lock of a store this test just
    // dropped included: wait that moment out.
    let started = std::time::Instant::now();
    let store = loop {
        match FileStore::open(path) {
            Err(vscard_emulator::StoreError::Locked { .. })
                if started.elapsed() < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => break other.unwrap(),
        }
    };
    let mut card = Card::builder()
        .atr(piv_atr())
        .store(store)
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.power_on();
    card
}

/// A wrong VERIFY made in-process on the image (the card commits the try).
fn wrong_pin_try(card: &Path) -> Vec<u8> {
    let mut card = open_image(card);
    let select = card.transmit(&SELECT_PIV).unwrap();
    assert_eq!(select[select.len() - 2..], [0x90, 0x00]);
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"000000\xFF\xFF");
    card.transmit(&verify).unwrap()
}

#[test]
fn renew_extends_validity_and_keeps_the_pin_counter() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    // An expired card.
    issue(
        &state,
        &card,
        "renew",
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2022-01-01T00:00:00+01:00",
        ],
    );
    let before = inspect_json(&card);
    assert_eq!(
        before["slots"][0]["certificate"]["not_after"],
        "2021-12-31T23:00:00Z"
    );
    assert_eq!(wrong_pin_try(&card), [0x63, 0xC2]);
    assert_eq!(inspect_json(&card)["pin"]["tries_left"], 2);

    let output = run_ok(vscard(&state).arg("renew").arg(&card));
    assert!(output.contains("valid until"), "{output}");
    let after = inspect_json(&card);
    assert_eq!(after["pin"]["tries_left"], 2, "renewal gave back a PIN try");
    let now_year: i64 = 1970
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952) as i64;
    for slot in after["slots"].as_array().unwrap() {
        let not_after = slot["certificate"]["not_after"].as_str().unwrap();
        let year: i64 = not_after[..4].parse().unwrap();
        assert!(year >= now_year + 2, "{not_after}");
    }
    // Same keys unless asked: the subject key of 9C is unchanged.
    let applet = read_applet(&card).unwrap();
    let key_9c = format!("{:?}", applet.public_key(vscard_applet::Slot::SIGNATURE));
    run_ok(vscard(&state).args(["renew", "--new-keys"]).arg(&card));
    let renewed = read_applet(&card).unwrap();
    assert_ne!(
        key_9c,
        format!("{:?}", renewed.public_key(vscard_applet::Slot::SIGNATURE))
    );
    assert_eq!(inspect_json(&card)["pin"]["tries_left"], 2);

    // Renewal needs the PKI that issued the card.
    let output = run(vscard(&dir.path().join("elsewhere"))
        .arg("renew")
        .arg(&card));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no test PKI"));
}

#[test]
fn seeded_issuance_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = p256_profile(dir.path());
    let window = [
        "--not-before",
        "2026-01-01T00:00:00Z",
        "--not-after",
        "2028-01-01T00:00:00Z",
        "--profile",
        profile.to_str().unwrap(),
    ];
    let cards: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|name| dir.path().join(format!("{name}.json")))
        .collect();
    issue(&state, &cards[0], "same seed", &window);
    issue(&state, &cards[1], "same seed", &window);
    issue(&state, &cards[2], "other seed", &window);
    let bytes = |path: &Path| std::fs::read(path).unwrap();
    assert_eq!(bytes(&cards[0]), bytes(&cards[1]));
    assert_ne!(bytes(&cards[0]), bytes(&cards[2]));
}

#[test]
fn a_served_card_is_neither_served_twice_nor_replaced() {
    let (_dir, state, card) = fresh_copy();
    let card_arg = card.to_str().unwrap();
    // No pcscd here: the first server keeps retrying vpcd, holding the lock.
    let mut first = support::Serve::start(&state, &[card_arg, "--vpcd", "127.0.0.1:9"]);
    first.expect_line("connecting to vpcd");
    let (code, stderr) = serve_fails(&state, &[card_arg, "--vpcd", "127.0.0.1:9"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let output = run(vscard(&state)
        .args(["issue", "--force", "--out"])
        .arg(&card));
    assert_eq!(output.status.code(), Some(1));
    let output = run(vscard(&state).arg("renew").arg(&card));
    assert_eq!(output.status.code(), Some(1));
    // Inspecting takes no lock.
    assert_eq!(inspect_json(&card)["uuid"], "000123456789");
    first.stop();
}

#[test]
fn key_generation_shows_progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let quiet = run(vscard(&state)
        .args(["issue", "--seed", "quiet", "--out"])
        .arg(dir.path().join("quiet.json")));
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    // util-linux `script` gives the command a terminal.
    let command = format!(
        "{} --state-dir {} issue --seed tty --out {}",
        support::VSCARD,
        state.display(),
        dir.path().join("tty.json").display()
    );
    let shown = run_ok(Command::new("script").args(["-qec", &command, "/dev/null"]));
    for slot in [
        "RSA-2048 key for slot 9A",
        "P-256 key for slot 9C",
        "slot 9D",
        "slot 9E",
    ] {
        assert!(shown.contains(slot), "{slot:?} not in {shown}");
    }
}

#[test]
fn a_json_profile_is_read_by_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{
  "name": "Jo Json",
  "uuid": "100200300400",
  "pin": "24681357",
  "unlock_code": "13572468",
  "roles": [{ "code": "R5080", "name": "Admin", "ods_code": "Y12345" }],
  "environment": "ptl-int",
  "slots": { "9a": "p256", "9d": "p384" }
}"#,
    )
    .unwrap();
    let card = dir.path().join("card.json");
    issue(
        &state,
        &card,
        "json",
        &["--profile", profile.to_str().unwrap()],
    );
    let json = inspect_json(&card);
    assert_eq!(json["holder"], "Jo Json");
    assert_eq!(json["environment"], "ptl-int");
    assert_eq!(json["roles"][0]["ods_code"], "Y12345");
    assert_eq!(json["slots"][2]["certificate"]["key_algorithm"], "p384");
    assert!(!json.to_string().contains("24681357"));

    // The same text under a .toml name is not TOML: refused, field named.
    let wrong = dir.path().join("profile.toml");
    std::fs::copy(&profile, &wrong).unwrap();
    let output = run(vscard(&state)
        .args(["issue", "--out"])
        .arg(dir.path().join("other.json"))
        .arg("--profile")
        .arg(&wrong));
    assert_bad_input(&output, &["profile", "TOML"]);
}

/// VERIFY `pin` in-process on the image; the status word.
fn verify_sw(card: &Path, pin: &[u8]) -> [u8; 2] {
    let mut card = open_image(card);
    card.transmit(&SELECT_PIV).unwrap();
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(pin);
    verify.resize(13, 0xFF);
    let answer = card.transmit(&verify).unwrap();
    [answer[answer.len() - 2], answer[answer.len() - 1]]
}

#[test]
fn secrets_come_from_files_and_stdin_never_the_command_line() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "246810\n").unwrap();
    let mut child = vscard(&state)
        .args(["issue", "--out"])
        .arg(&card)
        .arg("--profile")
        .arg(&profile)
        .arg("--pin-file")
        .arg(&pin_file)
        .args(["--unlock-code-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"97531135\r\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    // The profile's PIN (123456) was replaced by the file's.
    assert_eq!(verify_sw(&card, b"123456"), [0x63, 0xC2]);
    assert_eq!(verify_sw(&card, b"246810"), [0x90, 0x00]);
    // RESET RETRY COUNTER with the unlock code read from stdin (CRLF cut).
    let mut card_on_file = open_image(&card);
    card_on_file.transmit(&SELECT_PIV).unwrap();
    let mut reset = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    reset.extend_from_slice(b"97531135");
    reset.extend_from_slice(b"111111\xFF\xFF");
    assert_eq!(card_on_file.transmit(&reset).unwrap(), [0x90, 0x00]);
    drop(card_on_file);

    // Standard input serves one option only; a plain flag and its file
    // option together are bad usage; an empty file is bad input.
    let output = run(vscard(&state)
        .args(["issue", "--force", "--out"])
        .arg(&card)
        .args(["--unlock-code-file", "-", "--seed-file", "-"])
        .stdin(std::process::Stdio::null()));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("standard input"));
    let output = run(vscard(&state)
        .args(["issue", "--force", "--out"])
        .arg(&card)
        .args(["--pin", "135790", "--pin-file"])
        .arg(&pin_file));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let output = run(vscard(&state)
        .args(["issue", "--force", "--out"])
        .arg(&card)
        .arg("--seed-file")
        .arg(&empty));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("is empty"));
}

#[test]
fn help_warns_that_plain_secret_flags_are_visible() {
    let help = run_ok(Command::new(support::VSCARD).args(["issue", "--help"]));
    for flag in ["--pin-file", "--unlock-code-file", "--seed-file"] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(help.contains("/proc/PID/cmdline"), "{help}");
}

#[test]
fn issue_refuses_a_planted_lock_link_and_creates_nothing() {
    let (dir, state, _card) = fresh_copy();
    let card = dir.path().join("planted.json");
    let elsewhere = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("planted.json.lock")).unwrap();
    let output = run(vscard(&state).args(["issue", "--out"]).arg(&card));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("planted.json.lock") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert!(!elsewhere.exists());
    assert!(!card.exists());
}

// Issue 18 item 5: a reproducible PKI across runners.

const PKI_FILES: [&str; 4] = [
    "root-ca.key.pem",
    "root-ca.cert.pem",
    "sub-ca.key.pem",
    "sub-ca.cert.pem",
];

fn pki_files(state: &Path, environment: &str) -> Vec<Vec<u8>> {
    PKI_FILES
        .iter()
        .map(|name| std::fs::read(state.join("pki").join(environment).join(name)).unwrap())
        .collect()
}

#[test]
fn pki_init_makes_the_same_ca_in_two_state_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let seed_file = dir.path().join("seed");
    std::fs::write(&seed_file, "ci seed\n").unwrap();
    let first =
        run_ok(vscard(&one).args(["pki", "init", "--environment", "ci", "--seed", "ci seed"]));
    let second = run_ok(
        vscard(&two)
            .args(["pki", "init", "--environment", "ci", "--seed-file"])
            .arg(&seed_file),
    );
    assert_eq!(pki_files(&one, "ci"), pki_files(&two, "ci"));
    assert!(!first.contains("ci seed"), "{first}");
    assert!(first.contains("CN=vscard TEST Root CA (ci PKI "), "{first}");
    let id = |out: &str| out.split_whitespace().nth(2).unwrap().to_owned();
    assert_eq!(id(&first), id(&second));
    // Again with the same seed: fine; with another: refused, untouched.
    run_ok(vscard(&one).args(["pki", "init", "--environment", "ci", "--seed", "ci seed"]));
    let output = run(vscard(&one).args(["pki", "init", "--environment", "ci", "--seed", "other"]));
    assert_bad_input(&output, &["already has the test PKI", &id(&first)]);
    assert_eq!(pki_files(&one, "ci"), pki_files(&two, "ci"));
    // The exported CAs are the same too, and cards issued on either verify
    // against either.
    let out = dir.path().join("ca");
    run_ok(
        vscard(&two)
            .args(["export-ca", "--environment", "ci", "--out"])
            .arg(&out),
    );
    assert_eq!(
        std::fs::read(out.join("root.pem")).unwrap(),
        pki_files(&one, "ci")[1]
    );
    // A seed is required, and --not-before must be RFC 3339.
    let output = run(vscard(&one).args(["pki", "init"]));
    assert_eq!(output.status.code(), Some(2));
    let output = run(vscard(&one).args([
        "pki",
        "init",
        "--environment",
        "ci2",
        "--seed",
        "s",
        "--not-before",
        "tomorrow",
    ]));
    assert_bad_input(&output, &["--not-before", "RFC 3339"]);
    assert!(!one.join("pki/ci2").exists());
}

#[test]
fn pki_import_takes_a_committed_ca_and_stores_its_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team");
    run_ok(vscard(&team).args(["pki", "init", "--seed", "team"]));
    let cert = team.join("pki/sandbox/root-ca.cert.pem");
    let key = team.join("pki/sandbox/root-ca.key.pem");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    for state in [&one, &two] {
        let output = run_ok(
            vscard(state)
                .args(["pki", "import", "--environment", "sandbox", "--cert"])
                .arg(&cert)
                .arg("--key")
                .arg(&key),
        );
        assert!(!output.contains("PRIVATE"), "{output}");
    }
    assert_eq!(pki_files(&one, "sandbox"), pki_files(&two, "sandbox"));
    assert_eq!(pki_files(&one, "sandbox")[0], key_text.as_bytes());
    {
        use std::os::unix::fs::PermissionsExt;
        let stored = one.join("pki/sandbox/root-ca.key.pem");
        let mode = std::fs::metadata(stored).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A card issued after the import chains to the team's CA.
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    issue(
        &one,
        &card,
        "imported",
        &["--profile", profile.to_str().unwrap()],
    );
    let summary = inspect_json(&card);
    let issuer = summary["slots"][0]["certificate"]["issuer"]
        .as_str()
        .unwrap();
    assert!(
        issuer.starts_with("CN=vscard TEST Sub CA (sandbox PKI "),
        "{issuer}"
    );
    // A key that is not the certificate's: exit 2, the key file named,
    // its content never shown.
    let other = dir.path().join("other");
    run_ok(vscard(&other).args(["pki", "init", "--seed", "other"]));
    let output = run(vscard(&dir.path().join("three"))
        .args(["pki", "import", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(other.join("pki/sandbox/root-ca.key.pem")));
    assert_bad_input(&output, &["root-ca.key.pem"]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("BEGIN"));
    assert!(!dir.path().join("three/pki/sandbox").exists());
    // A missing input file is bad input too.
    let output = run(vscard(&dir.path().join("three"))
        .args(["pki", "import", "--cert"])
        .arg(dir.path().join("missing.pem"))
        .arg("--key")
        .arg(&key));
    assert_bad_input(&output, &["--cert", "missing.pem"]);
}

#[test]
fn renew_refuses_another_ca_unless_new_ca() {
    let (dir, state, card) = support::p256_card("renew-ca");
    let before = std::fs::read(&card).unwrap();
    // Another state folder with its own sandbox PKI.
    let other = dir.path().join("other");
    let out = run_ok(vscard(&other).args(["pki", "init", "--seed", "elsewhere"]));
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    let output = run(vscard(&other).arg("renew").arg(&card));
    assert_bad_input(&output, &["--new-ca", "not issued by the Sub CA"]);
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "the card was changed"
    );
    // Its own PKI renews it.
    run_ok(vscard(&state).arg("renew").arg(&card));
    // Told to, the other PKI takes the card over.
    run_ok(vscard(&other).args(["renew", "--new-ca"]).arg(&card));
    let issuer = inspect_json(&card)["slots"][0]["certificate"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(issuer.contains(&format!("PKI {id})")), "{issuer} vs {id}");
    // Now the first PKI is the other CA.
    let output = run(vscard(&state).arg("renew").arg(&card));
    assert_bad_input(&output, &["--new-ca"]);
}

/// Issue 18 item 8: `issue --out` into a folder that does not exist is bad
/// input, and creates nothing (a typo must not become a new folder).
#[test]
fn issue_refuses_an_out_folder_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let folder = dir.path().join("nonexistent").join("dir");
    let output = run(vscard(&state)
        .args(["issue", "--seed", "missing-folder", "--out"])
        .arg(folder.join("card.json")));
    assert_bad_input(
        &output,
        &["--out", &folder.display().to_string(), "does not exist"],
    );
    assert!(!dir.path().join("nonexistent").exists());
    // Nothing was issued either: the check comes before any work.
    assert!(!state.exists());
}

/// Issue 18 item 8: the README gives the PIN and unlock code lengths the
/// CLI takes ("6 to 8 digits", as `vscard issue --help` says), not a
/// fixed 6.
#[test]
fn the_readme_gives_the_pin_lengths_the_cli_takes() {
    let readme = include_str!("../../README.md");
    let help = run_ok(vscard(Path::new("unused")).args(["issue", "--help"]));
    assert!(help.contains("The PIN (6 to 8 digits"), "{help}");
    assert!(help.contains("the PIV PUK (6 to 8 digits)"), "{help}");
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!flat.contains("6-digit"), "the README still says 6-digit");
    assert!(flat.contains("a PIN of 6 to 8 digits"));
    assert!(flat.contains("an unlock code of 6 to 8 digits"));
}
