//! PKCS#11 key custody for vscard cards ([`vscard_applet::custody`]): the
//! card's private keys live in an HSM token, the card image holds only the
//! token, the key's ID and its public key.
//!
//! Contract:
//! - One [`Pkcs11Custody`] per module per process: [`Pkcs11Custody::open`]
//!   loads and initialises the module once; sessions (one per token label,
//!   logged in as the user) are opened on first use and reopened after a
//!   failure (token removed, session gone).
//! - The token PIN ([`TokenPin`]) comes from a file or the environment
//!   variable [`PIN_ENV`], never the command line or the image; it is held
//!   in a zeroizing secret and never logged.
//! - Keys are generated in the token (`CKA_TOKEN`, `CKA_PRIVATE`,
//!   `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false). `CKA_LABEL` is
//!   `vscard <card> <slot>`, `CKA_ID` the ASCII `vscard/<card>/<slot>/<16
//!   hex random>`: one token holds many cards' keys, and a key's ID is
//!   unique per generation (the slot's old key stays until the card has
//!   committed the new one). The reference's `id` is the `CKA_ID` in hex.
//! - Mechanisms: RSA-1024 to 4096 (`CKM_RSA_PKCS_KEY_PAIR_GEN`, raw
//!   `CKM_RSA_X_509` for PIV's padded blocks), P-256 / P-384
//!   (`CKM_EC_KEY_PAIR_GEN`, `CKM_ECDSA` on the digest, `CKM_ECDH1_DERIVE`
//!   for key agreement). Ed25519 and X25519 are refused as unsupported
//!   (`6A81` on the card).
//! - A missing token, a refused login or a failing module is
//!   [`CustodyError::Unavailable`] (the card answers `6F00` for that key
//!   operation and logs why; the rest of the card works).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use vscard_applet::custody::{CustodyError, CustodyTarget, KeyCustody, KeyReference};
use vscard_applet::{Algorithm, PrivateKey, PublicKey, Slot};
use zeroize::Zeroizing;

/// The custody kind in key references (`"pkcs11"`).
pub const KIND: &str = "pkcs11";
/// The environment variable the token PIN may come from.
pub const PIN_ENV: &str = "VSCARD_PKCS11_PIN";
/// The location key of the module path.
pub const MODULE: &str = "module";
/// The location key of the token label.
pub const TOKEN: &str = "token";
/// The location key of the token's serial number (recorded at issue and
/// checked at every use when present: a label alone can be reused).
pub const SERIAL: &str = "serial";

/// Why the custody could not be opened, or the PIN read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {module}: {source}")]
    Module {
        /// The module's path.
        module: PathBuf,
        /// Cryptoki's error.
        #[source]
        source: CkError,
    },
    /// The PIN file could not be read.
    #[error("cannot read the PKCS#11 PIN file {path}: {source}")]
    PinFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The PIN file is not safe to read a secret from.
    #[error("refusing the PKCS#11 PIN file {path}: {problem}")]
    PinFileUnsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// No PIN file and no [`PIN_ENV`].
    #[error("no PKCS#11 token PIN: give --pkcs11-pin-file FILE or set {PIN_ENV}")]
    NoPin,
    /// The PIN is empty.
    #[error("the PKCS#11 token PIN is empty")]
    EmptyPin,
}

/// The token's user PIN, zeroized on drop and never printed.
pub struct TokenPin(AuthPin);

impl std::fmt::Debug for TokenPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPin(<redacted>)")
    }
}

impl TokenPin {
    /// The PIN from `file` (its first line) if given, else from
    /// [`PIN_ENV`]. The file is opened without following a symbolic link
    /// and must be a regular file of ours, not readable or writable by
    /// group or others, of at most [`PIN_FILE_MAX`] bytes.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<TokenPin, Pkcs11Error> {
        let bytes = match file {
            Some(path) => read_pin_file(path)?,
            None => Zeroizing::new(
                std::env::var(PIN_ENV)
                    .map_err(|_| Pkcs11Error::NoPin)?
                    .into_bytes(),
            ),
        };
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| Pkcs11Error::PinFileUnsafe {
            path: file.map(Path::to_owned).unwrap_or_default(),
            problem: "the PIN is not UTF-8",
        })?;
        TokenPin::new(text)
    }

    /// A PIN given as is (tests, embedding).
    pub fn new(pin: &str) -> Result<TokenPin, Pkcs11Error> {
        if pin.is_empty() {
            return Err(Pkcs11Error::EmptyPin);
        }
        Ok(TokenPin(AuthPin::from(pin.to_owned())))
    }
}

/// The largest PIN file read.
pub const PIN_FILE_MAX: u64 = 256;

/// The PIN file's bytes (see [`TokenPin::from_file_or_env`]).
fn read_pin_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let io = |source| Pkcs11Error::PinFile {
        path: path.to_owned(),
        source,
    };
    let unsafe_file = |problem| Pkcs11Error::PinFileUnsafe {
        path: path.to_owned(),
        problem,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // The C flag bits, as the `int` open(2) takes.
    options
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32);
    let file = options.open(path).map_err(|error| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            unsafe_file("it is a symbolic link")
        } else {
            io(error)
        }
    })?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(unsafe_file("not a regular file"));
    }
    if metadata.uid() != rustix::process::geteuid().as_raw() {
        return Err(unsafe_file("owned by another user"));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(unsafe_file(
            "group or others may read or write it (chmod 600 it)",
        ));
    }
    if metadata.len() > PIN_FILE_MAX {
        return Err(unsafe_file("larger than a PIN file (256 bytes)"));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(PIN_FILE_MAX as usize + 1));
    file.take(PIN_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > PIN_FILE_MAX {
        return Err(unsafe_file("larger than a PIN file (256 bytes)"));
    }
    Ok(bytes)
}

/// A PKCS#11 module as a [`KeyCustody`].
pub struct Pkcs11Custody {
    module: PathBuf,
    pkcs11: Pkcs11,
    pin: TokenPin,
    /// Token label -> logged-in session and the private keys found in it,
    /// each behind its own lock: one slow or hung token does not hold up
    /// the cards of another.
    sessions: Mutex<BTreeMap<String, Arc<Mutex<Option<TokenSession>>>>>,
    /// Tokens that refused the PIN (incorrect, locked, expired...): never
    /// tried again by this process, so a wrong PIN cannot use up the
    /// token's retry counter (and lock it for every card).
    refused: Mutex<BTreeSet<String>>,
    /// Token label -> the serial number of the token found under it.
    serials: Mutex<BTreeMap<String, String>>,
}

/// A logged-in session and the handles of the private keys already found
/// (a search per signature would cost as much as the card's own work).
struct TokenSession {
    session: Session,
    handles: BTreeMap<Vec<u8>, ObjectHandle>,
}

impl std::fmt::Debug for Pkcs11Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Custody")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

/// A cryptoki error as a custody error: unsupported mechanisms and sizes,
/// rejected inputs, and the rest (token, login, module) as unavailable.
fn custody_error(what: &str, error: CkError) -> CustodyError {
    match &error {
        CkError::Pkcs11(
            RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::KeySizeRange
            | RvError::CurveNotSupported
            | RvError::DomainParamsInvalid,
            _,
        ) => CustodyError::unsupported(format!("{what}: {error}")),
        CkError::Pkcs11(RvError::DataInvalid | RvError::DataLenRange, _) => {
            CustodyError::InvalidInput {
                reason: format!("{what}: {error}"),
            }
        }
        _ => CustodyError::unavailable(format!("{what}: {error}")),
    }
}

/// DER OID of a curve (`CKA_EC_PARAMS`).
fn ec_params(algorithm: Algorithm) -> Option<Vec<u8>> {
    match algorithm {
        // 1.2.840.10045.3.1.7
        Algorithm::EccP256 => Some(vec![
            0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07,
        ]),
        // 1.3.132.0.34
        Algorithm::EccP384 => Some(vec![0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]),
        _ => None,
    }
}

/// The uncompressed point in a `CKA_EC_POINT` (a DER OCTET STRING around
/// it, or the raw point as some tokens answer).
fn ec_point(value: &[u8], field: usize) -> Option<&[u8]> {
    let raw_len = 2 * field + 1;
    if value.len() == raw_len && value.first() == Some(&0x04) {
        return Some(value);
    }
    let body = match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => return None,
    };
    (body.len() == raw_len && body.first() == Some(&0x04)).then_some(body)
}

fn field_size(algorithm: Algorithm) -> usize {
    if algorithm == Algorithm::EccP384 {
        48
    } else {
        32
    }
}

impl Pkcs11Custody {
    /// Loads and initialises `module` once, with the token `pin`.
    pub fn open(module: &Path, pin: TokenPin) -> Result<Pkcs11Custody, Pkcs11Error> {
        let fail = |source| Pkcs11Error::Module {
            module: module.to_owned(),
            source,
        };
        let pkcs11 = Pkcs11::new(module).map_err(fail)?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(error) => return Err(fail(error)),
        }
        Ok(Pkcs11Custody {
            module: module.to_owned(),
            pkcs11,
            pin,
            sessions: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeSet::new()),
            serials: Mutex::new(BTreeMap::new()),
        })
    }

    /// The module's path, as key references record it.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The custody target of a card named `card` whose keys go to the token
    /// labelled `token` of this module.
    pub fn target(&self, token: &str, card: &str) -> CustodyTarget {
        CustodyTarget {
            custody: KIND.to_owned(),
            location: self.location(token),
            card: card.to_owned(),
        }
    }

    fn location(&self, token: &str) -> BTreeMap<String, String> {
        let mut location = BTreeMap::from([
            (MODULE.to_owned(), self.module.display().to_string()),
            (TOKEN.to_owned(), token.to_owned()),
        ]);
        if let Some(serial) = self.serial_of(token) {
            location.insert(SERIAL.to_owned(), serial);
        }
        location
    }

    /// The serial number of the token labelled `token` (cached; refreshed
    /// whenever a session to it is opened).
    fn serial_of(&self, token: &str) -> Option<String> {
        if let Some(serial) = self
            .serials
            .lock()
            .ok()
            .and_then(|serials| serials.get(token).cloned())
        {
            return Some(serial);
        }
        let slot = self.slot_of(token).ok()?;
        self.remember_serial(token, slot)
    }

    fn remember_serial(&self, token: &str, slot: cryptoki::slot::Slot) -> Option<String> {
        let serial = self
            .pkcs11
            .get_token_info(slot)
            .ok()?
            .serial_number()
            .trim_end()
            .to_owned();
        if let Ok(mut serials) = self.serials.lock() {
            serials.insert(token.to_owned(), serial.clone());
        }
        Some(serial)
    }

    fn slot_of(&self, token: &str) -> Result<cryptoki::slot::Slot, CustodyError> {
        let slots = self
            .pkcs11
            .get_slots_with_token()
            .map_err(|e| custody_error("listing slots", e))?;
        slots
            .into_iter()
            .find(|slot| {
                self.pkcs11
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == token)
            })
            .ok_or_else(|| CustodyError::unavailable(format!("no token labelled {token}")))
    }

    /// The token label of a location, checking that it names this module.
    fn token_of<'l>(
        &self,
        location: &'l BTreeMap<String, String>,
    ) -> Result<&'l str, CustodyError> {
        let module = location.get(MODULE).map(String::as_str).unwrap_or("");
        if Path::new(module) != self.module {
            return Err(CustodyError::unavailable(format!(
                "the key is in module {module}, this card serves {}",
                self.module.display()
            )));
        }
        let token = location
            .get(TOKEN)
            .map(String::as_str)
            .ok_or_else(|| CustodyError::unavailable("the key reference names no token"))?;
        if let Some(expected) = location.get(SERIAL) {
            let actual = self.serial_of(token).unwrap_or_default();
            if &actual != expected {
                return Err(CustodyError::unavailable(format!(
                    "the token labelled {token} has serial {actual:?}; the card's keys are in \
                     the token with serial {expected:?}"
                )));
            }
        }
        Ok(token)
    }

    /// True when the token `token` refused this custody's PIN: it is not
    /// tried again for the life of the process.
    pub fn login_refused(&self, token: &str) -> bool {
        self.refused
            .lock()
            .map(|refused| refused.contains(token))
            .unwrap_or(true)
    }

    /// Logs in to `token` now (at start, to say loudly when the PIN is
    /// refused rather than at the first signature).
    pub fn check_login(&self, token: &str) -> Result<(), CustodyError> {
        self.with_session(token, |_| Ok(()))
    }

    fn open_session(&self, token: &str) -> Result<Session, CustodyError> {
        if self.login_refused(token) {
            return Err(CustodyError::unavailable(format!(
                "token {token} refused the PIN earlier: not retried until the process restarts"
            )));
        }
        let slot = self.slot_of(token)?;
        self.remember_serial(token, slot);
        let session = self
            .pkcs11
            .open_rw_session(slot)
            .map_err(|e| custody_error("opening a session", e))?;
        match session.login(UserType::User, Some(&self.pin.0)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(error) => {
                if let CkError::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinExpired
                    | RvError::PinInvalid
                    | RvError::PinLenRange
                    | RvError::UserPinNotInitialized,
                    _,
                ) = error
                    && let Ok(mut refused) = self.refused.lock()
                {
                    refused.insert(token.to_owned());
                }
                Err(CustodyError::unavailable(format!(
                    "login to token {token} refused: {error}"
                )))
            }
        }
    }

    /// Runs `f` on the token's session, opening (and logging in) one if
    /// needed; a session that failed with an unavailable error is closed,
    /// so the next call opens a new one.
    fn with_session<T>(
        &self,
        token: &str,
        f: impl FnOnce(&Session) -> Result<T, CustodyError>,
    ) -> Result<T, CustodyError> {
        self.with_token(token, |token| f(&token.session))
    }

    /// [`Pkcs11Custody::with_session`] with the key-handle cache.
    fn with_token<T>(
        &self,
        token: &str,
        f: impl FnOnce(&mut TokenSession) -> Result<T, CustodyError>,
    ) -> Result<T, CustodyError> {
        let poisoned = || CustodyError::unavailable("PKCS#11 session lock poisoned");
        let slot = {
            let mut sessions = self.sessions.lock().map_err(|_| poisoned())?;
            Arc::clone(sessions.entry(token.to_owned()).or_default())
        };
        let mut slot = slot.lock().map_err(|_| poisoned())?;
        if slot.is_none() {
            let session = self.open_session(token)?;
            *slot = Some(TokenSession {
                session,
                handles: BTreeMap::new(),
            });
        }
        let session = slot
            .as_mut()
            .ok_or_else(|| CustodyError::unavailable("no session"))?;
        let result = f(session);
        if matches!(result, Err(CustodyError::Unavailable { .. })) {
            *slot = None;
        }
        result
    }

    fn find(
        session: &Session,
        class: ObjectClass,
        id: &[u8],
    ) -> Result<ObjectHandle, CustodyError> {
        let found = session
            .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
            .map_err(|e| custody_error("finding the key", e))?;
        found.into_iter().next().ok_or_else(|| {
            CustodyError::unavailable(format!(
                "no key with ID {} in the token",
                hex::encode_upper(id)
            ))
        })
    }

    /// The `CKA_ID` of `reference` and its parsed form, checking that it is
    /// a key vscard made for the card `target` names, in the target's
    /// module and token: an image cannot reach another card's key, nor
    /// any other object in a shared token.
    fn reference_id(
        target: &CustodyTarget,
        reference: &KeyReference,
    ) -> Result<(Vec<u8>, KeyId), CustodyError> {
        let refuse = |why: &str| CustodyError::unavailable(format!("key reference refused: {why}"));
        if target.custody != KIND || reference.custody != KIND {
            return Err(refuse("not a PKCS#11 key"));
        }
        if reference.location != target.location {
            return Err(refuse("the key is not in the card's token"));
        }
        let id = hex::decode(&reference.id).map_err(|_| refuse("the ID is not hex"))?;
        let parsed = KeyId::parse(&id).ok_or_else(|| refuse("not a vscard key ID"))?;
        if parsed.card != target.card {
            return Err(refuse("the key is another card's"));
        }
        Ok((id, parsed))
    }

    fn public_key(
        session: &Session,
        public: ObjectHandle,
        algorithm: Algorithm,
    ) -> Result<PublicKey, CustodyError> {
        let read = |types: &[AttributeType]| {
            session
                .get_attributes(public, types)
                .map_err(|e| custody_error("reading the public key", e))
        };
        let bad = || CustodyError::unavailable("the token answered an unusable public key");
        if algorithm.rsa_bits().is_some() {
            let mut n = None;
            let mut e = None;
            for attribute in read(&[AttributeType::Modulus, AttributeType::PublicExponent])? {
                match attribute {
                    Attribute::Modulus(value) => n = Some(value),
                    Attribute::PublicExponent(value) => e = Some(value),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(bad());
            };
            let key = rsa::RsaPublicKey::new(
                rsa::BoxedUint::from_be_slice_vartime(&n),
                rsa::BoxedUint::from_be_slice_vartime(&e),
            )
            .map_err(|_| bad())?;
            return Ok(PublicKey::Rsa(key));
        }
        let value = read(&[AttributeType::EcPoint])?
            .into_iter()
            .find_map(|attribute| match attribute {
                Attribute::EcPoint(value) => Some(value),
                _ => None,
            })
            .ok_or_else(bad)?;
        let point = ec_point(&value, field_size(algorithm)).ok_or_else(bad)?;
        match algorithm {
            Algorithm::EccP256 => p256::PublicKey::from_sec1_bytes(point)
                .map(PublicKey::P256)
                .map_err(|_| bad()),
            _ => p384::PublicKey::from_sec1_bytes(point)
                .map(PublicKey::P384)
                .map_err(|_| bad()),
        }
    }

    /// Reads back what the token made of the private key's template: a
    /// token that ignored `CKA_SENSITIVE` or `CKA_EXTRACTABLE` is refused.
    fn check_protected(session: &Session, private: ObjectHandle) -> Result<(), CustodyError> {
        let attributes = session
            .get_attributes(
                private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Extractable,
                ],
            )
            .map_err(|e| custody_error("reading the key's protection", e))?;
        let mut protected = [false; 4];
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(value) => protected[0] = value,
                Attribute::AlwaysSensitive(value) => protected[1] = value,
                Attribute::NeverExtractable(value) => protected[2] = value,
                Attribute::Extractable(value) => protected[3] = !value,
                _ => {}
            }
        }
        if protected != [true; 4] {
            return Err(CustodyError::unavailable(
                "the token made a key that is not sensitive and never extractable: destroyed",
            ));
        }
        Ok(())
    }

    /// Destroys the private and the public key with `id` (one vscard
    /// made: its label too), nothing else.
    fn destroy_id(session: &Session, id: &[u8]) -> Result<(), CustodyError> {
        let parsed = KeyId::parse(id)
            .ok_or_else(|| CustodyError::unavailable("not a vscard key ID: nothing destroyed"))?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            let objects = session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Id(id.to_vec()),
                    Attribute::Label(parsed.label()),
                ])
                .map_err(|e| custody_error("finding the key", e))?;
            for object in objects {
                session
                    .destroy_object(object)
                    .map_err(|e| custody_error("destroying the key", e))?;
            }
        }
        Ok(())
    }
}

impl TokenSession {
    /// The private key with `id`, found once per session.
    fn private_key(&mut self, id: &[u8]) -> Result<ObjectHandle, CustodyError> {
        if let Some(handle) = self.handles.get(id) {
            return Ok(*handle);
        }
        let handle = Pkcs11Custody::find(&self.session, ObjectClass::PRIVATE_KEY, id)?;
        self.handles.insert(id.to_vec(), handle);
        Ok(handle)
    }
}

/// The `CKA_ID` prefix of a card's keys.
fn id_prefix(card: &str) -> String {
    format!("vscard/{card}/")
}

/// A card name fit for IDs and labels: non-empty, printable ASCII, no `/`
/// (so that `vscard/<card>/` is the prefix of that card only) and no
/// space (labels are `vscard <card> <slot>`).
fn check_card(card: &str) -> Result<(), CustodyError> {
    if card.is_empty()
        || card.len() > 64
        || !card.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
    {
        return Err(CustodyError::InvalidInput {
            reason: format!("{card:?} is not a card name for a PKCS#11 key ID"),
        });
    }
    Ok(())
}

/// A key ID vscard made: `vscard/<card>/<slot>/<16 lowercase hex>`.
#[derive(Debug, PartialEq, Eq)]
struct KeyId {
    card: String,
    slot: String,
}

impl KeyId {
    /// Parses `id` strictly; `None` for anything else.
    fn parse(id: &[u8]) -> Option<KeyId> {
        let text = std::str::from_utf8(id).ok()?;
        let mut parts = text.split('/');
        let (Some("vscard"), Some(card), Some(slot), Some(nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        check_card(card).ok()?;
        let slot_ok = slot.len() == 2
            && u8::from_str_radix(slot, 16).is_ok_and(|value| Slot::new(value).is_some())
            && slot
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        let nonce_ok = nonce.len() == 16
            && nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (slot_ok && nonce_ok).then(|| KeyId {
            card: card.to_owned(),
            slot: slot.to_owned(),
        })
    }

    /// The `CKA_LABEL` of the keys with this ID.
    fn label(&self) -> Vec<u8> {
        format!("vscard {} {}", self.card, self.slot).into_bytes()
    }
}

impl KeyCustody for Pkcs11Custody {
    fn kind(&self) -> &str {
        KIND
    }

    fn generate(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        let reference = self
            .reserve(target, slot)?
            .ok_or_else(|| CustodyError::unavailable("no key ID"))?;
        let public = self.generate_reserved(target, &reference, slot, algorithm)?;
        Ok((reference, public))
    }

    fn reserve(
        &self,
        target: &CustodyTarget,
        slot: Slot,
    ) -> Result<Option<KeyReference>, CustodyError> {
        let token = self.token_of(&target.location)?;
        check_card(&target.card)?;
        // Unique per generation, from the token's own generator.
        let nonce = self.with_session(token, |session| {
            session
                .generate_random_vec(8)
                .map_err(|e| custody_error("drawing a key ID", e))
        })?;
        let id = format!("{}{slot}/{}", id_prefix(&target.card), hex::encode(nonce));
        Ok(Some(KeyReference {
            custody: KIND.to_owned(),
            location: target.location.clone(),
            id: hex::encode_upper(id.as_bytes()),
        }))
    }

    fn generate_reserved(
        &self,
        target: &CustodyTarget,
        reserved: &KeyReference,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<PublicKey, CustodyError> {
        let (id, parsed) = Pkcs11Custody::reference_id(target, reserved)?;
        if parsed.slot != slot.to_string() {
            return Err(CustodyError::unavailable(
                "the reserved key ID names another slot",
            ));
        }
        let token = self.token_of(&reserved.location)?;
        let (mechanism, mut public_template, mut private_template) =
            if let Some(bits) = algorithm.rsa_bits() {
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits((bits as u64).into()),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                        Attribute::Verify(true),
                    ],
                    vec![Attribute::Sign(true), Attribute::Decrypt(true)],
                )
            } else if let Some(params) = ec_params(algorithm) {
                (
                    Mechanism::EccKeyPairGen,
                    vec![Attribute::EcParams(params), Attribute::Verify(true)],
                    vec![Attribute::Sign(true), Attribute::Derive(true)],
                )
            } else {
                return Err(CustodyError::unsupported(format!(
                    "{algorithm:?} keys in a PKCS#11 token"
                )));
            };
        let label = parsed.label();
        let public = self.with_session(token, |session| {
            // A reserved ID is used once: never a second key under it.
            let existing = session
                .find_objects(&[Attribute::Id(id.clone())])
                .map_err(|e| custody_error("finding the key", e))?;
            if !existing.is_empty() {
                return Err(CustodyError::unavailable(
                    "the token already holds an object with the reserved key ID",
                ));
            }
            public_template.extend([
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Id(id.clone()),
                Attribute::Label(label.clone()),
            ]);
            private_template.extend([
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Id(id.clone()),
                Attribute::Label(label.clone()),
            ]);
            let (public, private) = session
                .generate_key_pair(&mechanism, &public_template, &private_template)
                .map_err(|e| custody_error("generating the key", e))?;
            Pkcs11Custody::check_protected(session, private)
                .and_then(|()| Pkcs11Custody::public_key(session, public, algorithm))
                .inspect_err(|_| {
                    let _ = Pkcs11Custody::destroy_id(session, &id);
                })
        })?;
        tracing::info!(target: "vscard::pkcs11", %slot, ?algorithm, token, id = %hex::encode_upper(&id),
            "generated a key in the token");
        Ok(public)
    }

    fn import(
        &self,
        _target: &CustodyTarget,
        _slot: Slot,
        _key: &PrivateKey,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        // Keys in the token are generated there: an imported key would
        // have existed outside it.
        Err(CustodyError::unsupported(
            "importing keys into a PKCS#11 token",
        ))
    }

    fn sign(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        let (id, _) = Pkcs11Custody::reference_id(target, reference)?;
        let token = self.token_of(&reference.location)?;
        self.with_token(token, |token| {
            let key = token.private_key(&id)?;
            let session = &token.session;
            if algorithm.rsa_bits().is_some() {
                let out = Zeroizing::new(
                    session
                        .sign(&Mechanism::RsaX509, key, input)
                        .map_err(|e| custody_error("raw RSA", e))?,
                );
                if out.len() > input.len() {
                    return Err(CustodyError::unavailable(
                        "the token answered a raw RSA result longer than the modulus",
                    ));
                }
                // As long as the modulus (the input is).
                let mut padded = Zeroizing::new(vec![0u8; input.len().saturating_sub(out.len())]);
                padded.extend_from_slice(&out);
                return Ok(padded);
            }
            match algorithm {
                Algorithm::EccP256 | Algorithm::EccP384 => {
                    let raw = session
                        .sign(&Mechanism::Ecdsa, key, input)
                        .map_err(|e| custody_error("ECDSA", e))?;
                    if raw.len() != 2 * field_size(algorithm) {
                        return Err(CustodyError::unavailable(
                            "the token answered an ECDSA signature of the wrong length",
                        ));
                    }
                    vscard_applet::custody::ecdsa_der_from_raw(&raw)
                        .map(Zeroizing::new)
                        .ok_or_else(|| {
                            CustodyError::unavailable(
                                "the token answered a malformed ECDSA signature",
                            )
                        })
                }
                other => Err(CustodyError::unsupported(format!("{other:?} signatures"))),
            }
        })
    }

    fn ecdh(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        if ec_params(algorithm).is_none() {
            return Err(CustodyError::unsupported(format!(
                "{algorithm:?} key agreement"
            )));
        }
        let (id, _) = Pkcs11Custody::reference_id(target, reference)?;
        let token = self.token_of(&reference.location)?;
        let size = field_size(algorithm);
        self.with_token(token, |token| {
            let key = token.private_key(&id)?;
            let session = &token.session;
            let mechanism = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer));
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen((size as u64).into()),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            let secret = session
                .derive_key(&mechanism, key, &template)
                .map_err(|e| custody_error("ECDH", e))?;
            let value = session.get_attributes(secret, &[AttributeType::Value]);
            let _ = session.destroy_object(secret);
            value
                .map_err(|e| custody_error("reading the shared secret", e))?
                .into_iter()
                .find_map(|attribute| match attribute {
                    Attribute::Value(value) => Some(Zeroizing::new(value)),
                    _ => None,
                })
                .ok_or_else(|| CustodyError::unavailable("the token gave no shared secret"))
        })
    }

    fn delete(&self, target: &CustodyTarget, reference: &KeyReference) -> Result<(), CustodyError> {
        let (id, _) = Pkcs11Custody::reference_id(target, reference)?;
        let token = self.token_of(&reference.location)?;
        self.with_token(token, |token| {
            token.handles.remove(&id);
            Pkcs11Custody::destroy_id(&token.session, &id)
        })
    }

    fn keys_of(&self, target: &CustodyTarget) -> Result<Vec<KeyReference>, CustodyError> {
        let token = self.token_of(&target.location)?;
        check_card(&target.card)?;
        let prefix = id_prefix(&target.card).into_bytes();
        self.with_session(token, |session| {
            let keys = session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
                .map_err(|e| custody_error("listing keys", e))?;
            let mut references = Vec::new();
            for key in keys {
                let attributes = session
                    .get_attributes(key, &[AttributeType::Id])
                    .map_err(|e| custody_error("reading a key's ID", e))?;
                for attribute in attributes {
                    if let Attribute::Id(id) = attribute
                        && id.starts_with(&prefix)
                    {
                        references.push(KeyReference {
                            custody: KIND.to_owned(),
                            location: target.location.clone(),
                            id: hex::encode_upper(&id),
                        });
                    }
                }
            }
            Ok(references)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_read_wrapped_or_raw() {
        let mut raw = vec![0x04];
        raw.extend([7u8; 64]);
        assert_eq!(ec_point(&raw, 32), Some(&raw[..]));
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&raw);
        assert_eq!(ec_point(&wrapped, 32), Some(&raw[..]));
        let mut long = vec![0x04];
        long.extend([7u8; 96]);
        let mut wrapped = vec![0x04, 0x81, 97];
        wrapped.extend(&long);
        assert_eq!(ec_point(&wrapped, 48), Some(&long[..]));
        assert_eq!(ec_point(&[0x04, 2, 4, 1], 32), None);
    }

    #[test]
    fn key_ids_are_parsed_strictly() {
        let id = KeyId::parse(b"vscard/card-A/9C/0123456789abcdef").unwrap();
        assert_eq!((id.card.as_str(), id.slot.as_str()), ("card-A", "9C"));
        assert_eq!(id.label(), b"vscard card-A 9C");
        for bad in [
            &b""[..],
            b"vscard/card-A/9C/0123456789ABCDEF",
            b"vscard/card-A/9c/0123456789abcdef",
            b"vscard/card-A/00/0123456789abcdef",
            b"vscard//9C/0123456789abcdef",
            b"vscard/card A/9C/0123456789abcdef",
            b"vscard/card-A/x/9C/0123456789abcdef",
            b"vscard/card-A/9C/0123456789abcdef/",
            b"other/card-A/9C/0123456789abcdef",
        ] {
            assert_eq!(KeyId::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(check_card("a/b").is_err());
        assert!(check_card("").is_err());
        assert!(check_card("000123456789-0a1b2c3d").is_ok());
    }

    #[test]
    fn the_pin_comes_from_the_file_s_first_line() {
        let dir = std::env::temp_dir().join(format!("vscard-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or(());
        let file = dir.join("pin");
        let write = |text: &[u8], mode: u32| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(&file, text).unwrap_or(());
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap_or(());
        };
        write(b"4321\r\nrest", 0o600);
        let pin = TokenPin::from_file_or_env(Some(&file));
        assert!(pin.is_ok(), "{pin:?}");
        assert_eq!(format!("{:?}", pin.ok()), "Some(TokenPin(<redacted>))");
        write(b"\n", 0o600);
        assert!(matches!(
            TokenPin::from_file_or_env(Some(&file)),
            Err(Pkcs11Error::EmptyPin)
        ));
        // Readable by others, too large, a link, a folder: refused.
        let refused = |path: &Path, why: &str| match TokenPin::from_file_or_env(Some(path)) {
            Err(Pkcs11Error::PinFileUnsafe { problem, .. }) => {
                assert!(problem.contains(why), "{problem}")
            }
            other => panic!("{other:?}"),
        };
        write(b"4321\n", 0o644);
        refused(&file, "group or others");
        write(b"4321\n", 0o640);
        refused(&file, "group or others");
        write(&[b'1'; 300], 0o600);
        refused(&file, "larger");
        write(b"4321\n", 0o600);
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap_or(());
        refused(&link, "symbolic link");
        refused(&dir, "not a regular file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
