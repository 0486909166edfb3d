//! `vscard serve` with PIV cards through a private pcscd (see
//! `vscard_testkit::pcscd`), checked with the real middleware: OpenSC
//! (`opensc-tool`, `pkcs15-tool`, `pkcs11-tool`), `openssl` and
//! `yubico-piv-tool`. The PIN counter survives a restart and a kill -9 of
//! `serve`, and a restart of pcscd under it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use support::{Serve, issue, p256_profile, sign_and_verify, success, tool_in};
use vscard_applet::{PivApplet, piv_atr};
use vscard_emulator::{Card, FileStore};
use vscard_testkit::{PcscdOptions, PrivatePcscd, private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
/// VERIFY with no data: how many PIN tries are left (`63Cx`).
const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];
const READER: &str = "Virtual PCD";

/// A folder with a state directory and one seeded card image.
struct Fixture {
    dir: tempfile::TempDir,
    state: PathBuf,
    card: PathBuf,
}

impl Fixture {
    /// The default algorithms (RSA in 9A and 9D).
    fn default_card() -> Fixture {
        Fixture::issued(&[])
    }

    /// Every slot P-256: faster, for tests that do not need RSA.
    fn p256_card() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let profile = p256_profile(dir.path());
        Fixture::issued_in(dir, &["--profile", profile.to_str().unwrap()])
    }

    fn issued(extra: &[&str]) -> Fixture {
        Fixture::issued_in(tempfile::tempdir().unwrap(), extra)
    }

    fn issued_in(dir: tempfile::TempDir, extra: &[&str]) -> Fixture {
        let state = dir.path().join("state");
        let card = dir.path().join("card.json");
        issue(&state, &card, "piv-pcscd", extra);
        Fixture { dir, state, card }
    }

    fn serve(&self, pcscd: &PrivatePcscd) -> Serve {
        let mut args = vec![self.card.to_str().unwrap().to_owned()];
        args.extend(pcscd.serve_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Serve::start(&self.state, &args)
    }

    /// Runs a middleware tool in the fixture's folder, with HOME there too
    /// (OpenSC's cache must not leak between tests).
    fn tool(&self, program: &str, args: &[&str]) -> Output {
        tool_in(self.dir.path(), program, args)
    }

    fn sign_and_verify(&self, id: &str, mechanism: &str) {
        sign_and_verify(self.dir.path(), id, mechanism)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Stdout and stderr of a tool that must fail with exit code 1.
fn failure(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// The PIN status word through PC/SC: SELECT, then VERIFY without data.
fn pin_status(pcscd: &PrivatePcscd) -> Vec<u8> {
    pin_status_in(pcscd, 0)
}

fn pin_status_in(pcscd: &PrivatePcscd, slot: u16) -> Vec<u8> {
    let card = pcscd.connect(slot).unwrap();
    let select = transmit(&card, &SELECT_PIV).unwrap();
    assert_eq!(select[select.len() - 2..], [0x90, 0x00]);
    transmit(&card, &PIN_STATUS).unwrap()
}

/// A wrong PIN through PC/SC; returns the status word.
fn wrong_pin(pcscd: &PrivatePcscd) -> Vec<u8> {
    let card = pcscd.connect(0).unwrap();
    transmit(&card, &SELECT_PIV).unwrap();
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"000000\xFF\xFF");
    transmit(&card, &verify).unwrap()
}

#[test]
fn the_demo_card_is_issued_on_first_use_and_opensc_sees_a_piv_token() {
    let Some(pcscd) = private_pcscd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = pcscd.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&state, &args);
    let notice = serve.expect_line("issued the default demo card");
    assert!(notice.contains("PIN 123456") && notice.contains("unlock code 654321"));
    assert!(state.join("cards/demo.json").exists());
    // Key generation (RSA, unseeded) comes first, hence the longer wait.
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    serve.expect_line("demo card 000123456789 (Sample Specimen) is in Virtual PCD 00 00");
    serve.expect_line("try: pkcs11-tool -L");

    let name = success(tool_in(dir.path(), "opensc-tool", &["-n"]));
    assert!(
        name.contains("Personal Identity Verification Card"),
        "{name}"
    );
    let token = success(tool_in(dir.path(), "pkcs11-tool", &["-L"]));
    let serial = token
        .lines()
        .find(|line| line.contains("serial num"))
        .unwrap();
    assert!(serial.contains("000123456789"), "{serial}");
    assert!(token.contains("Sample Specimen"), "{token}");
    let objects = success(tool_in(dir.path(), "pkcs15-tool", &["-D"]));
    assert_eq!(
        objects.matches("X.509 Certificate [").count(),
        4,
        "{objects}"
    );

    // Served again: the same card, not issued again.
    serve.stop();
    pcscd.wait_for_no_card(0, 2 * SECOND).unwrap();
    let mut again = Serve::start(&state, &args);
    again.expect_line("demo card 000123456789 (Sample Specimen) is in");
    assert!(!again.seen().iter().any(|line| line.contains("issued")));
    again.stop();
}

/// Signs `data.txt` with the key `id` through PKCS#11 and verifies the
/// signature with openssl against the certificate read from the card.
#[test]
fn opensc_signs_with_the_rsa_and_ec_keys_and_openssl_verifies() {
    let Some(pcscd) = private_pcscd() else { return };
    let fixture = Fixture::default_card();
    let serve = fixture.serve(&pcscd);
    let waited = pcscd.wait_for_card(0, SECOND).unwrap();
    println!(
        "card in the reader {:?} after starting vscard serve ({waited:?} waiting)",
        serve.started.elapsed()
    );
    assert!(serve.started.elapsed() < SECOND);
    std::fs::write(fixture.path("data.txt"), b"a clinical record\n").unwrap();
    std::fs::write(fixture.path("other.txt"), b"another record\n").unwrap();
    fixture.sign_and_verify("01", "SHA256-RSA-PKCS");
    fixture.sign_and_verify("01", "RSA-PKCS");
    // 9C (PIN-always: pkcs11-tool logs in again for the signature) and 9E.
    fixture.sign_and_verify("02", "ECDSA-SHA256");
    fixture.sign_and_verify("04", "ECDSA-SHA256");
    serve.stop();
}

#[test]
fn yubico_piv_tool_verifies_changes_blocks_and_unblocks_the_pin() {
    let Some(pcscd) = private_pcscd() else { return };
    let fixture = Fixture::p256_card();
    let serve = fixture.serve(&pcscd);
    pcscd.wait_for_card(0, SECOND).unwrap();
    let piv = |args: &[&str]| fixture.tool("yubico-piv-tool", &[&["-r", READER], args].concat());

    let status = success(piv(&["-a", "status"]));
    for expected in [
        "Serial Number:\t123456789",
        "Slot 9a:",
        "Slot 9e:",
        "PIN tries left:\t3",
    ] {
        assert!(status.contains(expected), "{expected:?} not in {status}");
    }
    assert!(status.contains("serialNumber=000123456789"), "{status}");
    assert!(
        success(piv(&["-a", "verify-pin", "-P", "123456"])).contains("Successfully verified PIN")
    );
    assert!(failure(piv(&["-a", "verify-pin", "-P", "111111"])).contains("2 tries left"));
    assert!(
        success(piv(&["-a", "change-pin", "-P", "123456", "-N", "222222"]))
            .contains("Successfully changed the pin code")
    );
    success(piv(&["-a", "verify-pin", "-P", "222222"]));
    assert!(failure(piv(&["-a", "verify-pin", "-P", "111111"])).contains("2 tries left"));
    assert!(failure(piv(&["-a", "verify-pin", "-P", "111111"])).contains("1 tries left"));
    assert!(failure(piv(&["-a", "verify-pin", "-P", "111111"])).contains("blocked"));
    // Blocked: even the right PIN is refused.
    assert!(failure(piv(&["-a", "verify-pin", "-P", "222222"])).contains("blocked"));
    assert!(success(piv(&["-a", "status"])).contains("PIN tries left:\t0"));
    assert!(
        failure(piv(&["-a", "unblock-pin", "-P", "000000", "-N", "333333"]))
            .contains("2 tries left")
    );
    assert!(
        success(piv(&["-a", "unblock-pin", "-P", "654321", "-N", "333333"]))
            .contains("Successfully unblocked the pin code")
    );
    success(piv(&["-a", "verify-pin", "-P", "333333"]));
    assert!(success(piv(&["-a", "status"])).contains("PIN tries left:\t3"));
    serve.stop();
}

#[test]
fn the_pin_counter_survives_a_restart_and_a_kill_9_of_serve() {
    let Some(pcscd) = private_pcscd() else { return };
    let fixture = Fixture::p256_card();
    let serve = fixture.serve(&pcscd);
    pcscd.wait_for_card(0, SECOND).unwrap();
    assert_eq!(pin_status(&pcscd), [0x63, 0xC3]);
    assert_eq!(wrong_pin(&pcscd), [0x63, 0xC2]);

    serve.stop();
    pcscd.wait_for_no_card(0, 2 * SECOND).unwrap();
    let serve = fixture.serve(&pcscd);
    pcscd.wait_for_card(0, SECOND).unwrap();
    assert_eq!(pin_status(&pcscd), [0x63, 0xC2], "after a restart");
    assert_eq!(wrong_pin(&pcscd), [0x63, 0xC1]);

    serve.kill9();
    pcscd.wait_for_no_card(0, 2 * SECOND).unwrap();
    let serve = fixture.serve(&pcscd);
    pcscd.wait_for_card(0, SECOND).unwrap();
    assert_eq!(pin_status(&pcscd), [0x63, 0xC1], "after kill -9");
    let status = success(fixture.tool("yubico-piv-tool", &["-r", READER, "-a", "status"]));
    assert!(status.contains("PIN tries left:\t1"), "{status}");
    let inspect = support::run_ok(
        Command::new(support::VSCARD)
            .args(["inspect", "--json"])
            .arg(&fixture.card),
    );
    assert!(inspect.contains("\"tries_left\": 1"), "{inspect}");
    serve.stop();
}

#[test]
fn the_card_comes_back_when_pcscd_restarts_under_serve() {
    let Some(mut pcscd) = private_pcscd() else {
        return;
    };
    let fixture = Fixture::p256_card();
    let mut serve = fixture.serve(&pcscd);
    pcscd.wait_for_card(0, SECOND).unwrap();
    assert_eq!(wrong_pin(&pcscd), [0x63, 0xC2]);

    pcscd.restart().unwrap();
    let back = pcscd.wait_for_card(0, SECOND).unwrap();
    println!("card back {back:?} after vpcd listened again");
    serve.expect_line("is back in Virtual PCD 00 00");
    // Persistent state intact; the session started afresh (no PIN
    // verified, PIV selected by default).
    assert_eq!(pin_status(&pcscd), [0x63, 0xC2]);
    let name = success(fixture.tool("opensc-tool", &["-n"]));
    assert!(
        name.contains("Personal Identity Verification Card"),
        "{name}"
    );
    serve.stop();
}

#[test]
fn two_images_in_two_readers_with_a_trace_that_hides_the_pin() {
    let Some(pcscd) = PrivatePcscd::enter(PcscdOptions {
        slots: 2,
        ..PcscdOptions::default()
    }) else {
        return;
    };
    let fixture = Fixture::p256_card();
    // A PIV image vscard did not issue (the applet's defaults) is served too.
    let bare = fixture.path("bare.json");
    Card::builder()
        .atr(piv_atr())
        .store(FileStore::open(&bare).unwrap())
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    let mut args = vec![
        fixture.card.to_str().unwrap().to_owned(),
        bare.to_str().unwrap().to_owned(),
        "--trace".to_owned(),
    ];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&fixture.state, &args);
    pcscd.wait_for_card(0, SECOND).unwrap();
    pcscd.wait_for_card(1, SECOND).unwrap();
    serve.expect_line("card 000123456789 (Pat Example) is in Virtual PCD 00 00");
    serve.expect_line(&format!("card {} is in Virtual PCD 00 01", bare.display()));

    assert_eq!(wrong_pin(&pcscd), [0x63, 0xC2]);
    let line = serve.expect_line("[card 0] VERIFY");
    assert!(line.contains("63C2"), "{line}");
    assert_eq!(pin_status_in(&pcscd, 1), [0x63, 0xC3], "the other card");
    serve.expect_line("[card 1] VERIFY");
    for line in serve.seen() {
        assert!(
            !line.contains("303030303030"),
            "the PIN in the trace: {line}"
        );
    }
    serve.stop();
}

#[test]
fn ctl_insert_swaps_the_card_for_another_image_and_releases_the_old_one() {
    let Some(pcscd) = private_pcscd() else { return };
    let fixture = Fixture::p256_card();
    // The other card: another holder, issued one PIN try from blocking.
    let other = fixture.path("other.json");
    let profile = p256_profile(fixture.dir.path());
    issue(
        &fixture.state,
        &other,
        "piv-pcscd-other",
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--uuid",
            "000999888777",
            "--state",
            "pin-tries=1",
        ],
    );
    let socket = fixture.path("control.sock");
    let mut args = vec![
        fixture.card.to_str().unwrap().to_owned(),
        "--control".to_owned(),
        socket.to_str().unwrap().to_owned(),
    ];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&fixture.state, &args);
    pcscd.wait_for_card(0, SECOND).unwrap();
    assert_eq!(wrong_pin(&pcscd), [0x63, 0xC2]);

    let answer = support::run_ok(
        Command::new(support::VSCARD)
            .arg("ctl")
            .arg(&socket)
            .args(["insert", "--card", "0"])
            .arg(&other),
    );
    assert!(answer.starts_with("card 0: "), "{answer}");
    // The old image is released (its lock is free) and holds what the
    // card did in the reader.
    drop(FileStore::open(&fixture.card).unwrap());
    let inspect = support::run_ok(
        Command::new(support::VSCARD)
            .args(["inspect", "--json"])
            .arg(&fixture.card),
    );
    assert!(inspect.contains("\"tries_left\": 2"), "{inspect}");
    // The reader now holds the other card: its own PIN counter. pcscd may
    // not have polled between the two cards, so a handle to the old one
    // can fail once (NotTransacted) before pcscd sees the new card.
    serve.expect_line("is back in Virtual PCD 00 00");
    let deadline = std::time::Instant::now() + 3 * SECOND;
    let status = loop {
        let attempt = pcscd.connect(0).ok().and_then(|card| {
            transmit(&card, &SELECT_PIV).ok()?;
            transmit(&card, &PIN_STATUS).ok()
        });
        match attempt {
            Some(status) => break status,
            None if std::time::Instant::now() < deadline => std::thread::sleep(SECOND / 10),
            None => panic!("the other card is not answering through pcscd"),
        }
    };
    assert_eq!(status, [0x63, 0xC1]);
    // The image in the reader is locked: a second swap to it is refused.
    let output = support::run(
        Command::new(support::VSCARD)
            .arg("ctl")
            .arg(&socket)
            .args(["insert", "--card", "0"])
            .arg(&other),
    );
    assert!(!output.status.success());
    assert_eq!(pin_status(&pcscd), [0x63, 0xC1], "the card stayed in");
    serve.stop();
}
