//! Private-key operations through the wire, checked with RustCrypto
//! against the public key: RSA with PKCS#1 v1.5 and PSS blocks padded by
//! the test, ECDSA P-256, ECDH; PIN policies per slot; management key
//! authentication with 3DES and AES; GENERATE and IMPORT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384};
use vscard_applet::{Algorithm, PivApplet, PivConfig, PublicKey, Slot};

fn rsa_public(c: &mut Client, slot: Slot) -> RsaPublicKey {
    let meta = c.metadata(slot.byte());
    assert_eq!(meta.sw(), SW_OK);
    let public = find(&meta.data, 0x04);
    let (tag, n) = read_tlv(public);
    assert_eq!(tag, 0x81);
    let rest = &public[public.len() - 5..];
    assert_eq!(rest, [0x82, 0x03, 0x01, 0x00, 0x01]);
    RsaPublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from(65537u32),
    )
    .unwrap()
}

/// The value of `tag` in a flat TLV list.
fn find(data: &[u8], tag: u32) -> &[u8] {
    vscard_applet::tlv::Reader::new(data)
        .read_all()
        .unwrap()
        .into_iter()
        .find(|object| object.tag == tag)
        .unwrap_or_else(|| panic!("tag {tag:X} not found"))
        .value
}

fn pkcs1v15_block(digest: &[u8]) -> Vec<u8> {
    // DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1).
    let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
    let t = [prefix, digest.to_vec()].concat();
    let mut block = vec![0x00, 0x01];
    block.resize(256 - t.len() - 1, 0xFF);
    block.push(0x00);
    block.extend(t);
    block
}

fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 0u32;
    while out.len() < len {
        out.extend(
            Sha256::new()
                .chain_update(seed)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 9.1.1) for a 2048-bit modulus, SHA-256,
/// MGF1-SHA-256, 32-byte salt.
fn pss_block(digest: &[u8], salt: &[u8; 32]) -> Vec<u8> {
    let h = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(digest)
        .chain_update(salt)
        .finalize();
    let db_len = 256 - 32 - 1;
    let mut db = vec![0u8; db_len - 32 - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    let mask = mgf1(&h, db_len);
    let mut em: Vec<u8> = db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    em[0] &= 0x7F;
    em.extend_from_slice(&h);
    em.push(0xBC);
    em
}

#[test]
fn rsa_signatures_verify_with_pkcs1v15_and_pss() {
    let mut c = Client::new(default_card());
    let public = rsa_public(&mut c, Slot::AUTHENTICATION);
    let digest = Sha256::digest(b"NHS care record access");
    let block = pkcs1v15_block(&digest);
    assert_eq!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block),
        Err(0x6982)
    );
    assert_eq!(c.verify(PIN), SW_OK);
    let signature = c
        .sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block)
        .unwrap();
    assert_eq!(signature.len(), 256);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
    // PIN "once": a second signature needs no new VERIFY.
    let pss = pss_block(&digest, &[0x5A; 32]);
    let signature = c
        .sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &pss)
        .unwrap();
    public
        .verify(Pss::<Sha256>::new(), &digest, &signature)
        .unwrap();
    assert!(
        public
            .verify(Pss::<Sha256>::new(), &Sha256::digest(b"other"), &signature)
            .is_err()
    );
}

#[test]
fn rsa_input_must_be_one_block_below_the_modulus() {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(PIN), SW_OK);
    let public = rsa_public(&mut c, Slot::AUTHENTICATION);
    assert_eq!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &[1; 255]),
        Err(0x6A80)
    );
    assert_eq!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &[0xFF; 256]),
        Err(0x6A80)
    );
    let n = public.n_bytes();
    assert_eq!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &n),
        Err(0x6A80)
    );
    // The wrong algorithm for the slot's key (`6A80`, as a YubiKey 5
    // answers), and an empty slot.
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::AUTHENTICATION, &[1; 32]),
        Err(0x6A80)
    );
    assert_eq!(
        c.sign(Algorithm::EccP384, Slot::AUTHENTICATION, &[1; 48]),
        Err(0x6A80)
    );
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::new(0x82).unwrap(), &[1; 32]),
        Err(0x6A88)
    );
}

fn p256_verify(public: &p256::PublicKey, prehash: &[u8], der: &[u8]) {
    let signature = p256::ecdsa::Signature::from_der(der).unwrap();
    p256::ecdsa::VerifyingKey::from(public)
        .verify_prehash(prehash, &signature)
        .unwrap();
}

#[test]
fn ecdsa_signatures_and_pin_always_on_9c() {
    let mut c = Client::new(default_card());
    let public = p256_key(2).public_key();
    let digest = Sha256::digest(b"prescription 42");
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6982)
    );
    assert_eq!(c.verify(PIN), SW_OK);
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    p256_verify(&public, &digest, &der);
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6982),
        "PIN-always: one VERIFY, one signature"
    );
    // 9D needs the PIN once; it is still verified.
    let der = c
        .sign(Algorithm::EccP256, Slot::KEY_MANAGEMENT, &digest)
        .unwrap();
    p256_verify(&p256_key(3).public_key(), &digest, &der);
    assert_eq!(c.verify(PIN), SW_OK);
    // A longer digest is truncated to the field size (FIPS 186-4 6.4).
    let long = Sha384::digest(b"prescription 43");
    let der = c.sign(Algorithm::EccP256, Slot::SIGNATURE, &long).unwrap();
    p256_verify(&public, &long[..32], &der);
}

#[test]
fn card_authentication_key_needs_no_pin() {
    let mut c = Client::new(default_card());
    let digest = Sha256::digest(b"door 7");
    let der = c
        .sign(Algorithm::EccP256, Slot::CARD_AUTHENTICATION, &digest)
        .unwrap();
    p256_verify(&p256_key(4).public_key(), &digest, &der);
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::KEY_MANAGEMENT, &digest),
        Err(0x6982)
    );
}

#[test]
fn ecdh_agrees_with_the_host() {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(PIN), SW_OK);
    let host = p256_key(9);
    let point = host.public_key().to_sec1_bytes();
    let inner = [tlv(0x82, &[]), tlv(0x85, &point)].concat();
    let answer = c.send(0x87, 0x11, 0x9D, &tlv(0x7C, &inner));
    assert_eq!(answer.sw(), SW_OK);
    let shared = unwrap_template(&answer.data);
    let expected = p256::ecdh::diffie_hellman(
        host.to_nonzero_scalar(),
        p256_key(3).public_key().as_affine(),
    );
    assert_eq!(&shared[..], &expected.raw_secret_bytes()[..]);
    // A point off the curve.
    let mut bad = point.to_vec();
    bad[64] ^= 1;
    let inner = [tlv(0x82, &[]), tlv(0x85, &bad)].concat();
    assert_eq!(c.send(0x87, 0x11, 0x9D, &tlv(0x7C, &inner)).sw(), 0x6A80);
}

#[test]
fn management_key_mutual_authentication() {
    let mut c = Client::new(default_card());
    assert_eq!(c.put_data(&[0x5F, 0xC1, 0x09], b"x"), 0x6982);
    let mut wrong = MGMT;
    wrong[0] ^= 0x02; // not the DES parity bit
    assert_eq!(
        c.authenticate_management_key(Algorithm::Tdes, &wrong),
        0x6982
    );
    // Step 2 without step 1.
    let inner = [tlv(0x80, &[0; 8]), tlv(0x81, &[0; 8])].concat();
    assert_eq!(c.send(0x87, 0x03, 0x9B, &tlv(0x7C, &inner)).sw(), 0x6985);
    // The wrong algorithm for the key.
    assert_eq!(
        c.send(0x87, 0x08, 0x9B, &[0x7C, 0x02, 0x80, 0x00]).sw(),
        0x6A86
    );
    assert_eq!(c.authenticate_management_key(Algorithm::Tdes, &MGMT), SW_OK);
    assert_eq!(c.put_data(&[0x5F, 0xC1, 0x09], b"x"), SW_OK);
}

#[test]
fn aes_management_keys_via_set_management_key() {
    for (algorithm, len) in [
        (Algorithm::Aes128, 16),
        (Algorithm::Aes192, 24),
        (Algorithm::Aes256, 32),
    ] {
        let mut c = Client::new(default_card());
        let key: Vec<u8> = (0..len as u8).collect();
        let mut data = vec![algorithm.byte(), 0x9B, len as u8];
        data.extend_from_slice(&key);
        assert_eq!(c.send(0xFF, 0xFF, 0xFF, &data).sw(), 0x6982);
        c.authenticate_default();
        assert_eq!(
            c.send(0xFF, 0xFF, 0xFE, &data).sw(),
            0x6A86,
            "no touch on a virtual card"
        );
        assert_eq!(
            c.send(0xFF, 0xFF, 0xFF, &data[..data.len() - 1]).sw(),
            0x6A80
        );
        assert_eq!(c.send(0xFF, 0xFF, 0xFF, &data).sw(), SW_OK);
        let meta = c.metadata(0x9B);
        assert_eq!(
            meta.data,
            [
                0x01,
                0x01,
                algorithm.byte(),
                0x02,
                0x02,
                0x00,
                0x01,
                0x05,
                0x01,
                0x00
            ]
        );
        c.card().reset();
        assert_eq!(
            c.authenticate_management_key(Algorithm::Tdes, &MGMT),
            0x6A86
        );
        assert_eq!(c.authenticate_management_key(algorithm, &key), SW_OK);
    }
}

#[test]
fn management_key_external_authentication_and_challenges() {
    let mut c = Client::new(default_card());
    // OpenSC's GET CHALLENGE: P1 00, P2 9B.
    let first = c.send(0x87, 0x00, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    assert_eq!(first.sw(), SW_OK);
    assert_eq!(first.data[..4], [0x7C, 0x0A, 0x81, 0x08]);
    let second = c.send(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    assert_ne!(first.data, second.data, "fresh random each time");
    let wrong = tlv(0x7C, &tlv(0x82, &[0; 8]));
    assert_eq!(c.send(0x87, 0x03, 0x9B, &wrong).sw(), 0x6982);
    assert_eq!(
        c.send(0x87, 0x03, 0x9B, &wrong).sw(),
        0x6985,
        "the challenge is used once"
    );
    let challenge = c.send(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]).data[4..].to_vec();
    let response = encrypt(Algorithm::Tdes, &MGMT, &challenge);
    assert_eq!(
        c.send(0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x82, &response)))
            .sw(),
        SW_OK
    );
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"roles"), SW_OK);
}

/// Middleware authenticates again in a session already authenticated: a
/// new challenge keeps the session authenticated until the new external
/// authentication succeeds (`9000`) or fails (`6982`, and then it is over).
#[test]
fn external_authentication_after_mutual_authentication() {
    let mut c = Client::new(default_card());
    c.authenticate_default();
    let challenge_request = [0x7C, 0x02, 0x81, 0x00];
    let challenge = c.send(0x87, 0x03, 0x9B, &challenge_request);
    assert_eq!(challenge.sw(), SW_OK);
    assert_eq!(
        c.put_data(&[0x5F, 0xFF, 0x10], b"a"),
        SW_OK,
        "still authenticated while the challenge is pending"
    );
    let response = encrypt(Algorithm::Tdes, &MGMT, &challenge.data[4..]);
    assert_eq!(
        c.send(0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x82, &response)))
            .sw(),
        SW_OK
    );
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"b"), SW_OK);
    // A mutual authentication started in the authenticated session.
    let witness = c.send(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x80, 0x00]);
    assert_eq!(witness.sw(), SW_OK);
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"c"), SW_OK);
    // A wrong response to a new challenge ends the authentication.
    assert_eq!(c.send(0x87, 0x03, 0x9B, &challenge_request).sw(), SW_OK);
    let wrong = tlv(0x7C, &tlv(0x82, &[0; 8]));
    assert_eq!(c.send(0x87, 0x03, 0x9B, &wrong).sw(), 0x6982);
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"d"), 0x6982);
    // So does a step out of order.
    c.authenticate_default();
    assert_eq!(c.send(0x87, 0x03, 0x9B, &wrong).sw(), 0x6985);
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"e"), 0x6982);
    // Random bytes for another algorithm (OpenSC's GET CHALLENGE on an AES
    // card) neither start nor end anything.
    c.authenticate_default();
    assert_eq!(c.send(0x87, 0x08, 0x9B, &challenge_request).sw(), SW_OK);
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], b"f"), SW_OK);
}

#[test]
fn generate_p256_and_sign_with_it() {
    let mut c = Client::new(default_card());
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        0x6982
    );
    c.authenticate_default();
    let answer = c.generate(Slot::AUTHENTICATION, Algorithm::EccP256);
    assert_eq!(answer.sw(), SW_OK);
    let (tag, inner) = read_tlv(&answer.data);
    assert_eq!(tag, 0x7F49);
    let (tag, point) = read_tlv(inner);
    assert_eq!((tag, point.len(), point[0]), (0x86, 65, 0x04));
    let public = p256::PublicKey::from_sec1_bytes(point).unwrap();
    assert_eq!(c.verify(PIN), SW_OK);
    let digest = Sha256::digest(b"generated");
    let der = c
        .sign(Algorithm::EccP256, Slot::AUTHENTICATION, &digest)
        .unwrap();
    p256_verify(&public, &digest, &der);
    let meta = c.metadata(0x9A);
    assert_eq!(
        meta.data[..10],
        [0x01, 0x01, 0x11, 0x02, 0x02, 0x02, 0x01, 0x03, 0x01, 0x01]
    );
    // Unknown algorithms (`15`: no PIV or Yubico key type) and malformed
    // templates.
    assert_eq!(
        c.send(0x47, 0x00, 0x9A, &tlv(0xAC, &tlv(0x80, &[0x15])))
            .sw(),
        0x6A80
    );
    assert_eq!(c.send(0x47, 0x00, 0x9A, &tlv(0xAC, &[])).sw(), 0x6A80);
    assert_eq!(
        c.send(0x47, 0x00, 0x9B, &tlv(0xAC, &tlv(0x80, &[0x11])))
            .sw(),
        0x6A86
    );
}

#[test]
fn generate_rsa_2048_once() {
    let mut c = Client::new(card_with(PivApplet::with_defaults()));
    c.authenticate_default();
    let answer = c.generate(Slot::SIGNATURE, Algorithm::Rsa2048);
    assert_eq!(answer.sw(), SW_OK);
    let (tag, inner) = read_tlv(&answer.data);
    assert_eq!(tag, 0x7F49);
    let (tag, n) = read_tlv(inner);
    assert_eq!((tag, n.len()), (0x81, 256));
    assert_eq!(inner[inner.len() - 5..], [0x82, 0x03, 0x01, 0x00, 0x01]);
    let public = RsaPublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from(65537u32),
    )
    .unwrap();
    assert_eq!(c.verify(PIN), SW_OK);
    let digest = Sha256::digest(b"generated rsa");
    let signature = c
        .sign(
            Algorithm::Rsa2048,
            Slot::SIGNATURE,
            &pkcs1v15_block(&digest),
        )
        .unwrap();
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
}

#[test]
fn import_keys_with_yubico_import() {
    let mut c = Client::new(card_with(PivApplet::with_defaults()));
    let scalar = [0x11u8; 32];
    let data = [tlv(0x06, &scalar), tlv(0xAA, &[0x01])].concat();
    assert_eq!(c.send(0xFE, 0x11, 0x9A, &data).sw(), 0x6982);
    c.authenticate_default();
    assert_eq!(c.send(0xFE, 0x11, 0x9A, &data).sw(), SW_OK);
    let meta = c.metadata(0x9A);
    assert_eq!(
        meta.data[..10],
        [0x01, 0x01, 0x11, 0x02, 0x02, 0x01, 0x01, 0x03, 0x01, 0x02]
    );
    // PIN policy "never" from tag AA.
    let digest = Sha256::digest(b"imported");
    let der = c
        .sign(Algorithm::EccP256, Slot::AUTHENTICATION, &digest)
        .unwrap();
    p256_verify(
        &p256::SecretKey::from_slice(&scalar).unwrap().public_key(),
        &digest,
        &der,
    );
    // RSA in CRT form.
    use rsa::traits::PrivateKeyParts;
    let key = rsa_key();
    let be = |x: &rsa::BoxedUint| {
        let bytes = x.to_be_bytes();
        let zeros = bytes.iter().take_while(|&&b| b == 0).count();
        bytes[zeros..].to_vec()
    };
    let p = be(key.primes()[0].as_ref());
    let q = be(key.primes()[1].as_ref());
    let data = [
        tlv(0x01, &p),
        tlv(0x02, &q),
        tlv(0x03, &be(key.dp().unwrap())),
        tlv(0x04, &be(key.dq().unwrap())),
        tlv(0x05, &be(&key.crt_coefficient().unwrap())),
    ]
    .concat();
    assert_eq!(c.send(0xFE, 0x07, 0x9E, &data).sw(), SW_OK);
    assert_eq!(
        rsa_public(&mut c, Slot::CARD_AUTHENTICATION),
        key.to_public_key()
    );
    // Inconsistent CRT values.
    let bad = [
        tlv(0x01, &p),
        tlv(0x02, &q),
        tlv(0x03, &[1]),
        tlv(0x04, &[1]),
        tlv(0x05, &[1]),
    ]
    .concat();
    assert_eq!(c.send(0xFE, 0x07, 0x9E, &bad).sw(), 0x6A80);
}

#[test]
fn installed_public_keys_match_and_private_keys_never_leave() {
    let mut applet = PivApplet::new(PivConfig::default()).unwrap();
    let installed = applet.install_key(Slot::SIGNATURE, p256_key(2)).unwrap();
    assert_eq!(installed, PublicKey::P256(p256_key(2).public_key()));
    assert_eq!(applet.public_key(Slot::SIGNATURE), Some(installed));
    let debug = format!("{:?}", applet.state());
    assert!(!debug.contains("0202020202") && debug.contains("<redacted>"));
    let config = PivConfig::default()
        .with_pin(b"918273")
        .with_puk(b"56473829");
    let debug = format!("{config:?}");
    assert!(!debug.contains("918273") && !debug.contains("56473829"));
    assert!(
        !debug.contains("1, 2, 3, 4"),
        "management key redacted: {debug}"
    );
    let mut c = Client::new(card_with(applet));
    let secret = [2u8; 32];
    for key in [0x80, 0x81, 0x9B, 0x9A, 0x9C] {
        let meta = c.metadata(key);
        assert!(!meta.data.windows(32).any(|w| w == secret));
    }
    for tag in [
        &[0x7E][..],
        &[0x5F, 0xC1, 0x07],
        &[0x5F, 0xC1, 0x0A],
        &[0x5F, 0xC1, 0x0C],
    ] {
        let answer = c.get_data(tag);
        assert!(!answer.data.windows(32).any(|w| w == secret));
    }
}

#[test]
fn p384_keys_sign_agree_generate_and_import() {
    use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
    let secret = p384::SecretKey::from_slice(&[0x21; 48]).unwrap();
    let mut applet = PivApplet::with_defaults();
    applet
        .install_key(Slot::KEY_MANAGEMENT, secret.clone())
        .unwrap();
    let mut c = Client::new(card_with(applet));
    assert_eq!(c.verify(PIN), SW_OK);
    let digest = Sha384::digest(b"p384");
    let der = c
        .sign(Algorithm::EccP384, Slot::KEY_MANAGEMENT, &digest)
        .unwrap();
    let signature = p384::ecdsa::Signature::from_der(&der).unwrap();
    p384::ecdsa::VerifyingKey::from(&secret.public_key())
        .verify_prehash(&digest, &signature)
        .unwrap();
    // ECDH against a host key.
    let host = p384::SecretKey::from_slice(&[0x33; 48]).unwrap();
    let inner = [
        tlv(0x82, &[]),
        tlv(0x85, &host.public_key().to_sec1_bytes()),
    ]
    .concat();
    let answer = c.send(0x87, 0x14, 0x9D, &tlv(0x7C, &inner));
    // The host side computes with its secret and the card's public key.
    use p384::elliptic_curve::point::AffineCoordinates as _;
    let shared = (secret.public_key().to_projective() * *host.to_nonzero_scalar()).to_affine();
    assert_eq!(unwrap_template(&answer.data), shared.x().to_vec());
    // Metadata carries the 97-byte point.
    let meta = c.metadata(0x9D);
    assert_eq!(
        meta.data[..14],
        [
            0x01, 0x01, 0x14, 0x02, 0x02, 0x02, 0x01, 0x03, 0x01, 0x02, 0x04, 0x63, 0x86, 0x61
        ]
    );
    // GENERATE and IMPORT.
    c.authenticate_default();
    let generated = c.generate(Slot::CARD_AUTHENTICATION, Algorithm::EccP384);
    assert_eq!(generated.data[..5], [0x7F, 0x49, 0x63, 0x86, 0x61]);
    let public = p384::PublicKey::from_sec1_bytes(&generated.data[5..]).unwrap();
    let der = c
        .sign(Algorithm::EccP384, Slot::CARD_AUTHENTICATION, &digest)
        .unwrap();
    p384::ecdsa::VerifyingKey::from(&public)
        .verify_prehash(&digest, &p384::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();
    assert_eq!(
        c.send(0xFE, 0x14, 0x82, &tlv(0x06, &[0x44; 48])).sw(),
        SW_OK
    );
    assert_eq!(c.metadata(0x82).data[2], 0x14);
}

#[test]
fn import_refuses_primes_that_cannot_make_a_key() {
    let mut c = Client::new(card_with(PivApplet::with_defaults()));
    c.authenticate_default();
    let crt = |p: &[u8], q: &[u8]| {
        [
            tlv(0x01, p),
            tlv(0x02, q),
            tlv(0x03, &[0]),
            tlv(0x04, &[0]),
            tlv(0x05, &[0]),
        ]
        .concat()
    };
    // Even modulus, p = 1, equal primes, and short primes: once a panic in
    // the rsa crate, now a refusal.
    let mut big = vec![0xC1u8; 128];
    for (p, q) in [
        (vec![2u8], vec![3u8]),
        (vec![1u8], vec![3u8]),
        (big.clone(), big.clone()),
        (vec![0x81u8; 64], vec![0x83u8; 64]),
    ] {
        assert_eq!(
            c.send(0xFE, 0x07, 0x9A, &crt(&p, &q)).sw(),
            0x6A80,
            "{p:02X?}"
        );
    }
    big[127] = 0xC2; // even
    assert_eq!(
        c.send(0xFE, 0x07, 0x9A, &crt(&big, &[0xC3u8; 128])).sw(),
        0x6A80
    );
    // The card still works.
    assert_eq!(c.send(0xFD, 0x00, 0x00, &[]).sw(), SW_OK);
}

#[test]
fn a_refused_9c_request_does_not_spend_the_verify() {
    let mut c = Client::new(default_card());
    let digest = Sha256::digest(b"prescription 44");
    assert_eq!(c.verify(PIN), SW_OK);
    // An ECDH point where a signature is asked of the signature key:
    // refused after the PIN check, so the VERIFY is still unspent.
    let template = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, &[0x04; 65])].concat());
    let refused = c.send(0x87, 0x11, 0x9C, &template).sw();
    assert_ne!(refused, SW_OK);
    assert_ne!(refused, 0x6982);
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    p256_verify(&p256_key(2).public_key(), &digest, &der);
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6982)
    );
}

#[test]
fn a_challenge_request_keeps_an_open_management_session() {
    let mut c = Client::new(default_card());
    c.authenticate_default();
    // OpenSC's GET CHALLENGE: 00 87 00 9B 7C 02 81 00.
    let challenge = c.send(0x87, 0x00, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    assert_eq!(challenge.sw(), SW_OK);
    assert_eq!(c.put_data(&[0x5F, 0xC1, 0x0D], &[0x01, 0x02]), SW_OK);
}

/// Log lines written while a test runs, for asserting what the applet logs.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_refused_import_is_logged_with_its_cause_and_without_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let mut c = Client::new(card_with(PivApplet::with_defaults()));
    c.authenticate_default();
    // A P-256 scalar above the group order: not a private key.
    let scalar = [0xFFu8; 32];
    let data = tlv(0x06, &scalar);
    let sw = tracing::subscriber::with_default(subscriber, || c.send(0xFE, 0x11, 0x9A, &data).sw());
    assert_eq!(sw, 0x6A80);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("vscard::piv"), "{log}");
    assert!(log.contains("imported key refused"), "{log}");
    assert!(log.contains("invalid EccP256 private scalar"), "{log}");
    assert!(!log.to_lowercase().contains("ffffffff"), "{log}");
}
