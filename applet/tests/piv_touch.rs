//! Touch policies: stored from GENERATE / IMPORT tag `AB`, reported by GET
//! METADATA, and enforced by GENERAL AUTHENTICATE through the runtime's
//! touch sensor: without a touch the card answers `6982` (a YubiKey's
//! touch timeout) and holds the command, which `Card::touch` completes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::{Duration, SystemTime};

use common::{Client, MGMT, PIN, SW_OK, pad};
use vscard_applet::{Algorithm, Model, PivApplet, PivConfig, piv_atr};
use vscard_emulator::{Card, CardRng, ManualClock};

struct Touchy {
    client: Client,
    clock: ManualClock,
}

fn sw(answer: &[u8]) -> u16 {
    let [.., a, b] = answer else {
        panic!("no status word")
    };
    u16::from_be_bytes([*a, *b])
}

fn apdu(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    apdu.push(u8::try_from(data.len()).unwrap());
    apdu.extend_from_slice(data);
    apdu.push(0x00);
    apdu
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        len @ 0..=0x7F => out.push(len as u8),
        len @ 0x80..=0xFF => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(value);
    out
}

impl Touchy {
    fn new() -> Touchy {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let applet = PivApplet::new(PivConfig::for_model(Model::YubiKey57)).unwrap();
        let mut card = Card::builder()
            .atr(piv_atr())
            .rng(CardRng::from_u64(3))
            .clock(clock.clone())
            .install_default(applet)
            .build()
            .unwrap();
        card.power_on();
        let mut client = Client::new(card);
        assert_eq!(client.select().sw(), SW_OK);
        assert_eq!(
            client.authenticate_management_key(Algorithm::Aes192, &MGMT),
            SW_OK
        );
        Touchy { client, clock }
    }

    fn card(&mut self) -> &mut Card {
        self.client.card()
    }

    fn send(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.card().transmit(apdu).unwrap()
    }

    fn verify(&mut self) {
        let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
        verify.extend_from_slice(&pad(PIN));
        assert_eq!(sw(&self.send(&verify)), SW_OK);
    }

    /// GENERATE P-256 in `slot` with touch policy `touch`.
    fn generate(&mut self, slot: u8, touch: u8) {
        let mut template = tlv(0x80, &[0x11]);
        template.extend(tlv(0xAB, &[touch]));
        let answer = self.send(&apdu([0x00, 0x47, 0x00, slot], &tlv(0xAC, &template)));
        assert_eq!(sw(&answer), SW_OK);
    }

    fn sign_p256(&mut self, slot: u8) -> Vec<u8> {
        let mut inner = tlv(0x82, &[]);
        inner.extend(tlv(0x81, &[0x42; 32]));
        self.send(&apdu([0x00, 0x87, 0x11, slot], &tlv(0x7C, &inner)))
    }

    /// GET METADATA policy bytes (PIN, touch).
    fn policies(&mut self, slot: u8) -> [u8; 2] {
        let answer = self.send(&[0x00, 0xF7, 0x00, slot, 0x00]);
        assert_eq!(sw(&answer), SW_OK);
        let at = answer.windows(2).position(|w| w == [0x02, 0x02]).unwrap();
        [answer[at + 2], answer[at + 3]]
    }

    fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }
}

#[test]
fn an_always_key_waits_for_a_touch_for_every_signature() {
    let mut card = Touchy::new();
    card.generate(0x9D, 0x02);
    assert_eq!(card.policies(0x9D), [0x02, 0x02]);
    card.verify();
    // No touch: 6982, and the command waits.
    assert_eq!(card.sign_p256(0x9D), [0x69, 0x82]);
    assert!(card.card().awaiting_touch());
    // The touch completes it: a signature, traced as such.
    card.card().record_exchanges(true);
    let touched = card.card().touch().unwrap().unwrap();
    assert_eq!(sw(&touched), SW_OK);
    let traced = card.card().last_exchange().unwrap().clone();
    assert_eq!(traced.status, vscard_emulator::Status::Success);
    assert!(traced.command.ends_with("(touched)"), "{}", traced.command);
    assert_eq!(touched[0], 0x7C);
    assert!(!card.card().awaiting_touch());
    // The next signature needs a touch of its own.
    assert_eq!(card.sign_p256(0x9D), [0x69, 0x82]);
    // Another command gives up the wait: a touch then runs nothing.
    assert_eq!(sw(&card.send(&[0x00, 0xFD, 0x00, 0x00, 0x00])), SW_OK);
    assert!(!card.card().awaiting_touch());
    // ... and is kept for the next signature (within 15 s).
    assert_eq!(card.card().touch().unwrap(), None);
    assert_eq!(sw(&card.sign_p256(0x9D)), SW_OK);
    // A touch kept longer than 15 s is gone.
    assert_eq!(card.card().touch().unwrap(), None);
    card.advance(16);
    assert_eq!(card.sign_p256(0x9D), [0x69, 0x82]);
}

#[test]
fn a_cached_key_takes_one_touch_for_15_seconds() {
    let mut card = Touchy::new();
    card.generate(0x9E, 0x03);
    assert_eq!(card.policies(0x9E), [0x01, 0x03]);
    assert_eq!(card.sign_p256(0x9E), [0x69, 0x82]);
    assert_eq!(sw(&card.card().touch().unwrap().unwrap()), SW_OK);
    card.advance(10);
    assert_eq!(sw(&card.sign_p256(0x9E)), SW_OK);
    card.advance(20);
    assert_eq!(card.sign_p256(0x9E), [0x69, 0x82]);
}

#[test]
fn a_pin_always_key_keeps_its_verify_while_it_waits() {
    let mut card = Touchy::new();
    card.generate(0x9C, 0x02);
    assert_eq!(card.policies(0x9C), [0x03, 0x02]);
    card.verify();
    assert_eq!(card.sign_p256(0x9C), [0x69, 0x82]);
    // The held command still has its VERIFY: the touch completes it.
    assert_eq!(sw(&card.card().touch().unwrap().unwrap()), SW_OK);
    // Spent now: the next one needs a VERIFY (and a touch).
    card.card().touch().unwrap();
    assert_eq!(card.sign_p256(0x9C), [0x69, 0x82]);
    assert!(
        !card.card().awaiting_touch(),
        "refused for the PIN, not held"
    );
}

#[test]
fn a_chained_rsa_signature_is_held_whole_and_answered_with_get_response() {
    let mut card = Touchy::new();
    // RSA-2048 with ALWAYS: its public key comes in two parts (61xx).
    let mut template = tlv(0x80, &[0x07]);
    template.extend(tlv(0xAB, &[0x02]));
    let answer = card.send(&apdu([0x00, 0x47, 0x00, 0x9A], &tlv(0xAC, &template)));
    assert_eq!(answer[answer.len() - 2], 0x61, "{answer:02X?}");
    assert_eq!(sw(&card.send(&[0x00, 0xC0, 0x00, 0x00, 0x00])), SW_OK);
    card.verify();
    let mut inner = tlv(0x82, &[]);
    inner.extend(tlv(0x81, &[0x01; 256]));
    let data = tlv(0x7C, &inner);
    let (first, rest) = data.split_at(200);
    let mut link = vec![0x10, 0x87, 0x07, 0x9A, first.len() as u8];
    link.extend_from_slice(first);
    assert_eq!(card.send(&link), [0x90, 0x00]);
    assert_eq!(
        card.send(&apdu([0x00, 0x87, 0x07, 0x9A], rest)),
        [0x69, 0x82]
    );
    let touched = card.card().touch().unwrap().unwrap();
    // 7C 82 01 04 82 82 01 00 + 256 bytes: 256 now, 8 more to fetch.
    assert_eq!(touched.len(), 258);
    assert_eq!(&touched[256..], [0x61, 0x08]);
    let rest = card.send(&[0x00, 0xC0, 0x00, 0x00, 0x08]);
    assert_eq!(rest.len(), 10);
    assert_eq!(sw(&rest), SW_OK);
}

#[test]
fn an_unknown_touch_policy_is_refused() {
    let mut card = Touchy::new();
    let mut template = tlv(0x80, &[0x11]);
    template.extend(tlv(0xAB, &[0x04]));
    let answer = card.send(&apdu([0x00, 0x47, 0x00, 0x9A], &tlv(0xAC, &template)));
    assert_eq!(answer, [0x6A, 0x80]);
}
