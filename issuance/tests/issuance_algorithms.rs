//! Issuance with the YubiKey 5.7 algorithm set: Ed25519 keys in the
//! signing slots and X25519 in 9D, certified by the Sub CA with RFC 8410
//! public keys; the profile refuses what the card model lacks and X25519
//! outside 9D.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use vscard_applet::{Algorithm, Model, PublicKey, Slot};
use vscard_emulator::CardRng;
use vscard_issuance::{
    CardProfile, CertificateValidity, Environment, Pki, SlotAlgorithms, issue_applet, issue_card,
    verify_chain,
};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

fn pki(state: &tempfile::TempDir) -> Pki {
    Pki::open_or_create(
        state.path(),
        &Environment::Sandbox,
        &mut CardRng::from_u64(1),
    )
    .unwrap()
}

fn curve25519_profile() -> CardProfile {
    CardProfile {
        slots: SlotAlgorithms {
            piv_authentication: Algorithm::Ed25519,
            digital_signature: Algorithm::Ed25519,
            key_management: Algorithm::X25519,
            card_authentication: Algorithm::Ed25519,
        },
        ..CardProfile::demo()
    }
}

fn key_usage(certificate: &x509_cert::Certificate) -> KeyUsage {
    certificate
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .unwrap()
        .unwrap()
        .1
}

#[test]
fn ed25519_and_x25519_keys_get_rfc_8410_certificates_from_the_sub_ca() {
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state);
    let profile = curve25519_profile();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(3),
        |_, _| {},
    )
    .unwrap();
    let soon = SystemTime::now() + Duration::from_secs(60);
    for slot in &issued {
        verify_chain(
            &slot.certificate,
            pki.sub().certificate(),
            pki.root().certificate(),
            soon,
        )
        .unwrap();
        let info = slot.certificate.tbs_certificate().subject_public_key_info();
        assert_eq!(info, &slot.key.public_key);
        let (oid, raw, usage) = match &slot.key.public {
            PublicKey::Ed25519(key) => (
                "1.3.101.112",
                key.as_bytes().to_vec(),
                KeyUsages::DigitalSignature.into(),
            ),
            PublicKey::X25519(key) => (
                "1.3.101.110",
                key.as_bytes().to_vec(),
                KeyUsages::KeyAgreement.into(),
            ),
            other => panic!("{}: {other:?}", slot.slot),
        };
        assert_eq!(info.algorithm.oid.to_string(), oid, "{}", slot.slot);
        assert!(info.algorithm.parameters.is_none());
        assert_eq!(info.subject_public_key.as_bytes(), Some(&raw[..]));
        let expected = if slot.slot == Slot::SIGNATURE {
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
        } else {
            usage
        };
        assert_eq!(key_usage(&slot.certificate).0, expected, "{}", slot.slot);
    }
    let algorithms: Vec<_> = issued
        .iter()
        .map(|slot| slot.key.public.algorithm())
        .collect();
    assert_eq!(
        algorithms,
        [
            Algorithm::Ed25519,
            Algorithm::Ed25519,
            Algorithm::X25519,
            Algorithm::Ed25519
        ]
    );
}

#[test]
fn every_rsa_size_can_be_issued() {
    // RSA-1024 and RSA-3072 generation (seeded); 4096 is the same code
    // path and takes tens of seconds unoptimised, so it is left to the
    // applet tests (fixed keys).
    let state = tempfile::tempdir().unwrap();
    let pki = pki(&state);
    let profile = CardProfile {
        slots: SlotAlgorithms {
            piv_authentication: Algorithm::Rsa1024,
            key_management: Algorithm::Rsa3072,
            ..SlotAlgorithms::ALL_P256
        },
        ..CardProfile::demo()
    };
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let applet = issue_applet(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(4),
        |_, _| {},
    )
    .unwrap();
    let summary = vscard_issuance::summarize(applet.state()).unwrap();
    let json = serde_json::to_value(&summary).unwrap();
    let names: Vec<_> = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|slot| slot["algorithm"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["rsa1024", "p256", "rsa3072", "p256"]);
}

#[test]
fn profiles_name_the_new_algorithms_and_check_them_against_the_model() {
    let text = |model: &str, slots: &str| {
        format!(
            "name = \"Alex Example\"\nuuid = \"555500001111\"\npin = \"246810\"\n\
             unlock_code = \"13579024\"\nmodel = \"{model}\"\n\
             [[roles]]\ncode = \"R8000\"\nname = \"Clinical\"\nods_code = \"RX1\"\n\
             [slots]\n{slots}\n"
        )
    };
    let profile = CardProfile::from_toml(&text(
        "yubikey-5.7",
        "9a = \"ed25519\"\n9c = \"rsa4096\"\n9d = \"x25519\"\n9e = \"rsa1024\"",
    ))
    .unwrap();
    assert_eq!(
        [
            profile.slots.piv_authentication,
            profile.slots.digital_signature,
            profile.slots.key_management,
            profile.slots.card_authentication,
        ],
        [
            Algorithm::Ed25519,
            Algorithm::Rsa4096,
            Algorithm::X25519,
            Algorithm::Rsa1024
        ]
    );
    assert_eq!(profile.model, Model::YubiKey57);
    // The names round trip through the written profile.
    let again = CardProfile::from_toml(&profile.to_toml().unwrap()).unwrap();
    assert_eq!(again.slots, profile.slots);

    let error = CardProfile::from_toml(&text("yubikey-5.4", "9c = \"ed25519\""))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "slots.9c: Ed25519 needs model yubikey-5.7, the profile's model is yubikey-5.4"
    );
    let error = CardProfile::from_toml(&text("piv", "9d = \"rsa3072\""))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "slots.9d: RSA-3072 needs model yubikey-5.7, the profile's model is piv"
    );
    // RSA-1024 is on every model.
    CardProfile::from_toml(&text("piv", "9a = \"rsa1024\"")).unwrap();
    let error = CardProfile::from_toml(&text("yubikey-5.7", "9a = \"x25519\""))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "slots.9a: X25519 only agrees keys: only 9d (Key Management) can hold it"
    );
    let error = CardProfile::from_toml(&text("yubikey-5.7", "9a = \"rsa8192\""))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("rsa1024") && error.contains("ed25519") && error.contains("x25519"),
        "{error}"
    );
}
