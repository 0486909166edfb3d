//! File helpers of the store: private (mode 0600) files, atomic
//! replacement (temporary file, fsync, rename, folder fsync), and the
//! names of the files beside an image.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// `<image><suffix>` in the image's folder.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Creates a new file with mode 0600; fails if anything is in the way.
pub(super) fn create_private(path: &Path) -> std::io::Result<File> {
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
pub(super) fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
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
    // From here on the temporary file holds the whole card (PIN, keys):
    // every failure before the rename succeeds removes it.
    let guard = TempGuard(Some(&tmp));
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))?;
    guard.disarm();
    sync_parent(path).map_err(io(path))?;
    Ok(())
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
            tracing::warn!(target: "vscard::store", tmp = %tmp.display(), error = %e, "cannot remove the temporary card file after a failed write");
        }
    }
}

pub(super) fn sync_parent(path: &Path) -> std::io::Result<()> {
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
