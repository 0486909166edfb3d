//! No APDU makes the applet panic or leave the card unusable: random
//! bytes, and random bodies for every PIV instruction (after PIN and
//! management-key authentication, so the handlers behind the checks run
//! too). Afterwards the card still answers a VERIFY status query.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use vscard_applet::command::Command;
use vscard_applet::{PivConfig, piv_atr};
use vscard_emulator::{Card, CardRng, CommandApdu};

/// [`default_card`], with the runtime's panic catcher off: an applet panic
/// fails the property instead of hiding behind `6F00`.
fn strict_card() -> Card {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(42))
        .catch_panics(false)
        .install_default(keyed_applet(PivConfig::default()))
        .build()
        .unwrap();
    card.power_on();
    card
}

const INSTRUCTIONS: [u8; 14] = [
    0x20, 0x24, 0x2C, 0xCB, 0xDB, 0x87, 0x47, 0xFD, 0xF8, 0xF7, 0xFF, 0xFB, 0xFE, 0xFA,
];

/// Bodies that look like PIV data: TLVs with the tags PIV uses.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![
        Just(0x7Cu8),
        Just(0x80),
        Just(0x81),
        Just(0x82),
        Just(0x85),
        Just(0x5C),
        Just(0x53),
        Just(0xAC),
        Just(0xAA),
        Just(0x06),
        Just(0x01),
        any::<u8>(),
    ];
    let object =
        (tag, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(t, v)| tlv(u32::from(t), &v));
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(object.clone(), 0..4).prop_map(|o| o.concat()),
        prop::collection::vec(object, 0..4).prop_map(|o| tlv(0x7C, &o.concat())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsing_never_panics(ins in any::<u8>(), p1 in any::<u8>(), p2 in any::<u8>(), data in body()) {
        let apdu = CommandApdu::new(vscard_emulator::Class::parse(0).unwrap(), ins, p1, p2, &data, 256);
        if let Ok(command) = Command::try_from(&apdu) {
            let _ = command.describe();
        }
    }

    #[test]
    fn random_bytes_get_a_status_word(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut card = strict_card();
        let answer = card.transmit(&bytes).unwrap();
        prop_assert!(answer.len() >= 2);
    }

    #[test]
    fn random_piv_commands_keep_the_card_alive(
        commands in prop::collection::vec((prop::sample::select(INSTRUCTIONS.to_vec()), any::<u8>(), any::<u8>(), body()), 1..12)
    ) {
        let mut c = Client::new(strict_card());
        assert_eq!(c.verify(PIN), SW_OK);
        c.authenticate_default();
        for (ins, p1, p2, data) in commands {
            // Skip RSA key generation: slow and covered elsewhere.
            if ins == 0x47 && data.windows(3).any(|w| w == [0x80, 0x01, 0x07]) {
                continue;
            }
            let answer = c.send(ins, p1, p2, &data);
            prop_assert!(answer.sw() != 0x6F00, "no unknown error for {ins:02X} {p1:02X} {p2:02X} {data:02X?}");
        }
        let sw = c.verify_status();
        prop_assert!(sw == SW_OK || sw >> 4 == 0x63C || sw == 0x6983);
    }
}
