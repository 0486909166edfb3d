//! Asymmetric keys in the card's slots: the private-key operations PIV
//! defines (SP 800-73-4 Part 2 3.2.4 and Appendix A), key generation and
//! import, and the public-key encodings of GENERATE and GET METADATA.
//!
//! Contract: a [`PrivateKey`] never leaves this module in any form the
//! host can read: the only outputs are signatures, raw RSA results,
//! shared secrets and public keys. Private keys are zeroized on drop by
//! their crates; [`crate::stored_key::StoredKey`] keeps the PKCS#8 encoding in a zeroizing
//! buffer and prints neither.
//!
//! Backends: RustCrypto (`rsa`, `p256`, `p384`, `ed25519-dalek`,
//! `x25519-dalek`) by default. With the cargo feature `openssl`, raw RSA
//! and ECDSA signing go through the system OpenSSL instead (about 3x
//! faster for RSA-2048, BENCHMARKS.md); ECDH, Ed25519, X25519, key
//! generation, import and encodings stay on RustCrypto either way.
//!
//! Ed25519 and X25519 (YubiKey 5.7 key types `E0` / `E1`) use the Yubico
//! encodings: the public key is the raw 32 bytes in tag `86`, an Ed25519
//! signature is the raw 64 bytes `R || S` over the whole message the host
//! sends (PureEdDSA, RFC 8032), an X25519 agreement takes the peer's raw
//! 32-byte public key in tag `85` and answers the raw shared secret.

use std::fmt;

use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::{BoxedUint, RsaPrivateKey, RsaPublicKey};
use vscard_emulator::Status;
use vscard_emulator::rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::reference::Algorithm;
use crate::tlv::Writer;

/// Why a key cannot be generated, installed or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm is not an asymmetric algorithm this card supports.
    #[error("algorithm {0:?} is not an asymmetric algorithm of this card")]
    Algorithm(Algorithm),
    /// An RSA key whose modulus is not 1024, 2048, 3072 or 4096 bits.
    #[error("an RSA key must have a 1024, 2048, 3072 or 4096-bit modulus, got {0} bits")]
    RsaSize(usize),
    /// RSA key generation failed (the random generator, or no prime found).
    #[error("RSA key generation failed")]
    Generate(#[source] rsa::Error),
    /// IMPORT KEY primes that cannot make a key of the requested size.
    #[error("p and q must be two different odd {0}-bit primes")]
    RsaPrimes(usize),
    /// p and q do not make an RSA key with exponent 65537.
    #[error("p and q do not make an RSA key")]
    RsaFromPrimes(#[source] rsa::Error),
    /// The imported CRT values (dP, dQ, qInv) are not those of p and q.
    #[error("CRT values do not match p and q")]
    RsaCrtMismatch,
    /// An EC private scalar that is zero, too large or of the wrong length.
    #[error("invalid {algorithm:?} private scalar")]
    EcScalar {
        /// The curve.
        algorithm: Algorithm,
        /// The curve crate's error.
        #[source]
        source: p256::elliptic_curve::Error,
    },
    /// An Ed25519 or X25519 private key that is not 32 bytes.
    #[error("an {0:?} private key must be 32 bytes")]
    Curve25519Length(Algorithm),
    /// The key could not be encoded as PKCS#8.
    #[error("cannot encode the key as PKCS#8")]
    Encode(#[source] pkcs8::Error),
    /// A PKCS#8 structure could not be built around an EC key.
    #[error("cannot encode the EC key as PKCS#8")]
    EncodeDer(#[source] der::Error),
    /// A stored PKCS#8 key does not decode as a key of its algorithm.
    #[error("the stored {algorithm:?} key does not decode")]
    Decode {
        /// The algorithm the key is stored as.
        algorithm: Algorithm,
        /// The decoder's error.
        #[source]
        source: pkcs8::Error,
    },
    /// A stored key whose material is of another algorithm than the one
    /// stored beside it.
    #[error("the key is stored as {stored:?} but is a {found:?} key")]
    AlgorithmMismatch {
        /// The algorithm stored beside the key.
        stored: Algorithm,
        /// The key's own algorithm.
        found: Algorithm,
    },
    /// A key held by an external custody whose stored public key is
    /// missing or does not decode.
    #[error("the {0:?} key held by an external custody has no valid public key")]
    ExternalPublic(Algorithm),
    /// A stored key with both, or neither, of key material and a custody
    /// reference.
    #[error("a stored key needs either key material or a custody reference")]
    Material,
}

/// `id-Ed25519` (RFC 8410).
pub const ED25519_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-X25519` (RFC 8410).
pub const X25519_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.110");

/// A private key held in a slot.
#[derive(Clone)]
pub enum PrivateKey {
    /// RSA-1024, 2048, 3072 or 4096 (the modulus size tells).
    Rsa(Box<RsaPrivateKey>),
    /// ECC P-256.
    P256(p256::SecretKey),
    /// ECC P-384.
    P384(p384::SecretKey),
    /// Ed25519 (zeroized on drop by ed25519-dalek).
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// X25519 (zeroized on drop by x25519-dalek).
    X25519(Box<x25519_dalek::StaticSecret>),
}

/// The public half of a slot's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA-1024, 2048, 3072 or 4096.
    Rsa(RsaPublicKey),
    /// ECC P-256.
    P256(p256::PublicKey),
    /// ECC P-384.
    P384(p384::PublicKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// X25519.
    X25519(x25519_dalek::PublicKey),
}

/// The RSA algorithm of a modulus size in bytes (`Rsa2048` for a size the
/// card cannot hold: [`PrivateKey::validate`] refuses those keys).
fn rsa_algorithm(bytes: usize) -> Algorithm {
    Algorithm::rsa_of_bits(bytes * 8).unwrap_or(Algorithm::Rsa2048)
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, <redacted>)", self.algorithm())
    }
}

impl From<RsaPrivateKey> for PrivateKey {
    fn from(key: RsaPrivateKey) -> Self {
        PrivateKey::Rsa(Box::new(key))
    }
}

impl From<p256::SecretKey> for PrivateKey {
    fn from(key: p256::SecretKey) -> Self {
        PrivateKey::P256(key)
    }
}

impl From<p384::SecretKey> for PrivateKey {
    fn from(key: p384::SecretKey) -> Self {
        PrivateKey::P384(key)
    }
}

impl PrivateKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Rsa(key) => rsa_algorithm(key.size()),
            PrivateKey::P256(_) => Algorithm::EccP256,
            PrivateKey::P384(_) => Algorithm::EccP384,
            PrivateKey::Ed25519(_) => Algorithm::Ed25519,
            PrivateKey::X25519(_) => Algorithm::X25519,
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(key) => PublicKey::Rsa(key.to_public_key()),
            PrivateKey::P256(key) => PublicKey::P256(key.public_key()),
            PrivateKey::P384(key) => PublicKey::P384(key.public_key()),
            PrivateKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            PrivateKey::X25519(key) => PublicKey::X25519(x25519_dalek::PublicKey::from(&**key)),
        }
    }

    /// Generates a key on the card. RSA-2048 takes a second or more,
    /// RSA-4096 (with the dependencies optimised) tens of seconds.
    pub fn generate<R: CryptoRng + ?Sized>(
        algorithm: Algorithm,
        rng: &mut R,
    ) -> Result<PrivateKey, KeyError> {
        use p256::elliptic_curve::Generate as _;
        if let Some(bits) = algorithm.rsa_bits() {
            return RsaPrivateKey::new(rng, bits)
                .map(PrivateKey::from)
                .map_err(KeyError::Generate);
        }
        match algorithm {
            Algorithm::EccP256 => Ok(PrivateKey::P256(p256::SecretKey::generate_from_rng(rng))),
            Algorithm::EccP384 => Ok(PrivateKey::P384(p384::SecretKey::generate_from_rng(rng))),
            Algorithm::Ed25519 => Ok(PrivateKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::generate(rng),
            ))),
            Algorithm::X25519 => Ok(PrivateKey::X25519(Box::new(
                x25519_dalek::StaticSecret::random_from_rng(rng),
            ))),
            other => Err(KeyError::Algorithm(other)),
        }
    }

    /// Checks that the key is one this card can hold.
    pub(crate) fn validate(&self) -> Result<(), KeyError> {
        if let PrivateKey::Rsa(key) = self {
            let bits = key.size() * 8;
            if Algorithm::rsa_of_bits(bits).is_none() {
                return Err(KeyError::RsaSize(bits));
            }
        }
        Ok(())
    }

    /// An Ed25519 or X25519 key from its raw 32 private bytes (Yubico
    /// IMPORT KEY tags `07` and `08`; RFC 8032 / RFC 7748 encodings).
    pub(crate) fn from_curve25519_bytes(
        algorithm: Algorithm,
        bytes: &[u8],
    ) -> Result<PrivateKey, KeyError> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .try_into()
                .map_err(|_| KeyError::Curve25519Length(algorithm))?,
        );
        match algorithm {
            Algorithm::Ed25519 => Ok(PrivateKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_bytes(&bytes),
            ))),
            Algorithm::X25519 => Ok(PrivateKey::X25519(Box::new(
                x25519_dalek::StaticSecret::from(*bytes),
            ))),
            other => Err(KeyError::Algorithm(other)),
        }
    }

    /// An RSA key from the CRT form of Yubico IMPORT KEY (`01` p, `02` q,
    /// `03` dP, `04` dQ, `05` qInv; the public exponent is 65537) for the
    /// RSA `algorithm` named in P1.
    pub(crate) fn from_rsa_crt(
        algorithm: Algorithm,
        p: &[u8],
        q: &[u8],
        dp: &[u8],
        dq: &[u8],
        qinv: &[u8],
    ) -> Result<PrivateKey, KeyError> {
        let bits = algorithm.rsa_bits().ok_or(KeyError::Algorithm(algorithm))?;
        // The rsa crate asserts (panics) on an even modulus or p = 1: only
        // primes that can make a key of `bits` reach it. Each must be
        // bits / 16 bytes with its top bit set, odd, and different from
        // the other.
        let prime_len = bits / 16;
        let plausible = |prime: &[u8]| {
            let prime = trim(prime);
            prime.len() == prime_len
                && prime.first().is_some_and(|b| b & 0x80 != 0)
                && prime.last().is_some_and(|b| b & 1 == 1)
        };
        if !plausible(p) || !plausible(q) || trim(p) == trim(q) {
            return Err(KeyError::RsaPrimes(bits / 2));
        }
        let key = RsaPrivateKey::from_p_q(
            BoxedUint::from_be_slice_vartime(p),
            BoxedUint::from_be_slice_vartime(q),
            BoxedUint::from(65537u32),
        )
        .map_err(KeyError::RsaFromPrimes)?;
        let matches = |given: &[u8], computed: Option<BoxedUint>| {
            computed.is_some_and(|c| trim(&c.to_be_bytes()) == trim(given))
        };
        let consistent = matches(dp, key.dp().cloned())
            && matches(dq, key.dq().cloned())
            && matches(qinv, key.crt_coefficient());
        if !consistent {
            return Err(KeyError::RsaCrtMismatch);
        }
        let key = PrivateKey::from(key);
        key.validate()?;
        if key.algorithm() != algorithm {
            return Err(KeyError::RsaSize(key.public_key_bits()));
        }
        Ok(key)
    }

    /// The modulus size of an RSA key in bits (0 for the others).
    fn public_key_bits(&self) -> usize {
        match self {
            PrivateKey::Rsa(key) => key.size() * 8,
            _ => 0,
        }
    }

    /// An EC key from its private scalar (Yubico IMPORT KEY tag `06`).
    pub(crate) fn from_ec_scalar(
        algorithm: Algorithm,
        scalar: &[u8],
    ) -> Result<PrivateKey, KeyError> {
        match algorithm {
            Algorithm::EccP256 => p256::SecretKey::from_slice(scalar)
                .map(PrivateKey::P256)
                .map_err(|source| KeyError::EcScalar { algorithm, source }),
            Algorithm::EccP384 => p384::SecretKey::from_slice(scalar)
                .map(PrivateKey::P384)
                .map_err(|source| KeyError::EcScalar { algorithm, source }),
            other => Err(KeyError::Algorithm(other)),
        }
    }

    /// PKCS#8 DER, the persisted form.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let document = match self {
            PrivateKey::Rsa(key) => key.to_pkcs8_der(),
            PrivateKey::P256(key) => key.to_pkcs8_der(),
            PrivateKey::P384(key) => key.to_pkcs8_der(),
            PrivateKey::Ed25519(key) => {
                return curve25519_pkcs8(ED25519_OID, &Zeroizing::new(key.to_bytes()));
            }
            PrivateKey::X25519(key) => {
                return curve25519_pkcs8(X25519_OID, &Zeroizing::new(key.to_bytes()));
            }
        }
        .map_err(KeyError::Encode)?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }

    /// PKCS#8 DER, the persisted form, with the public key already known:
    /// for an EC key this saves the scalar multiplication that would
    /// recompute it (as costly as a signature). `public` must be this
    /// key's public key (the callers derive it from the key once).
    pub(crate) fn to_pkcs8_with(&self, public: &PublicKey) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        use p256::elliptic_curve::sec1::ToSec1Point as _;
        match (self, public) {
            (PrivateKey::P256(key), PublicKey::P256(public)) => ec_pkcs8(
                &<p256::NistP256 as pkcs8::AssociatedOid>::OID,
                &Zeroizing::new(key.to_bytes()),
                public.to_sec1_point(false).as_bytes(),
            ),
            (PrivateKey::P384(key), PublicKey::P384(public)) => ec_pkcs8(
                &<p384::NistP384 as pkcs8::AssociatedOid>::OID,
                &Zeroizing::new(key.to_bytes()),
                public.to_sec1_point(false).as_bytes(),
            ),
            _ => self.to_pkcs8(),
        }
    }

    /// Decodes the persisted form.
    pub fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<PrivateKey, KeyError> {
        let decode = |source| KeyError::Decode { algorithm, source };
        let key = match algorithm {
            Algorithm::Rsa1024 | Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                RsaPrivateKey::from_pkcs8_der(der)
                    .map(PrivateKey::from)
                    .map_err(decode)?
            }
            Algorithm::Ed25519 | Algorithm::X25519 => {
                let bytes = curve25519_from_pkcs8(algorithm, der).map_err(decode)?;
                PrivateKey::from_curve25519_bytes(algorithm, bytes.as_slice())?
            }
            Algorithm::EccP256 => p256::SecretKey::from_pkcs8_der(der)
                .map(PrivateKey::P256)
                .map_err(decode)?,
            Algorithm::EccP384 => p384::SecretKey::from_pkcs8_der(der)
                .map(PrivateKey::P384)
                .map_err(decode)?,
            other => return Err(KeyError::Algorithm(other)),
        };
        key.validate()?;
        Ok(key)
    }

    /// The raw RSA private-key operation on a block the host padded
    /// (SP 800-73-4 Part 2 3.2.4: the card does not pad). The block must
    /// be exactly as long as the modulus and smaller than it: `6A80`
    /// otherwise. Blinded with `rng`.
    pub(crate) fn rsa_raw<R: CryptoRng + ?Sized>(
        &self,
        backend: &BackendKey,
        block: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, Status> {
        let PrivateKey::Rsa(key) = self else {
            return Err(Status::IncorrectData);
        };
        let size = key.size();
        if block.len() != size {
            return Err(Status::IncorrectData);
        }
        let input = BoxedUint::from_be_slice(block, key.n_bits_precision())
            .map_err(|_| Status::IncorrectData)?;
        if input >= *key.n().as_ref() {
            return Err(Status::IncorrectData);
        }
        #[cfg(feature = "openssl")]
        {
            // OpenSSL blinds with its own generator.
            let _ = (input, rng);
            openssl_backend::rsa_raw(backend.native(self)?, block).map(|out| left_pad(&out, size))
        }
        #[cfg(not(feature = "openssl"))]
        {
            let _ = backend;
            let output = rsa::hazmat::rsa_decrypt_and_check(key.as_ref(), Some(rng), &input)
                .map_err(|_| Status::IncorrectData)?;
            Ok(left_pad(&output.to_be_bytes(), size))
        }
    }

    /// ECDSA over a digest the host computed: the leftmost field-size bytes
    /// of a longer input are used (FIPS 186-4 6.4), a shorter one is read
    /// as a smaller integer. Returns DER `SEQUENCE { r, s }` (RFC 6979
    /// nonces; with the `openssl` feature, OpenSSL's nonces: random bytes
    /// hashed with the private key).
    pub(crate) fn ecdsa_sign(
        &self,
        backend: &BackendKey,
        digest: &[u8],
    ) -> Result<Vec<u8>, Status> {
        if digest.is_empty() {
            return Err(Status::IncorrectData);
        }
        let field = |size: usize| left_pad(&digest[..digest.len().min(size)], size);
        #[cfg(feature = "openssl")]
        {
            let size = match self {
                PrivateKey::P256(_) => 32,
                PrivateKey::P384(_) => 48,
                _ => return Err(Status::IncorrectData),
            };
            openssl_backend::ecdsa_sign(backend.native(self)?, &field(size))
        }
        #[cfg(not(feature = "openssl"))]
        {
            let _ = backend;
            self.ecdsa_sign_rustcrypto(&field)
        }
    }

    #[cfg(not(feature = "openssl"))]
    fn ecdsa_sign_rustcrypto(
        &self,
        field: &dyn Fn(usize) -> Zeroizing<Vec<u8>>,
    ) -> Result<Vec<u8>, Status> {
        // The RFC 6979 signing primitive on the secret scalar, as
        // `SigningKey::sign_prehash` does it, but without building a
        // `SigningKey`: that computes the public key, a scalar
        // multiplication as costly as the signature, on every call.
        use ecdsa::hazmat::sign_prehashed_rfc6979;
        let der = match self {
            PrivateKey::P256(key) => {
                let scalar = Zeroizing::new(key.to_nonzero_scalar());
                let (signature, _) = sign_prehashed_rfc6979::<p256::NistP256, sha2::Sha256>(
                    &scalar,
                    &field(32),
                    &[],
                );
                signature.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(key) => {
                let scalar = Zeroizing::new(key.to_nonzero_scalar());
                let (signature, _) = sign_prehashed_rfc6979::<p384::NistP384, sha2::Sha384>(
                    &scalar,
                    &field(48),
                    &[],
                );
                signature.to_der().as_bytes().to_vec()
            }
            _ => return Err(Status::IncorrectData),
        };
        Ok(der)
    }

    /// ECDH (SP 800-73-4 Part 2 A.5, tag `85`): the x-coordinate of the
    /// shared point with the host's uncompressed point. `6A80` for a point
    /// that is not on the curve.
    pub(crate) fn ecdh(&self, point: &[u8]) -> Result<Zeroizing<Vec<u8>>, Status> {
        use p256::elliptic_curve::point::AffineCoordinates as _;
        if let PrivateKey::X25519(key) = self {
            return x25519_agree(key, point);
        }
        if point.first() != Some(&0x04) {
            return Err(Status::IncorrectData);
        }
        let shared = match self {
            PrivateKey::P256(key) => {
                let peer =
                    p256::PublicKey::from_sec1_bytes(point).map_err(|_| Status::IncorrectData)?;
                let shared = (peer.to_projective() * *key.to_nonzero_scalar()).to_affine();
                shared.x().to_vec()
            }
            PrivateKey::P384(key) => {
                let peer =
                    p384::PublicKey::from_sec1_bytes(point).map_err(|_| Status::IncorrectData)?;
                let shared = (peer.to_projective() * *key.to_nonzero_scalar()).to_affine();
                shared.x().to_vec()
            }
            _ => return Err(Status::IncorrectData),
        };
        Ok(Zeroizing::new(shared))
    }

    /// Ed25519 (PureEdDSA, RFC 8032) over the whole message: the raw
    /// 64-byte signature `R || S`. `6A80` for a key of another algorithm.
    pub(crate) fn ed25519_sign(&self, message: &[u8]) -> Result<Vec<u8>, Status> {
        use ed25519_dalek::Signer as _;
        let PrivateKey::Ed25519(key) = self else {
            return Err(Status::IncorrectData);
        };
        Ok(key.sign(message).to_bytes().to_vec())
    }
}

/// X25519 (RFC 7748) with the host's raw 32-byte public key: the raw
/// shared secret. `6A80` for a key of another length, or one of small
/// order (the all-zero secret, RFC 7748 6.1).
fn x25519_agree(
    key: &x25519_dalek::StaticSecret,
    peer: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Status> {
    let peer: [u8; 32] = peer.try_into().map_err(|_| Status::IncorrectData)?;
    let shared = key.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if !shared.was_contributory() {
        return Err(Status::IncorrectData);
    }
    Ok(Zeroizing::new(shared.as_bytes().to_vec()))
}

/// An Ed25519 or X25519 key as PKCS #8 (RFC 8410: version 0, the curve's
/// OID without parameters, `privateKey` an OCTET STRING holding the
/// `CurvePrivateKey` OCTET STRING of the 32 raw bytes).
fn curve25519_pkcs8(
    oid: pkcs8::ObjectIdentifier,
    raw: &[u8; 32],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use der::Encode as _;
    let inner = Zeroizing::new(
        der::asn1::OctetStringRef::new(raw)
            .map_err(KeyError::EncodeDer)?
            .to_der()
            .map_err(KeyError::EncodeDer)?,
    );
    let info = pkcs8::PrivateKeyInfoRef::new(
        pkcs8::AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        der::asn1::OctetStringRef::new(&inner).map_err(KeyError::EncodeDer)?,
    );
    Ok(Zeroizing::new(info.to_der().map_err(KeyError::EncodeDer)?))
}

/// The 32 raw bytes of an RFC 8410 PKCS #8 key of `algorithm`.
fn curve25519_from_pkcs8(
    algorithm: Algorithm,
    der: &[u8],
) -> Result<Zeroizing<Vec<u8>>, pkcs8::Error> {
    use der::Decode as _;
    let expected = match algorithm {
        Algorithm::Ed25519 => ED25519_OID,
        _ => X25519_OID,
    };
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)?;
    info.algorithm.assert_algorithm_oid(expected)?;
    if info.algorithm.parameters.is_some() {
        return Err(pkcs8::Error::ParametersMalformed);
    }
    let inner = <&der::asn1::OctetStringRef>::from_der(info.private_key.as_bytes())?;
    Ok(Zeroizing::new(inner.as_bytes().to_vec()))
}

/// An EC private key as PKCS#8 (RFC 5208) around SEC1's `ECPrivateKey`
/// (RFC 5915, version 1, curve named in the algorithm identifier, public
/// point included): the encoding `SecretKey::to_pkcs8_der` produces.
fn ec_pkcs8(
    curve: &pkcs8::ObjectIdentifier,
    private: &[u8],
    public: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use der::Encode as _;
    let ec_private_key = Zeroizing::new(
        sec1::EcPrivateKey {
            private_key: private,
            parameters: None,
            public_key: Some(public),
        }
        .to_der()
        .map_err(KeyError::EncodeDer)?,
    );
    let info = pkcs8::PrivateKeyInfoRef::new(
        pkcs8::AlgorithmIdentifierRef {
            oid: p256::elliptic_curve::ALGORITHM_OID,
            parameters: Some(curve.into()),
        },
        der::asn1::OctetStringRef::new(&ec_private_key).map_err(KeyError::EncodeDer)?,
    );
    Ok(Zeroizing::new(info.to_der().map_err(KeyError::EncodeDer)?))
}

impl PublicKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa(key) => rsa_algorithm(key.size()),
            PublicKey::P256(_) => Algorithm::EccP256,
            PublicKey::P384(_) => Algorithm::EccP384,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::X25519(_) => Algorithm::X25519,
        }
    }

    /// The public key data objects of SP 800-73-4 Part 2 Table 11 without
    /// the `7F49` template: `81` modulus, `82` exponent, or `86` point
    /// (`04 || X || Y`: neither curve crate compresses points by default;
    /// the raw 32 bytes for Ed25519 and X25519, as a YubiKey 5.7).
    pub fn to_data_objects(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        match self {
            PublicKey::Rsa(key) => {
                writer
                    .put(0x81, &key.n_bytes())
                    .put(0x82, trim(&key.e().to_be_bytes()));
            }
            PublicKey::P256(key) => {
                writer.put(0x86, &key.to_sec1_bytes());
            }
            PublicKey::P384(key) => {
                writer.put(0x86, &key.to_sec1_bytes());
            }
            PublicKey::Ed25519(key) => {
                writer.put(0x86, key.as_bytes());
            }
            PublicKey::X25519(key) => {
                writer.put(0x86, key.as_bytes());
            }
        }
        writer.finish()
    }

    /// The key as an X.509 `SubjectPublicKeyInfo` (RFC 8017, 5480; RFC
    /// 8410 for Ed25519 and X25519: the raw key, no parameters).
    pub fn subject_public_key_info(
        &self,
    ) -> Result<x509_cert::spki::SubjectPublicKeyInfoOwned, x509_cert::spki::Error> {
        use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
        let raw = |oid, bytes: &[u8; 32]| {
            Ok(SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid,
                    parameters: None,
                },
                subject_public_key: der::asn1::BitString::from_bytes(bytes)?,
            })
        };
        match self {
            PublicKey::Rsa(key) => SubjectPublicKeyInfoOwned::from_key(key),
            PublicKey::P256(key) => SubjectPublicKeyInfoOwned::from_key(key),
            PublicKey::P384(key) => SubjectPublicKeyInfoOwned::from_key(key),
            PublicKey::Ed25519(key) => raw(ED25519_OID, key.as_bytes()),
            PublicKey::X25519(key) => raw(X25519_OID, key.as_bytes()),
        }
    }

    /// The key from an X.509 `SubjectPublicKeyInfo` in DER (any algorithm
    /// of [`PublicKey`]); `None` when it is not one.
    pub fn from_spki_der(der: &[u8]) -> Option<PublicKey> {
        use der::Decode as _;
        use p256::pkcs8::DecodePublicKey as _;
        let info = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(der).ok()?;
        let oid = info.algorithm.oid;
        if oid == ED25519_OID || oid == X25519_OID {
            let raw: [u8; 32] = info.subject_public_key.as_bytes()?.try_into().ok()?;
            return if oid == ED25519_OID {
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .ok()
                    .map(PublicKey::Ed25519)
            } else {
                Some(PublicKey::X25519(x25519_dalek::PublicKey::from(raw)))
            };
        }
        if let Ok(key) = RsaPublicKey::from_public_key_der(der) {
            return Some(PublicKey::Rsa(key));
        }
        if let Ok(key) = p256::PublicKey::from_public_key_der(der) {
            return Some(PublicKey::P256(key));
        }
        p384::PublicKey::from_public_key_der(der)
            .ok()
            .map(PublicKey::P384)
    }

    /// The key as DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Option<Vec<u8>> {
        use der::Encode as _;
        self.subject_public_key_info().ok()?.to_der().ok()
    }

    /// The `7F49` template GENERATE ASYMMETRIC KEY PAIR answers with.
    pub fn to_template(&self) -> Vec<u8> {
        Writer::new().put(0x7F49, &self.to_data_objects()).finish()
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or(&[])
}

/// The backend's own form of a slot key, kept beside it (in
/// [`crate::stored_key::StoredKey`]): nothing by default; with the
/// `openssl` feature, the OpenSSL key object, built on the first signature
/// and shared by clones of the stored key. Converting per call would cost
/// about as much as the signature itself (OpenSSL sets up blinding and
/// Montgomery contexts on a key's first use; BENCHMARKS.md, crypto table).
/// A new key (GENERATE, IMPORT) gets a new, empty one.
#[derive(Clone, Default)]
pub(crate) struct BackendKey {
    #[cfg(feature = "openssl")]
    native: std::sync::Arc<std::sync::OnceLock<Option<openssl_backend::Native>>>,
}

#[cfg(feature = "openssl")]
impl BackendKey {
    fn native(&self, key: &PrivateKey) -> Result<&openssl_backend::Native, Status> {
        self.native
            .get_or_init(|| openssl_backend::Native::from_key(key).ok())
            .as_ref()
            .ok_or(Status::UnknownError)
    }
}

#[cfg(feature = "openssl")]
mod openssl_backend;

pub(crate) fn left_pad(bytes: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let value = trim(bytes);
    let mut out = Zeroizing::new(vec![0u8; len.saturating_sub(value.len())]);
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vscard_emulator::CardRng;

    #[test]
    fn pkcs8_with_a_known_public_key_is_the_usual_encoding() {
        let mut rng = CardRng::from_u64(7);
        for algorithm in [Algorithm::EccP256, Algorithm::EccP384] {
            for _ in 0..3 {
                let key = PrivateKey::generate(algorithm, &mut rng).unwrap();
                let with = key.to_pkcs8_with(&key.public_key()).unwrap();
                assert_eq!(*with, *key.to_pkcs8().unwrap(), "{algorithm:?}");
                let back = PrivateKey::from_pkcs8(algorithm, &with).unwrap();
                assert_eq!(back.public_key(), key.public_key());
            }
        }
    }

    #[test]
    fn curve25519_keys_are_rfc_8410_pkcs8_and_round_trip() {
        let mut rng = CardRng::from_u64(25519);
        for (algorithm, oid) in [
            (Algorithm::Ed25519, "06032b6570"),
            (Algorithm::X25519, "06032b656e"),
        ] {
            let key = PrivateKey::generate(algorithm, &mut rng).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            let der = key.to_pkcs8().unwrap();
            // SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING {
            // OCTET STRING (32) } }: 48 bytes, as openssl writes them.
            assert_eq!(der.len(), 48);
            assert_eq!(
                hex::encode(&der[..16]),
                format!("302e020100300506{}", &oid[2..]) + "04220420"
            );
            assert!(der.len() <= crate::capacity::key_cost(algorithm));
            let back = PrivateKey::from_pkcs8(algorithm, &der).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            let other = match algorithm {
                Algorithm::Ed25519 => Algorithm::X25519,
                _ => Algorithm::Ed25519,
            };
            assert!(matches!(
                PrivateKey::from_pkcs8(other, &der),
                Err(KeyError::Decode { .. })
            ));
        }
    }

    #[test]
    fn every_rsa_size_is_held_and_costs_no_more_than_its_key_cost() {
        let keys: [(&[u8], Algorithm); 4] = [
            (
                include_bytes!("../tests/data/piv/rsa1024-test-key.pk8.der"),
                Algorithm::Rsa1024,
            ),
            (
                include_bytes!("../tests/data/piv/rsa2048-test-key.pk8.der"),
                Algorithm::Rsa2048,
            ),
            (
                include_bytes!("../tests/data/piv/rsa3072-test-key.pk8.der"),
                Algorithm::Rsa3072,
            ),
            (
                include_bytes!("../tests/data/piv/rsa4096-test-key.pk8.der"),
                Algorithm::Rsa4096,
            ),
        ];
        for (der, algorithm) in keys {
            let key = PrivateKey::from_pkcs8(algorithm, der).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            assert_eq!(key.public_key().algorithm(), algorithm);
            let ours = key.to_pkcs8().unwrap();
            assert!(
                ours.len() <= crate::capacity::key_cost(algorithm),
                "{algorithm:?}: {}",
                ours.len()
            );
            let stored = crate::stored_key::StoredKey::new(
                key,
                crate::reference::PinPolicy::Once,
                crate::stored_key::Origin::Imported,
            )
            .unwrap();
            let json = serde_json::to_value(&stored).unwrap();
            assert_eq!(json["algorithm"], format!("{algorithm:?}"));
            let back: crate::stored_key::StoredKey = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back.algorithm(), algorithm);
            // Stored as another RSA size: the stored-key check refuses it.
            let mut wrong = json;
            wrong["algorithm"] = serde_json::json!(if algorithm == Algorithm::Rsa2048 {
                "Rsa4096"
            } else {
                "Rsa2048"
            });
            assert!(serde_json::from_value::<crate::stored_key::StoredKey>(wrong).is_err());
        }
    }

    #[test]
    fn rsa_keys_of_other_sizes_are_refused() {
        let key = RsaPrivateKey::new(&mut CardRng::from_u64(1), 1536).unwrap();
        assert!(matches!(
            PrivateKey::from(key).validate(),
            Err(KeyError::RsaSize(1536))
        ));
    }
}
