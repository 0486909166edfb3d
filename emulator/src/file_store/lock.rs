//! The card's advisory lock (`<image>.lock`), held while a store lives so
//! that two processes never serve one card.
//!
//! The lock is beside the image's canonical path (every symbolic link of
//! the user's path resolved), so every name of one card (a link to it, a
//! path through a linked folder) takes the same lock; a second hard link
//! to the image is refused when it is opened (one name per card file).

use std::fs::{self, File};
use std::path::Path;

use super::files::{Access, open_card_file, sibling};
use crate::store::StoreError;

/// Takes the lock of the image at the canonical `path`;
/// [`StoreError::Locked`] when another store holds it. The lock lasts as
/// long as the returned file is open (the OS releases it when the file
/// closes).
pub(super) fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = sibling(path, ".lock");
    let Some(lock) = open_card_file(&lock_path, Access::CreateOrWrite)? else {
        // Created when absent: only a removal racing the open gets here.
        return Err(StoreError::Io {
            path: lock_path,
            source: std::io::ErrorKind::NotFound.into(),
        });
    };
    match lock.try_lock() {
        // Removed or replaced between the open and the lock: the lock
        // taken is on a file no other store will open.
        Ok(()) if !super::files::still_named(&lock_path, &lock)? => {
            Err(StoreError::Replaced { path: lock_path })
        }
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
