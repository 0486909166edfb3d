//! Persistent state: the card image and the [`Store`] it is committed to.
//!
//! Each applet keeps its persistent state in its own serde types and hands
//! the runtime named *parts* ([`AppletState`]); the runtime keeps the last
//! committed [`CardImage`] (every applet's parts, keyed by AID) and writes
//! the whole image through the store in one atomic step per commit. A store
//! either takes the new image whole or keeps the old one; after any failure
//! the runtime reloads the applets from the image it knows is durable.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The name of a part of an applet's state, carrying the type the part
/// holds: an applet declares each part once (`const PIN: Part<OwnerPin> =
/// Part::new("pin")`), and every save, load and stage of it then encodes
/// and decodes that type, so a part cannot be written as one type and read
/// as another.
pub struct Part<T: ?Sized> {
    name: &'static str,
    // `fn() -> T`: the part neither owns nor borrows a `T`, so it is
    // `Copy`, `Send` and `Sync` whatever `T` is.
    kind: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Part<T> {
    /// The part called `name`.
    pub const fn new(name: &'static str) -> Part<T> {
        Part {
            name,
            kind: PhantomData,
        }
    }

    /// The part's name in the card image.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

// Derives would require `T: Clone` / `T: Debug`; a name is copied and
// printed whatever its type.
impl<T: ?Sized> Clone for Part<T> {
    fn clone(&self) -> Part<T> {
        *self
    }
}

impl<T: ?Sized> Copy for Part<T> {}

impl<T: ?Sized> std::fmt::Debug for Part<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Part").field(&self.name).finish()
    }
}

/// One applet's persistent state: named parts, each a serde value.
///
/// Parts let an applet commit a small record (a PIN try counter) without
/// re-encoding large ones (keys, certificates). `Debug` shows the part
/// names only: parts hold secrets (PINs, keys).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppletState {
    // Shared names and values: cloning a state (the runtime's committed
    // image into a store, one card's image into many) copies pointers.
    parts: BTreeMap<Arc<str>, PartValue>,
}

/// A part's value: its encoding, or the applet's own value as committed by
/// [`crate::Context::commit_part`] (a try counter), encoded only when it is
/// read back or written out. Committing a PIN try then copies the record
/// instead of building a JSON tree, and the copy is zeroized on drop when
/// the type is (an [`crate::OwnerPin`] is).
#[derive(Clone)]
pub(crate) enum PartValue {
    Encoded(Arc<serde_json::Value>),
    Typed(Arc<dyn TypedPart>),
}

/// A value kept as it is until it must be encoded.
pub(crate) trait TypedPart: Send + Sync {
    fn encode(&self) -> Result<serde_json::Value, serde_json::Error>;
}

impl<T: Serialize + Send + Sync> TypedPart for T {
    fn encode(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl PartValue {
    fn value(&self) -> Result<std::borrow::Cow<'_, serde_json::Value>, serde_json::Error> {
        match self {
            PartValue::Encoded(value) => Ok(std::borrow::Cow::Borrowed(value.as_ref())),
            PartValue::Typed(typed) => typed.encode().map(std::borrow::Cow::Owned),
        }
    }
}

impl PartialEq for PartValue {
    fn eq(&self, other: &PartValue) -> bool {
        match (self.value(), other.value()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for PartValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PartValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PartValue, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|v| PartValue::Encoded(Arc::new(v)))
    }
}

/// Parts staged by a command: each name with its new value; after
/// [`AppletState::swap_in`], each name with the value it replaced (`None`:
/// the part was new), ready for [`AppletState::swap_back`].
pub(crate) type StagedParts = Vec<(Arc<str>, Option<PartValue>)>;

/// Why an applet's state could not be encoded or decoded.
#[derive(Debug, Error)]
pub enum StateError {
    /// A part could not be encoded.
    #[error("cannot encode state part `{part}`: {source}")]
    Encode {
        /// The part's name.
        part: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// A part is present but does not decode as the applet's type.
    #[error("state part `{part}` is damaged: {source}")]
    Decode {
        /// The part's name.
        part: String,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// A part the applet needs is missing.
    #[error("state part `{0}` is missing")]
    MissingPart(String),
    /// A part decodes but holds something the applet cannot accept (a
    /// newer format, a slot that does not exist).
    #[error("state part `{part}` is invalid: {problem}")]
    Invalid {
        /// The part's name.
        part: String,
        /// What the applet found wrong.
        problem: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StateError {
    /// [`StateError::Invalid`] without an underlying error.
    pub fn invalid(part: &str, problem: impl Into<String>) -> StateError {
        StateError::Invalid {
            part: part.to_owned(),
            problem: problem.into(),
            source: None,
        }
    }

    /// [`StateError::Invalid`] caused by `source`.
    pub fn invalid_because(
        part: &str,
        problem: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StateError {
        StateError::Invalid {
            part: part.to_owned(),
            problem: problem.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl AppletState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `part` to the encoding of `value`.
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        part: Part<T>,
        value: &T,
    ) -> Result<(), StateError> {
        let encoded = encode_part(part.name(), value)?;
        self.parts.insert(Arc::from(part.name()), encoded);
        Ok(())
    }

    /// Builder form of [`AppletState::put`].
    pub fn with<T: Serialize + ?Sized>(
        mut self,
        part: Part<T>,
        value: &T,
    ) -> Result<Self, StateError> {
        self.put(part, value)?;
        Ok(self)
    }

    /// Decodes `part`; [`StateError::MissingPart`] when it is absent.
    pub fn get<T: DeserializeOwned>(&self, part: Part<T>) -> Result<T, StateError> {
        self.get_optional(part)?
            .ok_or_else(|| StateError::MissingPart(part.name().to_owned()))
    }

    /// Decodes `part`, `None` when it is absent.
    pub fn get_optional<T: DeserializeOwned>(
        &self,
        part: Part<T>,
    ) -> Result<Option<T>, StateError> {
        let name = part.name();
        match self.parts.get(name) {
            None => Ok(None),
            Some(value) => {
                let value = value.value().map_err(|source| StateError::Encode {
                    part: name.to_owned(),
                    source,
                })?;
                T::deserialize(value.as_ref())
                    .map(Some)
                    .map_err(|source| StateError::Decode {
                        part: name.to_owned(),
                        source,
                    })
            }
        }
    }

    /// The encoding of part `name` (its serde JSON), `None` when absent:
    /// what a store that keeps parts apart (a database row each) writes
    /// for a part a commit changed, without encoding the others.
    pub fn encoded_part(&self, name: &str) -> Result<Option<serde_json::Value>, StateError> {
        match self.parts.get(name) {
            None => Ok(None),
            Some(value) => value
                .value()
                .map(|value| Some(value.into_owned()))
                .map_err(|source| StateError::Encode {
                    part: name.to_owned(),
                    source,
                }),
        }
    }

    /// The names of the parts present.
    pub fn part_names(&self) -> impl Iterator<Item = &str> {
        self.parts.keys().map(AsRef::as_ref)
    }

    /// True when there are no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Part `name`, if present.
    pub(crate) fn part(&self, name: &str) -> Option<&PartValue> {
        self.parts.get(name)
    }

    /// Sets part `name`.
    pub(crate) fn insert_part(&mut self, name: &str, part: PartValue) {
        let name = self.part_name(name).unwrap_or_else(|| Arc::from(name));
        self.parts.insert(name, part);
    }

    /// The shared name of part `name`, if present (so that staging an
    /// existing part allocates no new name).
    pub(crate) fn part_name(&self, name: &str) -> Option<Arc<str>> {
        self.parts.get_key_value(name).map(|(k, _)| Arc::clone(k))
    }

    /// Puts the staged values in place, leaving in `staged` the values
    /// they replaced: no copy of the state is made, and
    /// [`AppletState::swap_back`] undoes it exactly.
    pub(crate) fn swap_in(&mut self, staged: &mut StagedParts) {
        for (name, value) in staged.iter_mut() {
            let new = value.take();
            *value = self.exchange(name, new);
        }
    }

    /// Sets part `name` to `new` (removes it for `None`) and returns what
    /// was there. An existing part keeps its name: no reference count of
    /// the name changes (each is an atomic operation on the commit path).
    fn exchange(&mut self, name: &Arc<str>, new: Option<PartValue>) -> Option<PartValue> {
        match (self.parts.get_mut(name.as_ref()), new) {
            (Some(slot), Some(new)) => Some(std::mem::replace(slot, new)),
            (None, Some(new)) => self.parts.insert(Arc::clone(name), new),
            (_, None) => self.parts.remove(name.as_ref()),
        }
    }

    /// Sets part `name` to `source`'s (removes it when `source` has none),
    /// sharing the value and, for a part already present, the name.
    pub(crate) fn copy_part(&mut self, source: &AppletState, name: &str) {
        match (self.parts.get_mut(name), source.parts.get_key_value(name)) {
            (Some(slot), Some((_, part))) => *slot = part.clone(),
            (None, Some((name, part))) => {
                self.parts.insert(Arc::clone(name), part.clone());
            }
            (_, None) => {
                self.parts.remove(name);
            }
        }
    }

    /// Undoes [`AppletState::swap_in`] (in reverse order, so a name staged
    /// twice ends with its first old value).
    pub(crate) fn swap_back(&mut self, staged: &mut StagedParts) {
        for (name, value) in staged.iter_mut().rev() {
            let old = value.take();
            *value = self.exchange(name, old);
        }
    }
}

pub(crate) fn encode_part<T: Serialize + ?Sized>(
    name: &str,
    value: &T,
) -> Result<PartValue, StateError> {
    serde_json::to_value(value)
        .map(|v| PartValue::Encoded(Arc::new(v)))
        .map_err(|source| StateError::Encode {
            part: name.to_owned(),
            source,
        })
}

/// The persistent contents of a card: each applet's state, keyed by the
/// applet's AID in upper-case hex. `Debug` shows AIDs and part names only.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardImage {
    applets: BTreeMap<Arc<str>, AppletState>,
}

impl std::fmt::Debug for AppletState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.parts.keys()).finish()
    }
}

impl std::fmt::Debug for CardImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.applets.iter()).finish()
    }
}

impl CardImage {
    /// An image with no applet state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of the applet with this AID key, if any.
    pub fn applet(&self, key: &str) -> Option<&AppletState> {
        self.applets.get(key)
    }

    /// Sets the state of the applet with this AID key.
    pub fn set_applet(&mut self, key: &str, state: AppletState) {
        self.applets.insert(Arc::from(key), state);
    }

    pub(crate) fn applet_mut(&mut self, key: &str) -> &mut AppletState {
        // The present key is shared, not copied: no allocation per commit.
        let key = self
            .applets
            .get_key_value(key)
            .map_or_else(|| Arc::from(key), |(k, _)| Arc::clone(k));
        self.applets.entry(key).or_default()
    }
}

/// Why a store could not load or commit an image.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on a file of the store.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The image file (or its journal) exists but cannot be trusted; it is
    /// left as it is.
    #[error("{path}: damaged card image: {problem}; the file was left untouched")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: DamageKind,
    },
    /// The image was written by a newer vscard.
    #[error(
        "{path}: card image format version {found} is newer than this vscard supports ({supported}); the file was left untouched"
    )]
    FutureVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another process serves this card.
    #[error("{path}: the card is in use by another process (lock held on {lock})")]
    Locked {
        /// The image file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A card file (image, journal, lock, temporary file) is not a private
    /// regular file of this user: a planted link, a second name, another
    /// owner. Nothing was written to it.
    #[error("{path}: refused: {problem}; nothing was written")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: UnsafeFile,
    },
    /// The image file was replaced (or removed) while the card was served
    /// from it: the store's copy and journal no longer apply to what is at
    /// the path, so it stops committing instead of writing over either.
    #[error(
        "{path}: this card file was replaced or removed while the card was served; this card is no longer served and nothing was written (serve the card afresh)"
    )]
    Replaced {
        /// The image, lock or journal file.
        path: PathBuf,
    },
    /// The image is encrypted and could not be opened (wrong key, a
    /// modified byte, another card's image), or could not be sealed.
    /// Nothing of it was loaded.
    #[error("{path}: {problem}")]
    Sealed {
        /// The file (or `<image>` for bytes from elsewhere).
        path: PathBuf,
        /// What failed.
        problem: crate::seal::SealError,
    },
    /// The image is encrypted, and no key was given.
    #[error(
        "{path}: this card image is encrypted: give its key (--encrypt-key-file FILE); nothing was loaded"
    )]
    KeyNeeded {
        /// The file (or `<image>`).
        path: PathBuf,
    },
    /// A key was given, but the image is not encrypted: refused, since a
    /// plaintext image in place of an encrypted one may have been planted
    /// (with a PIN its planter knows).
    #[error(
        "{path}: this card image is not encrypted, but a key was given; refused (open it without the key)"
    )]
    NotEncrypted {
        /// The file (or `<image>`).
        path: PathBuf,
    },
    /// The image could not be encoded.
    #[error("cannot encode the card image: {0}")]
    Encode(#[from] serde_json::Error),
    /// A write failure injected by a test.
    #[error("injected write failure")]
    Injected,
    /// A store kept outside the file system (a database) failed, or
    /// refused the write (another host holds the card); nothing was
    /// committed. The source is the store's own typed error.
    #[error("{store}: {source}")]
    Backend {
        /// Which store ("PostgreSQL card 42").
        store: String,
        /// The store's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a card file was refused ([`StoreError::Unsafe`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeFile {
    /// A symbolic link where a card file must be (card files are opened
    /// with `O_NOFOLLOW`; only the image path the user gives is resolved).
    #[error("a symbolic link (card files are never opened through one)")]
    Symlink,
    /// A folder, FIFO, device or socket instead of a regular file.
    #[error("not a regular file")]
    NotRegular,
    /// The file belongs to another user.
    #[error("owned by uid {owner}, not by this user (uid {user})")]
    Owner {
        /// The file's owner.
        owner: u32,
        /// The effective user id of this process.
        user: u32,
    },
    /// The file has more than one name (a hard link): another name would
    /// get its own lock and journal.
    #[error("{0} names (hard links); a card file must have exactly one")]
    Links(u64),
    /// The path has no file name (`/`, `..`).
    #[error("not a file name")]
    NoFileName,
}

/// What is wrong with a damaged image or journal ([`StoreError::Damaged`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file is larger than any card file can be.
    #[error("{len} bytes, more than a card file can hold ({max})")]
    TooLarge {
        /// The file's length.
        len: u64,
        /// The largest card file read.
        max: u64,
    },
    /// The file ends in the middle of the JSON document.
    #[error("truncated ({len} bytes)")]
    Truncated {
        /// The file's length.
        len: usize,
    },
    /// The file is not JSON.
    #[error("not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but without the image's `format` field.
    #[error("not a vscard card image (no \"format\": \"{}\")", crate::IMAGE_FORMAT)]
    NotAnImage,
    /// The `version` field is absent or not a number.
    #[error("missing or invalid \"version\"")]
    BadVersion,
    /// Version 0 was never written.
    #[error("version 0 does not exist")]
    VersionZero,
    /// The fields do not have the image's structure.
    #[error("unexpected structure: {0}")]
    Structure(#[source] serde_json::Error),
    /// A version-2 image without its `era`.
    #[error("missing \"era\"")]
    MissingEra,
    /// The `era` is not 32 hex digits.
    #[error("invalid \"era\": {0:?}")]
    BadEra(String),
    /// The checksum does not match the contents.
    #[error("checksum mismatch (the file was modified or partly written)")]
    ChecksumMismatch,
    /// The journal does not have its fixed size.
    #[error("a journal is {expected} bytes, this one is {found}")]
    JournalSize {
        /// The size of every journal.
        expected: usize,
        /// This one's size.
        found: u64,
    },
    /// A journal record's digest is right but its payload does not decode.
    #[error("record {index} is intact but unreadable: {source}")]
    UnreadableRecord {
        /// The slot.
        index: usize,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// An intact record after a damaged or missing one.
    #[error(
        "record {index} follows a damaged or missing record {missing}; a crash cannot leave such a gap"
    )]
    JournalGap {
        /// The intact record.
        index: usize,
        /// The first record that is not intact.
        missing: usize,
    },
    /// An encrypted card's journal record whose checksum is right but
    /// which does not decrypt under the card's key (for this card, era
    /// and slot): a record moved or forged.
    #[error("record {index} is intact but does not decrypt: {problem}")]
    SealedRecord {
        /// The slot.
        index: usize,
        /// Why it did not open.
        problem: crate::seal::SealError,
    },
    /// A record in the clear in an encrypted card's journal, of the
    /// image's era (or an encrypted record beside a plain image).
    #[error("record {index} is {found} beside an {image} image")]
    MixedRecord {
        /// The slot.
        index: usize,
        /// "in the clear" or "encrypted".
        found: &'static str,
        /// "encrypted" or "unencrypted".
        image: &'static str,
    },
}

/// Where a card's image lives between commands and across restarts.
///
/// `commit` must be atomic: after it returns, or after a crash while it
/// runs, a later `load` returns either the previous image or the new one.
pub trait Store: Send {
    /// The last committed image; `None` for a card that has never been
    /// committed.
    fn load(&mut self) -> Result<Option<CardImage>, StoreError>;

    /// Makes `image` the committed image.
    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError>;

    /// Makes `image` the committed image, where `changes` says which parts
    /// differ from the image the runtime committed before. A store that
    /// keeps a copy of that image may update only those; the default
    /// commits the whole image (a file is rewritten whole anyway).
    fn commit_changes(
        &mut self,
        image: &CardImage,
        changes: Changes<'_>,
    ) -> Result<(), StoreError> {
        let _ = changes;
        self.commit(image)
    }

    /// Makes sure the next `commits` small commits (a few parts each) need
    /// no write that could fail where they would not. Called before a PIN
    /// try is counted, so that the reset after a correct PIN can be
    /// committed too: a try counted whose reset then fails is a try lost.
    /// `image` is the committed image. The default does nothing (a store
    /// whose commits all need the same).
    fn reserve(&mut self, image: &CardImage, commits: usize) -> Result<(), StoreError> {
        let _ = (image, commits);
        Ok(())
    }
}

/// The parts one commit changes: the parts of one applet, by name.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    key: &'a str,
    staged: &'a StagedParts,
}

impl<'a> Changes<'a> {
    pub(crate) fn new(key: &'a str, staged: &'a StagedParts) -> Changes<'a> {
        Changes { key, staged }
    }

    /// The AID key of the applet whose parts changed.
    pub fn applet(&self) -> &'a str {
        self.key
    }

    /// The names of the parts that changed.
    pub fn parts(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.staged.iter().map(|(name, _)| name.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        value: u32,
    }

    #[test]
    fn parts_round_trip_and_report_problems() {
        let state = AppletState::new()
            .with(Part::new("counter"), &Counter { value: 7 })
            .unwrap();
        assert_eq!(
            state.get(Part::<Counter>::new("counter")).unwrap(),
            Counter { value: 7 }
        );
        assert!(matches!(
            state.get(Part::<Counter>::new("missing")),
            Err(StateError::MissingPart(p)) if p == "missing"
        ));
        assert!(matches!(
            state.get(Part::<String>::new("counter")),
            Err(StateError::Decode { part, .. }) if part == "counter"
        ));
    }

    #[test]
    fn swapped_in_parts_swap_back_exactly() {
        let before = AppletState::new()
            .with(Part::new("a"), &1u8)
            .unwrap()
            .with(Part::new("b"), &2u8)
            .unwrap();
        let mut state = before.clone();
        let value = |v: u8| Some(encode_part("x", &v).unwrap());
        // An existing part, a new one, and a name staged twice.
        let mut staged: StagedParts = vec![
            (Arc::from("a"), value(10)),
            (Arc::from("c"), value(30)),
            (Arc::from("a"), value(11)),
        ];
        state.swap_in(&mut staged);
        assert_eq!(state.get(Part::<u8>::new("a")).unwrap(), 11);
        assert_eq!(state.get(Part::<u8>::new("c")).unwrap(), 30);
        assert_eq!(state.get(Part::<u8>::new("b")).unwrap(), 2);
        state.swap_back(&mut staged);
        assert_eq!(state, before);
        assert_eq!(state.part_names().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_typed_part_reads_and_writes_as_its_encoding() {
        let encoded = AppletState::new()
            .with(Part::new("counter"), &Counter { value: 7 })
            .unwrap();
        let mut typed = AppletState::new();
        typed.parts.insert(
            Arc::from("counter"),
            PartValue::Typed(Arc::new(Counter { value: 7 })),
        );
        assert_eq!(typed, encoded);
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&encoded).unwrap()
        );
        assert_eq!(
            typed.get(Part::<Counter>::new("counter")).unwrap(),
            Counter { value: 7 }
        );
    }

    #[test]
    fn an_encoded_part_is_the_part_alone() {
        let mut state = AppletState::new()
            .with(Part::new("counter"), &Counter { value: 7 })
            .unwrap();
        state.parts.insert(
            Arc::from("typed"),
            PartValue::Typed(Arc::new(Counter { value: 9 })),
        );
        assert_eq!(
            state.encoded_part("counter").unwrap(),
            Some(serde_json::json!({ "value": 7 }))
        );
        assert_eq!(
            state.encoded_part("typed").unwrap(),
            Some(serde_json::json!({ "value": 9 }))
        );
        assert_eq!(state.encoded_part("absent").unwrap(), None);
    }

    #[test]
    fn debug_shows_names_not_values() {
        let mut image = CardImage::new();
        image.set_applet(
            "AA",
            AppletState::new().with(Part::new("pin"), "s3cr3t").unwrap(),
        );
        let debug = format!("{image:?} {:?}", MemoryStore::new());
        assert!(
            debug.contains("\"pin\"") && !debug.contains("s3cr3t"),
            "{debug}"
        );
    }

    #[test]
    fn an_invalid_state_names_its_part_and_keeps_its_source() {
        use std::error::Error as _;
        let plain = StateError::invalid("keys", "9Z is not a key slot");
        assert_eq!(
            plain.to_string(),
            "state part `keys` is invalid: 9Z is not a key slot"
        );
        assert!(plain.source().is_none());
        let cause = hex::decode("zz").unwrap_err();
        let caused = StateError::invalid_because("objects", "object 5FC105 is not hex", cause);
        assert!(caused.source().is_some_and(|s| s.is::<hex::FromHexError>()));
    }
}
