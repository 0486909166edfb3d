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
//!
//! Names and files (see [`files`]): the path the user gives is resolved
//! once with `canonicalize` (a link the user made on purpose is followed
//! there); the lock, journal and temporary files are named after the
//! canonical path, so every name of one card shares one lock and one
//! journal. Every card file is then opened with `O_NOFOLLOW` and must be
//! a regular file of the effective user with one name; a planted link, a
//! hard link or another owner's file is refused and nothing is written.
//! The store remembers which file (device, inode, held open) it loaded or
//! last wrote and checks the path at every commit: an image replaced
//! while served ([`StoreError::Replaced`]) stops the card's commits.
//! Before a PIN try, [`Store::reserve`] leaves two free journal slots
//! (rewriting the image first when fewer are left), so that the try and
//! the reset after a correct PIN are both in-place writes, and a full
//! disk fails the try before it is counted, never the reset after it.

mod codec;
pub mod files;
mod image;
mod journal;
mod lock;

use std::fs::{self, File};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::seal::SealKey;
use crate::store::{CardImage, Changes, Store, StoreError, UnsafeFile};
pub use codec::ImageCodec;
use files::{FileId, read_private, rename_into_place, sibling, sync_parent};
use image::Era;
use journal::{encode_slot, open_journal, replay_journal};

/// The identifier in the `format` field.
pub const IMAGE_FORMAT: &str = "vscard-card-image";
/// The image format version this build writes and the newest it reads.
pub const IMAGE_VERSION: u32 = 2;
/// Slots in a journal: small commits between two image writes.
pub const JOURNAL_SLOTS: usize = 32;
/// Bytes per journal slot (a page: a torn slot never spans another's).
pub const JOURNAL_SLOT_SIZE: usize = 4096;

/// A store that keeps the card image in one file, and small commits in a
/// journal beside it.
#[derive(Debug)]
pub struct FileStore {
    /// The image's canonical path; the lock, journal and temporary files
    /// are named after it.
    path: PathBuf,
    // Held for the store's lifetime; the OS releases it when the file closes.
    lock: File,
    /// The era of the image on disk, when this store loaded or wrote a
    /// version-2 image (small commits go to the journal only then).
    era: Option<Era>,
    /// The next free journal slot of this era.
    next_slot: usize,
    /// The journal, opened for writing on the first small commit.
    journal: Option<File>,
    /// Which file at the path this store serves: checked at every commit.
    served: Served,
    /// Removes the lock file when the store is dropped
    /// ([`FileStore::open_briefly`]); never for a served card.
    remove_lock: bool,
    /// Plain or sealed images ([`FileStore::with_key`]).
    codec: ImageCodec,
}

/// The image file a store serves, as it last read or wrote it.
#[derive(Debug)]
enum Served {
    /// No image at the path yet (a new card).
    Absent,
    /// This file, held open: while the store lives its inode cannot be
    /// freed, so no other file can come to the path with the same
    /// identity.
    File { id: FileId, _file: File },
    /// The path was found holding another file (or none): the store
    /// commits nothing any more.
    Replaced,
}

impl Served {
    fn file(file: File, metadata: &fs::Metadata) -> Served {
        Served::File {
            id: FileId::of(metadata),
            _file: file,
        }
    }

    fn opened(file: File, path: &Path) -> Result<Served, StoreError> {
        let metadata = file.metadata().map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Served::file(file, &metadata))
    }
}

/// An image as read from disk, journal applied.
struct Loaded {
    image: CardImage,
    era: Option<Era>,
    slots: usize,
    served: Served,
}

impl FileStore {
    /// Opens (or prepares to create) the image at `path` and takes the
    /// card's lock. The image itself is read by [`Store::load`].
    ///
    /// `path` is resolved once (symbolic links the user made are
    /// followed); the lock, journal and temporary files are named after
    /// the result and are never opened through a link, so every name of
    /// one card shares one lock and one journal. An image that is not a
    /// regular file of this user with a single name is refused
    /// ([`StoreError::Unsafe`]).
    pub fn open(path: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let path = canonical(&path.into())?;
        let lock = lock::lock(&path)?;
        files::remove_leftovers(&path);
        let served = match files::open_card_file(&path, files::Access::Read)? {
            None => Served::Absent,
            Some(file) => Served::opened(file, &path)?,
        };
        Ok(FileStore {
            path,
            lock,
            era: None,
            next_slot: 0,
            journal: None,
            served,
            remove_lock: false,
            codec: ImageCodec::plain(),
        })
    }

    /// Seals every image this store writes under `key` (AES-256-GCM,
    /// [`crate::seal`]) and opens only sealed images; `None` keeps plain
    /// images. A sealed card's journal records are sealed too (each for
    /// its card, era and slot), so a PIN try is still one slot written in
    /// place and one flush.
    pub fn with_key(mut self, key: Option<SealKey>) -> FileStore {
        let identity = self.codec.identity().to_vec();
        self.codec = ImageCodec::new(key).with_identity(identity);
        self
    }

    /// The card identity sealed images carry (the identity of the image
    /// loaded, else this; see [`ImageCodec::with_identity`]).
    pub fn set_identity(&mut self, identity: impl Into<Vec<u8>>) {
        self.codec = std::mem::take(&mut self.codec).with_identity(identity);
    }

    /// True when this store seals its images.
    pub fn is_sealed(&self) -> bool {
        self.codec.is_sealed()
    }

    /// As [`FileStore::open`], for a tool that holds the card only while
    /// it writes it (`vscard issue`, `renew`): the lock file is removed
    /// again when the store is dropped, so nothing but the image (and a
    /// journal, if commits made one) is left beside it.
    ///
    /// The lock keeps its meaning while the store lives. Removal happens
    /// while the lock is still held, and only of the lock file this store
    /// locked (still at its name): a store that could not take the lock
    /// (the card is served) never gets here and removes nothing, and a
    /// process that opened the old lock file just before its removal finds
    /// it no longer named once it has locked it, and is refused
    /// ([`StoreError::Replaced`]) rather than sharing the card. A served
    /// card keeps its lock file for as long as it is served (its removal
    /// stops the card, see [`FileStore::open`]'s checks).
    pub fn open_briefly(path: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let mut store = FileStore::open(path)?;
        store.remove_lock = true;
        Ok(store)
    }

    /// The image file's path: the canonical one (every symbolic link of
    /// the path given to [`FileStore::open`] resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal's path for the image at `path` (a canonical path, as
    /// [`FileStore::path`] gives).
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
        FileStore::read_with(path, None)
    }

    /// As [`FileStore::read`], for an image sealed under `key` (`None`:
    /// a plain image; see [`FileStore::with_key`]).
    pub fn read_with(path: &Path, key: Option<&SealKey>) -> Result<Option<CardImage>, StoreError> {
        let path = canonical(path)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut codec = ImageCodec::new(key.cloned());
            match read_all(&path, &mut codec) {
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
    ///
    /// The lock is held only while writing: no lock file is left behind.
    pub fn write(path: &Path, image: &CardImage) -> Result<(), StoreError> {
        let store = FileStore::open_briefly(path)?;
        write_new_card(&store.path, image, &store.codec).map(|_| ())
    }

    /// As [`FileStore::write`], sealed under `key` for the card
    /// `identity` (see [`FileStore::with_key`]).
    pub fn write_sealed(
        path: &Path,
        image: &CardImage,
        key: &SealKey,
        identity: &[u8],
    ) -> Result<(), StoreError> {
        let mut store = FileStore::open_briefly(path)?.with_key(Some(key.clone()));
        store.set_identity(identity);
        write_new_card(&store.path, image, &store.codec).map(|_| ())
    }

    /// Replaces the card whole with `image`, as [`FileStore::write`] does,
    /// under this store's lock: for a new card written over an old one.
    /// The only write that does not check that the file at the path is
    /// still the one served: it replaces whatever is there on purpose.
    pub fn replace(&mut self, image: &CardImage) -> Result<(), StoreError> {
        self.era = None;
        self.journal = None;
        let (era, served) = write_new_card(&self.path, image, &self.codec)?;
        self.served = served;
        self.era = Some(era);
        self.next_slot = 0;
        Ok(())
    }

    /// Refuses to commit when the image at the path is no longer the file
    /// this store loaded or wrote (`mv other.json card.json` while it is
    /// served): its journal would not apply to what is there, and writing
    /// the served state over it would undo whatever put it there. Once
    /// seen, every later commit is refused too.
    fn check_served(&mut self) -> Result<(), StoreError> {
        let now = match fs::symlink_metadata(&self.path) {
            Ok(metadata) => Some(FileId::of(&metadata)),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let same = match (&self.served, now) {
            (Served::Absent, None) => true,
            (Served::File { id, .. }, Some(now)) => *id == now,
            _ => false,
        };
        // A removed lock lets a second server lock a new file: the card
        // stops as for a replaced image.
        let lock_path = files::sibling(&self.path, ".lock");
        let culprit = if !same {
            Some(self.path.clone())
        } else if !files::still_named(&lock_path, &self.lock)? {
            Some(lock_path)
        } else {
            None
        };
        let Some(path) = culprit else {
            self.check_journal()?;
            return Ok(());
        };
        self.served = Served::Replaced;
        self.era = None;
        self.journal = None;
        let err = StoreError::Replaced { path };
        tracing::error!(target: "vscard::store", error = %err, "card file replaced while served");
        Err(err)
    }

    /// Tries written into a removed or replaced journal would be lost at
    /// the next start (tries regained): the journal is dropped and the
    /// commit becomes an image write, which carries every counter the
    /// card has, under a new era that no old slot matches.
    fn check_journal(&mut self) -> Result<(), StoreError> {
        let journal_path = FileStore::journal_path(&self.path);
        if let Some(journal) = &self.journal
            && !files::still_named(&journal_path, journal)?
        {
            tracing::warn!(target: "vscard::store", path = %journal_path.display(), "journal removed or replaced while served; writing the whole image");
            self.journal = None;
            self.era = None;
        }
        Ok(())
    }

    fn write_image(&mut self, image: &CardImage) -> Result<(), StoreError> {
        let era = Era::random(&self.path)?;
        let bytes = self.codec.encode_era(&self.path, image, era)?;
        // Forgotten first: if the write fails half-way, the era on disk is
        // unknown and the next commit writes the image again.
        self.era = None;
        let (file, metadata) = rename_into_place(&self.path, &bytes, 0o600)?;
        // The new file is at the path from the rename on, whatever follows.
        self.served = Served::file(file, &metadata);
        sync_parent(&self.path).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.era = Some(era);
        self.next_slot = 0;
        Ok(())
    }

    /// The journal, opened (or created) on first use.
    fn journal(&mut self) -> Result<&mut File, StoreError> {
        if self.journal.is_none() {
            self.journal = Some(open_journal(&FileStore::journal_path(&self.path))?);
        }
        self.journal.as_mut().ok_or_else(|| StoreError::Io {
            path: FileStore::journal_path(&self.path),
            source: ErrorKind::NotFound.into(),
        })
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
        let Some(slot) = encode_slot(image, changes, era, self.next_slot, &self.codec)? else {
            return Ok(false);
        };
        let offset = (self.next_slot * JOURNAL_SLOT_SIZE) as u64;
        let journal = self.journal()?;
        let written = journal
            .seek(SeekFrom::Start(offset))
            .and_then(|_| journal.write_all(&slot))
            .and_then(|()| journal.sync_data());
        if let Err(source) = written {
            // The slot may still reach the disk although the commit is
            // reported as failed: the next commit rewrites the image with a
            // new era instead, which makes this slot void.
            self.journal = None;
            self.era = None;
            return Err(StoreError::Io {
                path: FileStore::journal_path(&self.path),
                source,
            });
        }
        self.next_slot += 1;
        Ok(true)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if !self.remove_lock {
            return;
        }
        // Before the lock file closes (which releases the lock): nobody
        // else holds it now, and a file put at the name since is not ours.
        let lock_path = sibling(&self.path, ".lock");
        if matches!(files::still_named(&lock_path, &self.lock), Ok(true))
            && let Err(e) = fs::remove_file(&lock_path)
        {
            tracing::warn!(target: "vscard::store", lock = %lock_path.display(), error = %e, "cannot remove the card's lock file");
        }
    }
}

impl Store for FileStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        match read_all(&self.path, &mut self.codec)? {
            None => {
                self.era = None;
                self.served = Served::Absent;
                Ok(None)
            }
            Some(loaded) => {
                self.era = loaded.era;
                self.next_slot = loaded.slots;
                self.served = loaded.served;
                Ok(Some(loaded.image))
            }
        }
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        self.check_served()?;
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
        self.check_served()?;
        if self.write_slot(image, changes)? {
            Ok(())
        } else {
            self.write_image(image)
        }
    }

    /// Leaves `commits` free journal slots, the journal open: when fewer
    /// are left (or there is no era yet) the image is rewritten now, with
    /// a new era. Before a PIN try this is what keeps a correct PIN from
    /// costing a try on a full disk or a folder gone read-only: the try
    /// and the reset after it are then both in-place writes into the
    /// journal's preallocated slots, and the one write that needs new
    /// room (the image) happens before any try is counted.
    fn reserve(&mut self, image: &CardImage, commits: usize) -> Result<(), StoreError> {
        self.check_served()?;
        let room = self.era.is_some() && self.next_slot.saturating_add(commits) <= JOURNAL_SLOTS;
        if !room {
            self.write_image(image)?;
        }
        self.journal().map(|_| ())
    }
}

/// A symbolic link at the image's own name is followed only when this
/// user made it: one planted by another user of a shared folder would
/// send the card's writes (and its lock and journal) wherever it points.
fn refuse_foreign_link(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(link) = fs::symlink_metadata(path)
            && link.file_type().is_symlink()
            && link.uid() != rustix::process::geteuid().as_raw()
        {
            return Err(StoreError::Unsafe {
                path: path.to_owned(),
                problem: UnsafeFile::Owner {
                    owner: link.uid(),
                    user: rustix::process::geteuid().as_raw(),
                },
            });
        }
    }
    Ok(())
}

/// The image's canonical path: `path` with every symbolic link resolved;
/// for an image not written yet, its folder's canonical path and its name.
fn canonical(path: &Path) -> Result<PathBuf, StoreError> {
    let no_name = || StoreError::Unsafe {
        path: path.to_owned(),
        problem: UnsafeFile::NoFileName,
    };
    refuse_foreign_link(path)?;
    let resolved = match fs::canonicalize(path) {
        Ok(resolved) => resolved,
        // A new card (or a link to nothing, refused when it is opened).
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let name = path.file_name().ok_or_else(no_name)?;
            let folder = match path.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder,
                _ => Path::new("."),
            };
            let folder = fs::canonicalize(folder).map_err(|source| StoreError::Io {
                path: folder.to_owned(),
                source,
            })?;
            folder.join(name)
        }
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if resolved.file_name().is_none() {
        return Err(no_name());
    }
    Ok(resolved)
}

/// Writes `image` at `path` as a new card (the caller holds the lock):
/// the image first, durably, then the old journal is removed (its slots
/// are of other eras already; removing it wipes the old card's records).
fn write_new_card(
    path: &Path,
    image: &CardImage,
    codec: &ImageCodec,
) -> Result<(Era, Served), StoreError> {
    let previous = read_private(path)
        .ok()
        .flatten()
        .and_then(|(_, bytes)| codec.clone().decode_era(path, &bytes).ok())
        .and_then(|(_, era)| era);
    let era = Era::of_contents(image, previous)?;
    let (file, metadata) = rename_into_place(path, &codec.encode_era(path, image, era)?, 0o600)?;
    let served = Served::file(file, &metadata);
    sync_parent(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let journal = FileStore::journal_path(path);
    // Unlinking removes a name, never what a planted link points to.
    match fs::remove_file(&journal) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(target: "vscard::store", journal = %journal.display(), error = %e, "cannot remove the old card's journal (its records no longer apply)");
        }
    }
    Ok((era, served))
}

/// The image at `path` and what its journal adds.
fn read_all(path: &Path, codec: &mut ImageCodec) -> Result<Option<Loaded>, StoreError> {
    // The image and the journal hold the card's secrets: their bytes are
    // wiped once decoded.
    let Some((file, bytes)) = read_private(path)? else {
        return Ok(None);
    };
    let served = Served::opened(file, path)?;
    let (mut image, era) = codec.decode_era(path, &bytes)?;
    let slots = match era {
        Some(era) => replay_journal(&FileStore::journal_path(path), era, &mut image, codec)?,
        None => 0,
    };
    Ok(Some(Loaded {
        image,
        era,
        slots,
        served,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppletState, DamageKind, Part, PartValue};
    use image::{checksum, encode_image};
    use sha2::Digest as _;
    use std::sync::Arc;

    fn secret_image() -> CardImage {
        let mut image = CardImage::new();
        image.set_applet(
            "A000000001",
            AppletState::new()
                .with(Part::new("pin"), "PIN-314159")
                .unwrap(),
        );
        image
    }

    #[test]
    fn a_sealed_store_writes_no_plaintext_and_opens_only_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let key = SealKey::from_bytes([3; 32]);
        FileStore::write_sealed(&path, &secret_image(), &key, b"card-1").unwrap();
        let on_disk = fs::read(&path).unwrap();
        assert!(crate::seal::is_sealed(&on_disk));
        assert!(!on_disk.windows(10).any(|w| w == b"PIN-314159"));
        assert_eq!(
            FileStore::read_with(&path, Some(&key)).unwrap(),
            Some(secret_image())
        );
        // Without the key, with another key, one flipped byte: refused.
        assert!(matches!(
            FileStore::read(&path),
            Err(StoreError::KeyNeeded { .. })
        ));
        let wrong = SealKey::from_bytes([4; 32]);
        let err = FileStore::read_with(&path, Some(&wrong)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Sealed {
                    problem: crate::seal::SealError::Rejected,
                    ..
                }
            ),
            "{err}"
        );
        let mut tampered = on_disk.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x80;
        fs::write(&path, &tampered).unwrap();
        assert!(matches!(
            FileStore::read_with(&path, Some(&key)),
            Err(StoreError::Sealed { .. })
        ));
        // A plaintext image where a sealed one is expected is refused.
        FileStore::write(&path, &secret_image()).unwrap();
        assert!(matches!(
            FileStore::read_with(&path, Some(&key)),
            Err(StoreError::NotEncrypted { .. })
        ));
    }

    #[test]
    fn a_sealed_store_seals_whole_images_and_keeps_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let key = SealKey::from_bytes([5; 32]);
        FileStore::write_sealed(&path, &secret_image(), &key, b"card-7").unwrap();
        let mut store = FileStore::open(&path).unwrap().with_key(Some(key.clone()));
        let mut image = store.load().unwrap().unwrap();
        let mut state = AppletState::new();
        state.put(Part::new("pin"), "PIN-271828").unwrap();
        image.set_applet("A000000001", state);
        store.commit(&image).unwrap();
        drop(store);
        let on_disk = fs::read(&path).unwrap();
        assert!(!on_disk.windows(10).any(|w| w == b"PIN-271828"));
        let mut codec = ImageCodec::sealed(key).with_identity(b"card-7".to_vec());
        assert_eq!(codec.decode(&on_disk).unwrap(), image);
        // write_sealed made generation 1, the commit 2.
        assert_eq!(codec.generation(), 2);
        let mut other =
            ImageCodec::sealed(SealKey::from_bytes([5; 32])).with_identity(b"x".to_vec());
        assert!(matches!(
            other.decode(&on_disk),
            Err(StoreError::Sealed {
                problem: crate::seal::SealError::OtherCard { .. },
                ..
            })
        ));
    }

    /// A sealed card whose counter went through the journal: 42, then 43.
    fn sealed_journal(dir: &Path, key: &SealKey) -> PathBuf {
        let path = dir.join("card.json");
        FileStore::write_sealed(&path, &sample(), key, b"card-9").unwrap();
        let mut store = FileStore::open(&path).unwrap().with_key(Some(key.clone()));
        let image = store.load().unwrap().unwrap();
        store.reserve(&image, 2).unwrap();
        let image_bytes = fs::read(&path).unwrap();
        commit_counter(&mut store, 4242424);
        commit_counter(&mut store, 4343434);
        // Two slots in place, the image untouched.
        assert_eq!(fs::read(&path).unwrap(), image_bytes);
        path
    }

    #[test]
    fn a_sealed_card_journals_sealed_records() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::from_bytes([6; 32]);
        let path = sealed_journal(dir.path(), &key);
        let journal = fs::read(FileStore::journal_path(&path)).unwrap();
        assert!(journal.starts_with(journal::SEALED_JOURNAL_MAGIC));
        for secret in [&b"4242424"[..], b"4343434", b"counter"] {
            assert!(!journal.windows(secret.len()).any(|w| w == secret));
        }
        let reopened = FileStore::read_with(&path, Some(&key)).unwrap().unwrap();
        assert_eq!(reopened, with_counter(4343434));
        // Another key: the image itself is refused before the journal.
        assert!(matches!(
            FileStore::read_with(&path, Some(&SealKey::from_bytes([7; 32]))),
            Err(StoreError::Sealed { .. })
        ));
    }

    /// Makes an edited slot's checksum right again (a forger's edit, not
    /// a torn write).
    fn redigest(slot: &mut [u8]) {
        let length = u32::from_le_bytes(slot[40..44].try_into().unwrap()) as usize;
        let end = journal::SLOT_HEADER + length;
        let digest = sha2::Sha256::digest(&slot[..end]);
        slot[end..end + journal::SLOT_DIGEST].copy_from_slice(&digest);
    }

    #[test]
    fn a_sealed_record_moved_to_another_slot_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::from_bytes([6; 32]);
        let path = sealed_journal(dir.path(), &key);
        let journal_path = FileStore::journal_path(&path);
        let mut journal = fs::read(&journal_path).unwrap();
        // Slot 1's record, its position field and checksum made to say
        // slot 0: the checksum is right, the sealed payload is slot 1's.
        let mut moved = journal[JOURNAL_SLOT_SIZE..2 * JOURNAL_SLOT_SIZE].to_vec();
        moved[32..40].copy_from_slice(&0u64.to_le_bytes());
        redigest(&mut moved);
        journal[..JOURNAL_SLOT_SIZE].copy_from_slice(&moved);
        journal[JOURNAL_SLOT_SIZE..2 * JOURNAL_SLOT_SIZE].fill(0);
        fs::write(&journal_path, &journal).unwrap();
        let err = FileStore::read_with(&path, Some(&key)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Damaged {
                    problem: DamageKind::SealedRecord { index: 0, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_clear_record_beside_a_sealed_image_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::from_bytes([6; 32]);
        let path = sealed_journal(dir.path(), &key);
        let journal_path = FileStore::journal_path(&path);
        let mut journal = fs::read(&journal_path).unwrap();
        journal[..16].copy_from_slice(journal::JOURNAL_MAGIC);
        redigest(&mut journal[..JOURNAL_SLOT_SIZE]);
        fs::write(&journal_path, &journal).unwrap();
        let err = FileStore::read_with(&path, Some(&key)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Damaged {
                    problem: DamageKind::MixedRecord { index: 0, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_codec_with_a_minimum_generation_refuses_an_older_copy() {
        let key = SealKey::from_bytes([8; 32]);
        let codec = ImageCodec::sealed(key.clone());
        let first = codec.encode(&sample()).unwrap();
        let second = codec.encode(&with_counter(1)).unwrap();
        assert_eq!(codec.generation(), 2);
        let mut checking = ImageCodec::sealed(key).with_min_generation(2);
        assert_eq!(checking.decode(&second).unwrap(), with_counter(1));
        let err = checking.decode(&first).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Sealed {
                    problem: crate::seal::SealError::RolledBack {
                        found: 1,
                        minimum: 2
                    },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_codec_round_trips_plain_images_byte_for_byte() {
        let mut codec = ImageCodec::plain();
        let bytes = codec.encode(&sample()).unwrap();
        assert_eq!(codec.encode(&sample()).unwrap(), bytes);
        assert_eq!(codec.decode(&bytes).unwrap(), sample());
        assert!(matches!(
            codec.decode(b"{"),
            Err(StoreError::Damaged { .. })
        ));
    }

    fn sample() -> CardImage {
        let mut image = CardImage::new();
        image.set_applet(
            "A000000001",
            AppletState::new()
                .with(Part::new("counter"), &41u32)
                .unwrap(),
        );
        image
    }

    /// The folder's file names, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_brief_store_locks_while_it_lives_and_leaves_no_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut brief = FileStore::open_briefly(&path).unwrap();
        brief.commit(&sample()).unwrap();
        assert!(matches!(
            FileStore::open(&path),
            Err(StoreError::Locked { .. })
        ));
        drop(brief);
        assert_eq!(names_in(dir.path()), ["card.json"]);
        FileStore::write(&path, &sample()).unwrap();
        assert_eq!(names_in(dir.path()), ["card.json"]);
        // A served card keeps its lock file; a brief store that cannot
        // take the lock removes nothing, and the served card still commits.
        let mut served = FileStore::open(&path).unwrap();
        assert!(matches!(
            FileStore::open_briefly(&path),
            Err(StoreError::Locked { .. })
        ));
        assert!(matches!(
            FileStore::write(&path, &sample()),
            Err(StoreError::Locked { .. })
        ));
        assert_eq!(names_in(dir.path()), ["card.json", "card.json.lock"]);
        served.load().unwrap();
        served.commit(&sample()).unwrap();
        drop(served);
        assert!(dir.path().join("card.json.lock").exists());
        // The brief store takes the lock file left by a served card, and
        // removes it when done.
        drop(FileStore::open_briefly(&path).unwrap());
        assert_eq!(names_in(dir.path()), ["card.json"]);
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
            .insert_part("counter", PartValue::Encoded(Arc::new(value.into())));
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
    fn reserving_two_commits_rewrites_the_image_only_when_fewer_slots_are_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut store = FileStore::open(&path).unwrap();
        store.commit(&sample()).unwrap();
        for value in 0..(JOURNAL_SLOTS - 2) as u32 {
            commit_counter(&mut store, value);
        }
        let image = fs::read(&path).unwrap();
        // Two slots left: room for a try and its reset, nothing rewritten.
        store.reserve(&with_counter(29), 2).unwrap();
        assert_eq!(fs::read(&path).unwrap(), image);
        commit_counter(&mut store, 1000);
        // One slot left: the image is rewritten before the try, not after.
        store.reserve(&with_counter(1000), 2).unwrap();
        assert_ne!(fs::read(&path).unwrap(), image);
        assert_eq!(store.next_slot, 0);
        commit_counter(&mut store, 1001);
        commit_counter(&mut store, 1002);
        drop(store);
        assert_eq!(reopened(&path), with_counter(1002));
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
            .insert_part("counter", PartValue::Encoded(Arc::new(big.into())));
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
