//! The persisted state format: a golden card image of today's format is
//! committed under `tests/data/piv/`; this build must write exactly it and
//! must load it. A change that cannot read it fails here: add a new golden
//! file and bump `STATE_FORMAT` instead of editing the old one.
//!
//! Re-create the golden file (only for a deliberate new format):
//! `VSCARD_BLESS=1 cargo test -p vscard-applet --test piv_golden`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use vscard_applet::objects::chuid;
use vscard_applet::state::CardSettings;
use vscard_applet::{
    Algorithm, DataObjectTag, ManagementKey, PinRules, PivApplet, PivConfig, PrintedInformation,
    STATE_FORMAT, Slot,
};
use vscard_emulator::{
    Card, CardError, CardImage, FileStore, MemoryStore, Part, StateError, Store,
};

const GOLDEN_PIN: &[u8] = b"246810";
const GOLDEN_PUK: &[u8] = b"135791";
const GOLDEN_MGMT: [u8; 16] = *b"golden-mgmt-key!";

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/piv/golden-state-v1.json")
}

fn golden_card() -> Card {
    let config = PivConfig::default()
        .with_pin(GOLDEN_PIN)
        .with_puk(GOLDEN_PUK)
        .with_management_key(ManagementKey::new(Algorithm::Aes128, &GOLDEN_MGMT).unwrap())
        .with_rules(PinRules {
            pin_tries: 5,
            puk_tries: 4,
            ..PinRules::default()
        })
        .with_serial(12_345_678);
    let mut applet = PivApplet::new(config).unwrap();
    applet.install_key(Slot::AUTHENTICATION, rsa_key()).unwrap();
    applet.install_key(Slot::SIGNATURE, p256_key(2)).unwrap();
    applet.put_certificate(Slot::SIGNATURE, &[0x30, 0x03, 0x02, 0x01, 0x2A]);
    let guid: [u8; 16] = core::array::from_fn(|i| 0xA0 + i as u8);
    applet.put_object(DataObjectTag::CHUID, chuid(&guid, b"20301231"));
    let printed = PrintedInformation {
        name: "GOLDEN, CARD".into(),
        employee_affiliation: "NHS".into(),
        expiration_date: "2030DEC31".into(),
        agency_card_serial: "000123456789".into(),
        issuer: "NHS TEST".into(),
        ..PrintedInformation::default()
    };
    applet.put_object(DataObjectTag::PRINTED_INFORMATION, printed.encode());
    let mut c = Client::new(card_with(applet));
    // One wrong PIN: the counter is part of the image.
    assert_eq!(c.verify(b"000000"), 0x63C4);
    c.into_card()
}

#[test]
fn this_build_writes_the_golden_image() {
    let card = golden_card();
    let path = golden_path();
    if std::env::var_os("VSCARD_BLESS").is_some() {
        FileStore::write(&path, card.image()).unwrap();
    }
    let golden = FileStore::read(&path)
        .unwrap()
        .expect("golden image present");
    assert!(
        &golden == card.image(),
        "the persisted format changed: keep {} loading, add a new golden file and bump STATE_FORMAT",
        path.display()
    );
}

fn card_from(image: CardImage) -> Result<Card, CardError> {
    let mut store = MemoryStore::new();
    store.commit(&image).unwrap();
    let mut card = Card::builder()
        .store(store)
        // A different personalisation: the image must win.
        .install_default(PivApplet::with_defaults())
        .build()?;
    card.power_on();
    Ok(card)
}

#[test]
fn the_golden_image_loads_and_works() {
    let image = FileStore::read(&golden_path()).unwrap().unwrap();
    let mut c = Client::new(card_from(image).unwrap());
    assert_eq!(c.counters(), (4, 4));
    assert_eq!(c.send(0xF8, 0, 0, &[]).data, 12_345_678u32.to_be_bytes());
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x09]).sw(), 0x6982);
    assert_eq!(c.verify(GOLDEN_PIN), SW_OK);
    assert_eq!(
        c.get_data(&[0x5F, 0xC1, 0x09]).data[2..16],
        *b"\x01\x0CGOLDEN, CARD"
    );
    let digest = [0x17; 32];
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
    p256::ecdsa::VerifyingKey::from(&p256_key(2).public_key())
        .verify_prehash(&digest, &signature)
        .unwrap();
    let mut block = vec![0x00, 0x01];
    block.resize(256, 0x77);
    assert!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block)
            .is_ok()
    );
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes128, &GOLDEN_MGMT),
        SW_OK
    );
    assert_eq!(
        c.get_data(&[0x5F, 0xC1, 0x02]).data[..4],
        [0x53, 0x3B, 0x30, 0x19]
    );
}

#[test]
fn a_newer_format_is_refused() {
    let mut image = FileStore::read(&golden_path()).unwrap().unwrap();
    let key = vscard_applet::PIV_AID.to_hex();
    let mut state = image.applet(&key).unwrap().clone();
    let mut settings: CardSettings = state.get(Part::new("config")).unwrap();
    settings.format = STATE_FORMAT + 1;
    state.put(Part::new("config"), &settings).unwrap();
    image.set_applet(&key, state);
    assert!(matches!(card_from(image), Err(CardError::State { .. })));
}

/// The golden image with its management key value cut to 8 bytes, too
/// short for the key's algorithm.
fn image_with_short_management_key() -> CardImage {
    let mut image = FileStore::read(&golden_path()).unwrap().unwrap();
    let key = vscard_applet::PIV_AID.to_hex();
    let mut state = image.applet(&key).unwrap().clone();
    let part = Part::<serde_json::Value>::new("management");
    let mut management = state.get(part).unwrap();
    management["value"] = serde_json::Value::from("0102030405060708");
    state.put(part, &management).unwrap();
    image.set_applet(&key, state);
    image
}

#[test]
fn a_damaged_management_key_fails_the_card_naming_its_part() {
    let image = image_with_short_management_key();
    let built = Card::builder()
        .store(MemoryStore::with_image(image.clone()))
        .install_default(PivApplet::with_defaults())
        .build();
    let Err(CardError::State { aid, source }) = built else {
        panic!("a card on a damaged image must not build");
    };
    assert_eq!(aid, vscard_applet::PIV_AID);
    assert!(
        matches!(&source, StateError::Decode { part, .. } if part == "management"),
        "{source:?}"
    );
    assert_eq!(
        source.to_string(),
        "state part `management` is damaged: a Aes128 key is 16 bytes, got 8"
    );
    // Read outside a card, the image fails the same way.
    let state = image.applet(&vscard_applet::PIV_AID.to_hex()).unwrap();
    let Err(direct) = PivApplet::from_saved(state) else {
        panic!("a damaged image must not load");
    };
    assert_eq!(direct.to_string(), source.to_string());
}

#[test]
fn the_golden_image_loads_outside_a_card() {
    let image = FileStore::read(&golden_path()).unwrap().unwrap();
    let state = image.applet(&vscard_applet::PIV_AID.to_hex()).unwrap();
    let applet = PivApplet::from_saved(state).unwrap();
    // The golden personalisation allows four PIN tries.
    assert_eq!(applet.state().pin_tries_left(), 4);
    assert_eq!(applet.state().save().unwrap(), *state);
}
