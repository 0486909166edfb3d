//! The Python the tests drive vscard with: the virtual environment of
//! `scripts/python-env` (pyscard, PyKCS11, and ykman from `yubikey-manager`,
//! its `ykman` script next to the python), named by `VSCARD_PYTHON`.

use std::io::Write;
use std::path::PathBuf;

/// The venv's python from `VSCARD_PYTHON`, checked to import `modules`.
/// Without it the test prints why and is skipped, except in CI (the `CI`
/// variable set), where a missing Python fails the test: `.ci/run` always
/// makes the venv.
pub fn python_with(test: &str, modules: &[&str]) -> Option<PathBuf> {
    let reason = match std::env::var_os("VSCARD_PYTHON") {
        None => {
            "VSCARD_PYTHON is not set (run `scripts/python-env` and export its output)".to_owned()
        }
        Some(path) => {
            let path = PathBuf::from(path);
            let imports = modules
                .iter()
                .map(|m| format!("import {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            match std::process::Command::new(&path)
                .args(["-c", &imports])
                .output()
            {
                Ok(out) if out.status.success() => return Some(path),
                Ok(out) => format!(
                    "{} cannot import {modules:?}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => format!("cannot run {}: {e}", path.display()),
            }
        }
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: Python tests cannot run in CI: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    None
}
