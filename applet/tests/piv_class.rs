//! The class byte (ISO 7816-4 5.4.1): the PIV application answers a
//! proprietary class with `6E00` before it looks at the instruction (so a
//! VERIFY with CLA `80` spends no PIN try), and keeps every interindustry
//! class middleware sends: `00`, `10` while chaining, and the logical-channel
//! classes `01..03` (first interindustry) and `40..4F` (further
//! interindustry, chaining bit `10`).
//!
//! Raw bytes on purpose: the class byte is what is under test, and the
//! shared test client always sends CLA `00`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vscard_applet::{PIV_AID, PivApplet, piv_atr};
use vscard_emulator::{Card, CardRng};

const OK: [u8; 2] = [0x90, 0x00];
const CLASS_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];

/// The default PIN `123456`, padded with FF to 8 bytes.
const PADDED_PIN: [u8; 8] = [b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF];

/// A card with PIV as its default applet (selected on the basic channel).
fn card() -> Card {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(7))
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.power_on();
    card
}

/// A card where PIV is installed but not the default applet, so it can be
/// selected on any channel (it is not multi-selectable).
fn card_without_default() -> Card {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(7))
        .install(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.power_on();
    card
}

/// Asserts a GET DATA answer is the CCC object (`53 ..`) with `9000`.
fn assert_object(answer: &[u8]) {
    assert_eq!(answer.first(), Some(&0x53), "{answer:02X?}");
    assert_eq!(sw(answer), OK);
}

fn send(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    card.transmit(apdu).unwrap()
}

/// `cla 20 00 80 08 <pin>`.
fn verify(class: u8, pin: &[u8; 8]) -> Vec<u8> {
    let mut apdu = vec![class, 0x20, 0x00, 0x80, 0x08];
    apdu.extend_from_slice(pin);
    apdu
}

/// `cla CB 3F FF 05 5C 03 5F C1 07 00`: the card capability container,
/// which a default card holds.
fn get_data(class: u8) -> [u8; 11] {
    [
        class, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x07, 0x00,
    ]
}

/// The status word only: the last two bytes.
fn sw(answer: &[u8]) -> [u8; 2] {
    let n = answer.len();
    [answer[n - 2], answer[n - 1]]
}

#[test]
fn verify_with_a_proprietary_class_is_refused_without_spending_a_try() {
    let mut card = card();
    let wrong = [b'0', b'0', b'0', b'0', b'0', b'0', 0xFF, 0xFF];
    assert_eq!(send(&mut card, &verify(0x80, &wrong)), CLASS_NOT_SUPPORTED);
    assert_eq!(
        send(&mut card, &verify(0x80, &PADDED_PIN)),
        CLASS_NOT_SUPPORTED
    );
    // The status query with CLA 80 is refused too.
    assert_eq!(
        send(&mut card, &[0x80, 0x20, 0x00, 0x80]),
        CLASS_NOT_SUPPORTED
    );
    // Still three tries, and not verified.
    assert_eq!(send(&mut card, &[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
}

#[test]
fn get_data_and_yubico_commands_with_a_proprietary_class_are_refused() {
    let mut card = card();
    assert_eq!(send(&mut card, &get_data(0x80)), CLASS_NOT_SUPPORTED);
    // GET VERSION and GET SERIAL: ykman sends them with CLA 00.
    assert_eq!(
        send(&mut card, &[0x80, 0xFD, 0x00, 0x00, 0x00]),
        CLASS_NOT_SUPPORTED
    );
    assert_eq!(
        send(&mut card, &[0x80, 0xF8, 0x00, 0x00, 0x00]),
        CLASS_NOT_SUPPORTED
    );
    // An unknown instruction with a proprietary class: the class is
    // checked first (ISO 7816-4 5.6: 6E00 before 6D00).
    assert_eq!(
        send(&mut card, &[0x80, 0x01, 0x00, 0x00]),
        CLASS_NOT_SUPPORTED
    );
    assert_eq!(send(&mut card, &[0x00, 0x01, 0x00, 0x00]), [0x6D, 0x00]);
}

#[test]
fn interindustry_class_00_still_works() {
    let mut card = card();
    assert_object(&send(&mut card, &get_data(0x00)));
    assert_eq!(sw(&send(&mut card, &[0x00, 0xFD, 0x00, 0x00, 0x00])), OK);
    assert_eq!(sw(&send(&mut card, &[0x00, 0xF8, 0x00, 0x00, 0x00])), OK);
    assert_eq!(
        sw(&send(&mut card, &[0x00, 0xF7, 0x00, 0x80, 0x00])),
        OK,
        "GET METADATA of the PIN"
    );
    assert_eq!(send(&mut card, &verify(0x00, &PADDED_PIN)), OK);
    assert_eq!(send(&mut card, &[0x00, 0x20, 0x00, 0x80]), OK);
}

#[test]
fn chained_class_10_still_works() {
    let mut card = card();
    // VERIFY in two parts: CLA 10 then CLA 00 (ISO 7816-4 5.3.3).
    let first = [0x10, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
    let last = [0x00, 0x20, 0x00, 0x80, 0x04, b'5', b'6', 0xFF, 0xFF];
    assert_eq!(send(&mut card, &first), OK);
    assert_eq!(send(&mut card, &last), OK);
    assert_eq!(send(&mut card, &[0x00, 0x20, 0x00, 0x80]), OK);
}

/// Opens logical channels until `channel` is open; returns the class of
/// that channel.
fn open_channels_through(card: &mut Card, channel: u8) -> u8 {
    for expected in 1..=channel {
        assert_eq!(
            send(card, &[0x00, 0x70, 0x00, 0x00, 0x01]),
            [expected, 0x90, 0x00]
        );
    }
    match channel {
        0..=3 => channel,
        _ => 0x40 | (channel - 4),
    }
}

fn select_on(card: &mut Card, class: u8) {
    let aid = PIV_AID.as_bytes();
    let mut apdu = vec![class, 0xA4, 0x04, 0x00, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    assert_eq!(sw(&send(card, &apdu)), OK, "SELECT with CLA {class:02X}");
}

#[test]
fn first_interindustry_channel_classes_still_work() {
    let mut card = card_without_default();
    let class = open_channels_through(&mut card, 3);
    assert_eq!(class, 0x03);
    select_on(&mut card, class);
    assert_object(&send(&mut card, &get_data(class)));
    // The same channel with the proprietary bit: refused.
    assert_eq!(
        send(&mut card, &verify(0x83, &PADDED_PIN)),
        CLASS_NOT_SUPPORTED
    );
    // Chaining on channel 3: CLA 13 then 03.
    let first = [0x13, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
    let last = [0x03, 0x20, 0x00, 0x80, 0x04, b'5', b'6', 0xFF, 0xFF];
    assert_eq!(send(&mut card, &first), OK);
    assert_eq!(send(&mut card, &last), OK);
    assert_eq!(send(&mut card, &[0x03, 0x20, 0x00, 0x80]), OK);
}

#[test]
fn further_interindustry_channel_classes_still_work() {
    let mut card = card_without_default();
    let class = open_channels_through(&mut card, 5);
    assert_eq!(class, 0x41);
    select_on(&mut card, class);
    assert_object(&send(&mut card, &get_data(class)));
    assert_eq!(sw(&send(&mut card, &[class, 0xFD, 0x00, 0x00, 0x00])), OK);
    // The same channel with the proprietary bit: refused, no try spent.
    let wrong = [b'0', b'0', b'0', b'0', b'0', b'0', 0xFF, 0xFF];
    assert_eq!(send(&mut card, &verify(0xC1, &wrong)), CLASS_NOT_SUPPORTED);
    assert_eq!(send(&mut card, &[class, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
    // Chaining on channel 5: CLA 51 then 41 (further interindustry's
    // chaining bit is b5 too).
    let first = [0x51, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
    let last = [0x41, 0x20, 0x00, 0x80, 0x04, b'5', b'6', 0xFF, 0xFF];
    assert_eq!(send(&mut card, &first), OK);
    assert_eq!(send(&mut card, &last), OK);
    assert_eq!(send(&mut card, &[class, 0x20, 0x00, 0x80]), OK);
}
