//! The store the app provides: a foreign callback interface, as a `Store`.

use std::path::PathBuf;
use std::sync::Arc;

use vscard_emulator::{CardImage, ImageCodec, Store, StoreError};

use crate::VscardError;

/// Where the app keeps the card's image: its own files, a database, the
/// platform's encrypted preferences.
///
/// The card commits every change of its persistent state through
/// `commit` before it answers (a PIN try is committed before the PIN is
/// compared), so `commit` must be atomic and durable before it returns:
/// after it returns, or after a crash while it runs, `load` gives either
/// the previous image or the new one. An exception from `commit` is a
/// failed write: the card answers `6581` and keeps (and regains) nothing.
#[uniffi::export(with_foreign)]
pub trait CardStore: Send + Sync {
    /// The last committed image; `None` when nothing was committed yet.
    fn load(&self) -> Result<Option<Vec<u8>>, VscardError>;
    /// Makes `image` the committed image, atomically and durably.
    fn commit(&self, image: Vec<u8>) -> Result<(), VscardError>;
}

/// The app's store as the runtime's [`Store`]: images encoded (and sealed
/// when there is a key) by an [`ImageCodec`].
pub(crate) struct ForeignStore {
    app: Arc<dyn CardStore>,
    codec: ImageCodec,
}

impl ForeignStore {
    pub(crate) fn new(app: Arc<dyn CardStore>, codec: ImageCodec) -> ForeignStore {
        ForeignStore { app, codec }
    }

    pub(crate) fn codec_mut(&mut self) -> &mut ImageCodec {
        &mut self.codec
    }
}

/// What errors call the app's store.
fn app_path() -> PathBuf {
    PathBuf::from("<app store>")
}

fn failed(error: VscardError) -> StoreError {
    StoreError::Io {
        path: app_path(),
        source: std::io::Error::other(error.to_string()),
    }
}

impl Store for ForeignStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        match self.app.load().map_err(failed)? {
            None => Ok(None),
            Some(bytes) => self.codec.decode(&bytes).map(Some),
        }
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        let bytes = self.codec.encode(image)?;
        self.app.commit(bytes.to_vec()).map_err(failed)
    }
}
