//! Persisting slot keys: a [`StoredKey`] is a private key with its PIN
//! policy and origin, serialised as PKCS#8 DER in hex.
//!
//! Contract: the PKCS#8 encoding lives in a zeroizing buffer and is never
//! printed; decoding reuses an already decoded key whose material is
//! unchanged (RSA keys are slow to validate, and the runtime reloads state
//! after every failed command that staged changes).

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use vscard_emulator::hex_secret;
use zeroize::Zeroizing;

use crate::keys::{BackendKey, KeyError, PrivateKey, PublicKey};
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

/// A slot's key with its policy and origin, as persisted.
#[derive(Clone)]
pub struct StoredKey {
    key: PrivateKey,
    /// The crypto backend's form of `key` (empty without the `openssl`
    /// feature), reused with `key` when the material is unchanged.
    backend: BackendKey,
    pkcs8: Zeroizing<Vec<u8>>,
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
    #[serde(with = "hex_secret")]
    pkcs8: Vec<u8>,
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
            key,
            backend: BackendKey::default(),
            pkcs8,
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

    /// The private key.
    pub(crate) fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The raw RSA private-key operation ([`PrivateKey::rsa_raw`]).
    pub(crate) fn rsa_raw<R: vscard_emulator::rand_core::CryptoRng + ?Sized>(
        &self,
        block: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, vscard_emulator::Status> {
        self.key.rsa_raw(&self.backend, block, rng)
    }

    /// ECDSA over a digest ([`PrivateKey::ecdsa_sign`]).
    pub(crate) fn ecdsa_sign(&self, digest: &[u8]) -> Result<Vec<u8>, vscard_emulator::Status> {
        self.key.ecdsa_sign(&self.backend, digest)
    }

    /// True when `other` holds the same key material (constant time).
    fn same_material(&self, pkcs8: &[u8]) -> bool {
        bool::from(self.pkcs8.as_slice().ct_eq(pkcs8))
    }

    /// Decodes a persisted key, reusing `previous` when its material is
    /// unchanged (RSA keys are slow to validate, and the runtime reloads
    /// state after every failed command).
    pub(crate) fn from_repr(
        repr: &StoredKeyRepr,
        previous: Option<&StoredKey>,
    ) -> Result<Self, KeyError> {
        let (key, backend) = match previous {
            Some(old) if old.same_material(&repr.pkcs8) => (old.key.clone(), old.backend.clone()),
            _ => (
                PrivateKey::from_pkcs8(repr.algorithm, &repr.pkcs8)?,
                BackendKey::default(),
            ),
        };
        if key.algorithm() != repr.algorithm {
            return Err(KeyError::AlgorithmMismatch {
                stored: repr.algorithm,
                found: key.algorithm(),
            });
        }
        Ok(StoredKey {
            key,
            backend,
            pkcs8: Zeroizing::new(repr.pkcs8.clone()),
            pin_policy: repr.pin_policy,
            touch_policy: repr.touch_policy,
            origin: repr.origin,
        })
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("algorithm", &self.algorithm())
            .field("pin_policy", &self.pin_policy)
            .field("touch_policy", &self.touch_policy)
            .field("origin", &self.origin)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl StoredKey {
    /// The stored form of this key.
    pub(crate) fn to_repr(&self) -> StoredKeyRepr {
        StoredKeyRepr {
            algorithm: self.algorithm(),
            pin_policy: self.pin_policy,
            touch_policy: self.touch_policy,
            origin: self.origin,
            pkcs8: self.pkcs8.to_vec(),
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
