//! Whole-card issuance, renewal, summaries and the library's own path
//! checks (accepting good chains and naming what is wrong with bad ones).

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use der::{DateTime, Decode, Encode};
use vscard_applet::{Algorithm, Slot};
use vscard_emulator::CardRng;
use vscard_issuance::{
    CARD_SLOTS, CardProfile, CertificateSummary, CertificateValidity, ChainError, Environment,
    Naming, Pki, SecretString, SlotAlgorithms, create_authorities_named, issue_card,
    renew_certificate, verify_chain, verify_issued_by, verify_valid_at,
};
use x509_cert::Certificate;

fn p256_profile() -> CardProfile {
    CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..CardProfile::demo()
    }
}

fn at(year: u16, month: u8, day: u8) -> SystemTime {
    DateTime::new(year, month, day, 9, 0, 0)
        .unwrap()
        .to_system_time()
}

fn pki(state: &tempfile::TempDir, seed: u64) -> Pki {
    Pki::open_or_create(
        state.path(),
        &Environment::Sandbox,
        &mut CardRng::from_u64(seed),
    )
    .unwrap()
}

/// A PKI with the pre-issue-18 CA names, the same in every install.
fn legacy_pki(state: &tempfile::TempDir, seed: u64) -> Pki {
    let mut rng = CardRng::from_u64(seed);
    let authorities = create_authorities_named(
        &Environment::Sandbox,
        SystemTime::now(),
        Naming::Legacy,
        &mut rng,
    )
    .unwrap();
    Pki::install(state.path(), &Environment::Sandbox, authorities, seed).unwrap()
}

fn soon() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

#[test]
fn a_whole_card_is_issued_slot_by_slot() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = CardProfile {
        slots: SlotAlgorithms {
            digital_signature: Algorithm::EccP384,
            ..SlotAlgorithms::ALL_P256
        },
        ..CardProfile::demo()
    };
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let mut progress = Vec::new();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(3),
        |slot, algorithm| progress.push((slot, algorithm)),
    )
    .unwrap();
    assert_eq!(
        progress,
        [
            (Slot::AUTHENTICATION, Algorithm::EccP256),
            (Slot::SIGNATURE, Algorithm::EccP384),
            (Slot::KEY_MANAGEMENT, Algorithm::EccP256),
            (Slot::CARD_AUTHENTICATION, Algorithm::EccP256),
        ]
    );
    let slots: Vec<Slot> = issued.iter().map(|slot| slot.slot).collect();
    assert_eq!(slots, CARD_SLOTS);
    for slot in &issued {
        verify_chain(
            &slot.certificate,
            pki.sub().certificate(),
            pki.root().certificate(),
            soon(),
        )
        .unwrap();
        assert_eq!(
            slot.certificate.tbs_certificate().subject_public_key_info(),
            &slot.key.public_key
        );
    }
}

#[test]
fn seeded_cards_are_identical() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = CardProfile {
        seed: Some(SecretString::new("same card twice")),
        ..p256_profile()
    };
    let validity = CertificateValidity::for_profile(&profile, at(2026, 11, 23)).unwrap();
    let issue = || {
        let mut rng = profile.seeded_rng().unwrap();
        issue_card(pki.sub(), &profile, validity, &mut rng, |_, _| {})
            .unwrap()
            .iter()
            .map(|slot| slot.certificate.to_der().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(issue(), issue());
}

#[test]
fn renewal_keeps_the_key_and_extends_the_window() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(4);
    let first = CertificateValidity::for_profile(&profile, at(2026, 11, 23)).unwrap();
    let issued = issue_card(pki.sub(), &profile, first, &mut rng, |_, _| {}).unwrap();
    let old = &issued[1].certificate;
    let second = CertificateValidity::for_profile(&profile, at(2028, 11, 1)).unwrap();
    let renewed =
        renew_certificate(pki.sub(), old, &profile, Slot::SIGNATURE, second, &mut rng).unwrap();
    let (old_tbs, new_tbs) = (old.tbs_certificate(), renewed.tbs_certificate());
    assert_eq!(
        old_tbs.subject_public_key_info(),
        new_tbs.subject_public_key_info()
    );
    assert_eq!(old_tbs.subject(), new_tbs.subject());
    assert_ne!(old_tbs.serial_number(), new_tbs.serial_number());
    assert_eq!(
        new_tbs.validity().not_after.to_date_time(),
        DateTime::new(2030, 11, 1, 9, 0, 0).unwrap()
    );
    verify_issued_by(&renewed, pki.sub().certificate()).unwrap();
}

#[test]
fn expired_and_future_certificates_are_reported() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(5);
    let expired = CertificateValidity::new(at(2020, 1, 1), at(2022, 1, 1)).unwrap();
    let issued = issue_card(pki.sub(), &profile, expired, &mut rng, |_, _| {}).unwrap();
    let card = &issued[0].certificate;
    verify_issued_by(card, pki.sub().certificate()).unwrap();
    let error = verify_valid_at(card, SystemTime::now()).unwrap_err();
    assert!(matches!(error, ChainError::OutsideValidity { .. }));
    assert!(
        error
            .to_string()
            .contains("valid from 2020-01-01T09:00:00Z to 2022-01-01T09:00:00Z"),
        "{error}"
    );

    let future = CertificateValidity::new(at(2040, 1, 1), at(2042, 1, 1)).unwrap();
    let issued = issue_card(pki.sub(), &profile, future, &mut rng, |_, _| {}).unwrap();
    let error = verify_chain(
        &issued[0].certificate,
        pki.sub().certificate(),
        pki.root().certificate(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ChainError::OutsideValidity { .. }),
        "{error}"
    );
}

#[test]
fn a_certificate_from_another_pki_does_not_chain() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two installs from before issue 18: their CAs have the same names.
    let (ours, theirs) = (legacy_pki(&one, 1), legacy_pki(&two, 2));
    let profile = p256_profile();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let issued = issue_card(
        theirs.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(6),
        |_, _| {},
    )
    .unwrap();
    // Same names (same environment), different keys.
    let error = verify_chain(
        &issued[0].certificate,
        ours.sub().certificate(),
        ours.root().certificate(),
        soon(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ChainError::KeyIdentifierMismatch { .. }),
        "{error}"
    );
    let error =
        verify_issued_by(theirs.sub().certificate(), ours.root().certificate()).unwrap_err();
    assert!(
        matches!(error, ChainError::KeyIdentifierMismatch { .. }),
        "{error}"
    );
    let error = verify_issued_by(&issued[0].certificate, ours.root().certificate()).unwrap_err();
    assert!(
        matches!(error, ChainError::IssuerMismatch { .. }),
        "{error}"
    );
}

#[test]
fn a_tampered_certificate_fails_its_signature() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = p256_profile();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(7),
        |_, _| {},
    )
    .unwrap();
    let mut der = issued[0].certificate.to_der().unwrap();
    let name = b"Sample Specimen";
    let position = der
        .windows(name.len())
        .position(|window| window == name)
        .unwrap();
    der[position] = b'X';
    let forged = Certificate::from_der(&der).unwrap();
    let error = verify_issued_by(&forged, pki.sub().certificate()).unwrap_err();
    assert!(matches!(error, ChainError::BadSignature { .. }), "{error}");
    assert!(
        error.to_string().starts_with("CN=Xample Specimen"),
        "{error}"
    );
    // A card certificate cannot act as a CA.
    let error = verify_issued_by(&issued[1].certificate, &issued[0].certificate).unwrap_err();
    assert!(
        matches!(error, ChainError::IssuerMismatch { .. }),
        "{error}"
    );
}

#[test]
fn summary_shows_names_serial_and_window() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state, 1);
    let profile = p256_profile();
    let validity = CertificateValidity::for_profile(&profile, at(2026, 11, 23)).unwrap();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(8),
        |_, _| {},
    )
    .unwrap();
    let summary = CertificateSummary::of(&issued[0].certificate);
    assert_eq!(
        summary.subject,
        "CN=Sample Specimen,SERIALNUMBER=000123456789,OU=sandbox,O=RX1"
    );
    assert_eq!(
        summary.issuer,
        "CN=vscard TEST Sub CA (sandbox PKI 16dde8a1),OU=sandbox,O=vscard test PKI"
    );
    assert_eq!(summary.serial.len(), 32);
    assert_eq!(summary.not_before, "2026-11-23T09:00:00Z");
    assert_eq!(summary.not_after, "2028-11-23T09:00:00Z");
    assert_eq!(summary.key_algorithm, Some(Algorithm::EccP256));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["key_algorithm"], "p256");
}
