//! The private namespaces: what they need, and re-running inside them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{HarnessError, POLL, io_error};

/// Set in the re-run's environment: the name of the test it runs.
pub(super) const NAMESPACE_VAR: &str = "VSCARD_PCSCD_NS";

/// Where Debian installs the vpcd driver.
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// Sets up the namespaces, then runs the re-run's command.
const NAMESPACE_SCRIPT: &str = "set -e
mkdir -p /run/pcscd
mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
ip link set lo up
exec \"$@\"";

/// True when a TCP socket listens on `port` in this network namespace
/// (from `/proc/net/tcp` and `tcp6`; state `0A` is LISTEN).
pub fn is_listening(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or_default();
                let state = fields.nth(1).unwrap_or_default();
                local.ends_with(&wanted) && state == "0A"
            })
        })
    })
}

/// Waits until a TCP socket listens on `port` in this network namespace
/// (for reverse mode: the cards must listen before pcscd starts).
pub fn wait_until_listening(port: u16, timeout: Duration) -> Result<Duration, HarnessError> {
    let started = Instant::now();
    while !is_listening(port) {
        if started.elapsed() > timeout {
            return Err(HarnessError::Timeout {
                what: format!("a listener on port {port}"),
                waited: timeout,
                log: String::new(),
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(started.elapsed())
}

/// Why private pcscd tests cannot run here, if they cannot.
pub fn missing_prerequisites() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            if !cfg!(target_os = "linux") {
                return Some("private pcscd tests need Linux namespaces".to_owned());
            }
            if !rustix::process::geteuid().is_root() {
                return Some("private pcscd tests need root (unshare, mount)".to_owned());
            }
            for tool in ["unshare", "mount", "ip", "pcscd"] {
                if find_program(tool).is_none() {
                    return Some(format!("`{tool}` is not installed (run .ci/install-deps)"));
                }
            }
            if !vpcd_driver().exists() {
                return Some(
                    "the vpcd driver is not installed (Debian package vsmartcard-vpcd)".to_owned(),
                );
            }
            match Command::new("unshare")
                .args(["--mount", "--net", "--pid", "--fork", "true"])
                .stdin(Stdio::null())
                .output()
            {
                Ok(out) if out.status.success() => None,
                Ok(out) => Some(format!(
                    "unshare --mount --net --pid is not permitted here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Some(format!("cannot run unshare: {e}")),
            }
        })
        .clone()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The vpcd driver: Debian's path, or the LIBPATH of the installed
/// reader.conf.
pub(super) fn vpcd_driver() -> PathBuf {
    let default = PathBuf::from(VPCD_DRIVER);
    if default.exists() {
        return default;
    }
    std::fs::read_to_string("/etc/reader.conf.d/vpcd")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix("LIBPATH"))
                .map(|path| PathBuf::from(path.trim()))
        })
        .unwrap_or(default)
}

/// `unshare` options for a re-run: private mounts, network and process
/// ids (a fresh /proc), and everything killed when the first process ends.
const UNSHARE_ARGS: [&str; 6] = [
    "--mount",
    "--net",
    "--pid",
    "--fork",
    "--mount-proc",
    "--kill-child",
];

/// For programs that are not libtest tests (criterion benches, a
/// `main`): outside the private namespaces, re-runs the whole program with
/// the same arguments inside fresh ones (stdio inherited) and exits with
/// its exit code, never returning; inside, returns `Ok(())` at once, and
/// the program goes on with [`super::PrivatePcscd::start_here`]. An error means
/// the namespaces cannot be had here (see [`missing_prerequisites`]).
pub fn rerun_process_in_namespace() -> Result<(), HarnessError> {
    if std::env::var_os(NAMESPACE_VAR).is_some() {
        return Ok(());
    }
    if let Some(reason) = missing_prerequisites() {
        return Err(HarnessError::Unavailable(reason));
    }
    let exe = std::env::current_exe().map_err(io_error("cannot find the program"))?;
    let status = Command::new("unshare")
        .args(UNSHARE_ARGS)
        .args(["--", "sh", "-c", NAMESPACE_SCRIPT, "sh"])
        .arg(&exe)
        .args(std::env::args_os().skip(1))
        .env(NAMESPACE_VAR, "process")
        .status()
        .map_err(io_error("cannot run unshare"))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Re-runs test `test` of the current binary in fresh namespaces and
/// replays its output.
pub(super) fn rerun_in_namespace(test: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let dir = tempfile::Builder::new()
        .prefix("vscard-rerun-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    };
    let mut child = Command::new("unshare")
        .args(UNSHARE_ARGS)
        .args(["--", "sh", "-c", NAMESPACE_SCRIPT, "sh"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        // The outer run only gets here for a test it decided to run, so an
        // `#[ignore]`d one (run with `--ignored`) must run inside too.
        .arg("--include-ignored")
        .env(NAMESPACE_VAR, test)
        .stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?)
        .spawn()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let limit = std::env::var("VSCARD_PCSCD_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_secs);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for the re-run: {e}")),
        }
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    print!("{stdout}");
    eprint!("{stderr}");
    match status {
        None => Err(format!("timed out after {limit:?}")),
        Some(status) if !status.success() => Err(format!("failed ({status}); its output is above")),
        Some(_) if !stdout.contains("1 passed") => {
            Err("the re-run ran no test (is this the standard libtest harness?)".to_owned())
        }
        Some(_) => Ok(()),
    }
}
