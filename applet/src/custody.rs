//! Key custody: where a slot's private key lives, and the one trait every
//! private-key command goes through when it does not live in the image.
//!
//! Contract:
//! - **Software custody** (the default, today's behaviour): the key is in
//!   the card image as PKCS#8 and the applet's own code ([`crate::keys`],
//!   RustCrypto or OpenSSL) uses it. No [`KeyCustody`] is needed, and the
//!   stored form of these keys is unchanged (images load and save byte for
//!   byte as before).
//! - **External custody**: the key lives elsewhere (an HSM through
//!   PKCS#11, a phone's keystore through a callback). The image holds a
//!   [`KeyReference`] (custody kind, location such as a module and a token,
//!   the key's ID there) and the public key (SPKI DER), never key
//!   material. The applet reaches the key through a [`KeyCustody`]
//!   injected at construction ([`crate::PivApplet::with_custody`]). The
//!   applet stays free of I/O: the custody is the boundary.
//! - A card whose new keys go to an external custody records a
//!   [`CustodyTarget`] (state part `custody`, absent on software cards):
//!   GENERATE then asks the custody for the key, IMPORT hands it the key
//!   (`6A81` when the custody cannot import).
//! - PIN semantics stay in the applet: the PIV PIN, PIN-always for 9C and
//!   the PUK are checked before the custody is asked, and a custody
//!   failure changes neither the PIN counters nor the security status (the
//!   PIN-always permission is spent only after a successful operation).
//! - Failures are typed ([`CustodyError`]) and each maps to one status
//!   word ([`CustodyError::status`]): unavailable custody `6F00` (logged
//!   with the reason), refusal `6985`, unsupported operation or algorithm
//!   `6A81`, input the custody rejects `6A80`. A key held by a custody
//!   that is not attached is `6F00` too (logged).
//! - Crash safety: GENERATE, IMPORT, DELETE and RESET commit the key table
//!   first and only then destroy the custody key no longer referenced. A
//!   cut in between (or a failed commit, which may have reached the store)
//!   leaves an unreferenced key in the custody, never a reference to a
//!   destroyed one: [`crate::PivApplet::reconcile_custody`] (run when a
//!   card is served) reports those; an uncommitted key is never used, and
//!   never destroyed by name (a restored backup of the image must not
//!   destroy the live card's keys).
//!
//! What the applet passes to [`KeyCustody::sign`] is what PIV gives, after
//! the applet's own checks: for RSA the padded block, exactly as long as
//! the modulus and smaller than it (the raw private-key operation; answer
//! as long as the modulus); for ECDSA the digest truncated or left-padded
//! to the field size (answer: DER `SEQUENCE { r, s }`, see
//! [`ecdsa_der_from_raw`]); for Ed25519 the whole message (answer: the raw
//! 64-byte signature). [`KeyCustody::ecdh`] gets the peer's public key (an
//! uncompressed SEC1 point on the curve, or the raw 32 X25519 bytes) and
//! answers the shared secret (the x-coordinate, or the X25519 secret).

use std::collections::BTreeMap;
use std::fmt;
#[cfg(any(test, feature = "testing"))]
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
#[cfg(any(test, feature = "testing"))]
use vscard_emulator::CardRng;
use vscard_emulator::Status;
use zeroize::Zeroizing;

use crate::keys::{PrivateKey, PublicKey};
use crate::reference::{Algorithm, Slot};

/// Where a key held outside the image lives. Never key material.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyReference {
    /// The custody's kind (`"pkcs11"`, `"callback"`, `"memory"`), which
    /// must be the attached custody's [`KeyCustody::kind`].
    pub custody: String,
    /// Custody-specific location (for PKCS#11: `module`, `token`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub location: BTreeMap<String, String>,
    /// The key's identifier in the custody (for PKCS#11 the `CKA_ID` in
    /// hex).
    pub id: String,
}

/// `pkcs11 module=/usr/lib/softhsm/libsofthsm2.so token=cards id=0A1B`.
impl fmt::Display for KeyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.custody)?;
        for (name, value) in &self.location {
            write!(f, " {name}={value}")?;
        }
        write!(f, " id={}", self.id)
    }
}

/// The custody a card's new keys go to (GENERATE, IMPORT), recorded in the
/// card image (state part `custody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyTarget {
    /// The custody's kind, as in [`KeyReference::custody`].
    pub custody: String,
    /// Where in the custody (for PKCS#11: `module`, `token`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub location: BTreeMap<String, String>,
    /// The card's name in the custody, so that one custody holds many
    /// cards' keys (the custody puts it in its labels and IDs).
    pub card: String,
}

/// Why a custody could not do an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustodyError {
    /// The custody cannot be reached or used now (token missing, login
    /// refused, module gone, key not found): `6F00`, logged with the
    /// reason; the rest of the card keeps working.
    #[error("key custody unavailable: {reason}")]
    Unavailable {
        /// What went wrong (no secrets).
        reason: String,
    },
    /// The custody (or its user: a phone's biometric prompt) refused the
    /// operation: `6985`.
    #[error("the key custody refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The custody cannot do this operation or algorithm: `6A81`.
    #[error("the key custody does not support {what}")]
    Unsupported {
        /// The operation or algorithm.
        what: String,
    },
    /// The custody rejected the input (a peer point it refuses): `6A80`.
    #[error("the key custody rejected the input: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
}

impl CustodyError {
    /// A [`CustodyError::Unavailable`] error.
    pub fn unavailable(reason: impl Into<String>) -> CustodyError {
        CustodyError::Unavailable {
            reason: reason.into(),
        }
    }

    /// A [`CustodyError::Unsupported`] error.
    pub fn unsupported(what: impl Into<String>) -> CustodyError {
        CustodyError::Unsupported { what: what.into() }
    }

    /// The status word the card answers for this error.
    pub fn status(&self) -> Status {
        match self {
            CustodyError::Unavailable { .. } => Status::UnknownError,
            CustodyError::Refused { .. } => Status::ConditionsNotSatisfied,
            CustodyError::Unsupported { .. } => Status::FunctionNotSupported,
            CustodyError::InvalidInput { .. } => Status::IncorrectData,
        }
    }
}

/// A place outside the card image that holds private keys and performs
/// the private-key operations (see the module documentation for inputs
/// and answers). Calls come from the card's command thread: a blocking
/// call blocks the card, not the other cards.
pub trait KeyCustody: Send + Sync + fmt::Debug {
    /// The custody's kind (`"pkcs11"`), matched against
    /// [`KeyReference::custody`] and [`CustodyTarget::custody`].
    fn kind(&self) -> &str;

    /// Generates a key of `algorithm` for `slot` of the card `target`
    /// names; a new, unique reference each time (the slot's old key stays
    /// usable until the card has committed the new one).
    fn generate(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<(KeyReference, PublicKey), CustodyError>;

    /// Write-ahead for GENERATE: the reference the next key of `slot` will
    /// have, chosen before the key exists, so that the card records it
    /// first; [`crate::PivApplet::reconcile_custody`] then destroys exactly
    /// the keys this card began to make and never committed. `None` (the
    /// default): the custody names its keys when it makes them
    /// ([`KeyCustody::generate`]), and keys a cut leaves are only reported.
    fn reserve(
        &self,
        target: &CustodyTarget,
        slot: Slot,
    ) -> Result<Option<KeyReference>, CustodyError> {
        let _ = (target, slot);
        Ok(None)
    }

    /// Generates the key [`KeyCustody::reserve`] named. The default:
    /// unsupported.
    fn generate_reserved(
        &self,
        target: &CustodyTarget,
        reserved: &KeyReference,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<PublicKey, CustodyError> {
        let _ = (target, reserved, slot, algorithm);
        Err(CustodyError::unsupported("reserved key generation"))
    }

    /// Puts an imported key into the custody. The default refuses
    /// (`6A81`).
    fn import(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        key: &PrivateKey,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        let _ = (target, slot, key);
        Err(CustodyError::unsupported("key import"))
    }

    /// The private-key signature operation on `input` (raw RSA, ECDSA
    /// over a digest, Ed25519 over a message) with the key of `reference`,
    /// which must belong to the card `target` names (the card's own
    /// target): a custody refuses a reference to another card's key.
    fn sign(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError>;

    /// Key agreement with the peer's public key (the key belongs to the
    /// card `target` names, as for [`KeyCustody::sign`]).
    fn ecdh(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError>;

    /// Destroys a key of the card `target` names that the card no longer
    /// refers to (never another card's, nor anything but that key).
    fn delete(&self, target: &CustodyTarget, reference: &KeyReference) -> Result<(), CustodyError>;

    /// The keys this custody holds for the card `target` names, for
    /// [`crate::PivApplet::reconcile_custody`]. The default: unsupported
    /// (nothing is reconciled).
    fn keys_of(&self, target: &CustodyTarget) -> Result<Vec<KeyReference>, CustodyError> {
        let _ = target;
        Err(CustodyError::unsupported("listing keys"))
    }
}

/// DER `SEQUENCE { r, s }` from the raw `r || s` form PKCS#11 and most
/// keystores answer (two halves of equal length). `None` for an odd or
/// empty input.
pub fn ecdsa_der_from_raw(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let integer = |bytes: &[u8]| -> Vec<u8> {
        let zeros = bytes.iter().take_while(|&&b| b == 0).count();
        let mut value = bytes.get(zeros..).unwrap_or(&[]).to_vec();
        if value.first().is_none_or(|b| b & 0x80 != 0) {
            value.insert(0, 0);
        }
        crate::tlv::encode(0x02, &value)
    };
    Some(crate::tlv::encode(0x30, &[integer(r), integer(s)].concat()))
}

/// Why an [`ExternalSigner`] did not do an operation (the callback's
/// typed refusal, mapped to [`CustodyError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerRefusal {
    /// The keystore cannot be used now (locked device, key invalidated):
    /// `6F00`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The user or the keystore refused (biometric prompt cancelled):
    /// `6985`.
    #[error("refused: {0}")]
    Refused(String),
    /// The keystore cannot do this algorithm or operation: `6A81`.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl From<SignerRefusal> for CustodyError {
    fn from(refusal: SignerRefusal) -> CustodyError {
        match refusal {
            SignerRefusal::Unavailable(reason) => CustodyError::Unavailable { reason },
            SignerRefusal::Refused(reason) => CustodyError::Refused { reason },
            SignerRefusal::Unsupported(what) => CustodyError::Unsupported { what },
        }
    }
}

/// A key an [`ExternalSigner`] generated: its identifier in the keystore
/// and its public key (SPKI DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalKey {
    /// The key's name in the keystore (an alias).
    pub id: String,
    /// The public key, X.509 `SubjectPublicKeyInfo` DER.
    pub public_key_spki: Vec<u8>,
}

/// The host application's side of a [`CallbackCustody`]: the phone's
/// keystore (Android Keystore / StrongBox, the iOS Secure Enclave for
/// P-256) does the private-key operations. Simple types only, so that a
/// bindings layer can implement it as a foreign trait.
pub trait ExternalSigner: Send + Sync {
    /// Makes a key of `algorithm` for `slot` of the card `card`.
    fn generate(
        &self,
        card: &str,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<ExternalKey, SignerRefusal>;

    /// The private-key operation on `input` (see the module
    /// documentation): the raw RSA result, an ECDSA signature (DER, or the
    /// raw `r || s`, which the custody converts), or the raw Ed25519
    /// signature.
    ///
    /// `card` is the card's name (as given to [`ExternalSigner::generate`]):
    /// the signer must refuse a key `id` it did not make for that card.
    fn sign(
        &self,
        card: &str,
        id: &str,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, SignerRefusal>;

    /// Key agreement with the peer's public key (`card` as for
    /// [`ExternalSigner::sign`]); the default refuses.
    fn ecdh(
        &self,
        card: &str,
        id: &str,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Vec<u8>, SignerRefusal> {
        let _ = (card, id, peer);
        Err(SignerRefusal::Unsupported(format!(
            "{algorithm:?} key agreement"
        )))
    }

    /// Destroys the key `id` of the card `card` that the card no longer
    /// uses; the default does nothing.
    fn delete(&self, card: &str, id: &str) -> Result<(), SignerRefusal> {
        let _ = (card, id);
        Ok(())
    }
}

/// A [`KeyCustody`] that hands every private-key operation to an
/// [`ExternalSigner`] callback (kind `"callback"`): the software-independent
/// adapter the bindings wrap. References carry the signer's key ID; the
/// applet keeps the public key.
pub struct CallbackCustody {
    signer: Box<dyn ExternalSigner>,
}

impl fmt::Debug for CallbackCustody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackCustody")
    }
}

impl CallbackCustody {
    /// The custody kind of [`CallbackCustody`].
    pub const KIND: &'static str = "callback";

    /// A custody calling `signer`.
    pub fn new(signer: Box<dyn ExternalSigner>) -> CallbackCustody {
        CallbackCustody { signer }
    }

    /// The target of a card named `card` whose keys the signer makes.
    pub fn target(card: &str) -> CustodyTarget {
        CustodyTarget {
            custody: CallbackCustody::KIND.to_owned(),
            location: BTreeMap::new(),
            card: card.to_owned(),
        }
    }
}

impl KeyCustody for CallbackCustody {
    fn kind(&self) -> &str {
        CallbackCustody::KIND
    }

    fn generate(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        let key = self.signer.generate(&target.card, slot, algorithm)?;
        let public = PublicKey::from_spki_der(&key.public_key_spki).ok_or_else(|| {
            CustodyError::unavailable("the signer's public key is not a SubjectPublicKeyInfo")
        })?;
        Ok((
            KeyReference {
                custody: CallbackCustody::KIND.to_owned(),
                location: BTreeMap::new(),
                id: key.id,
            },
            public,
        ))
    }

    fn sign(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        let output = self
            .signer
            .sign(&target.card, &reference.id, algorithm, input)?;
        let field = match algorithm {
            Algorithm::EccP256 => 32,
            Algorithm::EccP384 => 48,
            _ => return Ok(Zeroizing::new(output)),
        };
        // Raw r || s (as a Secure Enclave's raw form, or PKCS#11) becomes
        // the DER PIV answers; DER passes as it is.
        if output.len() == 2 * field {
            return ecdsa_der_from_raw(&output)
                .map(Zeroizing::new)
                .ok_or_else(|| CustodyError::unavailable("malformed ECDSA signature"));
        }
        Ok(Zeroizing::new(output))
    }

    fn ecdh(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        Ok(Zeroizing::new(self.signer.ecdh(
            &target.card,
            &reference.id,
            algorithm,
            peer,
        )?))
    }

    fn delete(&self, target: &CustodyTarget, reference: &KeyReference) -> Result<(), CustodyError> {
        Ok(self.signer.delete(&target.card, &reference.id)?)
    }
}

/// An external custody in memory: keys made by the applet's own code but
/// kept outside the image, in this object (lost when it is dropped). For
/// tests and examples of the external path; it can be switched off
/// ([`MemoryCustody::set_available`]) to exercise failures. Its keys are
/// predictable: only with the `testing` feature (this crate's tests).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct MemoryCustody {
    inner: Mutex<MemoryInner>,
}

#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
struct MemoryInner {
    /// ID -> (card, key).
    keys: BTreeMap<String, (String, PrivateKey)>,
    next: u64,
    unavailable: bool,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryCustody {
    /// The custody kind of [`MemoryCustody`].
    pub const KIND: &'static str = "memory";

    /// An empty custody.
    pub fn new() -> MemoryCustody {
        MemoryCustody::default()
    }

    /// Makes every operation fail with [`CustodyError::Unavailable`]
    /// (`false`) or work again (`true`).
    pub fn set_available(&self, available: bool) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.unavailable = !available;
        }
    }

    /// The IDs of the keys the custody holds.
    pub fn ids(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|inner| inner.keys.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The target of a card named `card` whose keys live in this custody.
    pub fn target(card: &str) -> CustodyTarget {
        CustodyTarget {
            custody: MemoryCustody::KIND.to_owned(),
            location: BTreeMap::new(),
            card: card.to_owned(),
        }
    }

    fn with_inner<T>(
        &self,
        f: impl FnOnce(&mut MemoryInner) -> Result<T, CustodyError>,
    ) -> Result<T, CustodyError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| CustodyError::unavailable("memory custody poisoned"))?;
        if inner.unavailable {
            return Err(CustodyError::unavailable("memory custody switched off"));
        }
        f(&mut inner)
    }

    fn store(
        inner: &mut MemoryInner,
        target: &CustodyTarget,
        slot: Slot,
        key: PrivateKey,
    ) -> (KeyReference, PublicKey) {
        inner.next += 1;
        let id = format!("{}-{slot}-{}", target.card, inner.next);
        let public = key.public_key();
        inner.keys.insert(id.clone(), (target.card.clone(), key));
        (MemoryCustody::reference(id), public)
    }

    fn reference(id: String) -> KeyReference {
        KeyReference {
            custody: MemoryCustody::KIND.to_owned(),
            location: BTreeMap::new(),
            id,
        }
    }

    /// The key of `reference`, if it is the card `target` names.
    fn key<'i>(
        inner: &'i MemoryInner,
        target: &CustodyTarget,
        reference: &KeyReference,
    ) -> Result<&'i PrivateKey, CustodyError> {
        inner
            .keys
            .get(&reference.id)
            .filter(|(card, _)| *card == target.card)
            .map(|(_, key)| key)
            .ok_or_else(|| {
                CustodyError::unavailable(format!("no key {} of this card", reference.id))
            })
    }
}

#[cfg(any(test, feature = "testing"))]
fn status_error(status: Status) -> CustodyError {
    match status {
        Status::IncorrectData => CustodyError::InvalidInput {
            reason: "refused by the key".to_owned(),
        },
        other => CustodyError::unavailable(format!("software key failed: {other}")),
    }
}

#[cfg(any(test, feature = "testing"))]
impl KeyCustody for MemoryCustody {
    fn kind(&self) -> &str {
        MemoryCustody::KIND
    }

    fn generate(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        self.with_inner(|inner| {
            let mut rng = CardRng::from_u64(inner.next);
            let key = PrivateKey::generate(algorithm, &mut rng)
                .map_err(|e| CustodyError::unsupported(e.to_string()))?;
            Ok(MemoryCustody::store(inner, target, slot, key))
        })
    }

    fn import(
        &self,
        target: &CustodyTarget,
        slot: Slot,
        key: &PrivateKey,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        self.with_inner(|inner| Ok(MemoryCustody::store(inner, target, slot, key.clone())))
    }

    fn sign(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        self.with_inner(|inner| {
            let key = MemoryCustody::key(inner, target, reference)?;
            let mut rng = CardRng::from_u64(inner.next);
            software_sign(key, algorithm, input, &mut rng).map_err(status_error)
        })
    }

    fn ecdh(
        &self,
        target: &CustodyTarget,
        reference: &KeyReference,
        _algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        self.with_inner(|inner| {
            MemoryCustody::key(inner, target, reference)?
                .ecdh(peer)
                .map_err(status_error)
        })
    }

    fn delete(&self, target: &CustodyTarget, reference: &KeyReference) -> Result<(), CustodyError> {
        self.with_inner(|inner| {
            if inner
                .keys
                .get(&reference.id)
                .is_some_and(|(card, _)| *card == target.card)
            {
                inner.keys.remove(&reference.id);
            }
            Ok(())
        })
    }

    fn keys_of(&self, target: &CustodyTarget) -> Result<Vec<KeyReference>, CustodyError> {
        self.with_inner(|inner| {
            Ok(inner
                .keys
                .iter()
                .filter(|(_, (card, _))| *card == target.card)
                .map(|(id, _)| MemoryCustody::reference(id.clone()))
                .collect())
        })
    }
}

/// The software key operation for `algorithm` (what the applet does for
/// keys in the image), for [`MemoryCustody`].
#[cfg(any(test, feature = "testing"))]
pub(crate) fn software_sign(
    key: &PrivateKey,
    algorithm: Algorithm,
    input: &[u8],
    rng: &mut CardRng,
) -> Result<Zeroizing<Vec<u8>>, Status> {
    let backend = crate::keys::BackendKey::default();
    match algorithm {
        Algorithm::Rsa1024 | Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
            key.rsa_raw(&backend, input, rng)
        }
        Algorithm::EccP256 | Algorithm::EccP384 => {
            key.ecdsa_sign(&backend, input).map(Zeroizing::new)
        }
        Algorithm::Ed25519 => key.ed25519_sign(input).map(Zeroizing::new),
        _ => Err(Status::IncorrectData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[63] = 0x01;
        let der = ecdsa_der_from_raw(&raw).unwrap();
        assert_eq!(der[..5], [0x30, 0x26, 0x02, 0x21, 0x00]);
        assert_eq!(der[der.len() - 3..], [0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_der_from_raw(&[1, 2, 3]), None);
        assert_eq!(
            ecdsa_der_from_raw(&[0, 0]).unwrap(),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
    }

    #[test]
    fn every_error_has_its_status_word() {
        assert_eq!(CustodyError::unavailable("x").status().to_u16(), 0x6F00);
        let refused = CustodyError::Refused { reason: "x".into() };
        assert_eq!(refused.status().to_u16(), 0x6985);
        assert_eq!(CustodyError::unsupported("x").status().to_u16(), 0x6A81);
        let invalid = CustodyError::InvalidInput { reason: "x".into() };
        assert_eq!(invalid.status().to_u16(), 0x6A80);
    }
}
