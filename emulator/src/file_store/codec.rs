//! [`ImageCodec`]: a card image as bytes, plain or sealed, for any store
//! that keeps bytes (the file store, an app's callback store, a database).

use std::path::Path;

use zeroize::Zeroizing;

use super::IMAGE_VERSION;
use super::image::{Era, decode_image, encode_image};
use crate::seal::{self, SealKey};
use crate::store::{CardImage, StoreError};

/// The name errors give bytes that are not a file.
const BYTES: &str = "<image>";

/// Turns a [`CardImage`] into bytes and back: the file store's JSON
/// document (format version, era, checksum), sealed with AES-256-GCM
/// ([`crate::seal`]) when the codec has a key.
///
/// A sealed codec refuses a plaintext image ([`StoreError::NotEncrypted`])
/// and a plain one a sealed image ([`StoreError::KeyNeeded`]); a wrong
/// key, a modified byte or another card's image is
/// [`StoreError::Sealed`]. Nothing is ever half-decoded.
#[derive(Clone, Debug, Default)]
pub struct ImageCodec {
    key: Option<SealKey>,
    identity: Vec<u8>,
}

impl ImageCodec {
    /// Plaintext images.
    pub fn plain() -> ImageCodec {
        ImageCodec::default()
    }

    /// Images sealed under `key`.
    pub fn sealed(key: SealKey) -> ImageCodec {
        ImageCodec {
            key: Some(key),
            identity: Vec::new(),
        }
    }

    /// Sealed under `key` when there is one, else plain.
    pub fn new(key: Option<SealKey>) -> ImageCodec {
        ImageCodec {
            key,
            identity: Vec::new(),
        }
    }

    /// The card identity sealed images carry as associated data; when not
    /// empty, a sealed image of another identity is refused on decode.
    pub fn with_identity(mut self, identity: impl Into<Vec<u8>>) -> ImageCodec {
        self.identity = identity.into();
        self
    }

    /// True when images are sealed.
    pub fn is_sealed(&self) -> bool {
        self.key.is_some()
    }

    /// The card identity sealed images carry.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// The bytes of `image`. Plain: the same image gives the same bytes.
    /// Sealed: a new random nonce each time.
    pub fn encode(&self, image: &CardImage) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let era = Era::of_contents(image, None)?;
        self.encode_era(Path::new(BYTES), image, era)
    }

    /// The image in `bytes`; a sealed image's identity becomes this
    /// codec's when it had none (so that writing it back keeps it).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<CardImage, StoreError> {
        self.decode_era(Path::new(BYTES), bytes)
            .map(|(image, _)| image)
    }

    pub(super) fn encode_era(
        &self,
        path: &Path,
        image: &CardImage,
        era: Era,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let plain = encode_image(image, era)?;
        match &self.key {
            None => Ok(plain),
            Some(key) => seal::seal(key, IMAGE_VERSION, &self.identity, &plain)
                .map(Zeroizing::new)
                .map_err(|problem| StoreError::Sealed {
                    path: path.to_owned(),
                    problem,
                }),
        }
    }

    pub(super) fn decode_era(
        &mut self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(CardImage, Option<Era>), StoreError> {
        let sealed = seal::is_sealed(bytes);
        match (&self.key, sealed) {
            (None, false) => decode_image(path, bytes),
            (None, true) => Err(StoreError::KeyNeeded {
                path: path.to_owned(),
            }),
            (Some(_), false) => Err(StoreError::NotEncrypted {
                path: path.to_owned(),
            }),
            (Some(key), true) => {
                let expected = (!self.identity.is_empty()).then_some(self.identity.as_slice());
                let opened =
                    seal::open(key, bytes, expected).map_err(|problem| StoreError::Sealed {
                        path: path.to_owned(),
                        problem,
                    })?;
                let decoded = decode_image(path, &opened.plaintext)?;
                if self.identity.is_empty() {
                    self.identity = opened.identity;
                }
                Ok(decoded)
            }
        }
    }
}
