//! `vscard issue --model`: the model is in the image, `inspect` shows it,
//! and middleware sees it through pcscd: Debian 12's yubico-piv-tool 2.2
//! (3DES management keys only) manages a yubikey-5.4 card and is refused
//! by a yubikey-5.7 one (AES-192); a plain `piv` card has no GET VERSION
//! but OpenSC still sees a PIV token.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{Serve, issue, p256_profile, run, run_ok, vscard};
use vscard_testkit::{PrivatePcscd, private_pcscd};

const READER: &str = "Virtual PCD";

/// A P-256 card of `model` (none: the default) in a fresh folder.
fn card(model: Option<&str>) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    let mut extra = vec!["--profile", profile.to_str().unwrap()];
    if let Some(model) = model {
        extra.extend(["--model", model]);
    }
    issue(&state, &card, "models", &extra);
    (dir, state, card)
}

fn serve(pcscd: &PrivatePcscd, state: &Path, card: &Path) -> Serve {
    let mut args = vec![card.to_str().unwrap().to_owned()];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Serve::start(state, &args);
    pcscd.wait_for_card(0, Duration::from_secs(5)).unwrap();
    serve
}

fn tool(dir: &Path, program: &str, args: &[&str]) -> Output {
    run(Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir))
}

fn text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

#[test]
fn inspect_shows_the_model_and_a_bad_model_is_a_usage_error() {
    for (model, expected) in [
        (None, "yubikey-5.7"),
        (Some("yubikey-5.4"), "yubikey-5.4"),
        (Some("piv"), "piv"),
    ] {
        let (_dir, state, card) = card(model);
        let shown = run_ok(vscard(&state).arg("inspect").arg(&card));
        assert!(
            shown.contains(&format!("model:        {expected}\n")),
            "{shown}"
        );
        let json = run_ok(vscard(&state).args(["inspect", "--json"]).arg(&card));
        assert!(
            json.contains(&format!("\"model\": \"{expected}\"")),
            "{json}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let output = run(vscard(&dir.path().join("state"))
        .args(["issue", "--model", "yubikey-5.5", "--out"])
        .arg(dir.path().join("card.json")));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("unknown card model \"yubikey-5.5\""),
        "{output:?}"
    );
    assert!(!dir.path().join("card.json").exists());
}

#[test]
fn yubico_piv_tool_2_2_manages_a_yubikey_5_4_and_is_refused_by_a_5_7() {
    let Some(pcscd) = private_pcscd() else { return };
    let piv =
        |dir: &Path, args: &[&str]| tool(dir, "yubico-piv-tool", &[&["-r", READER], args].concat());

    let (dir, state, card_5_4) = card(Some("yubikey-5.4"));
    let served = serve(&pcscd, &state, &card_5_4);
    assert!(text(&piv(dir.path(), &["-a", "version"])).contains("Application version 5.4.3 found"));
    // set-ccc authenticates with the default (3DES) management key.
    let output = piv(dir.path(), &["-a", "set-ccc"]);
    assert!(output.status.success(), "{output:?}");
    served.stop();
    pcscd.wait_for_no_card(0, Duration::from_secs(2)).unwrap();

    let (dir, state, card_5_7) = card(None);
    let served = serve(&pcscd, &state, &card_5_7);
    assert!(text(&piv(dir.path(), &["-a", "version"])).contains("Application version 5.7.1 found"));
    // 3DES with the default bytes: the card's key is AES-192.
    let output = piv(dir.path(), &["-a", "set-ccc"]);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        text(&output).contains("Failed authentication"),
        "{output:?}"
    );
    served.stop();
}

#[test]
fn a_plain_piv_card_has_no_version_but_opensc_sees_its_token() {
    let Some(pcscd) = private_pcscd() else { return };
    let (dir, state, card) = card(Some("piv"));
    let served = serve(&pcscd, &state, &card);
    let version = tool(
        dir.path(),
        "yubico-piv-tool",
        &["-r", READER, "-a", "version"],
    );
    assert!(
        !text(&version).contains("Application version"),
        "{version:?}"
    );
    let token = tool(dir.path(), "pkcs11-tool", &["-L"]);
    assert!(token.status.success(), "{token:?}");
    assert!(text(&token).contains("000123456789"), "{token:?}");
    let sign = tool(
        dir.path(),
        "pkcs11-tool",
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "--id",
            "01",
            "-m",
            "ECDSA",
            "-i",
            "/etc/hostname",
            "-o",
            "sig",
        ],
    );
    assert!(sign.status.success(), "{sign:?}");
    served.stop();
}
