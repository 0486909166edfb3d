//! Touch through the whole stack: ykman 5.9 generates a key with touch
//! policy ALWAYS on a served YubiKey 5.7 card, then signs a self-signed
//! certificate with it. The card holds the signature until `vscard ctl
//! PATH touch` touches it; with no touch it answers `6982` once the touch
//! timeout passes (15 s, a YubiKey's; `serve --touch-timeout 4` here), and
//! ykman fails. `serve --auto-touch MS` touches by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Serve, issue, p256_profile, run, vscard};
use vscard_testkit::python::python_with;
use vscard_testkit::{PcscdOptions, PrivatePcscd};

/// A YubiKey's reader name: ykman takes only such readers.
const READER: &str = "Yubico YubiKey CCID";
/// The touch timeout the card is served with (`--touch-timeout`): long
/// enough for ykman's prompt (after 1 s) and a `ctl touch`, short enough
/// for a quick "not touched" run.
const TOUCH_TIMEOUT: Duration = Duration::from_secs(4);
/// The default management key (AES-192 on a 5.7 card).
const MANAGEMENT_KEY: &str = "010203040506070801020304050607080102030405060708";

struct Setup {
    ykman: PathBuf,
    reader: String,
    dir: tempfile::TempDir,
    state: PathBuf,
    socket: PathBuf,
    _pcscd: PrivatePcscd,
}

fn setup(test: &str) -> Option<(Setup, Serve)> {
    let python = python_with(test, &["ykman"])?;
    let pcscd = PrivatePcscd::enter_named(PcscdOptions::default(), READER)?;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let profile = p256_profile(dir.path());
    issue(
        &state,
        &card,
        test,
        &["--profile", profile.to_str().unwrap()],
    );
    let socket = dir.path().join("ctl.sock");
    let mut args = vec![
        card.to_str().unwrap().to_owned(),
        "--control".to_owned(),
        socket.to_str().unwrap().to_owned(),
    ];
    args.extend(pcscd.serve_args());
    if test.contains("auto_touch") {
        args.extend(["--auto-touch".to_owned(), "300".to_owned()]);
    } else {
        args.extend([
            "--touch-timeout".to_owned(),
            TOUCH_TIMEOUT.as_secs().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Serve::start(&state, &args);
    pcscd.wait_for_card(0, Duration::from_secs(10)).unwrap();
    let setup = Setup {
        ykman: python.with_file_name("ykman"),
        reader: pcscd.reader(0),
        dir,
        state,
        socket,
        _pcscd: pcscd,
    };
    Some((setup, serve))
}

impl Setup {
    fn ykman(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.ykman);
        command
            .args(["--reader", &self.reader])
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        command
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Generates a P-256 key with touch policy ALWAYS (PIN never) in 9A.
    fn generate_touch_key(&self) -> PathBuf {
        let public = self.path("9a.pem");
        let output = run(&mut self.ykman(&[
            "piv",
            "keys",
            "generate",
            "-m",
            MANAGEMENT_KEY,
            "-a",
            "ECCP256",
            "--touch-policy",
            "ALWAYS",
            "--pin-policy",
            "NEVER",
            "9a",
            path(&public),
        ]));
        assert!(output.status.success());
        let info = run(&mut self.ykman(&["piv", "keys", "info", "9a"]));
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        assert!(info.contains("Touch required for use: ALWAYS\n"), "{info}");
        assert!(info.contains("PIN required for use:   NEVER\n"), "{info}");
        public
    }

    /// `ykman piv certificates generate`: a self-signed certificate,
    /// signed by the 9A key (the operation that needs the touch).
    fn self_sign(&self, public: &Path, log: &[&str]) -> Child {
        let sign = [
            "piv",
            "certificates",
            "generate",
            "-m",
            MANAGEMENT_KEY,
            "-P",
            "123456",
            "-s",
            "CN=touched",
            "9a",
            path(public),
        ];
        self.ykman(&[log, &sign[..]].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn ctl_touch(&self) -> String {
        let output = run(vscard(&self.state)
            .arg("ctl")
            .arg(&self.socket)
            .args(["touch", "--card", "0"]));
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Waits (up to 40 s) for `child` to end.
fn finish(child: Child) -> Output {
    let started = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "ykman hung");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    println!(
        "ykman -> {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn ykman_signs_once_ctl_touches_and_times_out_without() {
    let Some((setup, mut serve)) = setup("ykman_signs_once_ctl_touches_and_times_out_without")
    else {
        return;
    };
    let public = setup.generate_touch_key();

    // Touched while waiting: ykman prompts once the signature has not
    // come back for 1 s; then the touch completes it.
    let mut signing = setup.self_sign(&public, &[]);
    let stderr = signing.stderr.take().unwrap();
    let (lines, prompt) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Touch your YubiKey...") {
                let _ = lines.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    prompt
        .recv_timeout(Duration::from_secs(10))
        .expect("ykman did not prompt for a touch");
    let touched = setup.ctl_touch();
    assert_eq!(touched, "card 0: touched, the waiting command completed\n");
    let output = finish(signing);
    println!("{}", reader.join().unwrap());
    assert!(output.status.success());

    // Touched before the operation asks: the touch is kept for it.
    let kept = setup.ctl_touch();
    assert_eq!(
        kept,
        "card 0: touched, kept for the next command that asks within 15 s\n"
    );
    let output = finish(setup.self_sign(&public, &[]));
    assert!(output.status.success());
    let info = run(&mut setup.ykman(&["piv", "info"]));
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.contains("Subject DN:       CN=touched\n"), "{info}");

    // Not touched: the touch timeout (4 s, not a YubiKey's 15), then 6982
    // and ykman fails.
    let started = Instant::now();
    let output = finish(setup.self_sign(&public, &["--log-level", "DEBUG"]));
    let waited = started.elapsed();
    assert!(!output.status.success());
    assert!(waited >= TOUCH_TIMEOUT, "{waited:?}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("APDU error: SW=0x6982 (SECURITY_CONDITION_NOT_SATISFIED)"),
        "{stderr}"
    );
    assert!(stderr.contains("Touch your YubiKey..."), "{stderr}");
    serve.terminate();
}

#[test]
fn serve_auto_touch_touches_by_itself() {
    let Some((setup, mut serve)) = setup("serve_auto_touch_touches_by_itself") else {
        return;
    };
    let public = setup.generate_touch_key();
    let started = Instant::now();
    let output = finish(setup.self_sign(&public, &[]));
    assert!(output.status.success());
    assert!(started.elapsed() < Duration::from_secs(15));
    serve.terminate();
}
