//! Yubico ATTEST (`00 F9 slot 00`): a certificate for a key generated on
//! the card, signed by the attestation key (F9) installed at
//! personalisation and issued under its certificate (`5FFF01`), with the
//! Yubico extensions piv-go and yubikit read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::Duration;

use common::*;
use der::{Decode as _, Encode as _};
use p256::ecdsa::signature::Verifier as _;
use vscard_applet::{Algorithm, Model, PivApplet, PivConfig, PublicKey, Slot};
use vscard_emulator::Applet as _;
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoRef;
use x509_cert::time::Validity;

/// A self-signed attestation certificate, as a test CA would make one.
struct SelfSigned(Name);

impl BuilderProfile for SelfSigned {
    fn get_issuer(&self, _: &Name) -> Name {
        self.0.clone()
    }
    fn get_subject(&self) -> Name {
        self.0.clone()
    }
    fn build_extensions(
        &self,
        _: SubjectPublicKeyInfoRef<'_>,
        _: SubjectPublicKeyInfoRef<'_>,
        _: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(Vec::new())
    }
}

fn attestation_key() -> p256::SecretKey {
    p256::SecretKey::from_slice(&[0xF9; 32]).unwrap()
}

/// The F9 certificate, made once: two made a second apart would differ in
/// validity, and the attestations' validity is checked against it.
fn attestation_certificate() -> Certificate {
    static MADE: std::sync::OnceLock<Certificate> = std::sync::OnceLock::new();
    MADE.get_or_init(make_attestation_certificate).clone()
}

fn make_attestation_certificate() -> Certificate {
    let key = attestation_key();
    let spki = PublicKey::P256(key.public_key())
        .subject_public_key_info()
        .unwrap();
    let name: Name = "CN=vscard test PIV Attestation".parse().unwrap();
    let validity = Validity::from_now(Duration::from_secs(3600 * 24 * 365)).unwrap();
    CertificateBuilder::new(
        SelfSigned(name),
        SerialNumber::new(&[0x01]).unwrap(),
        validity,
        spki,
    )
    .unwrap()
    .build::<_, p256::ecdsa::DerSignature>(&p256::ecdsa::SigningKey::from(&key))
    .unwrap()
}

fn attesting_applet(model: Model) -> PivApplet {
    let mut applet = PivApplet::new(PivConfig::for_model(model)).unwrap();
    applet
        .install_attestation(
            attestation_key(),
            &attestation_certificate().to_der().unwrap(),
        )
        .unwrap();
    applet
}

fn client(applet: PivApplet) -> Client {
    let mut c = Client::new(card_with(applet));
    assert_eq!(c.select().sw(), SW_OK);
    c
}

fn attest(c: &mut Client, slot: u8) -> Answer {
    c.send(0xF9, slot, 0x00, &[])
}

/// The value of a Yubico extension `1.3.6.1.4.1.41482.3.<arc>`.
fn yubico_extension(certificate: &Certificate, arc: u32) -> Vec<u8> {
    let oid = format!("1.3.6.1.4.1.41482.3.{arc}");
    certificate
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|extension| extension.extn_id.to_string() == oid)
        .unwrap_or_else(|| panic!("no extension {oid}"))
        .extn_value
        .as_bytes()
        .to_vec()
}

/// Checks `der` is an attestation of `public` signed by the F9 key.
fn check_attestation(der: &[u8], public: &PublicKey, slot: &str) -> Certificate {
    let certificate = Certificate::from_der(der).unwrap();
    let issuer = attestation_certificate();
    let tbs = certificate.tbs_certificate();
    assert_eq!(tbs.issuer(), issuer.tbs_certificate().subject());
    assert_eq!(
        tbs.subject().to_string(),
        format!("CN=YubiKey PIV Attestation {slot}")
    );
    assert_eq!(tbs.validity(), issuer.tbs_certificate().validity());
    assert_eq!(
        tbs.subject_public_key_info(),
        &public.subject_public_key_info().unwrap()
    );
    assert_eq!(
        certificate.signature_algorithm().oid.to_string(),
        "1.2.840.10045.4.3.2"
    );
    let signature =
        p256::ecdsa::DerSignature::from_bytes(certificate.signature().as_bytes().unwrap()).unwrap();
    let verifying = p256::ecdsa::VerifyingKey::from(attestation_key().public_key());
    verifying
        .verify(&tbs.to_der().unwrap(), &signature)
        .unwrap();
    // The same signature over another TBS does not verify.
    let mut other = tbs.to_der().unwrap();
    let last = other.len() - 1;
    other[last] ^= 1;
    assert!(verifying.verify(&other, &signature).is_err());
    certificate
}

fn generated_public(answer: &Answer, algorithm: Algorithm) -> PublicKey {
    assert_eq!(answer.sw(), SW_OK);
    let (_, inner) = read_tlv(&answer.data);
    let (tag, point) = read_tlv(inner);
    assert_eq!(tag, 0x86);
    match algorithm {
        Algorithm::EccP256 => PublicKey::P256(p256::PublicKey::from_sec1_bytes(point).unwrap()),
        Algorithm::Ed25519 => PublicKey::Ed25519(
            ed25519_dalek::VerifyingKey::from_bytes(point.try_into().unwrap()).unwrap(),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn generated_keys_are_attested_with_the_yubico_extensions() {
    let mut c = client(attesting_applet(Model::YubiKey57));
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    // The attestation certificate reads as a certificate object.
    let object = c.get_data(&[0x5F, 0xFF, 0x01]);
    assert_eq!(object.sw(), SW_OK);
    let public = generated_public(
        &c.generate(Slot::AUTHENTICATION, Algorithm::EccP256),
        Algorithm::EccP256,
    );
    let answer = attest(&mut c, 0x9A);
    assert_eq!(answer.sw(), SW_OK);
    let certificate = check_attestation(&answer.data, &public, "9a");
    let serial = c.send(0xF8, 0, 0, &[]).data;
    let serial = u32::from_be_bytes(serial.try_into().unwrap());
    assert_eq!(yubico_extension(&certificate, 3), [5, 7, 1]);
    assert_eq!(yubico_extension(&certificate, 7), serial.to_der().unwrap());
    // PIN policy once (9A's default), touch never.
    assert_eq!(yubico_extension(&certificate, 8), [0x02, 0x01]);
    assert_eq!(yubico_extension(&certificate, 9), [0x01]);
    // Every attestation is a new certificate (a new serial number).
    let again = Certificate::from_der(&attest(&mut c, 0x9A).data).unwrap();
    assert_ne!(
        again.tbs_certificate().serial_number(),
        certificate.tbs_certificate().serial_number()
    );

    // An Ed25519 key in 9C (PIN always).
    let public = generated_public(
        &c.generate(Slot::SIGNATURE, Algorithm::Ed25519),
        Algorithm::Ed25519,
    );
    let answer = attest(&mut c, 0x9C);
    assert_eq!(answer.sw(), SW_OK);
    let certificate = check_attestation(&answer.data, &public, "9c");
    assert_eq!(yubico_extension(&certificate, 8), [0x03, 0x01]);
}

#[test]
fn only_generated_keys_in_key_slots_are_attested() {
    let mut c = client(attesting_applet(Model::YubiKey54));
    assert_eq!(c.authenticate_management_key(Algorithm::Tdes, &MGMT), SW_OK);
    // An empty slot.
    assert_eq!(attest(&mut c, 0x9E).sw(), 0x6A88);
    // An imported key: the card cannot vouch for where it was made.
    let scalar = [0x11u8; 32];
    assert_eq!(c.send(0xFE, 0x11, 0x9D, &tlv(0x06, &scalar)).sw(), SW_OK);
    assert_eq!(attest(&mut c, 0x9D).sw(), 0x6A80);
    // Not a key slot, or P2 other than 00.
    assert_eq!(attest(&mut c, 0x9B).sw(), 0x6A86);
    assert_eq!(attest(&mut c, 0xF9).sw(), 0x6A86);
    assert_eq!(c.send(0xF9, 0x9D, 0x01, &[]).sw(), 0x6A86);
    // A 5.4 reports its own version.
    let public = generated_public(
        &c.generate(Slot::CARD_AUTHENTICATION, Algorithm::EccP256),
        Algorithm::EccP256,
    );
    let certificate = check_attestation(&attest(&mut c, 0x9E).data, &public, "9e");
    assert_eq!(yubico_extension(&certificate, 3), [5, 4, 3]);
    assert_eq!(yubico_extension(&certificate, 8), [0x01, 0x01]);
}

#[test]
fn no_attestation_key_no_attestation_and_a_plain_piv_card_has_no_attest() {
    let mut c = client(PivApplet::new(PivConfig::for_model(Model::YubiKey57)).unwrap());
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    assert_eq!(attest(&mut c, 0x9C).sw(), 0x6A88);
    assert_eq!(c.get_data(&[0x5F, 0xFF, 0x01]).sw(), 0x6A82);

    let mut c = client(attesting_applet(Model::Piv));
    assert_eq!(attest(&mut c, 0x9A).sw(), 0x6D00);
}

#[test]
fn the_attestation_key_survives_the_image_and_a_reset() {
    let state = attesting_applet(Model::YubiKey57).save().unwrap();
    let mut c = client(PivApplet::from_saved(&state).unwrap());
    // RESET needs the PIN and the PUK blocked.
    for _ in 0..3 {
        c.verify(b"000000");
        c.unblock(b"00000000", b"000000");
    }
    assert_eq!(c.send(0xFB, 0, 0, &[]).sw(), SW_OK);
    assert_eq!(c.get_data(&[0x5F, 0xFF, 0x01]).sw(), SW_OK);
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    let public = generated_public(
        &c.generate(Slot::AUTHENTICATION, Algorithm::EccP256),
        Algorithm::EccP256,
    );
    check_attestation(&attest(&mut c, 0x9A).data, &public, "9a");
}
