//! [`MemoryStore`]: a [`Store`] that keeps the image in memory, shared by
//! its clones, with injectable write failures for rollback tests.

use std::sync::{Arc, Mutex};

use crate::store::{CardImage, Changes, Store, StoreError};

/// An in-memory store for tests and embedding. Clones share the same
/// image, so a test can build a second card on the store of the first, as
/// if the card had been taken out and put back.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryStoreInner>>,
}

#[derive(Debug, Default)]
struct MemoryStoreInner {
    image: Option<CardImage>,
    fail_writes: bool,
    commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `image` as its committed image.
    pub fn with_image(image: CardImage) -> Self {
        let store = Self::default();
        store.lock().image = Some(image);
        store
    }

    /// Makes every later commit fail (until called with `false`), to test
    /// the runtime's rollback.
    pub fn fail_writes(&self, fail: bool) {
        self.lock().fail_writes = fail;
    }

    /// The committed image, if any.
    pub fn image(&self) -> Option<CardImage> {
        self.lock().image.clone()
    }

    /// How many commits succeeded.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryStoreInner> {
        // A panic while holding the lock cannot leave the image half
        // written (it is replaced whole), so a poisoned lock is safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        Ok(self.lock().image.clone())
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.fail_writes {
            return Err(StoreError::Injected);
        }
        inner.image = Some(image.clone());
        inner.commits += 1;
        Ok(())
    }

    /// Copies only the changed parts into the image it holds (which is the
    /// runtime's previous image: one card commits through a store at a
    /// time), so a commit costs the parts it changes, not the image.
    fn commit_changes(
        &mut self,
        image: &CardImage,
        changes: Changes<'_>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.fail_writes {
            return Err(StoreError::Injected);
        }
        let key = changes.applet();
        match (&mut inner.image, image.applet(key)) {
            (Some(held), Some(new)) => {
                let held = held.applet_mut(key);
                for name in changes.parts() {
                    held.copy_part(new, name);
                }
            }
            (held, _) => *held = Some(image.clone()),
        }
        inner.commits += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppletState, Part};

    #[test]
    fn memory_store_clones_share_the_image() {
        let mut a = MemoryStore::new();
        let mut b = a.clone();
        let mut image = CardImage::new();
        image.set_applet("AA", AppletState::new().with(Part::new("x"), &1u8).unwrap());
        a.commit(&image).unwrap();
        assert_eq!(b.load().unwrap(), Some(image));
        a.fail_writes(true);
        assert!(matches!(
            b.commit(&CardImage::new()),
            Err(StoreError::Injected)
        ));
        assert_eq!(a.commits(), 1);
    }
}
