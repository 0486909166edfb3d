//! The middleware matrix's fixture: a PIV card issued once from the demo
//! profile, served through the vpcd bridge to a private pcscd, and a way to
//! run real PC/SC tools against it and assert what they say.
//!
//! Each test calls [`serve`] first. Outside the private namespaces that
//! issues the card (once per test binary, cached on disk beside the target
//! directory, keyed by the test binary itself) and re-runs the test inside
//! them (see `vscard_testkit::pcscd`); inside, it loads the issued image into
//! a fresh card, starts the bridge and waits until pcscd sees the card.
//! Every tool started from the test then talks to that pcscd only (the
//! namespace's `/run/pcscd`), with `HOME` in a fresh directory so no user
//! configuration or OpenSC file cache leaks in.

// Tests fail loudly: unwrap and expect in the fixture are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use vscard_applet::{ManagementApplet, PivApplet, atr_for};
use vscard_emulator::{Applet, AppletState, Card};
use vscard_issuance::{CardProfile, CertificateValidity, Pki, SecretString, issue_applet};
use vscard_testkit::{PcscdOptions, PrivatePcscd};
use vscard_vpcd::{Bridge, BridgeConfig, BridgeHandle};

/// The demo profile's secrets and identity (`CardProfile::demo`).
pub const PIN: &str = "123456";
/// The demo profile's unlock code (the PIV PUK).
pub const PUK: &str = "654321";
/// The demo profile's user UUID (the CHUID GUID, OpenSC's token serial).
pub const UUID: &str = "000123456789";
/// The PIV default management key (3DES), as yubico-piv-tool takes it.
pub const MANAGEMENT_KEY: &str = "010203040506070801020304050607080102030405060708";
/// OpenSC's PKCS#11 module.
pub const OPENSC_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// Yubico's PKCS#11 module (Debian package `ykcs11`).
pub const YKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";

/// How long pcscd may take to see the card after the bridge starts.
const CARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The issued card: its applet image and the CA certificates it chains to.
#[derive(Debug)]
pub struct IssuedCard {
    /// The personalised PIV applet's state.
    pub state: AppletState,
    /// The environment's Root CA (PEM).
    pub root_pem: PathBuf,
    /// The environment's Sub CA (PEM).
    pub sub_pem: PathBuf,
    /// The state directory holding the issuing PKI (its keys and
    /// certificate index), for tests that revoke the card.
    pub state_dir: PathBuf,
}

/// The demo profile (RSA-2048 in 9A/9D, P-256 in 9C/9E), seeded, as a
/// YubiKey 5.4.
pub fn profile() -> CardProfile {
    let mut profile = CardProfile::demo();
    profile.seed = Some(SecretString::new("vscard middleware matrix"));
    // Debian 12's yubico-piv-tool and ykcs11 (2.2) speak only 3DES
    // management keys: the matrix runs the model they need.
    profile.model = vscard_applet::Model::YubiKey54;
    profile
}

/// The card issued for this test binary: from the cache when this binary
/// (or its outer run) issued it already, else issued now and cached.
pub fn issued_card() -> &'static IssuedCard {
    static ISSUED: OnceLock<IssuedCard> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let dir = cache_dir();
        let image = dir.join("applet.json");
        if let Ok(text) = std::fs::read_to_string(&image)
            && let Ok(state) = serde_json::from_str(&text)
        {
            return IssuedCard {
                state,
                root_pem: dir.join("root.pem"),
                sub_pem: dir.join("sub.pem"),
                state_dir: dir.join("state"),
            };
        }
        issue_into(&dir)
    })
}

/// A directory for this test binary's issued card: the binary's path, size
/// and modification time name it, so a rebuild (new issuance code) never
/// reuses an old card.
fn cache_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let meta = std::fs::metadata(&exe).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let mut hasher = Sha256::new();
    hasher.update(exe.as_os_str().as_encoded_bytes());
    hasher.update(meta.len().to_be_bytes());
    hasher.update(mtime.as_nanos().to_be_bytes());
    let stem = exe.file_stem().and_then(OsStr::to_str).unwrap_or("test");
    let key = hex::encode(&hasher.finalize()[..8]);
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("middleware")
        .join(format!("{stem}-{key}"))
}

fn issue_into(dir: &Path) -> IssuedCard {
    let started = Instant::now();
    let profile = profile();
    let mut rng = profile.seeded_rng().unwrap();
    let staging = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = staging.path().join("card");
    let pki = Pki::open_or_create(&out.join("state"), &profile.environment, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
    let state = applet.save().unwrap();
    for slot in vscard_issuance::CARD_SLOTS {
        let certificate = vscard_issuance::certificate(applet.state(), slot).unwrap();
        pki.record_issued(
            &out.join("applet.json"),
            certificate.iter().map(|c| (slot, c)),
        )
        .unwrap();
    }
    pki.export(&out).unwrap();
    std::fs::write(out.join("applet.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    // Publish whole: a concurrent reader sees all files or none.
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&out, dir).unwrap();
    remove_older_cards(dir);
    println!("issued the card in {:?}", started.elapsed());
    IssuedCard {
        state,
        root_pem: dir.join("root.pem"),
        sub_pem: dir.join("sub.pem"),
        state_dir: dir.join("state"),
    }
}

/// Removes the cards earlier builds of this test binary left beside `dir`.
fn remove_older_cards(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(OsStr::to_str)) else {
        return;
    };
    let Some((stem, _)) = name.rsplit_once('-') else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let other = other.to_string_lossy();
        if other != name && other.rsplit_once('-').is_some_and(|(s, _)| s == stem) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh card holding the issued image.
pub fn card(state: &AppletState) -> Card {
    let applet = PivApplet::from_saved(state).unwrap();
    // As `vscard serve` builds it: libykpiv selects the Management
    // application to end a session's authentication.
    let mut builder = Card::builder().atr(atr_for(applet.state().settings().model));
    if let Some(management) = ManagementApplet::for_card(applet.state()) {
        builder = builder.install(management);
    }
    builder.install_default(applet).build().unwrap()
}

/// The issued card in the private pcscd's reader, and a work directory.
pub struct Served {
    /// The issued card's CA files.
    pub issued: &'static IssuedCard,
    /// The bridge serving the card (dropped before pcscd).
    pub bridge: BridgeHandle,
    /// The private pcscd.
    pub pcscd: PrivatePcscd,
    /// `HOME` of every tool, and room for their files.
    pub work: tempfile::TempDir,
}

/// Serves the issued card to a private pcscd; `None`: the test ran in its
/// own namespaces already (or was skipped), return at once.
pub fn serve() -> Option<Served> {
    serve_named(vscard_testkit::DEFAULT_READER_NAME)
}

/// As [`serve`], with the vpcd reader named `reader_name`.
pub fn serve_named(reader_name: &str) -> Option<Served> {
    // Issue in the outer process, so the re-run only loads the image.
    let issued = issued_card();
    let pcscd = PrivatePcscd::enter_named(PcscdOptions::default(), reader_name)?;
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![card(&issued.state)], config).unwrap();
    pcscd.wait_for_card(0, CARD_TIMEOUT).unwrap();
    Some(Served {
        issued,
        bridge,
        pcscd,
        work: tempfile::tempdir().unwrap(),
    })
}

impl Served {
    /// The PC/SC name of the card's reader.
    pub fn reader(&self) -> String {
        self.pcscd.reader(0)
    }

    /// A path in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// A tool invocation, with `HOME` in the work directory.
    pub fn tool(&self, program: &str) -> Tool {
        let mut command = Command::new(program);
        command
            .current_dir(self.work.path())
            .env("HOME", self.work.path());
        Tool {
            command,
            line: program.to_owned(),
        }
    }
}

/// A command to run, remembered as a line for failure messages.
pub struct Tool {
    command: Command,
    line: String,
}

impl Tool {
    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Tool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            let arg = arg.as_ref();
            self.line.push(' ');
            self.line.push_str(&arg.to_string_lossy());
            self.command.arg(arg);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Tool {
        self.command.env(key, value);
        self
    }

    /// Runs the tool to its end.
    pub fn run(mut self) -> Run {
        let started = Instant::now();
        let Output {
            status,
            stdout,
            stderr,
        } = self
            .command
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.line));
        let run = Run {
            line: self.line,
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        println!(
            "$ {} ({:?}, exit {:?})",
            run.line,
            started.elapsed(),
            run.code
        );
        run
    }

    /// Runs the tool and asserts it succeeded.
    pub fn ok(self) -> Run {
        let run = self.run();
        assert_eq!(run.code, Some(0), "expected success\n{run}");
        run
    }

    /// Runs the tool and asserts it exited with `code`.
    pub fn exits(self, code: i32) -> Run {
        let run = self.run();
        assert_eq!(run.code, Some(code), "expected exit code {code}\n{run}");
        run
    }
}

/// What a tool did.
#[derive(Debug)]
pub struct Run {
    /// The command line.
    pub line: String,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
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
    /// Asserts standard output contains every one of `needles`.
    pub fn stdout_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "stdout lacks {needle:?}\n{self}"
            );
        }
        self
    }

    /// Asserts standard error contains every one of `needles`.
    pub fn stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}\n{self}"
            );
        }
        self
    }

    /// How many times `needle` occurs in standard output.
    pub fn count(&self, needle: &str) -> usize {
        self.stdout.matches(needle).count()
    }
}

impl Served {
    /// Writes `bytes` to a file in the work directory; returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Reads a file of the work directory.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Extracts the public key of a PEM certificate into `<name>.pub.pem`.
    pub fn public_key_of(&self, certificate: &Path) -> PathBuf {
        let name = certificate.file_stem().and_then(OsStr::to_str).unwrap();
        let out = self.path(&format!("{name}.pub.pem"));
        self.tool("openssl")
            .args(["x509", "-noout", "-pubkey", "-in"])
            .args([certificate])
            .args(["-out".as_ref(), out.as_os_str()])
            .ok();
        out
    }

    /// Asserts `openssl dgst -sha256 -verify` accepts `signature` over
    /// `data` with `public_key` (extra `-sigopt`s for PSS), and rejects it
    /// over other data: the check can fail.
    pub fn assert_signature(
        &self,
        public_key: &Path,
        signature: &Path,
        data: &Path,
        sigopts: &[&str],
    ) {
        let verify = |data: &Path| {
            let mut tool = self.tool("openssl").args(["dgst", "-sha256"]);
            for option in sigopts {
                tool = tool.args(["-sigopt", option]);
            }
            tool.args(["-verify".as_ref(), public_key.as_os_str()])
                .args(["-signature".as_ref(), signature.as_os_str()])
                .args([data])
        };
        verify(data).ok().stdout_has(&["Verified OK"]);
        let other = self.write("other-data.txt", b"not what the card signed");
        verify(&other)
            .exits(1)
            .stdout_has(&["Verification failure"]);
    }

    /// Asserts a PEM certificate chains to the issuing PKI's Sub and Root CA.
    pub fn assert_chains_to_the_pki(&self, certificate: &Path) {
        let run = self
            .tool("openssl")
            .args(["verify", "-CAfile"])
            .args([&self.issued.root_pem])
            .args(["-untrusted".as_ref(), self.issued.sub_pem.as_os_str()])
            .args([certificate])
            .ok();
        assert_eq!(
            run.stdout.trim(),
            format!("{}: OK", certificate.display()),
            "{run}"
        );
    }
}
