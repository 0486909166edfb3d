//! `--encrypt-key-file`: a card image sealed with AES-256-GCM on disk
//! holds none of its secrets; every command that opens it needs the key;
//! a wrong key or one changed byte is refused and nothing is loaded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{p256_profile, run, run_ok, vscard};

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", hex::encode([byte; 32]))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Every string of the plaintext image long enough to be a secret (PIN,
/// unlock code and management key records, PKCS #8 keys, certificates).
fn strings_of(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if text.len() >= 6 => out.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| strings_of(v, out)),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn an_encrypted_card_holds_no_secret_and_opens_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A PIN and unlock code that appear nowhere else (the user ID, in the
    // header as the card identity, holds 123456).
    let profile = p256_profile(dir.path());
    let text = std::fs::read_to_string(&profile).unwrap();
    let text = text
        .replace("pin = \"123456\"", "pin = \"271828\"")
        .replace("unlock_code = \"654321\"", "unlock_code = \"314159\"");
    assert!(text.contains("271828") && text.contains("314159"));
    std::fs::write(&profile, text).unwrap();
    let key = key_file(dir.path(), "card.key", 0x42);
    let wrong = key_file(dir.path(), "wrong.key", 0x43);
    let plain = dir.path().join("plain.json");
    let sealed = dir.path().join("sealed.json");
    let issue = |out: &Path, extra: &[&str]| {
        run_ok(
            vscard(&state)
                .args(["issue", "--seed", "sealed", "--profile"])
                .arg(&profile)
                .arg("--out")
                .arg(out)
                .args(extra),
        )
    };
    issue(&plain, &[]);
    issue(&sealed, &["--encrypt-key-file", key.to_str().unwrap()]);

    // The same seeded card: none of the plaintext image's values (nor the
    // PIN and unlock code themselves) is in the sealed file.
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"VSCARDSEALED"));
    let image: serde_json::Value = serde_json::from_slice(&std::fs::read(&plain).unwrap()).unwrap();
    let mut secrets = Vec::new();
    strings_of(&image["applets"], &mut secrets);
    assert!(secrets.len() > 10, "{secrets:?}");
    secrets.extend(["271828".to_owned(), "314159".to_owned()]);
    for secret in &secrets {
        // The header's card identity (the user ID) is public by design.
        if secret == "000123456789" {
            continue;
        }
        assert!(!contains(&bytes, secret.as_bytes()), "{secret} in the file");
        if let Ok(raw) = hex::decode(secret) {
            assert!(
                raw.len() < 6 || !contains(&bytes, &raw),
                "{secret} raw in the file"
            );
        }
    }
    assert_eq!(
        std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // With the key: inspect, export-cert and renew work (renew keeps it
    // sealed).
    let with_key = ["--encrypt-key-file", key.to_str().unwrap()];
    let shown = run_ok(vscard(&state).arg("inspect").arg(&sealed).args(with_key));
    assert!(shown.contains("000123456789"), "{shown}");
    let pem = run_ok(
        vscard(&state)
            .arg("export-cert")
            .arg(&sealed)
            .args(["--slot", "9a"])
            .args(with_key),
    );
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    run_ok(vscard(&state).arg("renew").arg(&sealed).args(with_key));
    let revoked = run_ok(
        vscard(&state)
            .arg("revoke")
            .arg(&sealed)
            .args(["--slot", "9e"])
            .args(with_key),
    );
    assert!(revoked.contains("revoked"), "{revoked}");
    assert!(std::fs::read(&sealed).unwrap().starts_with(b"VSCARDSEALED"));
    run_ok(vscard(&state).arg("inspect").arg(&sealed).args(with_key));

    // Without it, under another key, and with one byte flipped: refused
    // (bad input, exit 2), saying why.
    let output = run(vscard(&state).arg("inspect").arg(&sealed));
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("this card image is encrypted: give its key (--encrypt-key-file FILE)"),
        "{said}"
    );
    let output = run(vscard(&state)
        .arg("inspect")
        .arg(&sealed)
        .args(["--encrypt-key-file", wrong.to_str().unwrap()]));
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("wrong key, or the image was modified"),
        "{said}"
    );
    let mut tampered = std::fs::read(&sealed).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    std::fs::write(&sealed, &tampered).unwrap();
    let output = run(vscard(&state).arg("inspect").arg(&sealed).args(with_key));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("wrong key, or the image was modified")
    );
    // A plaintext card opened with a key is refused too.
    let output = run(vscard(&state).arg("inspect").arg(&plain).args(with_key));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not encrypted"));
}

#[test]
fn a_key_file_must_be_private_and_64_hex_digits() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let open = key_file(dir.path(), "open.key", 1);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "abcd\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (file, says) in [(&open, "chmod 600"), (&short, "64 hexadecimal digits")] {
        let output = run(vscard(&state)
            .args(["issue", "--seed", "k", "--out"])
            .arg(dir.path().join("card.json"))
            .arg("--encrypt-key-file")
            .arg(file));
        assert_eq!(output.status.code(), Some(2));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("--encrypt-key-file") && said.contains(says),
            "{said}"
        );
        assert!(!dir.path().join("card.json").exists());
    }
}
