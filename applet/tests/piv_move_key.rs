//! MOVE KEY and DELETE KEY (`00 F6`, yubikit's encoding: P1 destination
//! or `FF`, P2 source): status words as ykman reads them, metadata
//! following the key, and `6D00` on the models without the instruction.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Client, MGMT, SW_OK, card_with};
use vscard_applet::{Algorithm, Model, PivApplet, PivConfig, Slot};

fn client(model: Model) -> Client {
    let mut client = Client::new(card_with(
        PivApplet::new(PivConfig::for_model(model)).unwrap(),
    ));
    assert_eq!(client.select().sw(), SW_OK);
    client
}

fn authenticated(model: Model) -> Client {
    let mut card = client(model);
    let algorithm = model.management_algorithm();
    assert_eq!(card.authenticate_management_key(algorithm, &MGMT), SW_OK);
    card
}

#[test]
fn a_key_moves_with_its_metadata_and_leaves_its_slot_empty() {
    let mut card = authenticated(Model::YubiKey57);
    let public = card.generate(Slot::AUTHENTICATION, Algorithm::EccP256);
    assert_eq!(public.sw(), SW_OK);
    let before = card.metadata(0x9A);
    assert_eq!(before.sw(), SW_OK);
    // 9A -> 85 (a retired slot): P1 destination, P2 source.
    assert_eq!(card.send(0xF6, 0x85, 0x9A, &[]).sw(), SW_OK);
    assert_eq!(card.metadata(0x9A).sw(), 0x6A88);
    let after = card.metadata(0x85);
    assert_eq!(after.sw(), SW_OK);
    // Algorithm, policies, origin ("generated") and public key are the same.
    assert_eq!(after.data, before.data);
    // The moved key signs under its new reference (PIN policy "once").
    assert_eq!(card.verify(b"123456"), SW_OK);
    assert!(
        card.sign(Algorithm::EccP256, Slot::new(0x85).unwrap(), &[7; 32])
            .is_ok()
    );
    assert_eq!(
        card.sign(Algorithm::EccP256, Slot::AUTHENTICATION, &[7; 32]),
        Err(0x6A88)
    );
}

#[test]
fn move_and_delete_answer_as_a_yubikey_5_7() {
    let mut card = authenticated(Model::YubiKey57);
    assert_eq!(
        card.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    assert_eq!(
        card.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(),
        SW_OK
    );
    // An occupied destination: 6A80 ("DEST slot is not empty").
    assert_eq!(card.send(0xF6, 0x9C, 0x9A, &[]).sw(), 0x6A80);
    // An empty source: 6A88 ("No key in SOURCE slot").
    assert_eq!(card.send(0xF6, 0x9C, 0x9D, &[]).sw(), 0x6A88);
    // Same slot, or references that are no slots: 6A86.
    assert_eq!(card.send(0xF6, 0x9A, 0x9A, &[]).sw(), 0x6A86);
    assert_eq!(card.send(0xF6, 0x9B, 0x9A, &[]).sw(), 0x6A86);
    assert_eq!(card.send(0xF6, 0xFF, 0x80, &[]).sw(), 0x6A86);
    // DELETE: P1 FF; a second delete finds nothing (6A88).
    assert_eq!(card.send(0xF6, 0xFF, 0x9C, &[]).sw(), SW_OK);
    assert_eq!(card.metadata(0x9C).sw(), 0x6A88);
    assert_eq!(card.send(0xF6, 0xFF, 0x9C, &[]).sw(), 0x6A88);
    // The other key is still there.
    assert_eq!(card.metadata(0x9A).sw(), SW_OK);
}

#[test]
fn move_and_delete_need_the_management_key() {
    let mut card = authenticated(Model::YubiKey57);
    assert_eq!(
        card.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    let mut fresh = Client::new(card.into_card());
    assert_eq!(fresh.select().sw(), SW_OK);
    assert_eq!(fresh.send(0xF6, 0x9D, 0x9A, &[]).sw(), 0x6982);
    assert_eq!(fresh.send(0xF6, 0xFF, 0x9A, &[]).sw(), 0x6982);
    assert_eq!(fresh.metadata(0x9A).sw(), SW_OK);
}

#[test]
fn models_without_the_instruction_answer_6d00() {
    for model in [Model::YubiKey54, Model::Piv] {
        let mut card = authenticated(model);
        assert_eq!(
            card.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
            SW_OK
        );
        assert_eq!(card.send(0xF6, 0x9D, 0x9A, &[]).sw(), 0x6D00, "{model}");
        assert_eq!(card.send(0xF6, 0xFF, 0x9A, &[]).sw(), 0x6D00, "{model}");
    }
}
