//! [`ImageCodec`]: a card image as bytes, plain or sealed, for any store
//! that keeps bytes (the file store, an app's callback store, a database).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use super::IMAGE_VERSION;
use super::image::{Era, decode_image, encode_image};
use crate::seal::{self, SealError, SealKey};
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
///
/// Sealed images carry a generation that grows by one at every encode
/// (from the generation of the image last decoded): a caller that keeps
/// the last generation it committed somewhere an attacker cannot write
/// (a phone keystore) refuses an old copy put back with
/// [`ImageCodec::with_min_generation`].
#[derive(Debug, Default)]
pub struct ImageCodec {
    key: Option<SealKey>,
    identity: Vec<u8>,
    /// The generation of the sealed image last decoded or encoded.
    generation: AtomicU64,
    /// Sealed images of a lower generation are refused.
    min_generation: u64,
}

impl Clone for ImageCodec {
    fn clone(&self) -> ImageCodec {
        ImageCodec {
            key: self.key.clone(),
            identity: self.identity.clone(),
            generation: AtomicU64::new(self.generation()),
            min_generation: self.min_generation,
        }
    }
}

impl ImageCodec {
    /// Plaintext images.
    pub fn plain() -> ImageCodec {
        ImageCodec::default()
    }

    /// Images sealed under `key`.
    pub fn sealed(key: SealKey) -> ImageCodec {
        ImageCodec::new(Some(key))
    }

    /// Sealed under `key` when there is one, else plain.
    pub fn new(key: Option<SealKey>) -> ImageCodec {
        ImageCodec {
            key,
            ..ImageCodec::default()
        }
    }

    /// Refuses to decode a sealed image of a generation below `minimum`
    /// ([`crate::seal::SealError::RolledBack`]): the last generation the
    /// caller saw committed, kept where the image's store cannot change it.
    pub fn with_min_generation(mut self, minimum: u64) -> ImageCodec {
        self.min_generation = minimum;
        self
    }

    /// The generation of the sealed image last decoded or encoded (0 for
    /// none, and for plain images).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
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

    /// A journal record's payload sealed for slot `index` of `era` of
    /// this card (the card identity, the era and the slot are the
    /// associated data, so a record moved to another card, era or slot
    /// does not open); `None` when the identity is too long to say all
    /// that (the commit is then an image write).
    pub(super) fn seal_record(
        &self,
        era: &Era,
        index: usize,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = &self.key else {
            return Ok(Some(payload.to_vec()));
        };
        let identity = record_identity(&self.identity, era, index);
        match seal::seal_generation(key, IMAGE_VERSION, self.generation(), &identity, payload) {
            Ok(sealed) => Ok(Some(sealed)),
            Err(SealError::IdentityTooLong(_)) => Ok(None),
            Err(problem) => Err(StoreError::Sealed {
                path: Path::new(BYTES).to_owned(),
                problem,
            }),
        }
    }

    /// Opens what [`ImageCodec::seal_record`] sealed.
    pub(super) fn open_record(
        &self,
        era: &Era,
        index: usize,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let Some(key) = &self.key else {
            return Ok(Zeroizing::new(sealed.to_vec()));
        };
        let identity = record_identity(&self.identity, era, index);
        seal::open(key, sealed, Some(&identity)).map(|opened| opened.plaintext)
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
            Some(key) => {
                let generation = self.generation().saturating_add(1);
                let sealed =
                    seal::seal_generation(key, IMAGE_VERSION, generation, &self.identity, &plain)
                        .map_err(|problem| StoreError::Sealed {
                        path: path.to_owned(),
                        problem,
                    })?;
                // Only grows: a write that fails after this has burnt a
                // number, which no reader minds.
                self.generation.fetch_max(generation, Ordering::Relaxed);
                Ok(Zeroizing::new(sealed))
            }
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
                let sealed_error = |problem| StoreError::Sealed {
                    path: path.to_owned(),
                    problem,
                };
                if opened.generation < self.min_generation {
                    return Err(sealed_error(SealError::RolledBack {
                        found: opened.generation,
                        minimum: self.min_generation,
                    }));
                }
                let decoded = decode_image(path, &opened.plaintext)?;
                // Version 2 images carry an era, version 1 images none.
                let inside = if decoded.1.is_some() { 2 } else { 1 };
                if opened.version != inside {
                    return Err(sealed_error(SealError::VersionMismatch {
                        header: opened.version,
                        image: inside,
                    }));
                }
                if self.identity.is_empty() {
                    self.identity = opened.identity;
                }
                self.generation.store(opened.generation, Ordering::Relaxed);
                Ok(decoded)
            }
        }
    }
}

/// The associated identity of journal record `index` of `era`.
fn record_identity(card: &[u8], era: &Era, index: usize) -> Vec<u8> {
    let mut identity = Vec::with_capacity(card.len() + 9 + era.0.len() + 8);
    identity.extend_from_slice(card);
    identity.extend_from_slice(b"\0journal\0");
    identity.extend_from_slice(&era.0);
    identity.extend_from_slice(&(index as u64).to_be_bytes());
    identity
}
