//! Key generation and public-key identification for issuance, in the
//! applet's own terms ([`Algorithm`], [`Slot`], [`PrivateKey`]).
//!
//! Generation is driven by the caller's random generator only: with a
//! seeded [`vscard_emulator::CardRng`] (see
//! [`CardProfile::seeded_rng`](super::CardProfile::seeded_rng)) the same
//! seed gives the same keys. RSA-2048 generation takes about a second,
//! RSA-4096 tens of seconds; the elliptic curves are near instant.

use der::asn1::ObjectIdentifier;
use der::referenced::OwnedToRef;
use rand_core::CryptoRng;
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use super::error::{IssuanceError, KeyEncodingError, UnsupportedKey};
use vscard_applet::keys::{PrivateKey, PublicKey};
use vscard_applet::{Algorithm, Slot};

/// RSA encryption (PKCS #1), the algorithm of an RSA public key.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480).
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `id-Ed25519` (RFC 8410).
const ED25519: ObjectIdentifier = vscard_applet::keys::ED25519_OID;
/// `id-X25519` (RFC 8410).
const X25519: ObjectIdentifier = vscard_applet::keys::X25519_OID;

/// The four PIV key slots a card issues certificates for (SP 800-73-4
/// Part 1 Table 4b), in issuance order: also the order keys are drawn from
/// a seeded generator, so it is part of reproducibility.
pub const CARD_SLOTS: [Slot; 4] = [
    Slot::AUTHENTICATION,
    Slot::SIGNATURE,
    Slot::KEY_MANAGEMENT,
    Slot::CARD_AUTHENTICATION,
];

/// The algorithm of a subject public key, if it is one a card slot holds.
pub fn algorithm_of_public_key(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<Algorithm, IssuanceError> {
    let oid = spki.algorithm.oid;
    if oid == RSA_ENCRYPTION {
        let key = rsa::RsaPublicKey::try_from(spki.owned_to_ref()).map_err(UnsupportedKey::Rsa)?;
        let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
        return Algorithm::rsa_of_bits(bits).ok_or_else(|| UnsupportedKey::RsaSize { bits }.into());
    }
    // RFC 8410: no parameters, the raw 32-byte key as the BIT STRING.
    if oid == ED25519 || oid == X25519 {
        let raw = spki.subject_public_key.as_bytes();
        if spki.algorithm.parameters.is_some() || raw.is_none_or(|raw| raw.len() != 32) {
            return Err(UnsupportedKey::Algorithm { oid }.into());
        }
        return Ok(if oid == ED25519 {
            Algorithm::Ed25519
        } else {
            Algorithm::X25519
        });
    }
    if oid != EC_PUBLIC_KEY {
        return Err(UnsupportedKey::Algorithm { oid }.into());
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
    match curve {
        Some(SECP256R1) => Ok(Algorithm::EccP256),
        Some(SECP384R1) => Ok(Algorithm::EccP384),
        Some(other) => Err(UnsupportedKey::Curve { oid: other }.into()),
        None => Err(UnsupportedKey::NoNamedCurve.into()),
    }
}

/// `key`'s public key as a `SubjectPublicKeyInfo`.
pub fn public_key_info(key: &PrivateKey) -> Result<SubjectPublicKeyInfoOwned, IssuanceError> {
    public_key_info_of(&key.public_key())
}

/// `key` as PKCS #8 DER, in memory that is wiped on drop.
pub fn private_key_to_pkcs8(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>, IssuanceError> {
    key.to_pkcs8().map_err(|source| IssuanceError::KeyEncoding {
        algorithm: key.algorithm(),
        source: KeyEncodingError::Card(source),
    })
}

/// A key of `algorithm` from PKCS #8 DER.
pub fn private_key_from_pkcs8(
    algorithm: Algorithm,
    der: &[u8],
) -> Result<PrivateKey, IssuanceError> {
    PrivateKey::from_pkcs8(algorithm, der).map_err(|source| IssuanceError::KeyEncoding {
        algorithm,
        source: KeyEncodingError::Card(source),
    })
}

/// `public` as a `SubjectPublicKeyInfo`.
pub fn public_key_info_of(public: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, IssuanceError> {
    let encoded = match public {
        PublicKey::Rsa(key) => SubjectPublicKeyInfoOwned::from_key(key),
        PublicKey::P256(key) => SubjectPublicKeyInfoOwned::from_key(key),
        PublicKey::P384(key) => SubjectPublicKeyInfoOwned::from_key(key),
        PublicKey::Ed25519(key) => curve25519_info(ED25519, key.as_bytes()),
        PublicKey::X25519(key) => curve25519_info(X25519, key.as_bytes()),
    };
    encoded.map_err(|source| IssuanceError::KeyEncoding {
        algorithm: public.algorithm(),
        source: KeyEncodingError::PublicKey(source),
    })
}

/// An RFC 8410 `SubjectPublicKeyInfo`: the curve's OID without
/// parameters, the raw key as the BIT STRING.
fn curve25519_info(
    oid: ObjectIdentifier,
    raw: &[u8; 32],
) -> Result<SubjectPublicKeyInfoOwned, spki::Error> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        },
        subject_public_key: der::asn1::BitString::from_bytes(raw)?,
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
    algorithm: Algorithm,
    rng: &mut R,
) -> Result<GeneratedKey, IssuanceError> {
    let private_key = PrivateKey::generate(algorithm, rng)
        .map_err(|source| IssuanceError::KeyGeneration { algorithm, source })?;
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
    fn card_slots_are_the_four_piv_keys() {
        let bytes = CARD_SLOTS.map(Slot::byte);
        assert_eq!(bytes, [0x9A, 0x9C, 0x9D, 0x9E]);
        assert_eq!(Slot::SIGNATURE.to_string(), "9C");
    }
}
