//! The test PKI and card certificates: the PKI is created once and reused,
//! its files are private, and every certificate chains to the Sub CA and the
//! Root CA, checked here with independent signature verification over the
//! TBS DER, names, key identifiers, constraints and validity windows.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use der::asn1::ObjectIdentifier;
use der::{DateTime, Decode, DecodePem, Encode};
use p256::ecdsa::signature::Verifier;
use spki::DecodePublicKey;
use vscard_applet::{Algorithm, Slot};
use vscard_emulator::CardRng;
use vscard_issuance::{
    CARD_SLOTS, CardProfile, CertificateSummary, CertificateValidity, Environment, GeneratedKey,
    IssuanceError, Naming, PKI_ID_HEX_DIGITS, Pki, PkiError, SEEDED_PKI_NOT_BEFORE, SecretString,
    SlotAlgorithms, algorithm_of_public_key, create_authorities_named, generate_key,
    issue_card_certificate, pki_store, private_key_from_pkcs8, private_key_to_pkcs8,
    public_key_info, state_dir_from, verify_issued_by,
};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// The one RSA-2048 key of this file, generated once from a fixed seed.
fn rsa_key() -> &'static GeneratedKey {
    static KEY: OnceLock<GeneratedKey> = OnceLock::new();
    KEY.get_or_init(|| generate_key(Algorithm::Rsa2048, &mut CardRng::from_u64(2048)).unwrap())
}

/// A fixed moment: 2026-11-23 09:00:00 UTC.
fn issue_time() -> SystemTime {
    DateTime::new(2026, 11, 23, 9, 0, 0)
        .unwrap()
        .to_system_time()
}

fn p256_profile() -> CardProfile {
    CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..CardProfile::demo()
    }
}

fn new_pki(state_dir: &Path, seed: u64) -> Pki {
    Pki::open_or_create(
        state_dir,
        &Environment::Sandbox,
        &mut CardRng::from_u64(seed),
    )
    .unwrap()
}

/// Checks that `certificate` was signed by `issuer`: names, signature
/// algorithm, the ECDSA signature over the TBS DER with the issuer's public
/// key, and the key identifiers.
fn assert_signed_by(certificate: &Certificate, issuer: &Certificate) {
    let tbs = certificate.tbs_certificate();
    assert_eq!(tbs.issuer(), issuer.tbs_certificate().subject());
    assert_eq!(certificate.signature_algorithm().oid, ECDSA_WITH_SHA256);
    assert_eq!(tbs.signature().oid, ECDSA_WITH_SHA256);
    let issuer_spki = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&issuer_spki).unwrap();
    let signature =
        p256::ecdsa::DerSignature::from_bytes(certificate.signature().raw_bytes()).unwrap();
    let tbs_der = tbs_bytes(certificate);
    key.verify(&tbs_der, &signature).unwrap();
    let mut tampered = tbs_der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(key.verify(&tampered, &signature).is_err());

    let (_, aki) = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .unwrap()
        .unwrap();
    let (_, issuer_ski) = issuer
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(aki.key_identifier, Some(issuer_ski.0));
}

/// The TBSCertificate exactly as it is inside the certificate's DER (the
/// first element of the outer SEQUENCE), not a re-encoding.
fn tbs_bytes(certificate: &Certificate) -> Vec<u8> {
    let der = certificate.to_der().unwrap();
    let mut reader = der::SliceReader::new(&der).unwrap();
    let _outer = der::Header::decode(&mut reader).unwrap();
    let tbs = der::asn1::AnyRef::decode(&mut reader).unwrap();
    // AnyRef keeps the value bytes as they were; tag and length are
    // written back unchanged.
    tbs.to_der().unwrap()
}

fn basic_constraints(certificate: &Certificate) -> (bool, BasicConstraints) {
    let (critical, constraints) = certificate
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .unwrap()
        .unwrap();
    (critical, constraints)
}

fn key_usage(certificate: &Certificate) -> KeyUsage {
    let (critical, usage) = certificate
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .unwrap()
        .unwrap();
    assert!(critical, "keyUsage must be critical");
    usage
}

fn extended_key_usage(certificate: &Certificate) -> Vec<String> {
    let (_, usage) = certificate
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .unwrap()
        .unwrap();
    usage.0.iter().map(ToString::to_string).collect()
}

fn attribute(certificate: &Certificate, oid: ObjectIdentifier) -> String {
    let subject = certificate.tbs_certificate().subject();
    let value = subject.iter().find(|atv| atv.oid == oid).unwrap();
    String::from_utf8(value.value.value().to_vec()).unwrap()
}

fn window(certificate: &Certificate) -> (DateTime, DateTime) {
    let validity = certificate.tbs_certificate().validity();
    (
        validity.not_before.to_date_time(),
        validity.not_after.to_date_time(),
    )
}

/// Checks the path card -> Sub CA -> Root CA at `moment`, as a relying
/// party would: signatures, CA constraints, key usage and validity.
fn assert_path_valid_at(card: &Certificate, pki: &Pki, moment: SystemTime) {
    let root = pki.root().certificate();
    let sub = pki.sub().certificate();
    assert_signed_by(root, root);
    assert_signed_by(sub, root);
    assert_signed_by(card, sub);
    for (certificate, is_ca) in [(root, true), (sub, true), (card, false)] {
        let (critical, constraints) = basic_constraints(certificate);
        assert!(critical);
        assert_eq!(constraints.ca, is_ca);
        let validity = certificate.tbs_certificate().validity();
        assert!(validity.not_before.to_system_time() <= moment);
        assert!(moment <= validity.not_after.to_system_time());
    }
    assert_eq!(basic_constraints(sub).1.path_len_constraint, Some(0));
    for ca in [root, sub] {
        let usage = key_usage(ca);
        assert!(usage.key_cert_sign() && usage.crl_sign());
    }
}

#[test]
fn pki_is_created_once_then_reused() {
    let state = tempfile::tempdir().unwrap();
    let first = new_pki(state.path(), 1);
    let directory = state.path().join("pki").join("sandbox");
    assert_eq!(first.directory(), directory);
    let second = Pki::open_or_create(
        state.path(),
        &Environment::Sandbox,
        &mut CardRng::from_u64(99),
    )
    .unwrap();
    assert_eq!(first.root().certificate(), second.root().certificate());
    assert_eq!(first.sub().certificate(), second.sub().certificate());
    let reopened = Pki::open(state.path(), &Environment::Sandbox).unwrap();
    assert_eq!(first.sub().certificate(), reopened.sub().certificate());

    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&directory), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "root-ca.cert.pem",
            "root-ca.key.pem",
            "sub-ca.cert.pem",
            "sub-ca.key.pem"
        ]
    );
    for name in &names {
        assert_eq!(mode(&directory.join(name)), 0o600, "{name}");
    }
    let key = std::fs::read_to_string(directory.join(pki_store::SUB_KEY_FILE)).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let leftovers = std::fs::read_dir(state.path().join("pki")).unwrap().count();
    assert_eq!(leftovers, 1, "no staging folder is left behind");
}

#[test]
fn environments_have_their_own_chains() {
    let state = tempfile::tempdir().unwrap();
    let sandbox = new_pki(state.path(), 1);
    let integration = Pki::open_or_create(
        state.path(),
        &Environment::Integration,
        &mut CardRng::from_u64(1),
    )
    .unwrap();
    assert_ne!(
        sandbox.root().certificate(),
        integration.root().certificate()
    );
    let subject = integration
        .root()
        .certificate()
        .tbs_certificate()
        .subject()
        .to_string();
    assert!(subject.contains("integration"), "{subject}");
    assert!(state.path().join("pki/integration").is_dir());
}

#[test]
fn a_damaged_pki_is_reported_and_left_alone() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let key_path = pki.directory().join(pki_store::SUB_KEY_FILE);
    std::fs::remove_file(&key_path).unwrap();
    let error = Pki::open_or_create(
        state.path(),
        &Environment::Sandbox,
        &mut CardRng::from_u64(2),
    )
    .unwrap_err();
    assert!(matches!(error, PkiError::Damaged { .. }), "{error}");
    assert!(error.to_string().contains("sub-ca.key.pem"), "{error}");
    assert!(!key_path.exists(), "nothing was rewritten");

    // A key that belongs to another CA is refused as well.
    let other = tempfile::tempdir().unwrap();
    let stranger = new_pki(other.path(), 7);
    std::fs::copy(
        stranger.directory().join(pki_store::SUB_KEY_FILE),
        &key_path,
    )
    .unwrap();
    let error = Pki::open(state.path(), &Environment::Sandbox).unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[test]
fn missing_pki_is_not_created_by_open() {
    let state = tempfile::tempdir().unwrap();
    assert!(Pki::open(state.path(), &Environment::Sandbox).is_err());
    assert!(!state.path().join("pki").exists());
}

#[test]
fn export_writes_the_trusted_certificates() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let out = state.path().join("trust");
    let [root_path, sub_path, crl_path, _attestation] = pki.export(&out).unwrap();
    assert_eq!(root_path, out.join("root.pem"));
    assert_eq!(crl_path, out.join("crl.pem"));
    // An empty CRL from the Sub CA, numbered 1.
    let crl: x509_cert::crl::CertificateList =
        x509_cert::crl::CertificateList::from_pem(std::fs::read(&crl_path).unwrap()).unwrap();
    assert_eq!(
        &crl.tbs_cert_list.issuer,
        pki.sub().certificate().tbs_certificate().subject()
    );
    assert_eq!(crl.tbs_cert_list.revoked_certificates, None);
    assert_eq!(pki.index().unwrap().crl_number, 1);
    assert_eq!(sub_path, out.join("sub.pem"));
    let root = Certificate::from_pem(std::fs::read(&root_path).unwrap()).unwrap();
    let sub = Certificate::from_pem(std::fs::read(&sub_path).unwrap()).unwrap();
    assert_eq!(&root, pki.root().certificate());
    assert_eq!(&sub, pki.sub().certificate());
    assert_signed_by(&sub, &root);
    let text = std::fs::read_to_string(&root_path).unwrap();
    assert!(!text.contains("PRIVATE KEY"));
    // Exporting again replaces the files.
    pki.export(&out).unwrap();
}

#[test]
fn card_certificates_chain_to_sub_and_root_for_every_slot() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(5);
    for slot in CARD_SLOTS {
        let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
        let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
        let card = issue_card_certificate(
            pki.sub(),
            &key.public_key,
            &profile,
            slot,
            validity,
            &mut rng,
        )
        .unwrap();
        assert_path_valid_at(&card, &pki, SystemTime::now() + Duration::from_secs(60));
        assert_eq!(
            card.tbs_certificate().subject_public_key_info(),
            &key.public_key
        );
        assert_eq!(attribute(&card, CN), "Sample Specimen");
        assert_eq!(attribute(&card, SERIAL_NUMBER), "000123456789");
        assert_eq!(attribute(&card, O), "RX1");
        assert_eq!(attribute(&card, OU), "sandbox");
        // Round trip through DER, as the card stores it.
        let der = card.to_der().unwrap();
        assert_eq!(Certificate::from_der(&der).unwrap(), card);
    }
}

#[test]
fn key_usages_fit_each_slot() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(6);
    let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
    let issue = |slot: Slot, rng: &mut CardRng| {
        let validity = CertificateValidity::for_profile(&profile, issue_time()).unwrap();
        issue_card_certificate(pki.sub(), &key.public_key, &profile, slot, validity, rng).unwrap()
    };
    let authentication = issue(Slot::AUTHENTICATION, &mut rng);
    let usage = key_usage(&authentication);
    assert!(usage.digital_signature() && !usage.key_cert_sign() && !usage.non_repudiation());
    assert_eq!(
        extended_key_usage(&authentication),
        ["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.311.20.2.2"]
    );
    let signature = issue(Slot::SIGNATURE, &mut rng);
    let usage = key_usage(&signature);
    assert!(usage.digital_signature() && usage.non_repudiation());
    assert_eq!(
        extended_key_usage(&signature),
        ["1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36"]
    );
    let management = issue(Slot::KEY_MANAGEMENT, &mut rng);
    let usage = key_usage(&management);
    assert!(usage.key_agreement() && !usage.digital_signature());
    assert_eq!(extended_key_usage(&management), ["1.3.6.1.5.5.7.3.4"]);
    let card_auth = issue(Slot::CARD_AUTHENTICATION, &mut rng);
    assert!(key_usage(&card_auth).digital_signature());
    assert_eq!(
        extended_key_usage(&card_auth),
        ["1.3.6.1.5.5.7.3.2", "2.16.840.1.101.3.6.8"]
    );
    let (critical, _) = card_auth
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert!(!critical);
}

#[test]
fn serials_are_random_positive_sixteen_bytes() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(8);
    let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
    let mut serials = Vec::new();
    for _ in 0..8 {
        let validity = CertificateValidity::for_profile(&profile, issue_time()).unwrap();
        let card = issue_card_certificate(
            pki.sub(),
            &key.public_key,
            &profile,
            Slot::CARD_AUTHENTICATION,
            validity,
            &mut rng,
        )
        .unwrap();
        let serial = card.tbs_certificate().serial_number().as_bytes().to_vec();
        assert_eq!(serial.len(), 16);
        assert!(serial[0] & 0x80 == 0 && serial[0] != 0);
        serials.push(serial);
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 8);
}

#[test]
fn validity_is_two_years_by_default() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(9);
    let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, issue_time()).unwrap();
    let card = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &profile,
        Slot::SIGNATURE,
        validity,
        &mut rng,
    )
    .unwrap();
    let (not_before, not_after) = window(&card);
    assert_eq!(not_before, DateTime::new(2026, 11, 23, 9, 0, 0).unwrap());
    assert_eq!(not_after, DateTime::new(2028, 11, 23, 9, 0, 0).unwrap());

    let longer = CardProfile {
        certificate_validity_years: 3,
        ..p256_profile()
    };
    let validity = CertificateValidity::for_profile(&longer, issue_time()).unwrap();
    let card = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &longer,
        Slot::SIGNATURE,
        validity,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        window(&card).1,
        DateTime::new(2029, 11, 23, 9, 0, 0).unwrap()
    );
}

#[test]
fn expired_and_not_yet_valid_windows() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = p256_profile();
    let mut rng = CardRng::from_u64(10);
    let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
    let date = |year| DateTime::new(year, 1, 1, 0, 0, 0).unwrap();
    let cases = [(2020, 2022), (2045, 2055)];
    for (start, end) in cases {
        let validity =
            CertificateValidity::new(date(start).to_system_time(), date(end).to_system_time())
                .unwrap();
        let card = issue_card_certificate(
            pki.sub(),
            &key.public_key,
            &profile,
            Slot::AUTHENTICATION,
            validity,
            &mut rng,
        )
        .unwrap();
        assert_eq!(window(&card), (date(start), date(end)));
        assert_signed_by(&card, pki.sub().certificate());
    }
    let now = SystemTime::now();
    let empty = CertificateValidity::new(now, now - Duration::from_secs(1)).unwrap_err();
    assert!(matches!(empty, IssuanceError::EmptyValidity { .. }));
}

#[test]
fn rsa_key_in_slot_9a() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = CardProfile::demo();
    let key = rsa_key();
    assert_eq!(key.private_key.algorithm(), Algorithm::Rsa2048);
    assert_eq!(
        algorithm_of_public_key(&key.public_key).unwrap(),
        Algorithm::Rsa2048
    );
    let mut rng = CardRng::from_u64(11);
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let card = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &profile,
        Slot::AUTHENTICATION,
        validity,
        &mut rng,
    )
    .unwrap();
    assert_path_valid_at(&card, &pki, SystemTime::now() + Duration::from_secs(60));
    let usage = key_usage(&card);
    assert!(usage.digital_signature() && usage.key_encipherment());
    let management = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &profile,
        Slot::KEY_MANAGEMENT,
        validity,
        &mut rng,
    )
    .unwrap();
    let usage = key_usage(&management);
    assert!(usage.key_encipherment() && !usage.key_agreement());
    // The private key survives a PKCS #8 round trip.
    let der = private_key_to_pkcs8(&key.private_key).unwrap();
    let again = private_key_from_pkcs8(Algorithm::Rsa2048, &der).unwrap();
    assert_eq!(public_key_info(&again).unwrap(), key.public_key);
}

#[test]
fn the_key_must_have_the_slot_algorithm() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = CardProfile::demo(); // 9A is RSA-2048
    let mut rng = CardRng::from_u64(12);
    let key = generate_key(Algorithm::EccP256, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, issue_time()).unwrap();
    let error = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &profile,
        Slot::AUTHENTICATION,
        validity,
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "slot 9A: the profile asks for RSA-2048 but the public key is P-256"
    );
    let mut bad = p256_profile();
    bad.uuid = "123".to_owned();
    let error = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &bad,
        Slot::AUTHENTICATION,
        validity,
        &mut rng,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("uuid: must be exactly 12 digits, got 3")
    );
}

#[test]
fn p384_keys_are_certified() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = CardProfile {
        slots: SlotAlgorithms {
            digital_signature: Algorithm::EccP384,
            ..SlotAlgorithms::ALL_P256
        },
        ..CardProfile::demo()
    };
    let mut rng = CardRng::from_u64(13);
    let key = generate_key(Algorithm::EccP384, &mut rng).unwrap();
    assert_eq!(
        algorithm_of_public_key(&key.public_key).unwrap(),
        Algorithm::EccP384
    );
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let card = issue_card_certificate(
        pki.sub(),
        &key.public_key,
        &profile,
        Slot::SIGNATURE,
        validity,
        &mut rng,
    )
    .unwrap();
    assert_path_valid_at(&card, &pki, SystemTime::now() + Duration::from_secs(60));
}

#[test]
fn seeded_key_generation_is_reproducible() {
    for algorithm in [Algorithm::EccP256, Algorithm::EccP384] {
        let first = generate_key(algorithm, &mut CardRng::from_u64(42)).unwrap();
        let second = generate_key(algorithm, &mut CardRng::from_u64(42)).unwrap();
        let third = generate_key(algorithm, &mut CardRng::from_u64(43)).unwrap();
        assert_eq!(first.public_key, second.public_key);
        assert_eq!(
            *private_key_to_pkcs8(&first.private_key).unwrap(),
            *private_key_to_pkcs8(&second.private_key).unwrap()
        );
        assert_ne!(first.public_key, third.public_key);
    }
    // The second (and last) RSA generation of this file.
    let again = generate_key(Algorithm::Rsa2048, &mut CardRng::from_u64(2048)).unwrap();
    assert_eq!(again.public_key, rsa_key().public_key);
}

#[test]
fn seeded_issuance_is_reproducible() {
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let profile = CardProfile {
        seed: Some(SecretString::new("reproducible")),
        ..p256_profile()
    };
    let issue_all = || {
        let mut rng = profile.seeded_rng().unwrap();
        CARD_SLOTS
            .iter()
            .map(|&slot| {
                let key = generate_key(profile.slots.algorithm(slot).unwrap(), &mut rng).unwrap();
                let validity = CertificateValidity::for_profile(&profile, issue_time()).unwrap();
                let card = issue_card_certificate(
                    pki.sub(),
                    &key.public_key,
                    &profile,
                    slot,
                    validity,
                    &mut rng,
                )
                .unwrap();
                (
                    private_key_to_pkcs8(&key.private_key).unwrap().to_vec(),
                    card.to_der().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(issue_all(), issue_all());
}

#[test]
fn a_seeded_pki_is_reproducible_too() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = new_pki(first.path(), 77);
    let b = new_pki(second.path(), 77);
    assert_eq!(
        a.root()
            .certificate()
            .tbs_certificate()
            .subject_public_key_info(),
        b.root()
            .certificate()
            .tbs_certificate()
            .subject_public_key_info()
    );
    assert_eq!(
        a.sub().certificate().tbs_certificate().serial_number(),
        b.sub().certificate().tbs_certificate().serial_number()
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let key = generate_key(Algorithm::EccP256, &mut CardRng::from_u64(1)).unwrap();
    assert_eq!(
        format!("{:?}", key.private_key),
        "PrivateKey(EccP256, <redacted>)"
    );
    let state = tempfile::tempdir().unwrap();
    let pki = new_pki(state.path(), 1);
    let debug = format!("{:?}", pki.sub());
    assert!(
        debug.contains("<redacted>") && debug.contains("Sub CA"),
        "{debug}"
    );
}

#[test]
fn state_dir_rule() {
    let os = |text: &str| Some(std::ffi::OsString::from(text));
    assert_eq!(
        state_dir_from(os("/v"), os("/x"), os("/h")),
        Some("/v".into())
    );
    assert_eq!(
        state_dir_from(None, os("/x"), os("/h")),
        Some("/x/vscard".into())
    );
    assert_eq!(
        state_dir_from(os(""), os("relative"), os("/h")),
        Some("/h/.local/share/vscard".into())
    );
    assert_eq!(state_dir_from(None, None, None), None);
}

#[test]
fn concurrent_first_use_agrees_on_one_pki() {
    let state = tempfile::tempdir().unwrap();
    let certificates: Vec<Certificate> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|seed| {
                let path = state.path();
                scope.spawn(move || {
                    let mut rng = CardRng::from_u64(100 + seed);
                    let pki = Pki::open_or_create(path, &Environment::Sandbox, &mut rng).unwrap();
                    pki.sub().certificate().clone()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let on_disk = Pki::open(state.path(), &Environment::Sandbox).unwrap();
    for certificate in &certificates {
        assert_eq!(certificate, on_disk.sub().certificate());
    }
    let entries = std::fs::read_dir(state.path().join("pki")).unwrap().count();
    assert_eq!(entries, 1, "staging folders are cleaned up");
}

// Issue 18 item 5: a reproducible PKI across runners.

const PKI_FILES: [&str; 4] = [
    "root-ca.key.pem",
    "root-ca.cert.pem",
    "sub-ca.key.pem",
    "sub-ca.cert.pem",
];

fn seeded_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(SEEDED_PKI_NOT_BEFORE)
}

fn seeded(state_dir: &Path, environment: &Environment, seed: &str) -> Result<Pki, PkiError> {
    Pki::init_seeded(
        state_dir,
        environment,
        &SecretString::new(seed),
        seeded_epoch(),
    )
}

fn pki_bytes(state_dir: &Path, environment: &str) -> Vec<Vec<u8>> {
    PKI_FILES
        .iter()
        .map(|name| std::fs::read(state_dir.join("pki").join(environment).join(name)).unwrap())
        .collect()
}

#[test]
fn the_seeded_pki_is_byte_identical_across_two_state_folders() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = seeded(one.path(), &Environment::Sandbox, "team seed").unwrap();
    let second = seeded(two.path(), &Environment::Sandbox, "team seed").unwrap();
    // Keys and certificates, byte for byte (validity from the fixed epoch).
    assert_eq!(
        pki_bytes(one.path(), "sandbox"),
        pki_bytes(two.path(), "sandbox")
    );
    let id = first.id().unwrap();
    assert_eq!(id, second.id().unwrap());
    assert_eq!(id.len(), PKI_ID_HEX_DIGITS);
    let root = CertificateSummary::of(first.root().certificate());
    let sub = CertificateSummary::of(first.sub().certificate());
    assert_eq!(
        root.subject,
        format!("CN=vscard TEST Root CA (sandbox PKI {id}),OU=sandbox,O=vscard test PKI")
    );
    assert_eq!(
        sub.subject,
        format!("CN=vscard TEST Sub CA (sandbox PKI {id}),OU=sandbox,O=vscard test PKI")
    );
    assert_eq!(root.not_before, "2026-01-01T00:00:00Z");
    assert_eq!(root.not_after, "2046-01-01T00:00:00Z");
    assert_eq!(sub.not_after, "2036-01-01T00:00:00Z");
    verify_issued_by(first.sub().certificate(), first.root().certificate()).unwrap();
    // The keys on disk are private to the owner.
    for name in PKI_FILES {
        let path = one.path().join("pki/sandbox").join(name);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}

#[test]
fn seeded_init_is_idempotent_and_refuses_another_seed() {
    let state = tempfile::tempdir().unwrap();
    let first = seeded(state.path(), &Environment::Sandbox, "one").unwrap();
    let before = pki_bytes(state.path(), "sandbox");
    let again = seeded(state.path(), &Environment::Sandbox, "one").unwrap();
    assert_eq!(again.id().unwrap(), first.id().unwrap());
    let other = seeded(
        tempfile::tempdir().unwrap().path(),
        &Environment::Sandbox,
        "two",
    )
    .unwrap()
    .id()
    .unwrap();
    let error = seeded(state.path(), &Environment::Sandbox, "two").unwrap_err();
    match &error {
        PkiError::Different {
            existing, wanted, ..
        } => {
            assert_eq!(existing, &first.id().unwrap());
            assert_eq!(wanted, &other);
        }
        other => panic!("{other}"),
    }
    // A random PKI already there is not the seeded one either.
    let random = tempfile::tempdir().unwrap();
    new_pki(random.path(), 7);
    assert!(matches!(
        seeded(random.path(), &Environment::Sandbox, "one").unwrap_err(),
        PkiError::Different { .. }
    ));
    // Refusals leave the PKI untouched.
    assert_eq!(pki_bytes(state.path(), "sandbox"), before);
}

#[test]
fn every_pki_names_its_cas_differently() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (new_pki(one.path(), 1), new_pki(two.path(), 2));
    assert_ne!(
        a.sub().certificate().tbs_certificate().subject(),
        b.sub().certificate().tbs_certificate().subject()
    );
    // One seed gives different CAs in different environments.
    let sandbox = seeded(one.path(), &Environment::Integration, "s").unwrap();
    let custom = Environment::parse("staging").unwrap();
    let staging = seeded(two.path(), &custom, "s").unwrap();
    assert_ne!(sandbox.id().unwrap(), staging.id().unwrap());
    let subject = CertificateSummary::of(staging.sub().certificate()).subject;
    assert!(
        subject.starts_with(&format!(
            "CN=vscard TEST Sub CA (staging PKI {})",
            staging.id().unwrap()
        )),
        "{subject}"
    );
    // The legacy names (fixtures) stay as they were.
    let legacy = create_authorities_named(
        &Environment::Sandbox,
        issue_time(),
        Naming::Legacy,
        &mut CardRng::from_u64(3),
    )
    .unwrap();
    assert_eq!(
        CertificateSummary::of(legacy.sub.certificate()).subject,
        "CN=vscard TEST Sub CA (sandbox),OU=sandbox,O=vscard test PKI"
    );
}

fn import_files(dir: &Path) -> (PathBuf, String, PathBuf, String) {
    let source = tempfile::tempdir().unwrap();
    seeded(source.path(), &Environment::Sandbox, "committed team CA").unwrap();
    let pki = source.path().join("pki/sandbox");
    let cert = std::fs::read_to_string(pki.join("root-ca.cert.pem")).unwrap();
    let key = std::fs::read_to_string(pki.join("root-ca.key.pem")).unwrap();
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    (cert_path, cert, key_path, key)
}

#[test]
fn an_imported_ca_gives_the_same_pki_in_every_state_folder() {
    let files = tempfile::tempdir().unwrap();
    let (cert_path, cert, key_path, key) = import_files(files.path());
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let import = |dir: &Path| {
        Pki::import(
            dir,
            &Environment::Sandbox,
            (&cert_path, &cert),
            (&key_path, &key),
        )
    };
    let first = import(one.path()).unwrap();
    import(two.path()).unwrap();
    assert_eq!(
        pki_bytes(one.path(), "sandbox"),
        pki_bytes(two.path(), "sandbox")
    );
    // The Root is the imported certificate and key, unchanged.
    let stored = pki_bytes(one.path(), "sandbox");
    assert_eq!(stored[0], key.as_bytes());
    assert_eq!(stored[1], cert.as_bytes());
    verify_issued_by(first.sub().certificate(), first.root().certificate()).unwrap();
    let sub = CertificateSummary::of(first.sub().certificate());
    assert_eq!(
        sub.subject,
        format!(
            "CN=vscard TEST Sub CA (sandbox PKI {}),OU=sandbox,O=vscard test PKI",
            first.id().unwrap()
        )
    );
    assert_eq!(sub.not_before, "2026-01-01T00:00:00Z");
    assert_eq!(sub.not_after, "2036-01-01T00:00:00Z");
    // Importing again is a no-op.
    import(one.path()).unwrap();
    assert_eq!(pki_bytes(one.path(), "sandbox"), stored);
}

#[test]
fn import_refuses_a_key_that_is_not_the_cas_and_a_ca_that_is_not_a_root() {
    let files = tempfile::tempdir().unwrap();
    let (cert_path, cert, key_path, _) = import_files(files.path());
    let state = tempfile::tempdir().unwrap();
    let other_state = tempfile::tempdir().unwrap();
    let other = seeded(other_state.path(), &Environment::Sandbox, "x").unwrap();
    let other_dir = other.directory().to_owned();
    let other_key = std::fs::read_to_string(other_dir.join("root-ca.key.pem")).unwrap();
    let sub_cert = std::fs::read_to_string(other_dir.join("sub-ca.cert.pem")).unwrap();
    let sub_key = std::fs::read_to_string(other_dir.join("sub-ca.key.pem")).unwrap();
    let refused = |cert: &str, key: &str| {
        Pki::import(
            state.path(),
            &Environment::Sandbox,
            (&cert_path, cert),
            (&key_path, key),
        )
        .unwrap_err()
    };
    // The wrong key: named by its path, never by its content.
    let error = refused(&cert, &other_key);
    assert!(
        matches!(&error, PkiError::Import { path, .. } if path == &key_path),
        "{error}"
    );
    assert!(!error.to_string().contains("BEGIN"), "{error}");
    // A Sub CA is not self-signed: not a trust anchor.
    let error = refused(&sub_cert, &sub_key);
    assert!(
        matches!(&error, PkiError::Import { path, .. } if path == &cert_path),
        "{error}"
    );
    let error = refused("not a certificate", &other_key);
    assert!(matches!(error, PkiError::Import { .. }), "{error}");
    let error = refused(&cert, "not a key");
    assert!(
        matches!(&error, PkiError::Import { path, .. } if path == &key_path),
        "{error}"
    );
    // Nothing was written.
    assert!(!state.path().join("pki/sandbox").exists());
}
