//! The `openssl` feature's private-key operations.
//!
//! OpenSSL frees the private components of an `RSA` / `EC_KEY` with
//! `BN_clear_free` when the last clone of the stored key goes; the byte
//! buffers on our side are zeroizing and our own scalar `BIGNUM` is
//! cleared before it is dropped.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::{BoxedUint, RsaPrivateKey};
use vscard_emulator::Status;
use zeroize::Zeroizing;

use super::PrivateKey;

/// A slot key as an OpenSSL object.
pub(super) enum Native {
    Rsa(Rsa<Private>),
    Ec(EcKey<Private>),
}

fn failed(error: openssl::error::ErrorStack) -> Status {
    tracing::error!(target: "vscard::piv", %error, "OpenSSL private-key operation failed");
    Status::UnknownError
}

fn big(value: &BoxedUint) -> Result<BigNum, Status> {
    let bytes = Zeroizing::new(value.to_be_bytes().to_vec());
    BigNum::from_slice(&bytes).map_err(failed)
}

impl Native {
    pub(super) fn from_key(key: &PrivateKey) -> Result<Native, Status> {
        match key {
            PrivateKey::Rsa(key) => rsa(key).map(Native::Rsa),
            PrivateKey::P256(key) => ec(
                Nid::X9_62_PRIME256V1,
                &Zeroizing::new(key.to_bytes().to_vec()),
            )
            .map(Native::Ec),
            PrivateKey::P384(key) => {
                ec(Nid::SECP384R1, &Zeroizing::new(key.to_bytes().to_vec())).map(Native::Ec)
            }
            // Ed25519 and X25519 stay on RustCrypto with this feature too.
            PrivateKey::Ed25519(_) | PrivateKey::X25519(_) => Err(Status::IncorrectData),
        }
    }
}

fn rsa(key: &RsaPrivateKey) -> Result<Rsa<Private>, Status> {
    let [p, q] = key.primes() else {
        return Err(Status::IncorrectData);
    };
    let (Some(dp), Some(dq), Some(qinv)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
        return Err(Status::IncorrectData);
    };
    Rsa::from_private_components(
        big(key.n().as_ref())?,
        big(key.e())?,
        big(key.d())?,
        big(p)?,
        big(q)?,
        big(dp)?,
        big(dq)?,
        big(&qinv)?,
    )
    .map_err(failed)
}

fn ec(curve: Nid, scalar: &[u8]) -> Result<EcKey<Private>, Status> {
    let group = EcGroup::from_curve_name(curve).map_err(failed)?;
    let mut private = BigNum::from_slice(scalar).map_err(failed)?;
    let key = (|| {
        let mut context = BigNumContext::new()?;
        let mut public = EcPoint::new(&group)?;
        public.mul_generator2(&group, &private, &mut context)?;
        EcKey::from_private_components(&group, &private, &public)
    })();
    private.clear();
    key.map_err(failed)
}

/// RSA_private_decrypt without padding: the raw CRT operation, blinded
/// and checked against the public exponent by OpenSSL.
pub(super) fn rsa_raw(native: &Native, block: &[u8]) -> Result<Zeroizing<Vec<u8>>, Status> {
    let Native::Rsa(rsa) = native else {
        return Err(Status::IncorrectData);
    };
    let mut out = Zeroizing::new(vec![0u8; rsa.size() as usize]);
    let written = rsa
        .private_decrypt(block, &mut out, Padding::NONE)
        .map_err(failed)?;
    out.truncate(written);
    Ok(out)
}

/// ECDSA_do_sign over a digest already cut to the field size.
pub(super) fn ecdsa_sign(native: &Native, digest: &[u8]) -> Result<Vec<u8>, Status> {
    let Native::Ec(key) = native else {
        return Err(Status::IncorrectData);
    };
    EcdsaSig::sign(digest, key)
        .and_then(|signature| signature.to_der())
        .map_err(failed)
}
