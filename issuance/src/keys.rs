//! Key algorithms, PIV key slots and key generation for issuance.
//!
//! Generation is driven by the caller's random generator only: with a
//! seeded [`vscard_emulator::CardRng`] (see
//! [`CardProfile::seeded_rng`](super::CardProfile::seeded_rng)) the same
//! seed gives the same keys. RSA-2048 generation takes about a second;
//! P-256 and P-384 are near instant.

use std::fmt;

use der::asn1::ObjectIdentifier;
use der::referenced::OwnedToRef;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use super::error::IssuanceError;
use vscard_applet::keys::PublicKey;

/// RSA encryption (PKCS #1), the algorithm of an RSA public key.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480).
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Key algorithms a card slot can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus and exponent 65537.
    Rsa2048,
    /// ECDSA / ECDH on NIST P-256.
    P256,
    /// ECDSA / ECDH on NIST P-384.
    P384,
}

impl KeyAlgorithm {
    /// The algorithm of a PIV algorithm identifier, if the card supports it.
    pub const fn from_piv_algorithm_id(id: u8) -> Option<KeyAlgorithm> {
        match id {
            0x07 => Some(KeyAlgorithm::Rsa2048),
            0x11 => Some(KeyAlgorithm::P256),
            0x14 => Some(KeyAlgorithm::P384),
            _ => None,
        }
    }

    /// The PIV algorithm identifier (SP 800-78-4 Table 6-2).
    pub const fn piv_algorithm_id(self) -> u8 {
        match self {
            KeyAlgorithm::Rsa2048 => 0x07,
            KeyAlgorithm::P256 => 0x11,
            KeyAlgorithm::P384 => 0x14,
        }
    }

    /// Whether this is an elliptic-curve algorithm.
    pub const fn is_elliptic_curve(self) -> bool {
        !matches!(self, KeyAlgorithm::Rsa2048)
    }

    /// The algorithm of a subject public key, if it is one the card holds.
    pub fn of_public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyAlgorithm, IssuanceError> {
        let oid = spki.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            let key = rsa::RsaPublicKey::try_from(spki.owned_to_ref()).map_err(|error| {
                IssuanceError::UnsupportedPublicKey(format!("RSA key does not decode: {error}"))
            })?;
            let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
            return match bits {
                2048 => Ok(KeyAlgorithm::Rsa2048),
                _ => Err(IssuanceError::UnsupportedPublicKey(format!(
                    "RSA-{bits} (only RSA-2048 is supported)"
                ))),
            };
        }
        if oid != EC_PUBLIC_KEY {
            return Err(IssuanceError::UnsupportedPublicKey(format!(
                "algorithm {oid}"
            )));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
        match curve {
            Some(SECP256R1) => Ok(KeyAlgorithm::P256),
            Some(SECP384R1) => Ok(KeyAlgorithm::P384),
            Some(other) => Err(IssuanceError::UnsupportedPublicKey(format!(
                "elliptic curve {other}"
            ))),
            None => Err(IssuanceError::UnsupportedPublicKey(
                "elliptic-curve key without a named curve".to_owned(),
            )),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::P256 => "P-256",
            KeyAlgorithm::P384 => "P-384",
        })
    }
}

/// The four PIV key slots a card issues certificates for
/// (SP 800-73-4 Part 1 Table 4b). Serialized as `9a`, `9c`, `9d`, `9e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Slot {
    /// 9A, PIV Authentication: client authentication and logon.
    #[serde(rename = "9a")]
    PivAuthentication,
    /// 9C, Digital Signature: signing, PIN-always.
    #[serde(rename = "9c")]
    DigitalSignature,
    /// 9D, Key Management: encryption / key agreement.
    #[serde(rename = "9d")]
    KeyManagement,
    /// 9E, Card Authentication: contactless-style authentication, no PIN.
    #[serde(rename = "9e")]
    CardAuthentication,
}

impl Slot {
    /// All slots in issuance order (also the order keys are drawn from a
    /// seeded generator, so it is part of reproducibility).
    pub const ALL: [Slot; 4] = [
        Slot::PivAuthentication,
        Slot::DigitalSignature,
        Slot::KeyManagement,
        Slot::CardAuthentication,
    ];

    /// The slot of a PIV key reference, if it is one of the four.
    pub const fn from_key_reference(reference: u8) -> Option<Slot> {
        match reference {
            0x9A => Some(Slot::PivAuthentication),
            0x9C => Some(Slot::DigitalSignature),
            0x9D => Some(Slot::KeyManagement),
            0x9E => Some(Slot::CardAuthentication),
            _ => None,
        }
    }

    /// The PIV key reference (9A, 9C, 9D, 9E).
    pub const fn key_reference(self) -> u8 {
        match self {
            Slot::PivAuthentication => 0x9A,
            Slot::DigitalSignature => 0x9C,
            Slot::KeyManagement => 0x9D,
            Slot::CardAuthentication => 0x9E,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.key_reference())
    }
}

/// The card's private key type ([`vscard_applet::PrivateKey`]), with what
/// issuance needs of it: the public key as a `SubjectPublicKeyInfo` and
/// PKCS #8 in and out, in issuance's terms.
pub use vscard_applet::keys::PrivateKey;

impl From<KeyAlgorithm> for vscard_applet::Algorithm {
    fn from(algorithm: KeyAlgorithm) -> vscard_applet::Algorithm {
        match algorithm {
            KeyAlgorithm::Rsa2048 => vscard_applet::Algorithm::Rsa2048,
            KeyAlgorithm::P256 => vscard_applet::Algorithm::EccP256,
            KeyAlgorithm::P384 => vscard_applet::Algorithm::EccP384,
        }
    }
}

/// What issuance needs of the card's [`PrivateKey`]: its algorithm in
/// profile terms, its public key as a `SubjectPublicKeyInfo`, and PKCS #8
/// in and out with issuance's errors.
pub trait IssuanceKey: Sized {
    /// The key's algorithm, in profile terms.
    fn key_algorithm(&self) -> KeyAlgorithm;
    /// The matching public key as a `SubjectPublicKeyInfo`.
    fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, IssuanceError>;
    /// The key as PKCS #8 DER, in memory that is wiped on drop.
    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, IssuanceError>;
    /// A key of `algorithm` from PKCS #8 DER.
    fn from_pkcs8_der(algorithm: KeyAlgorithm, der: &[u8]) -> Result<Self, IssuanceError>;
}

impl IssuanceKey for PrivateKey {
    fn key_algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::Rsa(_) => KeyAlgorithm::Rsa2048,
            PrivateKey::P256(_) => KeyAlgorithm::P256,
            PrivateKey::P384(_) => KeyAlgorithm::P384,
        }
    }

    fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, IssuanceError> {
        public_key_info_of(&self.public_key())
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, IssuanceError> {
        self.to_pkcs8().map_err(|error| IssuanceError::KeyEncoding {
            algorithm: self.key_algorithm(),
            reason: error.to_string(),
        })
    }

    fn from_pkcs8_der(algorithm: KeyAlgorithm, der: &[u8]) -> Result<PrivateKey, IssuanceError> {
        PrivateKey::from_pkcs8(algorithm.into(), der).map_err(|error| IssuanceError::KeyEncoding {
            algorithm,
            reason: error.to_string(),
        })
    }
}

/// `public` as a `SubjectPublicKeyInfo`.
pub fn public_key_info_of(public: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, IssuanceError> {
    let encoded = match public {
        PublicKey::Rsa(key) => SubjectPublicKeyInfoOwned::from_key(key),
        PublicKey::P256(key) => SubjectPublicKeyInfoOwned::from_key(key),
        PublicKey::P384(key) => SubjectPublicKeyInfoOwned::from_key(key),
    };
    encoded.map_err(|error| IssuanceError::KeyEncoding {
        algorithm: match public {
            PublicKey::Rsa(_) => KeyAlgorithm::Rsa2048,
            PublicKey::P256(_) => KeyAlgorithm::P256,
            PublicKey::P384(_) => KeyAlgorithm::P384,
        },
        reason: error.to_string(),
    })
}

/// A freshly generated key pair.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The private key (wiped on drop).
    pub private_key: PrivateKey,
    /// The public key, ready to be certified.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// The same public key, ready to be installed with the private key
    /// (derived once: for an EC key that is a scalar multiplication).
    pub public: PublicKey,
}

/// Generates a key pair of `algorithm` from `rng`.
///
/// Deterministic for a deterministic `rng`: a seeded generator gives the
/// same key every time.
pub fn generate_key<R: CryptoRng + ?Sized>(
    algorithm: KeyAlgorithm,
    rng: &mut R,
) -> Result<GeneratedKey, IssuanceError> {
    let private_key = PrivateKey::generate(algorithm.into(), rng).map_err(|error| {
        IssuanceError::KeyGeneration {
            algorithm,
            reason: error.to_string(),
        }
    })?;
    let public = private_key.public_key();
    let public_key = public_key_info_of(&public)?;
    Ok(GeneratedKey {
        private_key,
        public_key,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip() {
        for slot in Slot::ALL {
            assert_eq!(Slot::from_key_reference(slot.key_reference()), Some(slot));
        }
        assert_eq!(Slot::from_key_reference(0x9B), None);
        for algorithm in [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::P256,
            KeyAlgorithm::P384,
        ] {
            let id = algorithm.piv_algorithm_id();
            assert_eq!(KeyAlgorithm::from_piv_algorithm_id(id), Some(algorithm));
        }
        assert_eq!(Slot::DigitalSignature.to_string(), "9C");
    }
}
