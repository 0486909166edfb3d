//! FileStore hardening: no secrets left behind in temporary files, and no
//! card file opened through a planted link.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use support::*;
use vscard_emulator::{
    AppletState, CardError, CardImage, DamageKind, FileStore, OwnerPin, Part, Store, StoreError,
    UnsafeFile, files,
};

const WRONG_PIN: &[u8] = &[0x00, ins::VERIFY, 0, 0, 4, b'0', b'0', b'0', b'0'];
const RIGHT_PIN: &[u8] = &[0x00, ins::VERIFY, 0, 0, 4, b'1', b'2', b'3', b'4'];
const INCREMENT: &[u8] = &[0x00, ins::INCREMENT, 0, 0];

/// The PIN tries left as the files say (read without the lock).
fn tries_on_disk(path: &Path) -> u8 {
    let image = FileStore::read(path).unwrap().unwrap();
    let state = image.applet(&hex::encode_upper(AID_A)).unwrap();
    state
        .get(Part::<OwnerPin>::new("pin"))
        .unwrap()
        .tries_left()
}

fn refused(err: &StoreError, file: &Path, problem: UnsafeFile) {
    match err {
        StoreError::Unsafe { path, problem: p } => {
            assert_eq!((path.as_path(), p), (file, &problem), "{err}")
        }
        other => panic!("not refused: {other}"),
    }
    assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
}

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
    let err = files::write_private_atomically(&path, b"secret card").unwrap_err();
    assert!(err.to_string().contains("card.json"), "{err}");
    // The temporary file held the whole card (PIN, keys): it is gone, and
    // what was in the image's place is as it was.
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    assert_eq!(fs::read(path.join("keep")).unwrap(), b"old");
    // A store refuses such an image outright.
    let err = FileStore::open(&path).unwrap_err();
    refused(&err, &path, UnsafeFile::NotRegular);
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
}

#[test]
fn a_planted_journal_link_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let other = dir.path().join("other_file");
    fs::write(&other, b"not yours").unwrap();
    let mut card = file_card(&path).unwrap();
    let image = fs::read(&path).unwrap();
    // Planted after the card was loaded, before its first small commit.
    let journal = FileStore::journal_path(&path);
    symlink(&other, &journal).unwrap();
    assert_eq!(send(&mut card, RIGHT_PIN).1, 0x6581);
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x6581);
    drop(card);
    assert_eq!(fs::read(&other).unwrap(), b"not yours");
    assert_eq!(fs::read(&path).unwrap(), image);
    // Planted before loading: the load names the link.
    let err = file_card(&path).unwrap_err();
    let CardError::Store(err) = err else {
        panic!("{err}");
    };
    refused(&err, &journal, UnsafeFile::Symlink);
    assert_eq!(fs::read(&other).unwrap(), b"not yours");
}

#[test]
fn a_planted_lock_link_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let elsewhere = dir.path().join("elsewhere");
    let lock = dir.path().join("card.json.lock");
    symlink(&elsewhere, &lock).unwrap();
    let err = FileStore::open(&path).unwrap_err();
    refused(&err, &lock, UnsafeFile::Symlink);
    let err = FileStore::write(&path, &sample(1)).unwrap_err();
    refused(&err, &lock, UnsafeFile::Symlink);
    assert!(!elsewhere.exists());
    assert!(!path.exists());
}

#[test]
fn a_planted_temporary_name_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let elsewhere = dir.path().join("elsewhere");
    // The fixed name earlier builds used, pointing out of the folder.
    let planted = dir.path().join(".card.json.tmp");
    symlink(&elsewhere, &planted).unwrap();
    let mut store = FileStore::open(&path).unwrap();
    store.commit(&sample(1)).unwrap();
    assert_eq!(store.load().unwrap(), Some(sample(1)));
    assert!(!elsewhere.exists());
    // Removed as a leftover (unlinking removes the link, not its target).
    assert!(fs::symlink_metadata(&planted).is_err());
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
}

#[test]
fn a_hard_linked_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    FileStore::write(&path, &sample(1)).unwrap();
    let bytes = fs::read(&path).unwrap();
    fs::hard_link(&path, dir.path().join("second.json")).unwrap();
    let err = FileStore::open(&path).unwrap_err();
    refused(&err, &path, UnsafeFile::Links(2));
    let err = FileStore::read(&path).unwrap_err();
    refused(&err, &path, UnsafeFile::Links(2));
    let err = FileStore::write(&path, &sample(2)).unwrap_err();
    refused(&err, &path, UnsafeFile::Links(2));
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn every_name_of_a_card_shares_one_lock_and_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let link = dir.path().join("link.json");
    let folder_link = dir.path().join("alias");
    symlink(&path, &link).unwrap();
    symlink(dir.path(), &folder_link).unwrap();
    let aliased = folder_link.join("card.json");
    {
        let mut card = file_card(&path).unwrap();
        assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
        for other in [&link, &aliased] {
            assert!(
                matches!(FileStore::open(other), Err(StoreError::Locked { .. })),
                "{}",
                other.display()
            );
        }
        assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C1);
    }
    // Through the other names: the same journal, no try regained.
    let mut card = file_card(&link).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C0);
    drop(card);
    assert_eq!(tries_on_disk(&aliased), 0);
    assert_eq!(
        FileStore::open(&aliased).unwrap().path(),
        fs::canonicalize(&path).unwrap()
    );
    assert!(!dir.path().join("link.json.lock").exists());
    assert!(!dir.path().join("link.json.journal").exists());
}

#[test]
fn a_card_file_replaced_while_served_stops_the_card_and_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let other = dir.path().join("other.json");
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C1);
    let journal = FileStore::journal_path(&path);
    let journal_bytes = fs::read(&journal).unwrap();
    // Another card (all its tries) moved over the served one.
    {
        let mut fresh = file_card(&other).unwrap();
        assert_eq!(send(&mut fresh, INCREMENT).1, 0x9000);
    }
    fs::remove_file(FileStore::journal_path(&other)).unwrap();
    FileStore::write(&other, &FileStore::read(&other).unwrap().unwrap()).unwrap();
    let other_bytes = fs::read(&other).unwrap();
    fs::rename(&other, &path).unwrap();
    for apdu in [WRONG_PIN, RIGHT_PIN, INCREMENT] {
        assert_eq!(send(&mut card, apdu).1, 0x6581);
    }
    drop(card);
    assert_eq!(fs::read(&path).unwrap(), other_bytes);
    assert_eq!(fs::read(&journal).unwrap(), journal_bytes);

    // At the store: the commit says why; a removed image is caught too.
    let mut store = open_when_unlocked(&path);
    store.load().unwrap();
    fs::remove_file(&path).unwrap();
    let err = store.commit(&sample(1)).unwrap_err();
    assert!(matches!(err, StoreError::Replaced { .. }), "{err}");
    assert!(err.to_string().contains("replaced or removed"), "{err}");
    assert!(!path.exists());
}

/// [`FileStore::open`] of a card this test just dropped: another test of
/// this binary spawning `unshare` holds a copy of every open descriptor
/// (the dropped card's lock too) between its fork and its exec, so wait
/// that moment out.
fn open_when_unlocked(path: &Path) -> FileStore {
    let started = std::time::Instant::now();
    loop {
        match FileStore::open(path) {
            Err(StoreError::Locked { .. })
                if started.elapsed() < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other.unwrap(),
        }
    }
}

/// Set in the re-run inside a private mount namespace: the tmpfs folder.
const FULL_DISK_DIR: &str = "VSCARD_FULL_DISK_DIR";

#[test]
fn a_correct_pin_never_costs_a_try_on_a_full_disk() {
    if let Some(dir) = std::env::var_os(FULL_DISK_DIR) {
        full_disk(Path::new(&dir));
        return;
    }
    // A real full disk: a small tmpfs, mounted in a private mount
    // namespace (root only) where this test runs again.
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        eprintln!("skipped: needs `unshare --mount` (root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$0\" && exec \"$@\"")
        .arg(dir.path())
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_correct_pin_never_costs_a_try_on_a_full_disk",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FULL_DISK_DIR, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the re-run failed: {status}");
}

fn full_disk(dir: &Path) {
    use std::io::Write;
    let path = dir.join("card.json");
    let mut card = file_card(&path).unwrap();
    // One small commit: the journal exists, and the PIN's commits that
    // follow come in pairs from an odd slot, so one try lands in the last
    // slot with its reset needing an image rewrite.
    assert_eq!(send(&mut card, INCREMENT).1, 0x9000);
    let mut filler = fs::File::create(dir.join("filler")).unwrap();
    while filler.write_all(&[0xAA; 4096]).is_ok() {}
    drop(filler);
    let mut answers = Vec::new();
    for _ in 0..20 {
        let sw = send(&mut card, RIGHT_PIN).1;
        answers.push(sw);
        // Whatever the answer, no try is gone.
        assert_eq!(tries_on_disk(&path), 3, "after {answers:04X?}");
    }
    // In-place slot writes go on while the journal has room for the try
    // and its reset; then the card refuses before counting.
    let verified = answers.iter().take_while(|&&sw| sw == 0x9000).count();
    assert!(verified > 0, "{answers:04X?}");
    assert!(
        answers[verified..].iter().all(|&sw| sw == 0x6581),
        "{answers:04X?}"
    );
    assert!(verified < answers.len(), "{answers:04X?}");
    fs::remove_file(dir.join("filler")).unwrap();
    assert_eq!(send(&mut card, RIGHT_PIN).1, 0x9000);
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
}

/// A symbolic link at the card's own name that another user planted is
/// refused (one of this user's own is followed, see
/// `every_name_of_a_card_shares_one_lock_and_one_journal`).
#[test]
fn a_link_at_the_card_name_planted_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim.json");
    FileStore::write(&target, &sample(1)).unwrap();
    // A write leaves no lock behind; none may be made anew below.
    assert!(!dir.path().join("victim.json.lock").exists());
    let before = fs::read(&target).unwrap();
    let path = dir.path().join("card.json");
    symlink(&target, &path).unwrap();
    let user = rustix::process::geteuid().as_raw();
    let other = user.wrapping_add(4242);
    if std::os::unix::fs::lchown(&path, Some(other), None).is_err() {
        eprintln!("skipped: cannot give a link to another user (not root)");
        return;
    }
    let err = FileStore::open(&path).unwrap_err();
    refused(&err, &path, UnsafeFile::Owner { owner: other, user });
    let err = FileStore::write(&path, &sample(2)).unwrap_err();
    refused(&err, &path, UnsafeFile::Owner { owner: other, user });
    assert_eq!(fs::read(&target).unwrap(), before);
    assert!(!dir.path().join("victim.json.lock").exists());
}

/// A journal restored with loose permissions (0644) is made private
/// before a PIN record is written into it.
#[test]
fn a_world_readable_journal_is_made_private_before_it_is_written() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
    drop(card);
    let journal = FileStore::journal_path(&path);
    for file in [&path, &journal] {
        fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C1);
    for file in [&path, &journal] {
        let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert_eq!(tries_on_disk(&path), 1);
}

/// A huge (sparse) journal planted beside the card is refused by its
/// size, before anything is read into memory.
#[test]
fn a_huge_journal_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    FileStore::write(&path, &sample(1)).unwrap();
    let journal = FileStore::journal_path(&path);
    let file = fs::File::create(&journal).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    let mut store = FileStore::open(&path).unwrap();
    let err = store.load().unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Damaged { path: p, problem: DamageKind::TooLarge { len, .. } }
                if p == &journal && *len == 1 << 40
        ),
        "{err}"
    );
}

/// A journal removed while the card is served would take its tries with
/// it (a restart would give them back): the next commit writes the whole
/// image instead, counters included. A removed lock would let a second
/// server lock a new file: the card stops at the next commit, before a
/// try is counted.
#[test]
fn a_journal_or_lock_removed_while_served_loses_no_try() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
    fs::remove_file(FileStore::journal_path(&path)).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C1);
    drop(card);
    assert_eq!(
        tries_on_disk(&path),
        1,
        "a try came back with the journal gone"
    );
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C0);
    drop(card);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C2);
    fs::remove_file(dir.path().join("card.json.lock")).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x6581);
    assert_eq!(send(&mut card, RIGHT_PIN).1, 0x6581);
    drop(card);
    assert_eq!(tries_on_disk(&path), 2);
    let mut card = file_card(&path).unwrap();
    assert_eq!(send(&mut card, WRONG_PIN).1, 0x63C1);
}
