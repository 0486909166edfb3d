//! Persisting slot keys: a [`StoredKey`] is a private key with its PIN
//! policy and origin, serialised as PKCS#8 DER in hex, or, for a key held
//! by an external custody ([`crate::custody`]), its [`KeyReference`] and
//! its public key (SPKI DER in hex, field `public`), never key material.
//!
//! Contract: the PKCS#8 encoding lives in a zeroizing buffer and is never
//! printed; decoding reuses an already decoded key whose material is
//! unchanged (RSA keys are slow to validate, and the runtime reloads state
//! after every failed command that staged changes). A software key's
//! stored form has no `custody` / `public` fields: images written before
//! custody existed load and save byte for byte unchanged. Every
//! private-key operation goes through [`StoredKey::sign`] or
//! [`StoredKey::agree`], which dispatch to the software key or the
//! custody.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use vscard_emulator::{Status, hex_secret};
use zeroize::Zeroizing;

use crate::custody::{CustodyError, CustodyTarget, KeyCustody, KeyReference};
use crate::keys::{BackendKey, KeyError, PrivateKey, PublicKey, left_pad};
use crate::reference::{Algorithm, PinPolicy};
use crate::touch_policy::TouchPolicy;

/// How a key came to be in its slot (GET METADATA tag `03`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// `01`: generated on the card.
    Generated,
    /// `02`: imported.
    Imported,
}

impl Origin {
    /// The metadata byte.
    pub const fn byte(self) -> u8 {
        match self {
            Origin::Generated => 0x01,
            Origin::Imported => 0x02,
        }
    }
}

/// Where a stored key's private half is.
#[derive(Clone)]
enum Material {
    /// In the image (software custody).
    Software {
        key: PrivateKey,
        /// The crypto backend's form of `key` (empty without the `openssl`
        /// feature), reused with `key` when the material is unchanged.
        backend: BackendKey,
        pkcs8: Zeroizing<Vec<u8>>,
    },
    /// In an external custody.
    External {
        reference: KeyReference,
        /// Boxed: an RSA public key is large, and most keys are software.
        public: Box<PublicKey>,
        /// `public` as SPKI DER, the persisted form.
        spki: Vec<u8>,
        /// An ECDSA answer of the custody verified against `public` in
        /// this process (see [`StoredKey::sign`]); shared by the copies
        /// of this key and kept while the key is the same.
        verified: Arc<AtomicBool>,
    },
}

/// A slot's key with its policy and origin, as persisted.
#[derive(Clone)]
pub struct StoredKey {
    material: Material,
    /// When the key needs the PIN.
    pub pin_policy: PinPolicy,
    /// When the key needs a touch.
    pub touch_policy: TouchPolicy,
    /// Generated or imported.
    pub origin: Origin,
}

/// The stored form of a [`StoredKey`], before it is decoded (the `keys`
/// part holds one per slot). The PKCS#8 encoding is zeroized on drop.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredKeyRepr {
    algorithm: Algorithm,
    pin_policy: PinPolicy,
    /// Absent for "never": keys stored before touch policies existed load
    /// as such, and their images stay byte for byte unchanged.
    #[serde(default, skip_serializing_if = "TouchPolicy::is_never")]
    touch_policy: TouchPolicy,
    origin: Origin,
    /// Empty (and not written) for a key in an external custody.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_secret")]
    pkcs8: Vec<u8>,
    /// Where a key in an external custody is; absent for a software key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custody: Option<KeyReference>,
    /// The public key (SPKI DER, hex) of a key in an external custody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public: Option<String>,
}

impl Drop for StoredKeyRepr {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pkcs8);
    }
}

impl StoredKey {
    /// A key with its policy and origin.
    pub fn new(key: PrivateKey, pin_policy: PinPolicy, origin: Origin) -> Result<Self, KeyError> {
        let public = key.public_key();
        StoredKey::with_public(key, &public, pin_policy, origin)
    }

    /// As [`StoredKey::new`], with the key's public key already derived
    /// (the persisted form includes it; deriving it again would cost a
    /// scalar multiplication per EC key).
    pub(crate) fn with_public(
        key: PrivateKey,
        public: &PublicKey,
        pin_policy: PinPolicy,
        origin: Origin,
    ) -> Result<Self, KeyError> {
        key.validate()?;
        let pkcs8 = key.to_pkcs8_with(public)?;
        Ok(StoredKey {
            material: Material::Software {
                key,
                backend: BackendKey::default(),
                pkcs8,
            },
            pin_policy,
            touch_policy: TouchPolicy::Never,
            origin,
        })
    }

    /// This key with `touch_policy`.
    pub fn with_touch_policy(mut self, touch_policy: TouchPolicy) -> Self {
        self.touch_policy = touch_policy;
        self
    }

    /// A key held by an external custody, with its public key.
    pub(crate) fn external(
        reference: KeyReference,
        public: PublicKey,
        pin_policy: PinPolicy,
        origin: Origin,
    ) -> Result<Self, KeyError> {
        use der::Encode as _;
        let algorithm = public.algorithm();
        let spki = public
            .subject_public_key_info()
            .ok()
            .and_then(|info| info.to_der().ok())
            .ok_or(KeyError::ExternalPublic(algorithm))?;
        if let PublicKey::Rsa(key) = &public {
            use rsa::traits::PublicKeyParts as _;
            if Algorithm::rsa_of_bits(key.size() * 8).is_none() {
                return Err(KeyError::RsaSize(key.size() * 8));
            }
        }
        Ok(StoredKey {
            material: Material::External {
                reference,
                public: Box::new(public),
                spki,
                verified: Arc::default(),
            },
            pin_policy,
            touch_policy: TouchPolicy::Never,
            origin,
        })
    }

    /// The private key, when it is in the image.
    pub(crate) fn software_key(&self) -> Option<&PrivateKey> {
        match &self.material {
            Material::Software { key, .. } => Some(key),
            Material::External { .. } => None,
        }
    }

    /// Where the key is, when an external custody holds it.
    pub fn custody_reference(&self) -> Option<&KeyReference> {
        match &self.material {
            Material::Software { .. } => None,
            Material::External { reference, .. } => Some(reference),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &self.material {
            Material::Software { key, .. } => key.algorithm(),
            Material::External { public, .. } => public.algorithm(),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match &self.material {
            Material::Software { key, .. } => key.public_key(),
            Material::External { public, .. } => (**public).clone(),
        }
    }

    /// A signature operation of `algorithm` (the key's) on what PIV gives:
    /// raw RSA on a padded block, ECDSA on a digest, Ed25519 on a message
    /// (`6A80` for an input the key cannot take or an algorithm that does
    /// not sign). A key in an external custody goes to `custody`.
    pub(crate) fn sign(
        &self,
        custody: Option<&dyn KeyCustody>,
        target: Option<&CustodyTarget>,
        algorithm: Algorithm,
        input: &[u8],
        rng: &mut vscard_emulator::CardRng,
    ) -> Result<Zeroizing<Vec<u8>>, Status> {
        match &self.material {
            Material::Software { key, backend, .. } => match algorithm {
                Algorithm::Rsa1024
                | Algorithm::Rsa2048
                | Algorithm::Rsa3072
                | Algorithm::Rsa4096 => key.rsa_raw(backend, input, rng),
                Algorithm::EccP256 | Algorithm::EccP384 => {
                    key.ecdsa_sign(backend, input).map(Zeroizing::new)
                }
                Algorithm::Ed25519 => key.ed25519_sign(input).map(Zeroizing::new),
                _ => Err(Status::IncorrectData),
            },
            Material::External {
                reference,
                public,
                verified,
                ..
            } => {
                let input: Zeroizing<Vec<u8>> = match (algorithm, &**public) {
                    (_, PublicKey::Rsa(key)) => {
                        use rsa::traits::PublicKeyParts as _;
                        // As for a key in the image: exactly the modulus
                        // length, and smaller than the modulus.
                        let modulus = key.n_bytes();
                        if input.len() != modulus.len() || input >= &modulus[..] {
                            return Err(Status::IncorrectData);
                        }
                        Zeroizing::new(input.to_vec())
                    }
                    (Algorithm::EccP256 | Algorithm::EccP384, _) => {
                        if input.is_empty() {
                            return Err(Status::IncorrectData);
                        }
                        let size = if algorithm == Algorithm::EccP256 {
                            32
                        } else {
                            48
                        };
                        left_pad(&input[..input.len().min(size)], size)
                    }
                    (Algorithm::Ed25519, _) => Zeroizing::new(input.to_vec()),
                    _ => return Err(Status::IncorrectData),
                };
                let (custody, target) = attached(custody, target, reference)?;
                let answer = custody
                    .sign(target, reference, algorithm, &input)
                    .map_err(|error| failure(error, reference, "sign"))?;
                // The custody is not trusted to have signed right: the
                // answer is checked against the key's public key. Raw RSA
                // and Ed25519 every time (a faulty RSA-CRT or
                // deterministic-nonce answer can give the private key
                // away; the RSA check is one public operation). ECDSA
                // (a random nonce: a faulty answer leaks nothing, it only
                // fails to verify where it is used) once per key and
                // process: that the custody's key is the card's; checking
                // every answer would cost a verification, twice the
                // token's signature, per signature.
                let ecdsa = matches!(&**public, PublicKey::P256(_) | PublicKey::P384(_));
                if !(ecdsa && verified.load(Ordering::Acquire)) {
                    if let Err(why) = check_signature(public, &input, &answer) {
                        tracing::error!(target: "vscard::piv", key = %reference, why,
                            "the key custody answered a signature that does not verify");
                        return Err(Status::UnknownError);
                    }
                    verified.store(true, Ordering::Release);
                }
                Ok(answer)
            }
        }
    }

    /// Key agreement (ECDH on P-256 / P-384, X25519) with the host's
    /// public key; `6A80` for a point off the curve or a key that does not
    /// agree.
    pub(crate) fn agree(
        &self,
        custody: Option<&dyn KeyCustody>,
        target: Option<&CustodyTarget>,
        point: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Status> {
        match &self.material {
            Material::Software { key, .. } => match key.algorithm() {
                Algorithm::EccP256 | Algorithm::EccP384 | Algorithm::X25519 => key.ecdh(point),
                _ => Err(Status::IncorrectData),
            },
            Material::External {
                reference, public, ..
            } => {
                let valid = match &**public {
                    PublicKey::P256(_) => {
                        point.first() == Some(&0x04)
                            && p256::PublicKey::from_sec1_bytes(point).is_ok()
                    }
                    PublicKey::P384(_) => {
                        point.first() == Some(&0x04)
                            && p384::PublicKey::from_sec1_bytes(point).is_ok()
                    }
                    PublicKey::X25519(_) => point.len() == 32,
                    _ => false,
                };
                if !valid {
                    return Err(Status::IncorrectData);
                }
                let (custody, target) = attached(custody, target, reference)?;
                custody
                    .ecdh(target, reference, public.algorithm(), point)
                    .map_err(|error| failure(error, reference, "key agreement"))
            }
        }
    }

    /// True when `other` holds the same key material (constant time).
    fn same_material(&self, pkcs8: &[u8]) -> bool {
        match &self.material {
            Material::Software { pkcs8: ours, .. } => bool::from(ours.as_slice().ct_eq(pkcs8)),
            Material::External { .. } => false,
        }
    }

    /// Decodes a persisted key, reusing `previous` when its material is
    /// unchanged (RSA keys are slow to validate, and the runtime reloads
    /// state after every failed command).
    pub(crate) fn from_repr(
        repr: &StoredKeyRepr,
        previous: Option<&StoredKey>,
    ) -> Result<Self, KeyError> {
        let material = match (&repr.custody, repr.pkcs8.is_empty()) {
            (None, false) => {
                let (key, backend) = match previous {
                    Some(old) if old.same_material(&repr.pkcs8) => match &old.material {
                        Material::Software { key, backend, .. } => (key.clone(), backend.clone()),
                        Material::External { .. } => unreachable_software(repr)?,
                    },
                    _ => (
                        PrivateKey::from_pkcs8(repr.algorithm, &repr.pkcs8)?,
                        BackendKey::default(),
                    ),
                };
                Material::Software {
                    key,
                    backend,
                    pkcs8: Zeroizing::new(repr.pkcs8.clone()),
                }
            }
            (Some(reference), true) => {
                let spki = repr
                    .public
                    .as_deref()
                    .and_then(|hex| hex::decode(hex).ok())
                    .ok_or(KeyError::ExternalPublic(repr.algorithm))?;
                let (public, verified) = match previous.map(|old| &old.material) {
                    Some(Material::External {
                        public,
                        spki: old,
                        reference: old_reference,
                        verified,
                    }) if *old == spki => {
                        // The same key (reference and public key): what
                        // was verified of it still holds.
                        let verified = if old_reference == reference {
                            Arc::clone(verified)
                        } else {
                            Arc::default()
                        };
                        (public.clone(), verified)
                    }
                    _ => (
                        Box::new(
                            PublicKey::from_spki_der(&spki)
                                .ok_or(KeyError::ExternalPublic(repr.algorithm))?,
                        ),
                        Arc::default(),
                    ),
                };
                Material::External {
                    reference: reference.clone(),
                    public,
                    spki,
                    verified,
                }
            }
            _ => return Err(KeyError::Material),
        };
        let stored = StoredKey {
            material,
            pin_policy: repr.pin_policy,
            touch_policy: repr.touch_policy,
            origin: repr.origin,
        };
        if stored.algorithm() != repr.algorithm {
            return Err(KeyError::AlgorithmMismatch {
                stored: repr.algorithm,
                found: stored.algorithm(),
            });
        }
        Ok(stored)
    }
}

/// A previous key with the same PKCS#8 is a software key: this cannot be
/// reached, but decodes the key again rather than panic.
fn unreachable_software(repr: &StoredKeyRepr) -> Result<(PrivateKey, BackendKey), KeyError> {
    Ok((
        PrivateKey::from_pkcs8(repr.algorithm, &repr.pkcs8)?,
        BackendKey::default(),
    ))
}

/// The attached custody if it is the one holding `reference`; `6F00`
/// (logged) otherwise.
/// Checks what an external custody answered for a signature of `input`
/// (as the applet passed it) against the key's public key: for RSA
/// exactly the modulus length and `answer^e mod n == input`; for ECDSA a
/// DER signature that verifies over the digest; for Ed25519 64 bytes that
/// verify over the message.
fn check_signature(public: &PublicKey, input: &[u8], answer: &[u8]) -> Result<(), &'static str> {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    match public {
        PublicKey::Rsa(key) => {
            use rsa::traits::PublicKeyParts as _;
            let modulus = key.n_bytes();
            if answer.len() != modulus.len() {
                return Err("an RSA answer not as long as the modulus");
            }
            if answer >= &modulus[..] {
                return Err("an RSA answer not smaller than the modulus");
            }
            let s = rsa::BoxedUint::from_be_slice(answer, key.n_bits_precision())
                .map_err(|_| "an RSA answer that is not a number mod n")?;
            let m = rsa::hazmat::rsa_encrypt(key, &s).map_err(|_| "an RSA answer mod n")?;
            let m = m.to_be_bytes();
            let trim = |bytes: &[u8]| -> Vec<u8> {
                bytes.iter().copied().skip_while(|b| *b == 0).collect()
            };
            if trim(&m) != trim(input) {
                return Err("an RSA answer whose public operation is not the input");
            }
            Ok(())
        }
        PublicKey::P256(key) => {
            let signature = p256::ecdsa::Signature::from_der(answer)
                .map_err(|_| "an ECDSA answer that is not a DER signature")?;
            p256::ecdsa::VerifyingKey::from(key)
                .verify_prehash(input, &signature)
                .map_err(|_| "an ECDSA signature that does not verify")
        }
        PublicKey::P384(key) => {
            let signature = p384::ecdsa::Signature::from_der(answer)
                .map_err(|_| "an ECDSA answer that is not a DER signature")?;
            p384::ecdsa::VerifyingKey::from(key)
                .verify_prehash(input, &signature)
                .map_err(|_| "an ECDSA signature that does not verify")
        }
        PublicKey::Ed25519(key) => {
            let signature = ed25519_dalek::Signature::from_slice(answer)
                .map_err(|_| "an Ed25519 answer that is not 64 bytes")?;
            key.verify(input, &signature)
                .map_err(|_| "an Ed25519 signature that does not verify")
        }
        PublicKey::X25519(_) => Err("a signature by a key-agreement key"),
    }
}

/// The attached custody of `reference`, and the card's custody target
/// (whose card name the custody checks the reference against).
fn attached<'c, 't>(
    custody: Option<&'c dyn KeyCustody>,
    target: Option<&'t CustodyTarget>,
    reference: &KeyReference,
) -> Result<(&'c dyn KeyCustody, &'t CustodyTarget), Status> {
    match custody {
        Some(custody) if custody.kind() == reference.custody => match target {
            Some(target) if target.custody == reference.custody => Ok((custody, target)),
            _ => {
                tracing::error!(target: "vscard::piv", key = %reference,
                    "the key is held by an external custody the card has no target in");
                Err(Status::UnknownError)
            }
        },
        Some(custody) => {
            tracing::error!(target: "vscard::piv", key = %reference, attached = custody.kind(),
                "the key's custody is not the one attached to the card");
            Err(Status::UnknownError)
        }
        None => {
            tracing::error!(target: "vscard::piv", key = %reference,
                "the key is held by an external custody and none is attached to the card");
            Err(Status::UnknownError)
        }
    }
}

/// Logs a custody failure (an unavailable custody as an error, the others
/// as warnings) and gives its status word.
pub(crate) fn failure(error: CustodyError, reference: &KeyReference, operation: &str) -> Status {
    match &error {
        CustodyError::Unavailable { .. } => {
            tracing::error!(target: "vscard::piv", key = %reference, operation, %error, "key custody failed");
        }
        _ => {
            tracing::warn!(target: "vscard::piv", key = %reference, operation, %error, "key custody refused");
        }
    }
    error.status()
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("algorithm", &self.algorithm())
            .field("pin_policy", &self.pin_policy)
            .field("touch_policy", &self.touch_policy)
            .field("origin", &self.origin)
            .field("custody", &self.custody_reference())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl StoredKey {
    /// The stored form of this key.
    pub(crate) fn to_repr(&self) -> StoredKeyRepr {
        let (pkcs8, custody, public) = match &self.material {
            Material::Software { pkcs8, .. } => (pkcs8.to_vec(), None, None),
            Material::External {
                reference, spki, ..
            } => (
                Vec::new(),
                Some(reference.clone()),
                Some(hex::encode_upper(spki)),
            ),
        };
        StoredKeyRepr {
            algorithm: self.algorithm(),
            pin_policy: self.pin_policy,
            touch_policy: self.touch_policy,
            origin: self.origin,
            pkcs8,
            custody,
            public,
        }
    }
}

impl Serialize for StoredKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_repr().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = StoredKeyRepr::deserialize(deserializer)?;
        StoredKey::from_repr(&repr, None).map_err(serde::de::Error::custom)
    }
}
