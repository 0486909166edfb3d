//! [`FileStore`]: one JSON image file per card, written atomically.
//!
//! Format (version 1):
//!
//! ```json
//! { "format": "vscard-card-image", "version": 1,
//!   "checksum": "sha256:<hex of the compact JSON encoding of `applets`>",
//!   "applets": { "<AID hex>": { "<part>": <value>, ... }, ... } }
//! ```
//!
//! A commit writes the whole image to a temporary file in the same folder
//! (mode 0600), fsyncs it, renames it over the image and fsyncs the folder,
//! so a crash at any point leaves the old image or the new one. A file that
//! is not JSON, not a vscard image, truncated, edited (checksum mismatch) or
//! of a future version is refused with an error naming the file and the
//! problem, and is never overwritten. An advisory lock on `<image>.lock`,
//! held while the store lives, keeps two processes from serving one card.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{CardImage, Store, StoreError};

/// The identifier in the `format` field.
pub const IMAGE_FORMAT: &str = "vscard-card-image";
/// The image format version this build writes and the newest it reads.
pub const IMAGE_VERSION: u32 = 1;

#[derive(Serialize)]
struct ImageFileOut<'a> {
    format: &'static str,
    version: u32,
    checksum: String,
    applets: &'a CardImage,
}

#[derive(Deserialize)]
struct ImageFileIn {
    checksum: String,
    applets: CardImage,
}

/// A store that keeps the card image in one file.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    // Held for the store's lifetime; the OS releases it when the file closes.
    _lock: File,
}

impl FileStore {
    /// Opens (or prepares to create) the image at `path` and takes the
    /// card's lock. The image itself is read by [`Store::load`].
    pub fn open(path: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let path = path.into();
        let lock_path = lock_path(&path);
        let lock = open_private(&lock_path, false).map_err(|source| StoreError::Io {
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
        Ok(FileStore { path, _lock: lock })
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the image at `path` without taking the lock (for
    /// inspection while another process serves the card: the image is only
    /// ever replaced whole). `None` when there is no file.
    pub fn read(path: &Path) -> Result<Option<CardImage>, StoreError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        decode_image(path, &bytes).map(Some)
    }

    /// Writes `image` to `path` atomically, without a lock; used by tools
    /// that create a card image no one serves yet.
    pub fn write(path: &Path, image: &CardImage) -> Result<(), StoreError> {
        let bytes = encode_image(image)?;
        write_atomically(path, &bytes)
    }
}

impl Store for FileStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        FileStore::read(&self.path)
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        FileStore::write(&self.path, image)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

fn checksum(image: &CardImage) -> Result<String, StoreError> {
    let compact = serde_json::to_vec(image)?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&compact))))
}

fn encode_image(image: &CardImage) -> Result<Vec<u8>, StoreError> {
    let file = ImageFileOut {
        format: IMAGE_FORMAT,
        version: IMAGE_VERSION,
        checksum: checksum(image)?,
        applets: image,
    };
    let mut bytes = serde_json::to_vec_pretty(&file)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn decode_image(path: &Path, bytes: &[u8]) -> Result<CardImage, StoreError> {
    let damaged = |problem: String| StoreError::Damaged {
        path: path.to_owned(),
        problem,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            damaged(format!("truncated ({} bytes)", bytes.len()))
        } else {
            damaged(format!("not valid JSON: {e}"))
        }
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(IMAGE_FORMAT) {
        return Err(damaged(format!(
            "not a vscard card image (no \"format\": \"{IMAGE_FORMAT}\")"
        )));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| damaged("missing or invalid \"version\"".into()))?;
    if version > u64::from(IMAGE_VERSION) {
        return Err(StoreError::FutureVersion {
            path: path.to_owned(),
            found: version,
            supported: IMAGE_VERSION,
        });
    }
    if version == 0 {
        return Err(damaged("version 0 does not exist".into()));
    }
    let file: ImageFileIn =
        serde_json::from_value(value).map_err(|e| damaged(format!("unexpected structure: {e}")))?;
    let expected = checksum(&file.applets)?;
    if file.checksum != expected {
        return Err(damaged(
            "checksum mismatch (the file was modified or partly written)".into(),
        ));
    }
    Ok(file.applets)
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

/// Opens (or creates) a file with mode 0600 for writing.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
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
        let good = encode_image(&sample()).unwrap();

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
            .replace("\"version\": 1", "\"version\": 9");
        let err = damaged_with(future.as_bytes());
        assert!(
            matches!(
                err,
                StoreError::FutureVersion {
                    found: 9,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
