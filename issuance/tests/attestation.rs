//! `vscard issue`'s attestation: a YubiKey-model card issued from a
//! profile answers ATTEST with a certificate chained to its `5FFF01`, which
//! the environment's attestation CA issued; seeded cards stay
//! reproducible, and a plain PIV card has none of it.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::SystemTime;

use der::{Decode, DecodePem, Encode};
use vscard_applet::Model;
use vscard_emulator::{Card, Status};
use vscard_issuance::cards::{issue_card_file, open_card};
use vscard_issuance::{
    CardProfile, CertificateValidity, Pki, SecretString, YUBICO_FIRMWARE_VERSION,
    YUBICO_SERIAL_NUMBER, verify_issued_by,
};
use vscard_testkit::Client;
use x509_cert::Certificate;

/// Yubico's PIN and touch policy extension of an attestation.
const POLICY: &str = "1.3.6.1.4.1.41482.3.8";
/// The YubiKey 5.7 default management key (AES-192, the well-known bytes).
const AES192_DEFAULT: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

fn profile(model: Model, seed: &str) -> CardProfile {
    let mut profile = CardProfile::demo();
    profile.model = model;
    profile.seed = Some(SecretString::new(seed));
    profile
}

/// Issues `profile` into `dir/name` with the PKI of `state_dir`, served
/// in-process and powered.
fn issue(profile: &CardProfile, state_dir: &Path, out: &Path) -> Card {
    let validity = CertificateValidity::for_profile(profile, SystemTime::now()).unwrap();
    issue_card_file(out, profile, validity, &[], state_dir, false, |_, _| {}).unwrap();
    let (mut card, _) = open_card(out).unwrap();
    card.power_on();
    card
}

fn certificate_object(card: &mut Card, tag: [u8; 3]) -> Result<Certificate, Status> {
    let object = Client::new(card).get_object(&tag).unwrap()?;
    let mut reader = vscard_applet::tlv::Reader::new(&object);
    let der = reader.expect(0x70).unwrap();
    Ok(Certificate::from_der(der).unwrap())
}

fn extension<'a>(certificate: &'a Certificate, oid: &str) -> Option<&'a [u8]> {
    certificate
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|extension| extension.extn_id.to_string() == oid)
        .map(|extension| extension.extn_value.as_bytes())
}

#[test]
fn an_issued_yubikey_card_attests_a_generated_key_under_the_attestation_ca() {
    let state = tempfile::tempdir().unwrap();
    let cards = tempfile::tempdir().unwrap();
    let profile = profile(Model::YubiKey57, "attestation-tests");
    let mut card = issue(&profile, state.path(), &cards.path().join("card.json"));

    let pki = Pki::open(state.path(), &profile.environment).unwrap();
    let out = tempfile::tempdir().unwrap();
    let [.., exported] = pki.export(out.path()).unwrap();
    let text = std::fs::read_to_string(&exported).unwrap();
    let ca = Certificate::from_pem(text.as_bytes()).unwrap();
    assert_eq!(
        ca.tbs_certificate().issuer(),
        ca.tbs_certificate().subject()
    );
    verify_issued_by(&ca, &ca).unwrap();
    assert_eq!(
        ca,
        *pki.attestation_ca().unwrap().certificate(),
        "the exported CA is the PKI's"
    );

    let device = certificate_object(&mut card, [0x5F, 0xFF, 0x01]).unwrap();
    verify_issued_by(&device, &ca).unwrap();
    assert_eq!(
        extension(&device, &YUBICO_FIRMWARE_VERSION.to_string()),
        Some(&[5, 7, 1][..])
    );
    let serial = 123_456_789u32.to_der().unwrap();
    assert_eq!(
        extension(&device, &YUBICO_SERIAL_NUMBER.to_string()),
        Some(&serial[..])
    );

    // An issued card's keys are imported: ATTEST refuses them (6A80).
    let mut client = Client::new(&mut card);
    client.expect_status(&[0x00, 0xF9, 0x9A, 0x00, 0x00], Status::IncorrectData);
    // A key generated on the card, touch ALWAYS, is attested.
    client
        .authenticate_management_key(0x0A, &AES192_DEFAULT, &[0x55; 16])
        .unwrap()
        .unwrap();
    client.expect(
        &[
            0x00, 0x47, 0x00, 0x9A, 0x08, 0xAC, 0x06, 0x80, 0x01, 0x11, 0xAB, 0x01, 0x02,
        ],
        Status::Success,
    );
    let attested = client.expect(&[0x00, 0xF9, 0x9A, 0x00, 0x00], Status::Success);
    let attested = Certificate::from_der(&attested).unwrap();
    verify_issued_by(&attested, &device).unwrap();
    assert_eq!(
        extension(&attested, POLICY),
        Some(&[0x02, 0x02][..]),
        "PIN once, touch always"
    );
    assert_eq!(
        extension(&attested, &YUBICO_SERIAL_NUMBER.to_string()),
        Some(&serial[..])
    );
    // GET SERIAL says the same serial as both certificates.
    let reply = client.expect(&[0x00, 0xF8, 0x00, 0x00, 0x00], Status::Success);
    assert_eq!(reply, 123_456_789u32.to_be_bytes());
}

#[test]
fn seeded_cards_get_the_same_attestation_key_and_a_piv_card_none() {
    let state = tempfile::tempdir().unwrap();
    let cards = tempfile::tempdir().unwrap();
    let profile = profile(Model::YubiKey54, "attestation-seed");
    let mut first = issue(&profile, state.path(), &cards.path().join("a.json"));
    let mut second = issue(&profile, state.path(), &cards.path().join("b.json"));
    let tag = [0x5F, 0xFF, 0x01];
    let (a, b) = (
        certificate_object(&mut first, tag).unwrap(),
        certificate_object(&mut second, tag).unwrap(),
    );
    assert_eq!(
        a.tbs_certificate().subject_public_key_info(),
        b.tbs_certificate().subject_public_key_info()
    );
    assert_eq!(
        extension(&a, &YUBICO_FIRMWARE_VERSION.to_string()),
        Some(&[5, 4, 3][..])
    );

    // A second state directory makes another PKI, hence another CA, but
    // the CA made twice in one PKI is the same bytes.
    let pki = Pki::open(state.path(), &profile.environment).unwrap();
    let again = pki.attestation_ca().unwrap();
    assert_eq!(
        again.certificate(),
        pki.attestation_ca().unwrap().certificate()
    );
    verify_issued_by(&a, again.certificate()).unwrap();

    let plain = profile_piv();
    let mut card = issue(&plain, state.path(), &cards.path().join("piv.json"));
    assert_eq!(
        certificate_object(&mut card, tag).unwrap_err(),
        Status::NotFound
    );
    Client::new(&mut card).expect_status(
        &[0x00, 0xF9, 0x9A, 0x00, 0x00],
        Status::InstructionNotSupported,
    );
}

fn profile_piv() -> CardProfile {
    profile(Model::Piv, "attestation-seed")
}
