//! Loading a `FileStore` card image and its journal from arbitrary bytes.
//!
//! Input: a flags byte, a big-endian u16 image length, the image bytes,
//! then the journal bytes. Flags: bit 0, rewrite the image's `checksum`
//! to match its contents (so mutated images get past the checksum to the
//! structure checks); bit 1, write a journal; bit 2, the journal is the
//! raw bytes (else they are laid at the start of a zeroed journal of the
//! right size, `JOURNAL_SLOTS` x `JOURNAL_SLOT_SIZE`); bit 3, fix up each
//! slot that has the journal magic: its era (the image's), position and
//! digest, so mutated records get replayed. The fix-ups follow the format
//! in the `file_store` module doc; they only widen what the fuzzer reaches.
//!
//! Invariants: no panic; a refusal is an error that names the image or
//! journal file; `FileStore::load` and `FileStore::read` agree; loading
//! never writes: the image and journal bytes are unchanged afterwards and
//! no other file appears besides the lock file.

#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use vscard_emulator::{FileStore, JOURNAL_SLOT_SIZE, JOURNAL_SLOTS, Store};
use vscard_fuzz::Input;

const MAGIC: &[u8; 16] = b"vscard-journal/1";
/// Magic, era, position (u64 LE), payload length (u32 LE).
const HEADER: usize = 16 + 16 + 8 + 4;

/// A folder of this process's own for the card files.
fn folder() -> &'static PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let folder = std::env::temp_dir().join(format!("vscard-fuzz-store-{}", std::process::id()));
        if let Err(e) = fs::create_dir_all(&folder) {
            panic!("{}: {e}", folder.display());
        }
        folder
    })
}

/// The image with its checksum recomputed over its era and applets; the
/// era, when there is one, for the journal fix-up.
fn fix_image(image: &[u8]) -> (Vec<u8>, Option<[u8; 16]>) {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(image) else {
        return (image.to_vec(), None);
    };
    let Some(applets) = value
        .get("applets")
        .and_then(|a| serde_json::to_vec(a).ok())
    else {
        return (image.to_vec(), None);
    };
    let era_text = value.get("era").and_then(|e| e.as_str()).map(str::to_owned);
    let mut hasher = Sha256::new();
    if let Some(era) = &era_text {
        hasher.update(era.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(&applets);
    let checksum = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(object) = value.as_object_mut() {
        object.insert("checksum".to_owned(), checksum.into());
    }
    let mut era = [0u8; 16];
    let era = era_text
        .and_then(|text| hex::decode_to_slice(text, &mut era).ok())
        .map(|()| era);
    (
        serde_json::to_vec_pretty(&value).unwrap_or_else(|_| image.to_vec()),
        era,
    )
}

fn fix_slots(journal: &mut [u8], era: Option<[u8; 16]>) {
    for (index, slot) in journal.chunks_mut(JOURNAL_SLOT_SIZE).enumerate() {
        if slot.len() < HEADER || &slot[..16] != MAGIC {
            continue;
        }
        if let Some(era) = era {
            slot[16..32].copy_from_slice(&era);
        }
        slot[32..40].copy_from_slice(&(index as u64).to_le_bytes());
        let length = u32::from_le_bytes([slot[40], slot[41], slot[42], slot[43]]) as usize;
        let end = HEADER + length;
        if end + 32 <= slot.len() {
            let digest = Sha256::digest(&slot[..end]);
            slot[end..end + 32].copy_from_slice(&digest);
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut input = Input::new(bytes);
    let flags = input.byte();
    let length = usize::from(input.u16_be());
    let image = input.take(length);
    let (image, era) = if flags & 1 == 1 {
        fix_image(image)
    } else {
        (image.to_vec(), None)
    };
    let journal = (flags & 2 == 2).then(|| {
        let tail = input.rest();
        if flags & 4 == 4 {
            tail.to_vec()
        } else {
            let mut full = vec![0u8; JOURNAL_SLOTS * JOURNAL_SLOT_SIZE];
            let n = tail.len().min(full.len());
            full[..n].copy_from_slice(&tail[..n]);
            if flags & 8 == 8 {
                fix_slots(&mut full, era);
            }
            full
        }
    });

    let path = folder().join("card.json");
    let journal_path = FileStore::journal_path(&path);
    let lock_path = folder().join("card.json.lock");
    for entry in fs::read_dir(folder()).into_iter().flatten().flatten() {
        let _ = fs::remove_file(entry.path());
    }
    if let Err(e) = fs::write(&path, &image) {
        panic!("{}: {e}", path.display());
    }
    if let Some(journal) = &journal
        && let Err(e) = fs::write(&journal_path, journal)
    {
        panic!("{}: {e}", journal_path.display());
    }

    let loaded = match FileStore::open(&path) {
        Ok(mut store) => store.load(),
        Err(e) => panic!("opening a store in a fresh folder: {e}"),
    };
    let read = FileStore::read(&path);
    match (&loaded, &read) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "load and read disagree"),
        (Err(e), Err(_)) => {
            let message = e.to_string();
            assert!(
                message.contains("card.json"),
                "error names no file: {message}"
            );
        }
        _ => panic!("load and read disagree: {loaded:?} / {read:?}"),
    }

    assert_eq!(
        fs::read(&path).ok().as_deref(),
        Some(image.as_slice()),
        "image changed"
    );
    assert_eq!(fs::read(&journal_path).ok(), journal, "journal changed");
    for entry in fs::read_dir(folder()).into_iter().flatten().flatten() {
        let name = entry.path();
        assert!(
            name == path || name == journal_path || name == lock_path,
            "loading created {}",
            name.display()
        );
    }
});
