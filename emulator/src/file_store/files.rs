//! Card files: opening them safely, and replacing a file atomically.
//!
//! Every card file (image, journal, lock, temporary file) is opened with
//! `O_NOFOLLOW`, so a symbolic link planted in the card's folder is
//! refused instead of followed, and `O_NONBLOCK`, so a planted FIFO does
//! not hang the open (it has no effect on regular files). The open file is
//! then checked with `fstat`: a regular file, owned by the effective user,
//! with exactly one name. Anything else is refused with
//! [`StoreError::Unsafe`] naming the file, before a byte of it is read or
//! written. Only the image path the user gives is resolved (a link the
//! user made on purpose); the store resolves it once and derives every
//! other name from the result.
//!
//! [`write_private_atomically`] (public: the test PKI writes its files with
//! it too) replaces a file whole or not at all: a temporary file with a
//! unique random name in the same folder is created with `O_CREAT | O_EXCL
//! | O_NOFOLLOW` (nothing planted under any name can be opened instead),
//! written and fsynced, renamed over the target, and the folder fsynced.
//! Until the rename succeeds, every error removes the temporary file: it
//! holds the whole new contents (for a card, its PINs and keys).

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use rand_core::TryRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::store::{DamageKind, StoreError, UnsafeFile};

/// A failed atomic write: the file concerned (the target or its
/// temporary file) and what the system reported.
#[derive(Debug, Error)]
#[error("{}: {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// What the system reported.
    #[source]
    pub source: io::Error,
}

impl From<WriteError> for StoreError {
    fn from(error: WriteError) -> StoreError {
        StoreError::Io {
            path: error.path,
            source: error.source,
        }
    }
}

/// Replaces `path` with `bytes` atomically as a private file (mode 0600):
/// see the module doc.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomically(path, bytes, 0o600)
}

/// Replaces `path` with `bytes` atomically, the new file created with
/// `mode` (less the umask): see the module doc.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    drop(rename_into_place(path, bytes, mode)?);
    sync_parent(path).map_err(|source| WriteError {
        path: path.to_owned(),
        source,
    })
}

/// The steps of [`write_atomically`] up to the rename: returns the file
/// now at `path`, still open, and its metadata; the folder is not fsynced
/// yet.
pub(super) fn rename_into_place(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(File, Metadata), WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError { path, source }
    };
    let tmp = temporary_name(path)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    no_follow(&mut options, mode);
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    // From here on the temporary file holds the new contents: every
    // failure before the rename succeeds removes it.
    let guard = TempGuard(Some(&tmp));
    let metadata = file.metadata().map_err(io(&tmp))?;
    if let Some(problem) = problem_with(&metadata) {
        // Only a file linked or changed by someone else between the
        // exclusive create and the fstat gets here.
        return Err(io(&tmp)(io::Error::other(problem)));
    }
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    guard.disarm();
    Ok((file, metadata))
}

/// `.<name>.<16 random hex digits>.tmp` beside `path`: never a name
/// anyone could plant something under in advance.
fn temporary_name(path: &Path) -> Result<PathBuf, WriteError> {
    let fail = |source| WriteError {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        fail(io::Error::new(
            ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let mut random = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut random)
        .map_err(|e| {
            fail(io::Error::other(format!(
                "no randomness for a temporary file name: {e}"
            )))
        })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".");
    tmp.push(hex::encode(random));
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Removes temporary files of the image at `path` left by a crash
/// mid-write (they hold a whole card); the caller holds the card's lock,
/// so none of them is being written. Failures are only logged: a leftover
/// is never read.
pub(super) fn remove_leftovers(path: &Path) {
    let (Some(name), Some(folder)) = (path.file_name().and_then(|n| n.to_str()), path.parent())
    else {
        return;
    };
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let middle = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"));
        // This build's names, and the fixed name of earlier builds.
        let ours = middle
            .is_some_and(|m| m.len() == 16 && m.bytes().all(|b| b.is_ascii_hexdigit()))
            || file_name == format!(".{name}.tmp");
        if ours && let Err(e) = fs::remove_file(entry.path()) {
            tracing::warn!(target: "vscard::store", tmp = %entry.path().display(), error = %e, "cannot remove a leftover temporary card file");
        }
    }
}

/// How a card file is opened by [`open_card_file`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Access {
    /// An existing file, for reading.
    Read,
    /// An existing file, for writing in place.
    Write,
    /// For writing, created (mode 0600) when absent, kept as it is when
    /// present (the lock file).
    CreateOrWrite,
}

/// Opens the card file at `path` with `O_NOFOLLOW` and checks it (see the
/// module doc); `None` when there is no file (never for
/// [`Access::CreateOrWrite`]).
pub(super) fn open_card_file(path: &Path, access: Access) -> Result<Option<File>, StoreError> {
    let mut options = OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::Write => options.write(true),
        Access::CreateOrWrite => options.write(true).create(true).truncate(false),
    };
    no_follow(&mut options, 0o600);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            // O_NOFOLLOW on a link fails with ELOOP (Linux) or EMLINK
            // (BSDs): asked again without following, the name says which.
            let link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if link {
                StoreError::Unsafe {
                    path: path.to_owned(),
                    problem: UnsafeFile::Symlink,
                }
            } else {
                StoreError::Io {
                    path: path.to_owned(),
                    source,
                }
            });
        }
    };
    let metadata = file.metadata().map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    if let Some(problem) = problem_with(&metadata) {
        return Err(StoreError::Unsafe {
            path: path.to_owned(),
            problem,
        });
    }
    make_private(&file, &metadata).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(Some(file))
}

/// Takes group and other access away from a card file of ours (one
/// restored from an archive as 0644, say) before anything is written into
/// it: its records hold the PIN. `fchmod` on the open file, never the name.
fn make_private(file: &File, metadata: &Metadata) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (file, metadata);
    Ok(())
}

/// The largest card file read: far above any real card (objects and keys
/// are capped by the card's capacity), low enough that a sparse or huge
/// file planted in the folder cannot make the reader allocate without
/// bound.
pub(super) const MAX_CARD_FILE: u64 = 64 * 1024 * 1024;

/// A card file's bytes, wiped when dropped.
pub(super) type Secret = Zeroizing<Vec<u8>>;

/// The whole card file at `path`, opened and checked as by
/// [`open_card_file`], and the open file; `None` when there is no file.
/// The bytes are wiped when dropped: card files hold the card's secrets.
pub(super) fn read_private(path: &Path) -> Result<Option<(File, Secret)>, StoreError> {
    let Some(mut file) = open_card_file(path, Access::Read)? else {
        return Ok(None);
    };
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_CARD_FILE {
        return Err(StoreError::Damaged {
            path: path.to_owned(),
            problem: DamageKind::TooLarge {
                len,
                max: MAX_CARD_FILE,
            },
        });
    }
    // Sized up front (one more byte to see the end): a growing buffer
    // would leave copies of the secrets behind in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(len).unwrap_or(0).saturating_add(1),
    ));
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(Some((file, bytes)))
}

/// What makes an open file unfit to be a card file, if anything.
pub(super) fn problem_with(metadata: &Metadata) -> Option<UnsafeFile> {
    if !metadata.file_type().is_file() {
        return Some(UnsafeFile::NotRegular);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let user = rustix::process::geteuid().as_raw();
        if metadata.uid() != user {
            return Some(UnsafeFile::Owner {
                owner: metadata.uid(),
                user,
            });
        }
        if metadata.nlink() != 1 {
            return Some(UnsafeFile::Links(metadata.nlink()));
        }
    }
    None
}

/// Whether `path` still names the open `file` (not removed, not replaced
/// by another file).
pub(super) fn still_named(path: &Path, file: &File) -> Result<bool, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let named = match fs::symlink_metadata(path) {
        Ok(metadata) => FileId::of(&metadata),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io(source)),
    };
    Ok(named == FileId::of(&file.metadata().map_err(io)?))
}

/// Which file a name points to: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    pub(super) fn of(metadata: &Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                device: metadata.dev(),
                inode: metadata.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            FileId {
                device: 0,
                inode: 0,
            }
        }
    }
}

/// Mode `mode` for a created file, and `O_NOFOLLOW | O_NONBLOCK`.
pub(crate) fn no_follow(options: &mut OpenOptions, mode: u32) {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
        // The C flag bits, as the `int` that open(2) takes.
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = (options, mode);
}

/// `<image><suffix>` in the image's folder.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Removes the temporary file when dropped, unless disarmed once it has
/// been renamed into place.
struct TempGuard<'a>(Option<&'a Path>);

impl TempGuard<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.0
            && let Err(e) = fs::remove_file(tmp)
        {
            tracing::warn!(target: "vscard::store", tmp = %tmp.display(), error = %e, "cannot remove the temporary file after a failed write");
        }
    }
}

/// Makes a rename in `path`'s folder durable.
pub(super) fn sync_parent(path: &Path) -> io::Result<()> {
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
