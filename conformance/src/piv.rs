//! A host-side PIV client over a [`Session`]: what middleware does, in a
//! few functions, written from SP 800-73-4 Part 2 and independent of the
//! card's command handling, so a scenario checks the card and not itself
//! (only the BER-TLV codec is the applet's, `vscard_applet::tlv`).

use der::Decode;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::facts::{get_data, verify_pin};
use crate::session::{Failure, Session, ensure, fail};

/// Key references (SP 800-73-4 Part 1 table 4).
pub mod slot {
    /// PIV authentication.
    pub const AUTHENTICATION: u8 = 0x9A;
    /// Digital signature (PIN-always).
    pub const SIGNATURE: u8 = 0x9C;
    /// Key management.
    pub const KEY_MANAGEMENT: u8 = 0x9D;
    /// Card authentication (no PIN).
    pub const CARD_AUTHENTICATION: u8 = 0x9E;
    /// Card application administration (management key).
    pub const MANAGEMENT: u8 = 0x9B;
}

/// Algorithm identifiers (SP 800-78-4 table 6-2).
pub mod alg {
    /// 3DES (management key).
    pub const TDES: u8 = 0x03;
    /// RSA 2048.
    pub const RSA_2048: u8 = 0x07;
    /// AES-128.
    pub const AES_128: u8 = 0x08;
    /// AES-192.
    pub const AES_192: u8 = 0x0A;
    /// AES-256.
    pub const AES_256: u8 = 0x0C;
    /// ECC P-256.
    pub const P256: u8 = 0x11;
    /// Ed25519 (Yubico, firmware 5.7).
    pub const ED25519: u8 = 0xE0;
    /// X25519 (Yubico, firmware 5.7).
    pub const X25519: u8 = 0xE1;
}

/// The certificate object tag of a key slot.
pub fn certificate_tag(key: u8) -> Option<[u8; 3]> {
    match key {
        slot::AUTHENTICATION => Some([0x5F, 0xC1, 0x05]),
        slot::SIGNATURE => Some([0x5F, 0xC1, 0x0A]),
        slot::KEY_MANAGEMENT => Some([0x5F, 0xC1, 0x0B]),
        slot::CARD_AUTHENTICATION => Some([0x5F, 0xC1, 0x01]),
        _ => None,
    }
}

/// `tag || length || value` for a one-byte tag (the applet's BER-TLV
/// writer: the codec is the one thing scenarios share with the card, and
/// its own tests pin it to ISO 7816-4 5.2).
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    vscard_applet::tlv::encode(u32::from(tag), value)
}

/// Splits `data` into BER-TLV objects (ISO 7816-4 5.2): (tag, value). Tags
/// of more than one byte (`5F2F`, `7F49`) come as one number; `None` when
/// `data` is not well-formed.
pub fn parse_tlvs(data: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let objects = vscard_applet::tlv::Reader::new(data).read_all().ok()?;
    Some(objects.into_iter().map(|o| (o.tag, o.value)).collect())
}

/// The value of the first object with `tag` in `data`.
pub fn find(data: &[u8], tag: u32) -> Option<&[u8]> {
    parse_tlvs(data)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// SELECT PIV.
pub fn select_piv(session: &mut Session<'_>) -> Result<Vec<u8>, Failure> {
    session.collect_ok("SELECT PIV", &crate::facts::select(crate::facts::piv_aid()))
}

/// VERIFY with the card's PIN.
pub fn verify(session: &mut Session<'_>) -> Result<(), Failure> {
    let apdu = verify_pin(&session.facts.pin);
    session.expect("VERIFY PIN", &apdu, 0x9000).map(|_| ())
}

/// GET DATA of a `5F C1 xx` object: the value inside its `53` wrapper, or
/// the status word when it is not `9000`.
pub fn get_object(
    session: &mut Session<'_>,
    tag: [u8; 3],
) -> Result<Result<Vec<u8>, u16>, Failure> {
    let reply = session.collect("GET DATA", &get_data(tag))?;
    if reply.sw() != 0x9000 {
        return Ok(Err(reply.sw()));
    }
    let value = find(&reply.data, 0x53).ok_or_else(|| {
        fail(
            "GET DATA",
            format!("no 53 wrapper in {}", hex::encode_upper(&reply.data)),
        )
    })?;
    Ok(Ok(value.to_vec()))
}

/// The DER certificate in a key slot's certificate object.
pub fn certificate(session: &mut Session<'_>, key: u8) -> Result<Certificate, Failure> {
    let tag = certificate_tag(key).ok_or_else(|| fail("certificate", "not a key slot"))?;
    let object = get_object(session, tag)?
        .map_err(|sw| fail("GET DATA certificate", format!("answered {sw:04X}")))?;
    let der =
        find(&object, 0x70).ok_or_else(|| fail("certificate object", "no 70 (certificate) tag"))?;
    Certificate::from_der(der)
        .map_err(|e| fail("certificate", format!("not a DER certificate: {e}")))
}

/// GENERAL AUTHENTICATE: `7C { 82 00, 81 challenge }` -> the `82` response.
pub fn general_authenticate(
    session: &mut Session<'_>,
    algorithm: u8,
    key: u8,
    challenge: &[u8],
) -> Result<Result<Vec<u8>, u16>, Failure> {
    let mut template = vec![0x82, 0x00];
    template.extend(tlv(0x81, challenge));
    let data = tlv(0x7C, &template);
    let reply = session.chained("GENERAL AUTHENTICATE", [0x00, 0x87, algorithm, key], &data)?;
    if reply.sw() != 0x9000 {
        return Ok(Err(reply.sw()));
    }
    let inner =
        find(&reply.data, 0x7C).ok_or_else(|| fail("GENERAL AUTHENTICATE", "no 7C template"))?;
    let response =
        find(inner, 0x82).ok_or_else(|| fail("GENERAL AUTHENTICATE", "no 82 response"))?;
    Ok(Ok(response.to_vec()))
}

/// The EMSA-PKCS1-v1_5 block of a SHA-256 digest for a 2048-bit key
/// (RFC 8017 9.2).
pub fn pkcs1_v15_block(digest: &[u8; 32]) -> Vec<u8> {
    const SHA256_PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let t_len = SHA256_PREFIX.len() + digest.len();
    let mut block = vec![0x00, 0x01];
    block.extend(std::iter::repeat_n(0xFF, 256 - 3 - t_len));
    block.push(0x00);
    block.extend_from_slice(&SHA256_PREFIX);
    block.extend_from_slice(digest);
    block
}

/// Signs `message` with an RSA-2048 or P-256 slot the way middleware does
/// (PKCS#1 v1.5 block / SHA-256 digest) and verifies the signature with the
/// public key of `certificate`.
pub fn sign_and_verify(
    session: &mut Session<'_>,
    key: u8,
    certificate: &Certificate,
    message: &[u8],
) -> Result<Result<(), u16>, Failure> {
    let digest: [u8; 32] = Sha256::digest(message).into();
    let spki = &certificate.tbs_certificate().subject_public_key_info();
    let public = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| fail("certificate", "public key is not whole bytes"))?;
    let is_ec = spki.algorithm.oid.to_string() == "1.2.840.10045.2.1";
    if is_ec {
        let signature = match general_authenticate(session, alg::P256, key, &digest)? {
            Ok(s) => s,
            Err(sw) => return Ok(Err(sw)),
        };
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(public)
            .map_err(|e| fail("certificate", format!("bad P-256 key: {e}")))?;
        let signature = p256::ecdsa::Signature::from_der(&signature)
            .map_err(|e| fail("ECDSA signature", format!("not DER SEQUENCE {{r, s}}: {e}")))?;
        verifying.verify_prehash(&digest, &signature).map_err(|e| {
            fail(
                "ECDSA signature",
                format!("does not verify with the certificate's key: {e}"),
            )
        })?;
    } else {
        let block = pkcs1_v15_block(&digest);
        let signature = match general_authenticate(session, alg::RSA_2048, key, &block)? {
            Ok(s) => s,
            Err(sw) => return Ok(Err(sw)),
        };
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        let public = rsa::RsaPublicKey::from_pkcs1_der(public)
            .map_err(|e| fail("certificate", format!("bad RSA key: {e}")))?;
        ensure(signature.len() == public.size(), "RSA signature", || {
            format!(
                "{} bytes for a {}-byte modulus",
                signature.len(),
                public.size()
            )
        })?;
        public
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .map_err(|e| {
                fail(
                    "RSA signature",
                    format!("does not verify with the certificate's key: {e}"),
                )
            })?;
    }
    Ok(Ok(()))
}

/// Mutual authentication with the management key (SP 800-73-4 Part 2
/// Appendix A.2), the testkit's, with a random host challenge.
pub fn authenticate_management_key(session: &mut Session<'_>) -> Result<Result<(), u16>, Failure> {
    let algorithm = session.facts.management_algorithm;
    let key = session.facts.management_key.clone();
    let n = vscard_testkit::management::block_len(algorithm).ok_or_else(|| {
        fail(
            "management key",
            "unusable key or algorithm in the card facts",
        )
    })?;
    let mut challenge = vec![0u8; n];
    let mut rng =
        vscard_emulator::CardRng::from_os().map_err(|e| fail("host challenge", e.to_string()))?;
    rand_core::Rng::fill_bytes(&mut rng, &mut challenge);
    session.authenticate_management_key(algorithm, &key, &challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_parsing_handles_long_tags_and_lengths() {
        let discovery = [0x4F, 0x02, 0xA0, 0x00, 0x5F, 0x2F, 0x02, 0x40, 0x00];
        assert_eq!(find(&discovery, 0x4F), Some(&[0xA0, 0x00][..]));
        assert_eq!(find(&discovery, 0x5F2F), Some(&[0x40, 0x00][..]));
        let long = [vec![0x53, 0x82, 0x01, 0x00], vec![7u8; 256]].concat();
        assert_eq!(find(&long, 0x53).map(<[u8]>::len), Some(256));
        assert_eq!(parse_tlvs(&[0x53, 0x05, 0x00]), None);
        assert_eq!(tlv(0x81, &[0u8; 200])[..3], [0x81, 0x81, 200]);
    }

    #[test]
    fn pkcs1_block_has_the_rfc_8017_shape() {
        let block = pkcs1_v15_block(&[0xAB; 32]);
        assert_eq!(block.len(), 256);
        assert_eq!(&block[..2], &[0x00, 0x01]);
        assert_eq!(block[256 - 32 - 19 - 1], 0x00);
        assert!(block.ends_with(&[0xAB; 32]));
    }
}
