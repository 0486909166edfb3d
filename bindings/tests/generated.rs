//! The Kotlin and Swift sources committed under bindings/generated/ are
//! what this crate's uniffi-bindgen makes of this build of the library:
//! regenerated here and compared byte for byte. When the API changes,
//! regenerate them (the command is in bindings/generated/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir`, relative to it, with its contents.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "README.md") {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_owned(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_kotlin_and_swift_sources_are_current() {
    let bindgen = Path::new(env!("CARGO_BIN_EXE_uniffi-bindgen"));
    // `cargo test` leaves the cdylib in deps/ (`cargo build` beside the
    // binaries too).
    let library = bindgen.with_file_name("deps").join("libvscard.so");
    assert!(library.exists(), "{} is not built", library.display());
    let fresh = tempfile::tempdir().unwrap();
    for language in ["kotlin", "swift"] {
        let output = Command::new(bindgen)
            .args(["generate", "--no-format", "--library"])
            .arg(&library)
            .args(["--language", language, "--out-dir"])
            .arg(fresh.path().join(language))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "uniffi-bindgen {language}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let (want, have) = (files(fresh.path()), files(&committed));
    let names =
        |files: &[(PathBuf, Vec<u8>)]| files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&have),
        names(&want),
        "files under bindings/generated/"
    );
    for ((path, new), (_, old)) in want.iter().zip(&have) {
        assert!(
            new == old,
            "bindings/generated/{} is stale: regenerate it (bindings/generated/README.md)",
            path.display()
        );
    }
    assert!(want.len() >= 4, "{:?}", names(&want));
}
