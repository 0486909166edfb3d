//! The Python bindings (bindings/) as a user gets them: `pip install
//! ./bindings` (maturin from the test venv as the build backend, the
//! wheel built with the dev profile into the shared target folder), then
//! pytest on bindings/tests/python and the README's Python example, as
//! written, against what pip installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use vscard_testkit::private_pcscd;
use vscard_testkit::python::python_with;

mod support;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `pip install --target DIR ./bindings` once per test binary: the
/// folder the `vscard` package is installed in.
fn installed(python: &Path) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under the target folder, one per test process (the pcscd test
        // re-runs itself in a namespace); the library is 80 MB, so the
        // folders of processes that have ended are removed first.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-bindings");
        // (Not from inside the pcscd test's pid namespace: the processes
        // outside are not in its /proc.)
        let outside = std::process::id() != 1;
        if let Ok(entries) = std::fs::read_dir(&root).map(|e| e.filter(|_| outside)) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !Path::new("/proc").join(&name).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let started = std::time::Instant::now();
        let mut pip = Command::new(python);
        // What cargo sets for a test binary would change the build
        // scripts' environment (ring's, through cc) and make the wheel's
        // build and the workspace's rebuild the same crates in turn.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_TERM_COLOR"];
            if (name == "CARGO"
                || name.starts_with("CARGO_")
                || name == "OUT_DIR"
                || name == "LD_LIBRARY_PATH")
                && !keep.contains(&name.as_str())
            {
                pip.env_remove(&name);
            }
        }
        let output = pip
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            // The venv's pinned maturin, no download; only the package.
            .args(["--no-build-isolation", "--no-deps", "--target"])
            .arg(&dir)
            .arg(repository().join("bindings"))
            .env("CARGO_INCREMENTAL", "0")
            // The build backend runs `maturin` from PATH: the venv's.
            .env("PATH", with_venv_bin(python))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pip install ./bindings failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("pip install ./bindings: {:?}", started.elapsed());
        assert!(dir.join("vscard").join("__init__.pyi").exists());
        assert!(dir.join("vscard").join("py.typed").exists());
        dir
    })
}

/// PATH with the venv's `bin` (the folder of its python) first.
fn with_venv_bin(python: &Path) -> std::ffi::OsString {
    let bin = python.parent().unwrap().to_owned();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).unwrap()
}

fn run_python(python: &Path, args: &[&str], cwd: &Path) -> std::process::Output {
    let installed = installed(python);
    let output = Command::new(python)
        .args(args)
        .current_dir(cwd)
        .env("PYTHONPATH", installed)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    println!(
        "$ python {args:?}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn pytest_passes_against_the_installed_package() {
    let Some(python) = python_with("python_bindings", &["pytest", "cryptography", "maturin"])
    else {
        return;
    };
    let tests = repository().join("bindings").join("tests").join("python");
    let output = run_python(
        &python,
        &["-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
        &tests,
    );
    assert!(output.status.success(), "pytest failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Every test ran (a pytest that collected nothing exits 5, not 0).
    assert!(stdout.contains("10 passed"), "{stdout}");
}

/// The example under "Python" in the README, between its markers.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let start = readme
        .find("<!-- python-example -->")
        .expect("README has the python-example marker");
    let rest = &readme[start..];
    let code = rest
        .split("```python\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a python code block after the marker");
    code.to_owned()
}

#[test]
fn the_readme_python_example_runs_as_written() {
    let Some(python) = python_with("python_bindings", &["pytest", "cryptography", "maturin"])
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("example.py");
    std::fs::write(&script, readme_example()).unwrap();
    let output = run_python(&python, &[script.to_str().unwrap()], dir.path());
    assert!(output.status.success(), "the README example failed");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ATR 3b8b8131fe4580f9a0000003080000100042\nwrong PIN: 63c2\nsigned: 9000\n"
    );
}

/// Serves a card from Python over the link; prints what its observer
/// hears, and stops when its standard input closes.
const SERVE_LINK: &str = r#"
import sys, vscard

class Observer(vscard.LinkObserver):
    def connected(self, relay):
        print("connected", relay, flush=True)
    def disconnected(self, reason):
        print("disconnected", reason, flush=True)
    def paired(self, relay):
        print("paired", relay, flush=True)

profile, uri_file, state_dir = sys.argv[1:4]
card = vscard.Card.from_image(vscard.issue_image(open(profile).read(), "python-link"))
card.serve_link(open(uri_file).read().strip(), state_dir, label="python", observer=Observer())
sys.stdin.read()
card.stop_link()
print("stopped; PIN tries left", card.pin_tries_left(), flush=True)
"#;

#[test]
fn a_card_served_from_python_over_the_link_is_seen_by_pkcs11_tool() {
    let Some(python) = python_with("python_bindings", &["pytest", "cryptography", "maturin"])
    else {
        return;
    };
    // Installed before the re-run in the namespaces (which installs its
    // own copy): two wheel builds at once would share target/maturin.
    installed(&python);
    let Some(pcscd) = private_pcscd() else { return };
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let relay_state = home.join("relay");
    let mut relay = support::vscard(&relay_state)
        .args(["relay", "--listen", "127.0.0.1:35950"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut relay_out = std::io::BufReader::new(relay.stdout.take().unwrap()).lines();
    let listening = relay_out.next().unwrap().unwrap();
    assert!(
        listening.contains("relay listening on 127.0.0.1:35950"),
        "{listening}"
    );
    let uri_file = home.join("pair.uri");
    support::run_ok(
        support::vscard(&relay_state)
            .args(["relay", "pair", "--expires", "10m", "--out"])
            .arg(&uri_file),
    );
    let profile = support::p256_profile(home);
    let script = home.join("serve_link.py");
    std::fs::write(&script, SERVE_LINK).unwrap();
    let installed = installed(&python);
    let mut served = Command::new(&python)
        .arg(&script)
        .arg(&profile)
        .arg(&uri_file)
        .arg(home.join("card-state"))
        .env("PYTHONPATH", installed)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(served.stdout.take().unwrap()).lines();
    let paired = lines.next().unwrap().unwrap();
    assert!(paired.starts_with("paired 127.0.0.1:35950"), "{paired}");
    let connected = lines.next().unwrap().unwrap();
    assert_eq!(connected, "connected 127.0.0.1:35950");
    pcscd
        .wait_for_card(0, std::time::Duration::from_secs(5))
        .unwrap();
    let token = support::run(
        Command::new("pkcs11-tool")
            .arg("-L")
            .current_dir(home)
            .env("HOME", home),
    );
    assert!(token.status.success());
    let listed = String::from_utf8_lossy(&token.stdout);
    assert!(listed.contains("000123456789"), "{listed}");
    // Closing its input stops the link; the card comes back to Python.
    drop(served.stdin.take());
    let stopped = lines.next().unwrap().unwrap();
    assert_eq!(stopped, "stopped; PIN tries left 3");
    assert!(served.wait().unwrap().success());
    let _ = relay.kill();
    let _ = relay.wait();
    let _ = std::io::stdout().flush();
}
