//! Card models: what GET VERSION reports, the default management key type
//! (GET METADATA `9B`, and after RESET), and the Yubico extensions a plain
//! PIV card does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Client, MGMT, PIN, SW_OK, card_with};
use vscard_applet::{Algorithm, Model, PivApplet, PivConfig};

fn client(model: Model) -> Client {
    let mut client = Client::new(card_with(
        PivApplet::new(PivConfig::for_model(model)).unwrap(),
    ));
    assert_eq!(client.select().sw(), SW_OK);
    client
}

/// GET METADATA `9B`: (algorithm, default flag).
fn management_metadata(client: &mut Client) -> (u8, u8) {
    let answer = client.metadata(0x9B);
    assert_eq!(answer.sw(), SW_OK);
    let mut algorithm = None;
    let mut default = None;
    let mut rest = &answer.data[..];
    while let [tag, len, tail @ ..] = rest {
        let (value, next) = tail.split_at(usize::from(*len));
        match tag {
            0x01 => algorithm = Some(value[0]),
            0x05 => default = Some(value[0]),
            _ => {}
        }
        rest = next;
    }
    (algorithm.unwrap(), default.unwrap())
}

#[test]
fn a_new_yubikey_5_7_has_an_aes_192_default_management_key() {
    let mut card = client(Model::YubiKey57);
    assert_eq!(card.send(0xFD, 0, 0, &[]).data, [5, 7, 1]);
    assert_eq!(management_metadata(&mut card), (0x0A, 0x01));
    // The same key bytes, as AES-192; 3DES is the wrong algorithm.
    assert_eq!(
        card.authenticate_management_key(Algorithm::Tdes, &MGMT),
        0x6A86
    );
    assert_eq!(
        card.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
}

#[test]
fn a_yubikey_5_4_reports_5_4_and_keeps_3des_also_after_reset() {
    let mut card = client(Model::YubiKey54);
    assert_eq!(card.send(0xFD, 0, 0, &[]).data, [5, 4, 3]);
    assert_eq!(management_metadata(&mut card), (0x03, 0x01));
    assert_eq!(
        card.authenticate_management_key(Algorithm::Tdes, &MGMT),
        SW_OK
    );
    // RESET needs both PIN and PUK blocked.
    for _ in 0..3 {
        card.verify(b"000000");
        card.unblock(b"00000000", b"000000");
    }
    assert_eq!(card.send(0xFB, 0, 0, &[]).sw(), SW_OK);
    assert_eq!(management_metadata(&mut card), (0x03, 0x01));
}

#[test]
fn reset_restores_the_models_default_management_key_type() {
    let mut card = client(Model::YubiKey57);
    // Set a 3DES key, then RESET: back to AES-192 with the default bytes.
    card.authenticate_management_key(Algorithm::Aes192, &MGMT);
    let mut data = vec![0x03, 0x9B, 0x18];
    data.extend_from_slice(&[0x11; 24]);
    assert_eq!(card.send(0xFF, 0xFF, 0xFF, &data).sw(), SW_OK);
    assert_eq!(management_metadata(&mut card), (0x03, 0x00));
    for _ in 0..3 {
        card.verify(b"000000");
        card.unblock(b"00000000", b"000000");
    }
    assert_eq!(card.send(0xFB, 0, 0, &[]).sw(), SW_OK);
    assert_eq!(management_metadata(&mut card), (0x0A, 0x01));
}

#[test]
fn a_plain_piv_card_has_no_yubico_extensions() {
    let mut card = client(Model::Piv);
    for ins in [0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFD, 0xFE, 0xFF] {
        assert_eq!(
            card.send(ins, 0x00, 0x9B, &[]).sw(),
            0x6D00,
            "INS {ins:02X}"
        );
        assert_eq!(
            card.send(ins, 0x05, 0x06, &[0x01]).sw(),
            0x6D00,
            "INS {ins:02X}"
        );
    }
    // PIV itself works: VERIFY, and the 3DES default management key.
    assert_eq!(card.verify(PIN), SW_OK);
    assert_eq!(
        card.authenticate_management_key(Algorithm::Tdes, &MGMT),
        SW_OK
    );
    assert_eq!(
        card.generate(vscard_applet::Slot::SIGNATURE, Algorithm::EccP256)
            .sw(),
        SW_OK
    );
}

/// A YubiKey 5.4 has no RSA-3072/4096, Ed25519 or X25519 (yubikit refuses
/// them below 5.7 before sending anything): asked anyway, it answers as for
/// an algorithm it does not know, GENERATE `6A80` (the algorithm is in the
/// data field), IMPORT `6A86` (it is P1), with or without the management
/// key, and the slot stays empty.
#[test]
fn a_yubikey_5_4_refuses_the_5_7_algorithms_as_unknown_ones() {
    let mut card = client(Model::YubiKey54);
    let import_data: [(u8, Vec<u8>); 4] = [
        (0x05, rsa_parts(192)),
        (0x16, rsa_parts(255)),
        (0xE0, [vec![0x07, 0x20], vec![0x11; 32]].concat()),
        (0xE1, [vec![0x08, 0x20], vec![0x22; 32]].concat()),
    ];
    for authenticated in [false, true] {
        if authenticated {
            assert_eq!(
                card.authenticate_management_key(Algorithm::Tdes, &MGMT),
                SW_OK
            );
        }
        for (algorithm, data) in &import_data {
            let template = [0xAC, 0x03, 0x80, 0x01, *algorithm];
            assert_eq!(
                card.send(0x47, 0x00, 0x9A, &template).sw(),
                0x6A80,
                "GENERATE {algorithm:02X}"
            );
            assert_eq!(
                card.send(0xFE, *algorithm, 0x9A, data).sw(),
                0x6A86,
                "IMPORT {algorithm:02X}"
            );
        }
    }
    assert_eq!(card.metadata(0x9A).sw(), 0x6A88, "9A stays empty");
    // The 5.4 algorithms are there.
    assert_eq!(
        card.generate(vscard_applet::Slot::AUTHENTICATION, Algorithm::EccP384)
            .sw(),
        SW_OK
    );
}

/// RSA CRT import data (`01`..`05`) of `half` bytes per part (about the
/// size of the algorithm's primes): the card refuses the algorithm before
/// it looks at the numbers.
fn rsa_parts(half: u8) -> Vec<u8> {
    let mut data = Vec::new();
    for tag in 1..=5u8 {
        data.extend_from_slice(&[tag, 0x81, half]);
        data.extend(std::iter::repeat_n(0x5A, usize::from(half)));
    }
    data
}

/// A plain PIV card does not know the Yubico policy tags `AA` and `AB` in
/// GENERATE's template: `6A80`, as for any tag SP 800-73-4 does not define;
/// the same template without them generates.
#[test]
fn a_plain_piv_card_refuses_the_yubico_policy_tags() {
    let mut card = client(Model::Piv);
    assert_eq!(
        card.authenticate_management_key(Algorithm::Tdes, &MGMT),
        SW_OK
    );
    for policy in [[0xAA, 0x01, 0x01], [0xAB, 0x01, 0x02]] {
        let template = [&[0xAC, 0x06, 0x80, 0x01, 0x11][..], &policy].concat();
        assert_eq!(
            card.send(0x47, 0x00, 0x9A, &template).sw(),
            0x6A80,
            "{policy:02X?}"
        );
    }
    assert_eq!(
        card.send(0x47, 0x00, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x11])
            .sw(),
        SW_OK
    );
    // A YubiKey model takes them.
    let mut yubikey = client(Model::YubiKey57);
    assert_eq!(
        yubikey.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    let template = [
        0xAC, 0x09, 0x80, 0x01, 0x11, 0xAA, 0x01, 0x01, 0xAB, 0x01, 0x02,
    ];
    assert_eq!(yubikey.send(0x47, 0x00, 0x9A, &template).sw(), SW_OK);
}

/// SET MANAGEMENT KEY with "touch required" (P2 `FE`): a virtual card's
/// management-key authentication does not wait for a touch, so it refuses
/// the request (`6A86`, as for any other P2) and keeps its key, rather
/// than accept a policy it would not enforce.
#[test]
fn set_management_key_with_touch_required_is_refused_and_changes_nothing() {
    let mut card = client(Model::YubiKey57);
    assert_eq!(
        card.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    let mut data = vec![0x0A, 0x9B, 0x18];
    data.extend_from_slice(&[0x33; 24]);
    assert_eq!(card.send(0xFF, 0xFF, 0xFE, &data).sw(), 0x6A86);
    assert_eq!(management_metadata(&mut card), (0x0A, 0x01));
    assert_eq!(card.send(0xFF, 0xFF, 0xFF, &data).sw(), SW_OK);
    assert_eq!(management_metadata(&mut card), (0x0A, 0x00));
}

#[test]
fn the_model_survives_a_save_and_load_and_old_images_are_yubikey_5_7() {
    let applet = PivApplet::new(PivConfig::for_model(Model::Piv)).unwrap();
    let saved = vscard_emulator::Applet::save(&applet).unwrap();
    let state = vscard_applet::PivState::from_saved(&saved).unwrap();
    assert_eq!(state.settings().model, Model::Piv);

    // The default model is not written, so images from before models
    // load as YubiKey 5.7.
    let default = PivApplet::new(PivConfig::default()).unwrap();
    let saved = vscard_emulator::Applet::save(&default).unwrap();
    let text = serde_json::to_string(&saved).unwrap();
    assert!(!text.contains("model"), "{text}");
    let state = vscard_applet::PivState::from_saved(&saved).unwrap();
    assert_eq!(state.settings().model, Model::YubiKey57);
}
