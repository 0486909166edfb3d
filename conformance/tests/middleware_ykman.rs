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

use vscard_applet::{ManagementApplet, Model, PivApplet, PivConfig, piv_atr};
use vscard_emulator::Card;
use vscard_testkit::python::python_with;
use vscard_testkit::{PcscdOptions, PrivatePcscd};
use vscard_vpcd::{Bridge, BridgeConfig, BridgeHandle};

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
        .atr(piv_atr())
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
    let python = python_with(test, &["ykman"])?;
    let ykman = python.with_file_name("ykman");
    let pcscd = PrivatePcscd::enter_named(PcscdOptions::default(), READER)?;
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![card(model)], config).unwrap();
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
