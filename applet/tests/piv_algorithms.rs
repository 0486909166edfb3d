//! The YubiKey 5.7 algorithm set over the wire: RSA-1024, 3072 and 4096
//! (IMPORT, sign, decipher; GENERATE for RSA-1024), Ed25519 (`E0`:
//! GENERATE, IMPORT tag `07`, signatures checked with ed25519-dalek and the
//! RFC 8032 vector) and X25519 (`E1`: GENERATE, IMPORT tag `08`,
//! agreement checked against x25519-dalek and the RFC 7748 vector); the
//! models that lack them (YubiKey 5.4, plain PIV) refuse them.
//!
//! The RSA keys are fixed test keys (made once with openssl): the tests do
//! not pay for RSA-3072/4096 generation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256};
use vscard_applet::tlv::Reader;
use vscard_applet::{Algorithm, Model, PivApplet, PivConfig, Slot};
use vscard_emulator::CardRng;

fn client(model: Model) -> Client {
    let mut client = Client::new(card_with(
        PivApplet::new(PivConfig::for_model(model)).unwrap(),
    ));
    assert_eq!(client.select().sw(), SW_OK);
    client
}

/// A YubiKey 5.7 card, authenticated with its default (AES-192)
/// management key, PIN verified.
fn authenticated() -> Client {
    let mut c = client(Model::YubiKey57);
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    assert_eq!(c.verify(PIN), SW_OK);
    c
}

fn rsa_test_key(bits: usize) -> RsaPrivateKey {
    let der: &[u8] = match bits {
        1024 => include_bytes!("data/piv/rsa1024-test-key.pk8.der"),
        2048 => include_bytes!("data/piv/rsa2048-test-key.pk8.der"),
        3072 => include_bytes!("data/piv/rsa3072-test-key.pk8.der"),
        4096 => include_bytes!("data/piv/rsa4096-test-key.pk8.der"),
        _ => unreachable!(),
    };
    RsaPrivateKey::from_pkcs8_der(der).unwrap()
}

/// `value` big-endian in exactly `len` bytes (as yubikit's `int2bytes`).
fn fixed(value: &rsa::BoxedUint, len: usize) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = vec![0; len - (bytes.len() - zeros)];
    out.extend_from_slice(&bytes[zeros..]);
    out
}

/// Yubico IMPORT KEY data for an RSA key, as ykman sends it.
fn rsa_import_data(key: &RsaPrivateKey) -> Vec<u8> {
    let half = key.size() / 2;
    [
        tlv(0x01, &fixed(key.primes()[0].as_ref(), half)),
        tlv(0x02, &fixed(key.primes()[1].as_ref(), half)),
        tlv(0x03, &fixed(key.dp().unwrap(), half)),
        tlv(0x04, &fixed(key.dq().unwrap(), half)),
        tlv(0x05, &fixed(&key.crt_coefficient().unwrap(), half)),
    ]
    .concat()
}

/// The value of `tag` in a flat TLV list.
fn find(data: &[u8], tag: u32) -> Vec<u8> {
    Reader::new(data)
        .read_all()
        .unwrap()
        .into_iter()
        .find(|object| object.tag == tag)
        .unwrap_or_else(|| panic!("tag {tag:X} not found"))
        .value
        .to_vec()
}

/// The `86` value of a `7F49` public key template.
fn point_of_template(template: &[u8]) -> Vec<u8> {
    let (tag, inner) = read_tlv(template);
    assert_eq!(tag, 0x7F49);
    let (tag, point) = read_tlv(inner);
    assert_eq!(tag, 0x86);
    point.to_vec()
}

/// GET METADATA: (algorithm byte, public key data objects).
fn metadata(c: &mut Client, slot: Slot) -> (u8, Vec<u8>) {
    let answer = c.metadata(slot.byte());
    assert_eq!(answer.sw(), SW_OK);
    (find(&answer.data, 0x01)[0], find(&answer.data, 0x04))
}

/// An EMSA-PKCS1-v1_5 block of `len` bytes for a SHA-256 digest.
fn pkcs1v15_block(digest: &[u8], len: usize) -> Vec<u8> {
    let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
    let t = [prefix, digest.to_vec()].concat();
    let mut block = vec![0x00, 0x01];
    block.resize(len - t.len() - 1, 0xFF);
    block.push(0x00);
    block.extend(t);
    block
}

/// GENERAL AUTHENTICATE `7C { 82 00, 85 data }`: the `82` value or the
/// status word.
fn agree(c: &mut Client, algorithm: Algorithm, slot: Slot, peer: &[u8]) -> Result<Vec<u8>, u16> {
    let data = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, peer)].concat());
    let answer = c.send(0x87, algorithm.byte(), slot.byte(), &data);
    if answer.sw() != SW_OK {
        return Err(answer.sw());
    }
    Ok(unwrap_template(&answer.data))
}

#[test]
fn rsa_1024_3072_and_4096_import_sign_and_decipher() {
    let mut c = authenticated();
    for (bits, algorithm) in [
        (1024, Algorithm::Rsa1024),
        (3072, Algorithm::Rsa3072),
        (4096, Algorithm::Rsa4096),
    ] {
        let key = rsa_test_key(bits);
        let public = key.to_public_key();
        let len = bits / 8;
        // A key of another size than P1 names is refused.
        let other = if bits == 1024 { 3072 } else { 1024 };
        assert_eq!(
            c.send(
                0xFE,
                algorithm.byte(),
                0x9A,
                &rsa_import_data(&rsa_test_key(other))
            )
            .sw(),
            0x6A80,
            "{bits}"
        );
        assert_eq!(
            c.send(0xFE, algorithm.byte(), 0x9A, &rsa_import_data(&key))
                .sw(),
            SW_OK,
            "{bits}"
        );
        let (byte, objects) = metadata(&mut c, Slot::AUTHENTICATION);
        assert_eq!(byte, algorithm.byte());
        assert_eq!(find(&objects, 0x81), public.n_bytes().to_vec());

        // Sign: the raw private-key operation on a block padded here.
        let digest = Sha256::digest(format!("RSA-{bits} signature"));
        let block = pkcs1v15_block(&digest, len);
        // The algorithm in P1 must be the key's.
        assert_eq!(
            c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block),
            Err(0x6A80)
        );
        let signature = c.sign(algorithm, Slot::AUTHENTICATION, &block).unwrap();
        assert_eq!(signature.len(), len);
        public
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .unwrap();
        // A block one byte short is refused.
        assert_eq!(
            c.sign(algorithm, Slot::AUTHENTICATION, &block[1..]),
            Err(0x6A80)
        );

        // Decipher: the card returns the padded plaintext.
        let message = b"session key for the record";
        let ciphertext = public
            .encrypt(&mut CardRng::from_u64(9), Pkcs1v15Encrypt, message)
            .unwrap();
        let padded = c
            .sign(algorithm, Slot::AUTHENTICATION, &ciphertext)
            .unwrap();
        assert_eq!(padded.len(), len);
        assert_eq!(padded[..2], [0x00, 0x02]);
        assert!(padded.ends_with(&[&[0u8][..], message].concat()));
    }
}

#[test]
fn rsa_1024_is_generated_on_the_card() {
    let mut c = authenticated();
    let answer = c.generate(Slot::SIGNATURE, Algorithm::Rsa1024);
    assert_eq!(answer.sw(), SW_OK);
    let (tag, inner) = read_tlv(&answer.data);
    assert_eq!(tag, 0x7F49);
    let n = find(inner, 0x81);
    assert_eq!(n.len(), 128);
    assert_eq!(find(inner, 0x82), [0x01, 0x00, 0x01]);
    let public = RsaPublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from(65537u32),
    )
    .unwrap();
    let digest = Sha256::digest(b"generated rsa-1024");
    assert_eq!(c.verify(PIN), SW_OK);
    let signature = c
        .sign(
            Algorithm::Rsa1024,
            Slot::SIGNATURE,
            &pkcs1v15_block(&digest, 128),
        )
        .unwrap();
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
    assert_eq!(metadata(&mut c, Slot::SIGNATURE).0, 0x06);
}

#[test]
fn ed25519_is_generated_and_signs_whole_messages() {
    let mut c = authenticated();
    let answer = c.generate(Slot::CARD_AUTHENTICATION, Algorithm::Ed25519);
    assert_eq!(answer.sw(), SW_OK);
    let point = point_of_template(&answer.data);
    assert_eq!(point.len(), 32);
    let public =
        ed25519_dalek::VerifyingKey::from_bytes(&point.clone().try_into().unwrap()).unwrap();
    let (byte, objects) = metadata(&mut c, Slot::CARD_AUTHENTICATION);
    assert_eq!((byte, find(&objects, 0x86)), (0xE0, point));

    // The message itself, not a digest: any length, also chained.
    for message in [b"x".to_vec(), vec![0x5A; 1000]] {
        let signature = c
            .sign(Algorithm::Ed25519, Slot::CARD_AUTHENTICATION, &message)
            .unwrap();
        assert_eq!(signature.len(), 64);
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        public.verify_strict(&message, &signature).unwrap();
    }
    // Not a key-agreement key, and not an ECDSA key.
    assert_eq!(
        agree(
            &mut c,
            Algorithm::Ed25519,
            Slot::CARD_AUTHENTICATION,
            &[9; 32]
        ),
        Err(0x6A80)
    );
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::CARD_AUTHENTICATION, &[1; 32]),
        Err(0x6A80)
    );
}

#[test]
fn ed25519_import_gives_the_rfc_8032_signature() {
    // RFC 8032 7.1, test 2.
    let secret =
        hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").unwrap();
    let public =
        hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c").unwrap();
    let expected = hex::decode(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
         085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    )
    .unwrap();
    let mut c = authenticated();
    // The key goes in tag 07; tag 06 (an EC scalar) or 08 is refused.
    assert_eq!(c.send(0xFE, 0xE0, 0x9C, &tlv(0x06, &secret)).sw(), 0x6A80);
    assert_eq!(c.send(0xFE, 0xE0, 0x9C, &tlv(0x08, &secret)).sw(), 0x6A80);
    assert_eq!(
        c.send(0xFE, 0xE0, 0x9C, &tlv(0x07, &secret[..31])).sw(),
        0x6A80
    );
    let data = [tlv(0x07, &secret), tlv(0xAA, &[0x01])].concat();
    assert_eq!(c.send(0xFE, 0xE0, 0x9C, &data).sw(), SW_OK);
    let (byte, objects) = metadata(&mut c, Slot::SIGNATURE);
    assert_eq!((byte, find(&objects, 0x86)), (0xE0, public));
    assert_eq!(
        c.sign(Algorithm::Ed25519, Slot::SIGNATURE, &[0x72]),
        Ok(expected)
    );
}

#[test]
fn x25519_is_generated_and_agrees_as_x25519_dalek() {
    let mut c = authenticated();
    let answer = c.generate(Slot::KEY_MANAGEMENT, Algorithm::X25519);
    assert_eq!(answer.sw(), SW_OK);
    let point: [u8; 32] = point_of_template(&answer.data).try_into().unwrap();
    let (byte, objects) = metadata(&mut c, Slot::KEY_MANAGEMENT);
    assert_eq!((byte, find(&objects, 0x86)), (0xE1, point.to_vec()));

    let host = x25519_dalek::StaticSecret::from([0x42; 32]);
    let host_public = x25519_dalek::PublicKey::from(&host);
    let shared = agree(
        &mut c,
        Algorithm::X25519,
        Slot::KEY_MANAGEMENT,
        host_public.as_bytes(),
    )
    .unwrap();
    let expected = host.diffie_hellman(&x25519_dalek::PublicKey::from(point));
    assert_eq!(shared, expected.as_bytes());
    // A point of the wrong length, an uncompressed EC point, a point of
    // small order (all-zero secret), a signature request: 6A80.
    for peer in [&[9u8; 31][..], &[9; 33], &[0; 32]] {
        assert_eq!(
            agree(&mut c, Algorithm::X25519, Slot::KEY_MANAGEMENT, peer),
            Err(0x6A80)
        );
    }
    assert_eq!(
        c.sign(Algorithm::X25519, Slot::KEY_MANAGEMENT, &[1; 32]),
        Err(0x6A80)
    );
}

#[test]
fn x25519_import_gives_the_rfc_7748_shared_secret() {
    // RFC 7748 6.1.
    let alice =
        hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").unwrap();
    let alice_public =
        hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").unwrap();
    let bob_public =
        hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f").unwrap();
    let shared =
        hex::decode("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742").unwrap();
    let mut c = authenticated();
    assert_eq!(c.send(0xFE, 0xE1, 0x9D, &tlv(0x07, &alice)).sw(), 0x6A80);
    assert_eq!(c.send(0xFE, 0xE1, 0x9D, &tlv(0x08, &alice)).sw(), SW_OK);
    let (byte, objects) = metadata(&mut c, Slot::KEY_MANAGEMENT);
    assert_eq!((byte, find(&objects, 0x86)), (0xE1, alice_public));
    assert_eq!(
        agree(&mut c, Algorithm::X25519, Slot::KEY_MANAGEMENT, &bob_public),
        Ok(shared)
    );
}

#[test]
fn models_without_the_5_7_algorithms_refuse_them() {
    let new_algorithms = [
        Algorithm::Rsa3072,
        Algorithm::Rsa4096,
        Algorithm::Ed25519,
        Algorithm::X25519,
    ];
    for (model, management) in [
        (Model::YubiKey54, Algorithm::Tdes),
        (Model::Piv, Algorithm::Tdes),
    ] {
        let mut c = client(model);
        assert_eq!(c.authenticate_management_key(management, &MGMT), SW_OK);
        for algorithm in new_algorithms {
            // As for an algorithm the card does not know at all.
            assert_eq!(
                c.generate(Slot::SIGNATURE, algorithm).sw(),
                0x6A80,
                "{model} {algorithm:?}"
            );
            // Material of the right shape: the algorithm is what is refused.
            let material = match algorithm {
                Algorithm::Ed25519 => tlv(0x07, &[1; 32]),
                Algorithm::X25519 => tlv(0x08, &[1; 32]),
                _ => rsa_import_data(&rsa_test_key(1024)),
            };
            let import = c.send(0xFE, algorithm.byte(), 0x9C, &material);
            let expected = if model == Model::Piv { 0x6D00 } else { 0x6A86 };
            assert_eq!(import.sw(), expected, "{model} {algorithm:?}");
        }
        // RSA-1024 is there on both (SP 800-78-4 has it).
        assert_eq!(
            c.generate(Slot::SIGNATURE, Algorithm::Rsa1024).sw(),
            SW_OK,
            "{model}"
        );
    }
    // On a 5.7 all of them are known.
    let mut c = authenticated();
    for algorithm in [Algorithm::Ed25519, Algorithm::X25519] {
        assert_eq!(c.generate(Slot::SIGNATURE, algorithm).sw(), SW_OK);
    }
}

#[test]
fn new_key_types_survive_the_card_image_and_keep_working() {
    use vscard_applet::{PrivateKey, PublicKey};
    use vscard_emulator::Applet as _;
    let mut rng = CardRng::from_u64(57);
    let mut applet = PivApplet::new(PivConfig::for_model(Model::YubiKey57)).unwrap();
    let ed25519 = applet
        .install_key(
            Slot::SIGNATURE,
            PrivateKey::generate(Algorithm::Ed25519, &mut rng).unwrap(),
        )
        .unwrap();
    let x25519 = applet
        .install_key(
            Slot::KEY_MANAGEMENT,
            PrivateKey::generate(Algorithm::X25519, &mut rng).unwrap(),
        )
        .unwrap();
    let rsa1024 = applet
        .install_key(Slot::AUTHENTICATION, rsa_test_key(1024))
        .unwrap();
    let state = applet.save().unwrap();
    // The image names the new algorithms.
    let json = serde_json::to_string(&state).unwrap();
    for name in ["Ed25519", "X25519", "Rsa1024"] {
        assert!(
            json.contains(&format!("\"algorithm\":\"{name}\"")),
            "{name}: {json}"
        );
    }
    let mut c = Client::new(card_with(PivApplet::from_saved(&state).unwrap()));
    assert_eq!(c.select().sw(), SW_OK);
    assert_eq!(c.verify(PIN), SW_OK);
    let PublicKey::Ed25519(public) = ed25519 else {
        panic!("{ed25519:?}")
    };
    let signature = c
        .sign(Algorithm::Ed25519, Slot::SIGNATURE, b"after a reload")
        .unwrap();
    public
        .verify_strict(
            b"after a reload",
            &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
        )
        .unwrap();
    let PublicKey::X25519(public) = x25519 else {
        panic!("{x25519:?}")
    };
    let host = x25519_dalek::StaticSecret::from([7; 32]);
    let shared = agree(
        &mut c,
        Algorithm::X25519,
        Slot::KEY_MANAGEMENT,
        x25519_dalek::PublicKey::from(&host).as_bytes(),
    )
    .unwrap();
    assert_eq!(shared, host.diffie_hellman(&public).as_bytes());
    assert_eq!(metadata(&mut c, Slot::AUTHENTICATION).0, 0x06);
    assert_eq!(rsa1024.algorithm(), Algorithm::Rsa1024);
}
