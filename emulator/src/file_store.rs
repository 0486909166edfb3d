//! [`FileStore`]: one JSON image file per card, written atomically, and a
//! journal of small commits beside it.
//!
//! Image format (version 2; version 1, without `era`, is still read):
//!
//! ```json
//! { "format": "vscard-card-image", "version": 2,
//!   "era": "<32 hex digits, random, new at every image write>",
//!   "checksum": "sha256:<hex of sha256(era, newline, compact JSON of `applets`)>",
//!   "applets": { "<AID hex>": { "<part>": <value>, ... }, ... } }
//! ```
//!
//! Writing the image: the whole image goes to a temporary file in the same
//! folder (mode 0600), which is fsynced, renamed over the image, and the
//! folder fsynced, so a crash at any point leaves the old image or the new
//! one. Each image write draws a new random `era`.
//!
//! The journal (`<image>.journal`, mode 0600, [`JOURNAL_SLOTS`] slots of
//! [`JOURNAL_SLOT_SIZE`] bytes, created whole by the same temp-and-rename
//! steps) takes the small commits: a PIN try rewrites one part of one
//! applet. Such a commit is written into the next free slot in place and
//! `fdatasync`ed: one write, one flush, no folder entry changed (a rename
//! needs a second flush, of the folder). A slot holds the era of the image
//! it applies to, its position, the changed parts as JSON and a SHA-256
//! digest of all that. Loading reads the image, then applies the slots
//! from the first on while each is intact, of this era and in its place; a
//! slot torn by a crash is where the journal ends, as if that commit never
//! happened. Slots of an older era (the image was rewritten since) are
//! ignored. When the journal is full, or a commit does not fit a slot, the
//! store writes the whole image instead, with a new era: the journal is
//! empty again without being touched.
//!
//! A file that is not JSON, not a vscard image, truncated, edited (checksum
//! mismatch) or of a future version, and a journal of the wrong size or
//! with an intact record of this era after a damaged one (a gap no crash
//! can make) are refused with an error naming the file and the problem,
//! and are never overwritten. An advisory lock on `<image>.lock`, held
//! while the store lives, keeps two processes from serving one card.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::TryRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::{CardImage, Changes, DamageKind, Part, Store, StoreError};

/// The identifier in the `format` field.
pub const IMAGE_FORMAT: &str = "vscard-card-image";
/// The image format version this build writes and the newest it reads.
pub const IMAGE_VERSION: u32 = 2;
/// Slots in a journal: small commits between two image writes.
pub const JOURNAL_SLOTS: usize = 32;
/// Bytes per journal slot (a page: a torn slot never spans another's).
pub const JOURNAL_SLOT_SIZE: usize = 4096;

const JOURNAL_MAGIC: &[u8; 16] = b"vscard-journal/1";
/// Magic, era, position, length; then the payload and its digest.
const SLOT_HEADER: usize = 16 + 16 + 8 + 4;
const SLOT_DIGEST: usize = 32;

#[derive(Serialize)]
struct ImageFileOut<'a> {
    format: &'static str,
    version: u32,
    era: String,
    checksum: String,
    applets: &'a CardImage,
}

#[derive(Deserialize)]
struct ImageFileIn {
    checksum: String,
    #[serde(default)]
    era: Option<String>,
    applets: CardImage,
}

/// Identifies one write of an image; journal slots carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Era([u8; 16]);

impl Era {
    fn random(path: &Path) -> Result<Era, StoreError> {
        let mut bytes = [0u8; 16];
        rand::rngs::SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(format!("no randomness for the image era: {e}")),
            })?;
        Ok(Era(bytes))
    }

    /// For new cards written by tools: derived from the contents and the
    /// era of the image replaced, if any (so a fresh path gives the same
    /// bytes every time, and an era never comes back at one path). A
    /// store's own image writes draw random eras.
    fn of_contents(image: &CardImage, previous: Option<Era>) -> Result<Era, StoreError> {
        let mut hasher = Sha256::new();
        hasher.update(b"vscard image era\n");
        if let Some(previous) = previous {
            hasher.update(previous.0);
        }
        hasher.update(serde_json::to_vec(image)?);
        let mut era = [0u8; 16];
        era.copy_from_slice(&hasher.finalize()[..16]);
        Ok(Era(era))
    }

    fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn from_hex(text: &str) -> Option<Era> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Era(bytes))
    }
}

/// A store that keeps the card image in one file, and small commits in a
/// journal beside it.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    // Held for the store's lifetime; the OS releases it when the file closes.
    _lock: File,
    /// The era of the image on disk, when this store loaded or wrote a
    /// version-2 image (small commits go to the journal only then).
    era: Option<Era>,
    /// The next free journal slot of this era.
    next_slot: usize,
    /// The journal, opened for writing on the first small commit.
    journal: Option<File>,
}

/// An image as read from disk, journal applied.
struct Loaded {
    image: CardImage,
    era: Option<Era>,
    slots: usize,
}

impl FileStore {
    /// Opens (or prepares to create) the image at `path` and takes the
    /// card's lock. The image itself is read by [`Store::load`].
    pub fn open(path: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let path = path.into();
        let lock_path = sibling(&path, ".lock");
        let lock = open_private(&lock_path).map_err(|source| StoreError::Io {
            path: lock_path.clone(),
            source,
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path,
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        Ok(FileStore {
            path,
            _lock: lock,
            era: None,
            next_slot: 0,
            journal: None,
        })
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal's path for the image at `path`.
    pub fn journal_path(path: &Path) -> PathBuf {
        sibling(path, ".journal")
    }

    /// Reads and checks the image at `path`, with its journal applied,
    /// without taking the lock (for inspection while another process
    /// serves the card: the image is only ever replaced whole, and a slot
    /// being written reads as the end of the journal). A read that meets
    /// the server rewriting the image between reading it and its journal
    /// is done again. `None` when there is no file.
    pub fn read(path: &Path) -> Result<Option<CardImage>, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match read_all(path) {
                Err(StoreError::Damaged { .. }) if attempts < 3 => continue,
                result => return Ok(result?.map(|loaded| loaded.image)),
            }
        }
    }

    /// Writes `image` to `path` atomically as a new card; used by tools
    /// that create a card image. Refused with [`StoreError::Locked`] while
    /// the card is served. On a fresh path the same image gives the same
    /// bytes (seeded test cards are reproducible); over an existing card
    /// the era also depends on the old one, so no record of the old
    /// card's journal can apply to the new image, and that journal is
    /// removed once the new image is in place.
    pub fn write(path: &Path, image: &CardImage) -> Result<(), StoreError> {
        let _store = FileStore::open(path)?;
        write_new_card(path, image).map(|_| ())
    }

    /// Replaces the card whole with `image`, as [`FileStore::write`] does,
    /// under this store's lock: for a new card written over an old one.
    pub fn replace(&mut self, image: &CardImage) -> Result<(), StoreError> {
        self.era = None;
        self.journal = None;
        let era = write_new_card(&self.path, image)?;
        self.era = Some(era);
        self.next_slot = 0;
        Ok(())
    }

    fn write_image(&mut self, image: &CardImage) -> Result<(), StoreError> {
        let era = Era::random(&self.path)?;
        let bytes = encode_image(image, era)?;
        // Forgotten first: if the write fails half-way, the era on disk is
        // unknown and the next commit writes the image again.
        self.era = None;
        write_atomically(&self.path, &bytes)?;
        self.era = Some(era);
        self.next_slot = 0;
        Ok(())
    }

    /// Writes one journal slot; `false` when the commit must be an image
    /// write instead (no era yet, the journal full, too large a change).
    fn write_slot(&mut self, image: &CardImage, changes: Changes<'_>) -> Result<bool, StoreError> {
        let Some(era) = self.era else {
            return Ok(false);
        };
        if self.next_slot >= JOURNAL_SLOTS {
            return Ok(false);
        }
        let Some(slot) = encode_slot(image, changes, era, self.next_slot)? else {
            return Ok(false);
        };
        let journal_path = FileStore::journal_path(&self.path);
        let io = |source| StoreError::Io {
            path: journal_path.clone(),
            source,
        };
        let journal = match &mut self.journal {
            Some(journal) => journal,
            None => self.journal.insert(open_journal(&journal_path)?),
        };
        let offset = (self.next_slot * JOURNAL_SLOT_SIZE) as u64;
        let written = journal
            .seek(SeekFrom::Start(offset))
            .and_then(|_| journal.write_all(&slot))
            .and_then(|()| journal.sync_data());
        if let Err(e) = written {
            // The slot may still reach the disk although the commit is
            // reported as failed: the next commit rewrites the image with a
            // new era instead, which makes this slot void.
            self.journal = None;
            self.era = None;
            return Err(io(e));
        }
        self.next_slot += 1;
        Ok(true)
    }
}

impl Store for FileStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        match read_all(&self.path)? {
            None => {
                self.era = None;
                Ok(None)
            }
            Some(loaded) => {
                self.era = loaded.era;
                self.next_slot = loaded.slots;
                Ok(Some(loaded.image))
            }
        }
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        self.write_image(image)
    }

    /// A change of a few parts goes to the next journal slot (one write,
    /// one `fdatasync`); anything else, or a full journal, rewrites the
    /// image.
    fn commit_changes(
        &mut self,
        image: &CardImage,
        changes: Changes<'_>,
    ) -> Result<(), StoreError> {
        if self.write_slot(image, changes)? {
            Ok(())
        } else {
            self.write_image(image)
        }
    }
}

/// Writes `image` at `path` as a new card (the caller holds the lock):
/// the image first, durably, then the old journal is removed (its slots
/// are of other eras already; removing it wipes the old card's records).
fn write_new_card(path: &Path, image: &CardImage) -> Result<Era, StoreError> {
    let previous = fs::read(path)
        .ok()
        .and_then(|bytes| decode_image(path, &bytes).ok())
        .and_then(|(_, era)| era);
    let era = Era::of_contents(image, previous)?;
    write_atomically(path, &encode_image(image, era)?)?;
    let journal = FileStore::journal_path(path);
    match fs::remove_file(&journal) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(target: "vscard::store", journal = %journal.display(), error = %e, "cannot remove the old card's journal (its records no longer apply)");
        }
    }
    Ok(era)
}

/// The image at `path` and what its journal adds.
fn read_all(path: &Path) -> Result<Option<Loaded>, StoreError> {
    // The image and the journal hold the card's secrets: their bytes are
    // wiped once decoded.
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let (mut image, era) = decode_image(path, &bytes)?;
    let slots = match era {
        Some(era) => replay_journal(&FileStore::journal_path(path), era, &mut image)?,
        None => 0,
    };
    Ok(Some(Loaded { image, era, slots }))
}

/// The changed parts as one journal slot, `None` when they do not fit.
fn encode_slot(
    image: &CardImage,
    changes: Changes<'_>,
    era: Era,
    index: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let key = changes.applet();
    let Some(state) = image.applet(key) else {
        return Ok(None);
    };
    let mut parts = serde_json::Map::new();
    for name in changes.parts() {
        match state.part(name) {
            Some(part) => {
                parts.insert(name.to_owned(), serde_json::to_value(part)?);
            }
            // A removed part cannot be said in a slot.
            None => return Ok(None),
        }
    }
    // Both buffers hold part values (PIN records): wiped when dropped.
    let payload = Zeroizing::new(serde_json::to_vec(&JournalRecord {
        applet: key.to_owned(),
        parts,
    })?);
    let Ok(length) = u32::try_from(payload.len()) else {
        return Ok(None);
    };
    if SLOT_HEADER + payload.len() + SLOT_DIGEST > JOURNAL_SLOT_SIZE {
        return Ok(None);
    }
    let mut slot = Zeroizing::new(Vec::with_capacity(JOURNAL_SLOT_SIZE));
    slot.extend_from_slice(JOURNAL_MAGIC);
    slot.extend_from_slice(&era.0);
    slot.extend_from_slice(&(index as u64).to_le_bytes());
    slot.extend_from_slice(&length.to_le_bytes());
    slot.extend_from_slice(&payload);
    let digest = Sha256::digest(slot.as_slice());
    slot.extend_from_slice(&digest);
    // The whole page: nothing of an older, longer record stays behind.
    slot.resize(JOURNAL_SLOT_SIZE, 0);
    Ok(Some(slot))
}

/// One small commit: parts of one applet.
#[derive(Serialize, Deserialize)]
struct JournalRecord {
    applet: String,
    parts: serde_json::Map<String, serde_json::Value>,
}

/// What a slot holds, if it is an intact record.
fn decode_slot(slot: &[u8]) -> Option<(Era, u64, &[u8])> {
    let magic = slot.get(..16)?;
    if magic != JOURNAL_MAGIC {
        return None;
    }
    let era: [u8; 16] = slot.get(16..32)?.try_into().ok()?;
    let index = u64::from_le_bytes(slot.get(32..40)?.try_into().ok()?);
    let length = u32::from_le_bytes(slot.get(40..44)?.try_into().ok()?) as usize;
    let end = SLOT_HEADER.checked_add(length)?;
    let digest = slot.get(end..end.checked_add(SLOT_DIGEST)?)?;
    if Sha256::digest(slot.get(..end)?).as_slice() != digest {
        return None;
    }
    Some((Era(era), index, slot.get(SLOT_HEADER..end)?))
}

/// Applies the journal's records of `era` to `image`; returns how many.
fn replay_journal(path: &Path, era: Era, image: &mut CardImage) -> Result<usize, StoreError> {
    let damaged = |problem: DamageKind| StoreError::Damaged {
        path: path.to_owned(),
        problem,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if bytes.len() != JOURNAL_SLOTS * JOURNAL_SLOT_SIZE {
        return Err(damaged(DamageKind::JournalSize {
            expected: JOURNAL_SLOTS * JOURNAL_SLOT_SIZE,
            found: bytes.len() as u64,
        }));
    }
    let mut applied = 0;
    let mut ended = false;
    for (index, slot) in bytes.chunks_exact(JOURNAL_SLOT_SIZE).enumerate() {
        let record = decode_slot(slot).filter(|(e, _, _)| *e == era);
        match record {
            Some((_, position, payload)) if !ended && position == index as u64 => {
                let record: JournalRecord = serde_json::from_slice(payload)
                    .map_err(|source| damaged(DamageKind::UnreadableRecord { index, source }))?;
                let state = image.applet_mut(&record.applet);
                for (name, value) in record.parts {
                    state.insert_part(&name, Part::Encoded(Arc::new(value)));
                }
                applied += 1;
            }
            Some(_) => {
                return Err(damaged(DamageKind::JournalGap {
                    index,
                    missing: applied,
                }));
            }
            None => ended = true,
        }
    }
    Ok(applied)
}

/// Opens the journal for writing, creating it (all slots empty) if absent.
fn open_journal(path: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            let len = file.metadata().map_err(io)?.len();
            if len == (JOURNAL_SLOTS * JOURNAL_SLOT_SIZE) as u64 {
                Ok(file)
            } else {
                Err(StoreError::Damaged {
                    path: path.to_owned(),
                    problem: DamageKind::JournalSize {
                        expected: JOURNAL_SLOTS * JOURNAL_SLOT_SIZE,
                        found: len,
                    },
                })
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Written whole (real zeros, so later slot writes allocate no
            // blocks and `fdatasync` has no metadata to flush), then
            // renamed into place.
            write_atomically(path, &vec![0u8; JOURNAL_SLOTS * JOURNAL_SLOT_SIZE])?;
            OpenOptions::new().write(true).open(path).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// `<image><suffix>` in the image's folder.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Version 1: over the applets; version 2: over the era and the applets.
fn checksum(image: &CardImage, era: Option<&str>) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    if let Some(era) = era {
        hasher.update(era.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(serde_json::to_vec(image)?);
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn encode_image(image: &CardImage, era: Era) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let era = era.to_hex();
    let file = ImageFileOut {
        format: IMAGE_FORMAT,
        version: IMAGE_VERSION,
        checksum: checksum(image, Some(&era))?,
        era,
        applets: image,
    };
    let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
    bytes.push(b'\n');
    Ok(bytes)
}

fn decode_image(path: &Path, bytes: &[u8]) -> Result<(CardImage, Option<Era>), StoreError> {
    let damaged = |problem: DamageKind| StoreError::Damaged {
        path: path.to_owned(),
        problem,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            damaged(DamageKind::Truncated { len: bytes.len() })
        } else {
            damaged(DamageKind::NotJson(e))
        }
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(IMAGE_FORMAT) {
        return Err(damaged(DamageKind::NotAnImage));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| damaged(DamageKind::BadVersion))?;
    if version > u64::from(IMAGE_VERSION) {
        return Err(StoreError::FutureVersion {
            path: path.to_owned(),
            found: version,
            supported: IMAGE_VERSION,
        });
    }
    if version == 0 {
        return Err(damaged(DamageKind::VersionZero));
    }
    let file: ImageFileIn =
        serde_json::from_value(value).map_err(|e| damaged(DamageKind::Structure(e)))?;
    let era = match (version, &file.era) {
        (1, _) => None,
        (_, Some(text)) => {
            Some(Era::from_hex(text).ok_or_else(|| damaged(DamageKind::BadEra(text.clone())))?)
        }
        (_, None) => return Err(damaged(DamageKind::MissingEra)),
    };
    let era_text = if era.is_some() {
        file.era.as_deref()
    } else {
        None
    };
    let expected = checksum(&file.applets, era_text)?;
    if file.checksum != expected {
        return Err(damaged(DamageKind::ChecksumMismatch));
    }
    Ok((file.applets, era))
}

/// Creates a new file with mode 0600; fails if anything is in the way.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Opens (or creates) a file with mode 0600 for writing, keeping what it
/// holds (the lock file).
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { path, source }
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A leftover temporary file (a crash mid-write) or a link planted in its
    // place is removed, so the new one is created here with mode 0600.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => return Err(StoreError::Io { path: tmp, source }),
    }
    let mut file = create_private(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_parent(path).map_err(io(path))?;
    Ok(())
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AppletState;

    fn sample() -> CardImage {
        let mut image = CardImage::new();
        image.set_applet(
            "A000000001",
            AppletState::new().with("counter", &41u32).unwrap(),
        );
        image
    }

    #[test]
    fn commit_then_load_round_trips_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), None);
        store.commit(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join(".card.json.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_leftover_temporary_file_does_not_leak_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let tmp = dir.path().join(".card.json.tmp");
        fs::write(&tmp, b"old").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        FileStore::open(&path).unwrap().commit(&sample()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_second_store_on_the_same_card_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let _first = FileStore::open(&path).unwrap();
        let err = FileStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another process"));
    }

    fn with_counter(value: u32) -> CardImage {
        let mut image = sample();
        image
            .applet_mut("A000000001")
            .insert_part("counter", Part::Encoded(Arc::new(value.into())));
        image
    }

    /// Commits `image`, in which only the counter changed.
    fn commit_counter(store: &mut FileStore, value: u32) {
        let staged: crate::store::StagedParts = vec![(Arc::from("counter"), None)];
        store
            .commit_changes(&with_counter(value), Changes::new("A000000001", &staged))
            .unwrap();
    }

    fn reopened(path: &Path) -> CardImage {
        FileStore::open(path).unwrap().load().unwrap().unwrap()
    }

    #[test]
    fn small_commits_go_to_the_journal_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        let image_bytes = fs::read(&path).unwrap();
        commit_counter(&mut store, 42);
        commit_counter(&mut store, 43);
        // The image file was not rewritten; the journal holds both.
        assert_eq!(fs::read(&path).unwrap(), image_bytes);
        let journal = FileStore::journal_path(&path);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&journal).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(store);
        assert_eq!(reopened(&path), with_counter(43));
        assert_eq!(FileStore::read(&path).unwrap(), Some(with_counter(43)));
        // Reopened, the store goes on in the next slot.
        let mut store = FileStore::open(&path).unwrap();
        store.load().unwrap();
        commit_counter(&mut store, 44);
        drop(store);
        assert_eq!(reopened(&path), with_counter(44));
    }

    #[test]
    fn a_torn_slot_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        commit_counter(&mut store, 42);
        commit_counter(&mut store, 43);
        drop(store);
        // A crash while the second slot was written: half of it is new.
        let journal = FileStore::journal_path(&path);
        let mut bytes = fs::read(&journal).unwrap();
        let torn = JOURNAL_SLOT_SIZE + 60;
        bytes[torn..2 * JOURNAL_SLOT_SIZE].fill(0);
        fs::write(&journal, &bytes).unwrap();
        assert_eq!(reopened(&path), with_counter(42));
        // The next commit takes the torn slot's place.
        let mut store = FileStore::open(&path).unwrap();
        store.load().unwrap();
        commit_counter(&mut store, 50);
        drop(store);
        assert_eq!(reopened(&path), with_counter(50));
    }

    #[test]
    fn a_gap_in_the_journal_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        for value in 42..45 {
            commit_counter(&mut store, value);
        }
        drop(store);
        let journal = FileStore::journal_path(&path);
        let mut bytes = fs::read(&journal).unwrap();
        bytes[JOURNAL_SLOT_SIZE + 50] ^= 1;
        fs::write(&journal, &bytes).unwrap();
        let err = FileStore::open(&path).unwrap().load().unwrap_err();
        assert!(
            err.to_string().contains("card.json.journal") && err.to_string().contains("record 2"),
            "{err}"
        );
        assert_eq!(fs::read(&journal).unwrap(), bytes, "left untouched");

        fs::write(&journal, &bytes[..100]).unwrap();
        let err = FileStore::open(&path).unwrap().load().unwrap_err();
        assert!(err.to_string().contains("this one is 100"), "{err}");
    }

    #[test]
    fn a_full_journal_or_a_new_image_starts_a_new_era() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        let first = fs::read(&path).unwrap();
        for value in 0..JOURNAL_SLOTS as u32 {
            commit_counter(&mut store, value);
        }
        assert_eq!(fs::read(&path).unwrap(), first);
        // One more: the image is rewritten, with a new era.
        commit_counter(&mut store, 1000);
        assert_ne!(fs::read(&path).unwrap(), first);
        commit_counter(&mut store, 1001);
        drop(store);
        // Slot 0 is of the new era, the others of the old one: ignored.
        assert_eq!(reopened(&path), with_counter(1001));
        // A tool writes a new image: the journal goes with the old card.
        FileStore::write(&path, &with_counter(7)).unwrap();
        assert!(!FileStore::journal_path(&path).exists());
        assert_eq!(reopened(&path), with_counter(7));
        // On a fresh path the same image gives the same bytes.
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        FileStore::write(&a, &with_counter(7)).unwrap();
        FileStore::write(&b, &with_counter(7)).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        // A served card is not written over.
        let _served = FileStore::open(&a).unwrap();
        assert!(matches!(
            FileStore::write(&a, &sample()),
            Err(StoreError::Locked { .. })
        ));
    }

    #[test]
    fn a_replaced_card_keeps_nothing_of_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let journal = FileStore::journal_path(&path);
        let mut store = FileStore::open(&path).unwrap();
        store.replace(&sample()).unwrap();
        commit_counter(&mut store, 42);
        let used = fs::read(&journal).unwrap();
        // The same card issued again over the used one.
        store.replace(&sample()).unwrap();
        assert!(!journal.exists());
        drop(store);
        assert_eq!(reopened(&path), sample());
        // Had the old journal survived (a crash before its removal), its
        // record still could not apply: the new image has another era.
        fs::write(&journal, &used).unwrap();
        assert_eq!(reopened(&path), sample());
    }

    #[test]
    fn a_change_too_large_for_a_slot_rewrites_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        let before = fs::read(&path).unwrap();
        let mut image = sample();
        let big = "x".repeat(JOURNAL_SLOT_SIZE);
        image
            .applet_mut("A000000001")
            .insert_part("counter", Part::Encoded(Arc::new(big.into())));
        let staged: crate::store::StagedParts = vec![(Arc::from("counter"), None)];
        store
            .commit_changes(&image, Changes::new("A000000001", &staged))
            .unwrap();
        assert_ne!(fs::read(&path).unwrap(), before);
        assert!(!FileStore::journal_path(&path).exists());
        drop(store);
        assert_eq!(reopened(&path), image);
    }

    #[test]
    fn a_version_1_image_loads_and_its_first_commit_writes_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let v1 = format!(
            "{{\"format\": \"{IMAGE_FORMAT}\", \"version\": 1, \"checksum\": \"{}\", \"applets\": {}}}",
            checksum(&sample(), None).unwrap(),
            serde_json::to_string(&sample()).unwrap()
        );
        fs::write(&path, v1).unwrap();
        let mut store = FileStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));
        commit_counter(&mut store, 42);
        assert!(
            !FileStore::journal_path(&path).exists(),
            "no era yet: image written"
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"version\": 2") && text.contains("\"era\""),
            "{text}"
        );
        commit_counter(&mut store, 43);
        assert!(FileStore::journal_path(&path).exists());
        drop(store);
        assert_eq!(reopened(&path), with_counter(43));
    }

    fn damaged_with(bytes: &[u8]) -> StoreError {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        fs::write(&path, bytes).unwrap();
        let mut store = FileStore::open(&path).unwrap();
        let err = store.load().unwrap_err();
        assert_eq!(fs::read(&path).unwrap(), bytes, "file must stay untouched");
        assert!(
            err.to_string().contains("card.json"),
            "names the file: {err}"
        );
        err
    }

    #[test]
    fn damaged_images_are_refused_with_the_problem_named() {
        let good = encode_image(&sample(), Era([7; 16])).unwrap().to_vec();

        let err = damaged_with(&good[..good.len() / 2]);
        assert!(err.to_string().contains("truncated"), "{err}");

        let err = damaged_with(b"\x00\x01garbage");
        assert!(err.to_string().contains("not valid JSON"), "{err}");

        let err = damaged_with(br#"{"hello": 1}"#);
        assert!(err.to_string().contains("not a vscard card image"), "{err}");

        let edited = String::from_utf8(good.clone()).unwrap().replace("41", "42");
        let err = damaged_with(edited.as_bytes());
        assert!(err.to_string().contains("checksum mismatch"), "{err}");

        let future = String::from_utf8(good)
            .unwrap()
            .replace("\"version\": 2", "\"version\": 9");
        let err = damaged_with(future.as_bytes());
        assert!(
            matches!(
                err,
                StoreError::FutureVersion {
                    found: 9,
                    supported: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn damage_is_typed_and_keeps_its_source() {
        use std::error::Error as _;
        let err = damaged_with(b"\x00\x01garbage");
        let StoreError::Damaged { problem, .. } = &err else {
            panic!("{err}");
        };
        assert!(matches!(problem, DamageKind::NotJson(_)), "{problem}");
        assert!(
            problem
                .source()
                .is_some_and(|s| s.is::<serde_json::Error>())
        );
        let err = damaged_with(br#"{"format": "vscard-card-image", "version": 0}"#);
        assert!(
            matches!(
                err,
                StoreError::Damaged {
                    problem: DamageKind::VersionZero,
                    ..
                }
            ),
            "{err}"
        );
    }
}
