//! FileStore hardening: no secrets left behind in temporary files, and no
//! card file opened through a planted link.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use vscard_emulator::{AppletState, CardImage, FileStore, Part, Store};

fn sample(counter: u32) -> CardImage {
    let mut image = CardImage::new();
    image.set_applet(
        "A000000001",
        AppletState::new()
            .with(Part::new("counter"), &counter)
            .unwrap(),
    );
    image
}

/// The names in `dir` that end in `.tmp`.
fn temporaries(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_failed_rename_leaves_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    // The image's place is taken by a non-empty folder: the rename of the
    // written temporary file over it fails.
    let path = dir.path().join("card.json");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), b"old").unwrap();
    let mut store = FileStore::open(&path).unwrap();
    let err = store.commit(&sample(1)).unwrap_err();
    assert!(err.to_string().contains("card.json"), "{err}");
    // The temporary file held the whole card (PIN, keys): it is gone, and
    // what was in the image's place is as it was.
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    assert_eq!(fs::read(path.join("keep")).unwrap(), b"old");
}
