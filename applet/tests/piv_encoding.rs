//! Byte-exact encodings taken from SP 800-73-4 and the Yubico extension
//! documentation: SELECT, GET DATA, GENERAL AUTHENTICATE, GET METADATA,
//! GET VERSION / SERIAL, the ATR; and the transport behaviour middleware
//! relies on (chaining, 61xx, unknown AIDs, traces without secrets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use vscard_applet::objects::{FILLER_FASC_N, chuid};
use vscard_applet::{DataObjectTag, PivApplet, PivConfig, PrintedInformation, Slot, piv_atr};
use vscard_emulator::Status;

fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

const SELECT_ANSWER: &str = "61 37 4F 06 000010000100 79 07 4F 05 A000000308 \
    50 0A 76736361726420504956 \
    AC 18 800103 800108 80010A 80010C 800107 800111 800114 060100";

#[test]
fn select_answers_the_application_property_template() {
    let mut card = default_card();
    let full = h("00 A4 04 00 0B A0000003080000100001 00 00");
    let mut expected = h(SELECT_ANSWER);
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(card.transmit(&full).unwrap(), expected);
    // Right-truncated AIDs, as OpenSC and yubico-piv-tool send them.
    assert_eq!(
        card.transmit(&h("00 A4 04 00 09 A00000030800001000 00"))
            .unwrap(),
        expected
    );
    assert_eq!(
        card.transmit(&h("00 A4 04 00 05 A000000308 00")).unwrap(),
        expected
    );
    assert_eq!(
        PivApplet::application_property_template(),
        expected[..expected.len() - 2]
    );
}

#[test]
fn unknown_aid_leaves_piv_alone() {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(
        c.card()
            .transmit(&h("00 A4 04 00 05 A000000001 00"))
            .unwrap(),
        [0x6A, 0x82]
    );
    assert_eq!(c.verify_status(), SW_OK, "still selected, still verified");
}

#[test]
fn piv_is_the_default_applet_and_the_atr_names_it() {
    let mut c = Client::new(default_card());
    assert_eq!(c.card().atr(), piv_atr().as_bytes());
    assert_eq!(&c.card().atr()[6..8], [0x80, 0xF9]);
    // No SELECT needed after power-on.
    assert_eq!(c.get_data(&[0x7E]).sw(), SW_OK);
}

#[test]
fn get_data_wraps_objects() {
    let mut applet = keyed_applet(PivConfig::default());
    let guid: [u8; 16] = core::array::from_fn(|i| i as u8);
    applet.put_object(DataObjectTag::CHUID, chuid(&guid, b"20301231"));
    applet.put_certificate(Slot::SIGNATURE, &[0x30, 0x03, 0x02, 0x01, 0x07]);
    let printed = PrintedInformation {
        name: "SMITH, JANE".into(),
        employee_affiliation: "NHS".into(),
        expiration_date: "2028JAN01".into(),
        agency_card_serial: "000123456789".into(),
        issuer: "NHS TEST".into(),
        ..PrintedInformation::default()
    };
    applet.put_object(DataObjectTag::PRINTED_INFORMATION, printed.encode());
    let mut c = Client::new(card_with(applet));

    let mut expected = vec![0x53, 0x3B, 0x30, 0x19];
    expected.extend_from_slice(&FILLER_FASC_N);
    expected.extend(h(
        "34 10 000102030405060708090A0B0C0D0E0F 35 08 3230333031323331 3E 00 FE 00",
    ));
    assert_eq!(
        c.get_data(&[0x5F, 0xC1, 0x02]),
        Answer::new(expected, Status::Success)
    );

    let discovery = h("7E 12 4F 0B A0000003080000100001 00 5F2F 02 4000");
    assert_eq!(c.get_data(&[0x7E]), Answer::new(discovery, Status::Success));

    let cert = h("53 0C 70 05 3003020107 71 01 00 FE 00");
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x0A]).data, cert);
    assert_eq!(
        c.get_data(&[0x5F, 0xC1, 0x0C]).data,
        h("53 08 C10100 C20100 FE00")
    );
    let ccc = c.get_data(&[0x5F, 0xC1, 0x07]);
    assert_eq!(
        (ccc.sw(), &ccc.data[..4]),
        (SW_OK, &[0x53, 0x33, 0xF0, 0x15][..])
    );

    // Missing objects, and retired slots left empty.
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x05]).sw(), 0x6A82);
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x0D]).sw(), 0x6A82);
    // Printed Information is PIN-protected; its presence does not leak.
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x09]).sw(), 0x6982);
    assert_eq!(c.verify(PIN), SW_OK);
    let answer = c.get_data(&[0x5F, 0xC1, 0x09]);
    assert_eq!(answer.sw(), SW_OK);
    assert_eq!(answer.data, tlv(0x53, &printed.encode()));
    assert_eq!(&answer.data[2..15], b"\x01\x0BSMITH, JANE");
    // Malformed requests.
    assert_eq!(c.send(0xCB, 0x3F, 0xFF, &h("5C 02 5FC1")).sw(), 0x6A80);
    assert_eq!(c.send(0xCB, 0x3F, 0xFF, &h("5D 03 5FC102")).sw(), 0x6A80);
    assert_eq!(c.send(0xCB, 0x00, 0x00, &h("5C 03 5FC102")).sw(), 0x6A86);
}

#[test]
fn put_data_round_trips_large_objects_through_chaining() {
    let mut c = Client::new(default_card());
    c.authenticate_default();
    let cert: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    let container = vscard_applet::objects::certificate(&cert);
    assert_eq!(c.put_data(&[0x5F, 0xC1, 0x05], &container), SW_OK);
    let answer = c.get_data(&[0x5F, 0xC1, 0x05]);
    assert_eq!(
        answer.data,
        tlv(0x53, &container),
        "read back through 61xx / GET RESPONSE"
    );
    // Vendor objects, and deletion with an empty value.
    assert_eq!(
        c.put_data(&[0x5F, 0xFF, 0x10], b"R8000 B0264 Y12345"),
        SW_OK
    );
    assert_eq!(
        c.get_data(&[0x5F, 0xFF, 0x10]).data,
        tlv(0x53, b"R8000 B0264 Y12345")
    );
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x10], &[]), SW_OK);
    assert_eq!(c.get_data(&[0x5F, 0xFF, 0x10]).sw(), 0x6A82);
    // Discovery is written in its own tag.
    assert_eq!(c.send(0xDB, 0x3F, 0xFF, &h("7E 03 5F2F00")).sw(), SW_OK);
    assert_eq!(c.get_data(&[0x7E]).data, h("7E 03 5F2F00"));
    // Too large.
    let huge = vec![0u8; vscard_applet::MAX_OBJECT_LEN + 1];
    assert_eq!(c.put_data(&[0x5F, 0xFF, 0x11], &huge), 0x6A84);
}

#[test]
fn general_authenticate_encodings() {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(PIN), SW_OK);
    // RSA: the raw private-key operation, 7C 82 01 04 82 82 01 00 <256>.
    let mut block = vec![0x00, 0x01];
    block.resize(256, 0x5A);
    let inner = [tlv(0x82, &[]), tlv(0x81, &block)].concat();
    let answer = c.send(0x87, 0x07, 0x9A, &tlv(0x7C, &inner));
    assert_eq!(answer.sw(), SW_OK);
    assert_eq!(
        answer.data[..8],
        [0x7C, 0x82, 0x01, 0x04, 0x82, 0x82, 0x01, 0x00]
    );
    let key = rsa_key();
    let m = rsa::BoxedUint::from_be_slice(&block, 2048).unwrap();
    let expected =
        rsa::hazmat::rsa_decrypt_and_check(&key, None::<&mut vscard_emulator::CardRng>, &m)
            .unwrap();
    assert_eq!(answer.data[8..], expected.to_be_bytes()[..]);
    // ECDSA: 7C L 82 L' 30 ... (DER SEQUENCE { r, s }).
    assert_eq!(c.verify(PIN), SW_OK);
    let digest = [0xA5; 32];
    let inner = [tlv(0x82, &[]), tlv(0x81, &digest)].concat();
    let answer = c.send(0x87, 0x11, 0x9C, &tlv(0x7C, &inner));
    let (outer_len, sig_len) = (answer.data[1] as usize, answer.data[3] as usize);
    assert_eq!(
        (answer.data[0], answer.data[2], answer.data[4]),
        (0x7C, 0x82, 0x30)
    );
    assert_eq!(
        (outer_len, sig_len),
        (answer.data.len() - 2, answer.data.len() - 4)
    );
    // Malformed templates and references.
    assert_eq!(c.send(0x87, 0x11, 0x9C, &h("7C 02 82 00")).sw(), 0x6A80);
    assert_eq!(c.send(0x87, 0x11, 0x9C, &h("7D 02 82 00")).sw(), 0x6A80);
    assert_eq!(
        c.send(0x87, 0x11, 0x9C, &h("7C 04 82 00 82 00")).sw(),
        0x6A80
    );
    assert_eq!(
        c.send(0x87, 0x11, 0x80, &h("7C 04 82 00 81 00")).sw(),
        0x6A86
    );
    assert_eq!(
        // `15`: no algorithm of the card (06, RSA-1024, is one since 5.7).
        c.send(0x87, 0x15, 0x9A, &h("7C 04 82 00 81 00")).sw(),
        0x6A86
    );
    assert_eq!(c.send(0x87, 0x03, 0x9A, &h("7C 02 80 00")).sw(), 0x6A86);
}

#[test]
fn yubico_extensions() {
    let config = PivConfig::default().with_serial(0x0001_E240);
    let mut c = Client::new(card_with(keyed_applet(config)));
    assert_eq!(
        c.send(0xFD, 0x00, 0x00, &[]),
        Answer::new(vec![5, 7, 1], Status::Success)
    );
    assert_eq!(
        c.send(0xF8, 0x00, 0x00, &[]),
        Answer::new(h("0001E240"), Status::Success)
    );
    assert_eq!(c.metadata(0x80).data, h("01 01 FF 05 01 01 06 02 03 03"));
    assert_eq!(c.metadata(0x81).data, h("01 01 FF 05 01 01 06 02 03 03"));
    assert_eq!(c.metadata(0x9B).data, h("01 01 03 02 02 00 01 05 01 01"));
    let point = p256_key(2).public_key().to_sec1_bytes();
    let mut expected = h("01 01 11 02 02 03 01 03 01 02 04 43 86 41");
    expected.extend_from_slice(&point);
    assert_eq!(c.metadata(0x9C).data, expected);
    let rsa = c.metadata(0x9A).data;
    assert_eq!(
        rsa[..14],
        h("01 01 07 02 02 02 01 03 01 02 04 82 01 09")[..]
    );
    // An empty slot and the Bio reference are "reference data not found",
    // as on a YubiKey 5 (ykman lists keys, yubikit's RESET probes Bio so);
    // a byte that names no key is a wrong P2.
    assert_eq!(c.metadata(0x82).sw(), 0x6A88);
    assert_eq!(c.metadata(0x96).sw(), 0x6A88);
    assert_eq!(c.metadata(0x42).sw(), 0x6A86);
    assert_eq!(c.verify(b"999999"), 0x63C2);
    assert_eq!(c.change_pin(PIN, b"222222"), SW_OK);
    assert_eq!(c.metadata(0x80).data, h("01 01 FF 05 01 00 06 02 03 03"));
    assert_eq!(c.send(0x99, 0x00, 0x00, &[]).sw(), 0x6D00);
}

#[test]
fn traces_name_commands_without_secrets() {
    let mut card = default_card();
    card.record_exchanges(true);
    let mut apdu = h("00 20 00 80 08");
    apdu.extend(pad(PIN));
    card.transmit(&apdu).unwrap();
    let exchange = card.last_exchange().unwrap();
    assert_eq!(exchange.command, "VERIFY PIN");
}

#[test]
fn traces_describe_general_authenticate() {
    let mut card = default_card();
    card.record_exchanges(true);
    card.transmit(&h("00 87 03 9B 04 7C 02 81 00 00")).unwrap();
    assert_eq!(
        card.last_exchange().unwrap().command,
        "GENERAL AUTHENTICATE 9B Tdes challenge request"
    );
    let mut apdu = h("00 87 11 9E 26 7C 24 82 00 81 20");
    apdu.extend([0x11; 32]);
    apdu.push(0x00);
    card.transmit(&apdu).unwrap();
    assert_eq!(
        card.last_exchange().unwrap().command,
        "GENERAL AUTHENTICATE 9E EccP256 sign"
    );
}
