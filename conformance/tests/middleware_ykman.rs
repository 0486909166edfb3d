//! The middleware matrix, ykman side: Yubico's `ykman` 5.9 (PyPI
//! `yubikey-manager`, from the venv of `scripts/python-env`) against a new
//! YubiKey 5.7 card served to a private pcscd whose reader is named like a
//! YubiKey's ("Yubico YubiKey CCID": ykman takes only readers whose name
//! contains "yubico yubikey", and reads the USB interfaces from the name).
//!
//! Each test runs ykman commands one after another on one card, as a user
//! would, and asserts what ykman prints.

// Tests fail loudly: unwrap and expect are the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use der::{DecodePem as _, Encode as _};
use vscard_applet::{ManagementApplet, Model, PivApplet, PivConfig, atr_for};
use vscard_emulator::{Card, CardRng};
use vscard_issuance::{Environment, Pki, certificate_pem, personalise_attestation};
use vscard_testkit::python::python_with;
use vscard_testkit::{PcscdOptions, PrivatePcscd};
use vscard_vpcd::{Bridge, BridgeConfig, BridgeHandle};
use x509_cert::Certificate;

/// The reader name, as a YubiKey 5 with only its CCID interface shows.
const READER: &str = "Yubico YubiKey CCID";
/// The serial number of the test card.
const SERIAL: u32 = 13_572_468;
/// The default management key (AES-192 on a 5.7), as ykman takes it.
const MANAGEMENT_KEY: &str = "010203040506070801020304050607080102030405060708";
/// How long pcscd may take to see the card after the bridge starts.
const CARD_TIMEOUT: Duration = Duration::from_secs(5);

/// A new card of `model`, with the Management application beside PIV.
fn card(model: Model) -> Card {
    let applet = PivApplet::new(PivConfig::for_model(model).with_serial(SERIAL)).unwrap();
    let management = ManagementApplet::for_card(applet.state()).unwrap();
    Card::builder()
        .atr(atr_for(model))
        .install(management)
        .install_default(applet)
        .build()
        .unwrap()
}

/// The card behind a private pcscd, and ykman to drive it.
struct Served {
    ykman: PathBuf,
    /// The card's reader: Debian's vpcd opens two, both named like a
    /// YubiKey, so ykman is told which (`--reader`).
    reader: String,
    work: tempfile::TempDir,
    /// Dropped before pcscd.
    _bridge: BridgeHandle,
    _pcscd: PrivatePcscd,
}

/// `None`: skipped (no venv with ykman outside CI), or this is the outer
/// run of a test that ran in its own namespaces.
fn serve(test: &str, model: Model) -> Option<Served> {
    serve_card(test, || card(model))
}

/// As [`serve`], with the card `make` builds (inside the namespaces).
fn serve_card(test: &str, make: impl FnOnce() -> Card) -> Option<Served> {
    let python = python_with(test, &["ykman"])?;
    let ykman = python.with_file_name("ykman");
    let pcscd = PrivatePcscd::enter_named(PcscdOptions::default(), READER)?;
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![make()], config).unwrap();
    pcscd.wait_for_card(0, CARD_TIMEOUT).unwrap();
    Some(Served {
        ykman,
        reader: pcscd.reader(0),
        work: tempfile::tempdir().unwrap(),
        _bridge: bridge,
        _pcscd: pcscd,
    })
}

/// What a ykman run printed.
struct Run {
    line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.line, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn stdout_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "stdout lacks {needle:?}\n{self}"
            );
        }
        self
    }

    fn stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}\n{self}"
            );
        }
        self
    }
}

impl Served {
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let started = Instant::now();
        let mut command = Command::new(&self.ykman);
        command
            .args(["--reader", &self.reader])
            .args(args)
            .current_dir(self.work.path())
            .env("HOME", self.work.path())
            .stdin(Stdio::null());
        let line = ["ykman", "--reader", &self.reader]
            .into_iter()
            .map(str::to_owned)
            .chain(
                args.iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ");
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
        let run = Run {
            line,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        println!(
            "$ {} ({:?}, exit {:?})",
            run.line,
            started.elapsed(),
            run.code
        );
        run
    }

    /// Runs ykman and asserts it succeeded.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "expected success\n{run}");
        run
    }

    /// Runs ykman and asserts it failed with exit code 1.
    fn fails<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(1), "expected failure\n{run}");
        run
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn ykman_info_reads_the_management_application() {
    let Some(served) = serve(
        "ykman_info_reads_the_management_application",
        Model::YubiKey57,
    ) else {
        return;
    };
    let info = served.ok(&["info"]);
    info.stdout_has(&[
        "Device type: YubiKey 5A\n",
        &format!("Serial number: {SERIAL}\n"),
        "Firmware version: 5.7.1",
        "Form factor: Keychain (USB-A)",
        "Enabled USB interfaces: CCID\n",
        "PIV         \tEnabled\n",
        "OpenPGP     \tNot available\n",
    ]);
}

/// `piv info` on a new (or reset) 5.7 card, as ykman prints it.
const NEW_CARD_INFO: &str = "\
PIV version:              5.7.1
PIN tries remaining:      3/3
PUK tries remaining:      3/3
Management key algorithm: AES192
WARNING: Using default PIN!
WARNING: Using default PUK!
WARNING: Using default Management key!
CHUID: No data available
";

/// `piv keys info SLOT`, as ykman prints it for a key generated on the
/// card with the slot's default PIN policy and no touch.
fn key_info(slot: &str, algorithm: &str, pin: &str) -> String {
    format!(
        "Key slot:               {slot}\n\
         Algorithm:              {algorithm}\n\
         Origin:                 GENERATED\n\
         PIN required for use:   {pin}\n\
         Touch required for use: NEVER\n"
    )
}

#[test]
fn ykman_manages_keys_pins_retries_and_resets_a_yubikey_5_7() {
    let Some(served) = serve(
        "ykman_manages_keys_pins_retries_and_resets_a_yubikey_5_7",
        Model::YubiKey57,
    ) else {
        return;
    };
    let with_key = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--management-key".to_owned(), MANAGEMENT_KEY.to_owned()]);
        all
    };
    served.ok(&["piv", "info"]).stdout_has(&[NEW_CARD_INFO]);

    // Generate in three slots, one for each algorithm the card has.
    for (slot, name, algorithm, pin) in [
        ("9a", "9A (AUTHENTICATION)", "ECCP256", "ONCE"),
        ("9c", "9C (SIGNATURE)", "RSA2048", "ALWAYS"),
        ("9d", "9D (KEY_MANAGEMENT)", "ECCP384", "ONCE"),
    ] {
        let public = served.path(&format!("{slot}.pem"));
        served.ok(&with_key(&[
            "piv",
            "keys",
            "generate",
            "-a",
            algorithm,
            slot,
            path_str(&public),
        ]));
        let pem = std::fs::read_to_string(&public).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        let info = served.ok(&["piv", "keys", "info", slot]);
        assert_eq!(info.stdout, key_info(name, algorithm, pin), "{info}");
    }

    // MOVE KEY: the key and its metadata go to 85; 9A is empty after.
    served
        .ok(&with_key(&["piv", "keys", "move", "9a", "85"]))
        .stdout_has(&["Key moved from slot AUTHENTICATION to slot RETIRED4."]);
    let moved = served.ok(&["piv", "keys", "info", "85"]);
    assert_eq!(
        moved.stdout,
        key_info("85 (RETIRED4)", "ECCP256", "ONCE"),
        "{moved}"
    );
    served
        .fails(&["piv", "keys", "info", "9a"])
        .stderr_has(&["ERROR: No key stored in slot 9A (AUTHENTICATION)."]);
    // 6A80 and 6A88, as ykman reads them.
    served
        .fails(&with_key(&["piv", "keys", "move", "9c", "9d"]))
        .stderr_has(&["ERROR: DEST slot is not empty."]);
    served
        .fails(&with_key(&["piv", "keys", "move", "9a", "9e"]))
        .stderr_has(&["ERROR: No key in SOURCE slot."]);
    // DELETE KEY, twice.
    served
        .ok(&with_key(&["piv", "keys", "delete", "85"]))
        .stdout_has(&["Key in slot RETIRED4 deleted."]);
    served
        .fails(&with_key(&["piv", "keys", "delete", "85"]))
        .stderr_has(&["ERROR: No key stored in slot 85 (RETIRED4)."]);

    // PIN, PUK, and the management key as 3DES then AES-192 again.
    served
        .ok(&[
            "piv",
            "access",
            "change-pin",
            "-P",
            "123456",
            "-n",
            "246810",
        ])
        .stdout_has(&["New PIN set."]);
    served
        .ok(&[
            "piv",
            "access",
            "change-puk",
            "-p",
            "12345678",
            "-n",
            "13579246",
        ])
        .stdout_has(&["New PUK set."]);
    let tdes = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080";
    served
        .ok(&with_key(&[
            "piv",
            "access",
            "change-management-key",
            "-a",
            "TDES",
            "-n",
            tdes,
            "-f",
        ]))
        .stdout_has(&["New management key set."]);
    let info = served.ok(&["piv", "info"]);
    info.stdout_has(&["Management key algorithm: TDES\n"]);
    assert!(!info.stdout.contains("WARNING: Using default"), "{info}");
    served
        .ok(&[
            "piv",
            "access",
            "change-management-key",
            "-m",
            tdes,
            "-a",
            "AES192",
            "-n",
            MANAGEMENT_KEY,
            "-f",
        ])
        .stdout_has(&["New management key set."]);
    served.ok(&["piv", "info"]).stdout_has(&[
        "Management key algorithm: AES192\n",
        "WARNING: Using default Management key!",
    ]);

    // SET PIN RETRIES puts PIN and PUK back to their defaults; RESET puts
    // the limits back to 3 / 3 and clears the keys.
    served
        .ok(&with_key(&[
            "piv",
            "access",
            "set-retries",
            "-P",
            "246810",
            "5",
            "6",
            "-f",
        ]))
        .stdout_has(&["Number of PIN/PUK retries set."]);
    served.ok(&["piv", "info"]).stdout_has(&[
        "PIN tries remaining:      5/5\n",
        "PUK tries remaining:      6/6\n",
        "Slot 9C (SIGNATURE):\n  Private key type: RSA2048\n",
        "Slot 9D (KEY_MANAGEMENT):\n  Private key type: ECCP384\n",
    ]);
    served
        .ok(&["piv", "reset", "-f"])
        .stdout_has(&["Reset complete. All PIV data has been cleared from the YubiKey."]);
    let info = served.ok(&["piv", "info"]);
    info.stdout_has(&[NEW_CARD_INFO]);
    assert!(!info.stdout.contains("Slot 9"), "{info}");
}

/// A yubikey-5.4 card is what ykman expects of a 5.4: 3DES management key,
/// and no MOVE KEY (ykman refuses it before sending anything).
#[test]
fn ykman_sees_a_yubikey_5_4() {
    let Some(served) = serve("ykman_sees_a_yubikey_5_4", Model::YubiKey54) else {
        return;
    };
    served.ok(&["info"]).stdout_has(&[
        "Firmware version: 5.4.3\n",
        &format!("Serial number: {SERIAL}\n"),
    ]);
    served.ok(&["piv", "info"]).stdout_has(&[
        "PIV version:              5.4.3\n",
        "Management key algorithm: TDES\n",
    ]);
    served
        .fails(&["piv", "keys", "move", "-m", MANAGEMENT_KEY, "9a", "9d"])
        .stderr_has(&["ERROR: This action requires YubiKey 5.7.0 or later"]);
}

/// A 5.7 card personalised as `vscard issue` does: an attestation key in
/// F9 whose certificate (`5FFF01`) the attestation CA of a new test PKI
/// issued; the CA's certificate is written to `ca_pem`.
fn attested_card(ca_pem: &Path) -> Card {
    let state = tempfile::tempdir().unwrap();
    let environment = Environment::parse("sandbox").unwrap();
    let mut rng = CardRng::from_u64(0xA77E57);
    let pki = Pki::open_or_create(state.path(), &environment, &mut rng).unwrap();
    let ca = pki.attestation_ca().unwrap();
    std::fs::write(ca_pem, certificate_pem(ca.certificate()).unwrap()).unwrap();
    let mut applet =
        PivApplet::new(PivConfig::for_model(Model::YubiKey57).with_serial(SERIAL)).unwrap();
    personalise_attestation(&mut applet, &ca, &environment, &mut rng)
        .unwrap()
        .unwrap();
    let management = ManagementApplet::for_card(applet.state()).unwrap();
    Card::builder()
        .atr(atr_for(Model::YubiKey57))
        .install(management)
        .install_default(applet)
        .build()
        .unwrap()
}

/// The value of extension `oid` of `certificate`.
fn extension_value(certificate: &Certificate, oid: &str) -> Vec<u8> {
    certificate
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|extension| extension.extn_id.to_string() == oid)
        .unwrap_or_else(|| panic!("no extension {oid}"))
        .extn_value
        .as_bytes()
        .to_vec()
}

fn openssl<S: AsRef<OsStr>>(args: &[S]) -> std::process::Output {
    let output = Command::new("openssl").args(args).output().unwrap();
    println!(
        "$ openssl {:?}: {:?}\n{}{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `ykman piv keys attest` of a key generated with touch policy ALWAYS,
/// verified against the exported attestation CA by openssl, with the
/// Yubico extensions (firmware, serial, PIN and touch policy, form
/// factor); then `certificates generate` and `certificates request` on
/// that key, verified by openssl.
#[test]
fn ykman_attests_and_certifies_a_generated_key() {
    let work = tempfile::tempdir().unwrap();
    let ca_pem = work.path().join("attestation-ca.pem");
    let Some(served) = serve_card("ykman_attests_and_certifies_a_generated_key", || {
        attested_card(&ca_pem)
    }) else {
        return;
    };
    let public = served.path("9a.pub.pem");
    served.ok(&[
        "piv",
        "keys",
        "generate",
        "-m",
        MANAGEMENT_KEY,
        "-a",
        "ECCP256",
        "--pin-policy",
        "ONCE",
        "--touch-policy",
        "NEVER",
        "9a",
        path_str(&public),
    ]);
    let attested = served.path("9a.attestation.pem");
    served.ok(&["piv", "keys", "attest", "9a", path_str(&attested)]);
    let device = served.path("f9.pem");
    served.ok(&["piv", "certificates", "export", "f9", path_str(&device)]);
    let verified = openssl(&[
        "verify",
        "-partial_chain",
        "-CAfile",
        path_str(&ca_pem),
        "-untrusted",
        path_str(&device),
        path_str(&attested),
    ]);
    assert!(verified.status.success());
    assert!(
        String::from_utf8_lossy(&verified.stdout)
            .trim_end()
            .ends_with(": OK")
    );
    // Another PKI's attestation CA does not verify it.
    let stranger = work.path().join("stranger.pem");
    let other_state = tempfile::tempdir().unwrap();
    let environment = Environment::parse("sandbox").unwrap();
    let other =
        Pki::open_or_create(other_state.path(), &environment, &mut CardRng::from_u64(1)).unwrap();
    std::fs::write(
        &stranger,
        certificate_pem(other.attestation_ca().unwrap().certificate()).unwrap(),
    )
    .unwrap();
    let refused = openssl(&[
        "verify",
        "-CAfile",
        path_str(&stranger),
        "-untrusted",
        path_str(&device),
        path_str(&attested),
    ]);
    assert!(!refused.status.success());

    let text = std::fs::read_to_string(&attested).unwrap();
    let certificate = Certificate::from_pem(text.as_bytes()).unwrap();
    assert_eq!(
        extension_value(&certificate, "1.3.6.1.4.1.41482.3.3"),
        [5, 7, 1]
    );
    assert_eq!(
        extension_value(&certificate, "1.3.6.1.4.1.41482.3.7"),
        SERIAL.to_der().unwrap()
    );
    // PIN once (02), touch never (01), USB-A keychain (01).
    assert_eq!(
        extension_value(&certificate, "1.3.6.1.4.1.41482.3.8"),
        [0x02, 0x01]
    );
    assert_eq!(
        extension_value(&certificate, "1.3.6.1.4.1.41482.3.9"),
        [0x01]
    );
    assert_eq!(
        certificate.tbs_certificate().subject().to_string(),
        "CN=YubiKey PIV Attestation 9a"
    );
    let public_pem = std::fs::read_to_string(&public).unwrap();
    let attested_key = openssl(&["x509", "-in", path_str(&attested), "-noout", "-pubkey"]);
    assert_eq!(String::from_utf8_lossy(&attested_key.stdout), public_pem);

    // certificates generate: a self-signed certificate for the 9A key,
    // stored in 9A.
    served.ok(&[
        "piv",
        "certificates",
        "generate",
        "-m",
        MANAGEMENT_KEY,
        "-P",
        "123456",
        "-s",
        "CN=ykman generated",
        "9a",
        path_str(&public),
    ]);
    let exported = served.path("9a.cert.pem");
    served.ok(&["piv", "certificates", "export", "9a", path_str(&exported)]);
    let verified = openssl(&[
        "verify",
        "-CAfile",
        path_str(&exported),
        path_str(&exported),
    ]);
    assert!(verified.status.success());
    let subject = openssl(&[
        "x509",
        "-in",
        path_str(&exported),
        "-noout",
        "-subject",
        "-pubkey",
    ]);
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(
        subject.starts_with("subject=CN = ykman generated\n"),
        "{subject}"
    );
    assert!(subject.ends_with(&public_pem), "{subject}");

    // certificates request: a CSR signed by the 9A key.
    let request = served.path("9a.csr");
    served.ok(&[
        "piv",
        "certificates",
        "request",
        "-P",
        "123456",
        "-s",
        "CN=ykman request",
        "9a",
        path_str(&public),
        path_str(&request),
    ]);
    let checked = openssl(&[
        "req",
        "-in",
        path_str(&request),
        "-verify",
        "-noout",
        "-subject",
    ]);
    assert!(checked.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(said.contains("verify OK"), "{said}");
    assert!(said.contains("subject=CN = ykman request"), "{said}");

    // A management key that needs a touch is refused (6A86: the card's
    // authentication does not wait for one), and the key stays.
    served
        .fails(&[
            "piv",
            "access",
            "change-management-key",
            "-m",
            MANAGEMENT_KEY,
            "-a",
            "AES192",
            "-n",
            "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080",
            "--touch",
            "-f",
        ])
        .stderr_has(&["ERROR: Changing the management key failed."]);
    served
        .ok(&["piv", "info"])
        .stdout_has(&["WARNING: Using default Management key!"]);
}
