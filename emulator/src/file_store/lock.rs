//! The card's advisory lock (`<image>.lock`), held while a store lives so
//! that two processes never serve one card.

use std::fs::{self, File};
use std::path::Path;

use super::files::{open_private, sibling};
use crate::store::StoreError;

/// Takes the lock of the image at `path`; [`StoreError::Locked`] when
/// another store holds it. The lock lasts as long as the returned file is
/// open (the OS releases it when the file closes).
pub(super) fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = sibling(path, ".lock");
    let lock = open_private(&lock_path).map_err(|source| StoreError::Io {
        path: lock_path.clone(),
        source,
    })?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_owned(),
            lock: lock_path,
        }),
        Err(fs::TryLockError::Error(source)) => Err(StoreError::Io {
            path: lock_path,
            source,
        }),
    }
}
