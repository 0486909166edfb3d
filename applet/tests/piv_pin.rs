//! The PIN / PUK state machine through the wire: exact status words for
//! every path (SP 800-73-4 Part 2 3.2.1-3.2.3), and a proptest model of the
//! counters that the card must never differ from, power cuts included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use vscard_applet::{PinRules, PivApplet, PivConfig, Slot};
use vscard_emulator::{CardError, CutPoint, FaultPlan};

fn client() -> Client {
    Client::new(card_with(PivApplet::with_defaults()))
}

#[test]
fn verify_paths() {
    let mut c = client();
    // Case 1 and case 2 status queries before any VERIFY: 63C3.
    assert_eq!(
        c.card().transmit(&[0x00, 0x20, 0x00, 0x80]).unwrap(),
        [0x63, 0xC3]
    );
    assert_eq!(
        c.card().transmit(&[0x00, 0x20, 0x00, 0x80, 0x00]).unwrap(),
        [0x63, 0xC3]
    );
    assert_eq!(c.verify(b"000000"), 0x63C2);
    assert_eq!(c.verify_status(), 0x63C2);
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(c.verify_status(), SW_OK);
    assert_eq!(c.counters(), (3, 3), "a correct PIN resets the counter");
    // A wrong PIN forgets the verification.
    assert_eq!(c.verify(b"111111"), 0x63C2);
    assert_eq!(c.verify_status(), 0x63C2);
    assert_eq!(c.verify(PIN), SW_OK);
    // Log out: P1 FF.
    assert_eq!(c.send(0x20, 0xFF, 0x80, &[]).sw(), SW_OK);
    assert_eq!(c.verify_status(), 0x63C3);
    // Malformed: Lc not 8 (nothing counted), wrong P1, wrong reference.
    assert_eq!(c.send(0x20, 0x00, 0x80, b"123456").sw(), 0x6A80);
    assert_eq!(c.send(0x20, 0x01, 0x80, &pad(PIN)).sw(), 0x6A86);
    assert_eq!(c.send(0x20, 0x00, 0x81, &pad(PUK)).sw(), 0x6A88);
    assert_eq!(c.send(0x20, 0x00, 0x9B, &pad(PIN)).sw(), 0x6A88);
    assert_eq!(c.counters(), (3, 3));
    // A badly padded candidate is just a wrong PIN.
    assert_eq!(c.send(0x20, 0x00, 0x80, b"123456\xFF0").sw(), 0x63C2);
}

#[test]
fn pin_blocks_and_puk_unblocks() {
    let mut c = client();
    assert_eq!(c.verify(b"000000"), 0x63C2);
    assert_eq!(c.verify(b"000000"), 0x63C1);
    assert_eq!(c.verify(b"000000"), 0x63C0);
    assert_eq!(c.verify(PIN), 0x6983, "blocked: even the right PIN fails");
    assert_eq!(c.verify_status(), 0x6983);
    assert_eq!(c.change_pin(PIN, b"654321"), 0x6983);
    assert_eq!(c.counters(), (0, 3));
    // Wrong PUK counts; a new PIN breaking the rules is refused only after
    // the PUK was proven (and the proven PUK's counter is reset).
    assert_eq!(c.unblock(b"00000000", b"654321"), 0x63C2);
    assert_eq!(c.unblock(PUK, b"12"), 0x6A80);
    assert_eq!(c.counters(), (0, 3));
    assert_eq!(c.unblock(PUK, b"65432a"), 0x6A80);
    assert_eq!(c.unblock(PUK, b"654321"), SW_OK);
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(c.verify(PIN), 0x63C2, "the old PIN is gone");
    assert_eq!(c.verify(b"654321"), SW_OK);
}

#[test]
fn blocked_puk_means_no_more_unblocking() {
    let mut c = client();
    for _ in 0..3 {
        c.verify(b"000000");
    }
    assert_eq!(c.unblock(b"00000000", b"654321"), 0x63C2);
    assert_eq!(c.unblock(b"00000000", b"654321"), 0x63C1);
    assert_eq!(c.unblock(b"00000000", b"654321"), 0x63C0);
    assert_eq!(c.unblock(PUK, b"654321"), 0x6983);
    assert_eq!(c.change_puk(PUK, b"87654321"), 0x6983);
    assert_eq!(c.verify(PIN), 0x6983);
    assert_eq!(c.counters(), (0, 0));
    // Only RESET helps now, and it needs both blocked.
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(c.verify(PIN), SW_OK);
}

/// Yubico RESET restores the try limits the card was personalised with
/// (3 / 3 on a default card, as a YubiKey does), not those of SET PIN
/// RETRIES.
#[test]
fn reset_restores_the_factory_try_limits() {
    let mut c = client();
    c.authenticate_default();
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(c.send(0xFA, 5, 6, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (5, 6));
    // Twice, so the second SET PIN RETRIES does not become the factory value.
    c.authenticate_default();
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(c.send(0xFA, 7, 8, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (7, 8));
    for _ in 0..7 {
        c.verify(b"000000");
    }
    for _ in 0..8 {
        c.unblock(b"00000000", b"654321");
    }
    assert_eq!(c.counters(), (0, 0));
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(
        c.metadata(0x81).data,
        [0x01, 0x01, 0xFF, 0x05, 0x01, 0x01, 0x06, 0x02, 3, 3]
    );
    assert_eq!(c.verify(b"000000"), 0x63C2);
    // The restored state survives a power cycle.
    c.card().reset();
    assert_eq!(c.counters(), (2, 3));
}

/// A card personalised with other limits goes back to those.
#[test]
fn reset_restores_personalised_try_limits() {
    let rules = PinRules {
        pin_tries: 4,
        puk_tries: 2,
        ..PinRules::default()
    };
    let config = PivConfig::default().with_rules(rules);
    let mut c = Client::new(card_with(PivApplet::new(config).unwrap()));
    c.authenticate_default();
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(c.send(0xFA, 1, 1, &[]).sw(), SW_OK);
    assert_eq!(c.verify(b"000000"), 0x63C0);
    assert_eq!(c.unblock(b"00000000", b"654321"), 0x63C0);
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (4, 2));
}

#[test]
fn reset_needs_both_blocked() {
    let mut c = client();
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), 0x6985);
    for _ in 0..3 {
        c.verify(b"000000");
    }
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), 0x6985);
}

#[test]
fn change_reference_data_paths() {
    let mut c = client();
    assert_eq!(c.change_pin(b"000000", b"654321"), 0x63C2);
    assert_eq!(
        c.change_pin(PIN, b"65432"),
        0x6A80,
        "too short, after the old PIN was proven"
    );
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(c.change_pin(PIN, b"123456789"), 0x6A80);
    assert_eq!(c.change_pin(PIN, b"1234567"), SW_OK);
    assert_eq!(c.verify(b"1234567"), SW_OK);
    // PUK.
    assert_eq!(c.change_puk(b"00000000", b"87654321"), 0x63C2);
    assert_eq!(c.change_puk(PUK, b"876543"), SW_OK);
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(c.unblock(b"876543", b"111111"), SW_OK);
    // Structure: Lc 16, P1 00, reference 80/81.
    assert_eq!(c.send(0x24, 0x00, 0x80, &pad(PIN)).sw(), 0x6A80);
    assert_eq!(c.send(0x24, 0x01, 0x80, &[0xFF; 16]).sw(), 0x6A86);
    assert_eq!(c.send(0x24, 0x00, 0x9B, &[0xFF; 16]).sw(), 0x6A88);
    assert_eq!(c.send(0x2C, 0x00, 0x81, &[0xFF; 16]).sw(), 0x6A88);
}

/// SP 800-73-4 Part 2 2.4.3: only the PIN is limited to digits; a PUK may
/// hold any byte values (but the padding byte `FF`), as on a YubiKey.
#[test]
fn a_new_puk_may_hold_any_bytes_but_a_new_pin_only_digits() {
    let mut c = client();
    assert_eq!(c.change_puk(PUK, b"pUk-\x00\x7F!"), SW_OK);
    assert_eq!(c.counters(), (3, 3));
    // The length bounds still hold for the PUK, and FF is padding.
    assert_eq!(c.change_puk(b"pUk-\x00\x7F!", b"abcde"), 0x6A80);
    assert_eq!(
        c.send(
            0x24,
            0x00,
            0x81,
            &[b"pUk-\x00\x7F!".as_slice(), b"ab\xFFcdefg"].concat()
        )
        .sw(),
        0x6A80
    );
    // RESET RETRY COUNTER with the non-digit PUK sets a new PIN ...
    assert_eq!(c.unblock(b"pUk-\x00\x7F!", b"654321"), SW_OK);
    assert_eq!(c.verify(b"654321"), SW_OK);
    // ... but the new PIN must still be digits.
    assert_eq!(c.unblock(b"pUk-\x00\x7F!", b"65432a"), 0x6A80);
    assert_eq!(c.change_pin(b"654321", b"abcdef"), 0x6A80);
    assert_eq!(c.counters(), (3, 3));
    // The PUK can go back to digits.
    assert_eq!(c.change_puk(b"pUk-\x00\x7F!", PUK), SW_OK);
    assert_eq!(c.unblock(PUK, b"123456"), SW_OK);
}

#[test]
fn pin_rules_are_per_card() {
    let rules = PinRules {
        min_length: 6,
        max_length: 6,
        digits_only: true,
        pin_tries: 5,
        puk_tries: 2,
    };
    let config = PivConfig::default()
        .with_rules(rules)
        .with_pin(b"000123")
        .with_puk(b"999999");
    let mut c = Client::new(card_with(PivApplet::new(config).unwrap()));
    assert_eq!(c.verify_status(), 0x63C5);
    assert_eq!(c.verify(b"000124"), 0x63C4);
    assert_eq!(c.change_pin(b"000123", b"1234567"), 0x6A80);
    assert_eq!(c.unblock(b"000000", b"111111"), 0x63C1);
    assert_eq!(c.unblock(b"999999", b"111111"), SW_OK);
    assert!(
        PivApplet::new(PivConfig::default().with_rules(rules)).is_err(),
        "default PUK is 8 digits"
    );
}

#[test]
fn security_status_dies_with_reset_and_reselection() {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(PIN), SW_OK);
    c.card().reset();
    assert_eq!(c.verify_status(), 0x63C3);
    assert_eq!(c.verify(PIN), SW_OK);
    assert_eq!(c.select().sw(), SW_OK);
    assert_eq!(c.verify_status(), 0x63C3);
    assert_eq!(
        c.sign(
            vscard_applet::Algorithm::EccP256,
            Slot::KEY_MANAGEMENT,
            &[1; 32]
        ),
        Err(0x6982)
    );
}

// ---- the model ----

#[derive(Clone, Debug)]
enum Op {
    Verify { correct: bool },
    Status,
    ChangePin { correct: bool, new: u8 },
    ChangePuk { correct: bool, new: u8 },
    Unblock { correct: bool, new: u8 },
    Reset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    pin: Vec<u8>,
    puk: Vec<u8>,
    pin_left: u8,
    puk_left: u8,
    verified: bool,
}

const LIMIT: u8 = 3;

/// The new values an op may set: index 3 breaks the rules.
fn new_value(index: u8, puk: bool) -> Vec<u8> {
    match (index, puk) {
        (0, false) => b"111111".to_vec(),
        (1, false) => b"22222222".to_vec(),
        (2, _) => b"1234567".to_vec(),
        (0, true) => b"11111111".to_vec(),
        (1, true) => b"222222".to_vec(),
        _ => b"12a".to_vec(),
    }
}

fn wrong(value: &[u8]) -> Vec<u8> {
    let mut w = value.to_vec();
    w[0] = if w[0] == b'9' { b'8' } else { b'9' };
    w
}

/// The states after each persistent write of `op`, and the status word
/// when it completes. An empty list means the op writes nothing.
fn writes(m: &Model, op: &Op) -> (Vec<Model>, u16) {
    let mut steps = Vec::new();
    let mut s = m.clone();
    let valid = |v: &[u8]| v.len() >= 6 && v.len() <= 8 && v.iter().all(u8::is_ascii_digit);
    match op {
        Op::Status => {
            let sw = if s.verified {
                SW_OK
            } else if s.pin_left == 0 {
                0x6983
            } else {
                0x63C0 | s.pin_left as u16
            };
            (steps, sw)
        }
        Op::Reset => (steps, SW_OK),
        Op::Verify { correct } | Op::ChangePin { correct, .. } => {
            if s.pin_left == 0 {
                return (steps, 0x6983);
            }
            s.pin_left -= 1;
            steps.push(s.clone());
            if !correct {
                s.verified = false;
                let last = steps.len() - 1;
                steps[last].verified = false;
                return (steps, 0x63C0 | s.pin_left as u16);
            }
            s.pin_left = LIMIT;
            if matches!(op, Op::Verify { .. }) {
                s.verified = true;
            }
            steps.push(s.clone());
            if let Op::ChangePin { new, .. } = op {
                let new = new_value(*new, false);
                if !valid(&new) {
                    return (steps, 0x6A80);
                }
                s.pin = new;
                steps.push(s.clone());
            }
            (steps, SW_OK)
        }
        Op::ChangePuk { correct, new } | Op::Unblock { correct, new } => {
            if s.puk_left == 0 {
                return (steps, 0x6983);
            }
            s.puk_left -= 1;
            steps.push(s.clone());
            if !correct {
                return (steps, 0x63C0 | s.puk_left as u16);
            }
            s.puk_left = LIMIT;
            steps.push(s.clone());
            let unblock = matches!(op, Op::Unblock { .. });
            let new = new_value(*new, !unblock);
            if !valid(&new) {
                return (steps, 0x6A80);
            }
            if unblock {
                s.pin = new;
                s.pin_left = LIMIT;
            } else {
                s.puk = new;
            }
            steps.push(s.clone());
            (steps, SW_OK)
        }
    }
}

fn run(c: &mut Client, m: &Model, op: &Op) -> Result<u16, CardError> {
    let value = |correct: bool, v: &[u8]| if correct { v.to_vec() } else { wrong(v) };
    match op {
        Op::Verify { correct } => c.try_send(0x20, 0, 0x80, &pad(&value(*correct, &m.pin))),
        Op::Status => c.try_send(0x20, 0, 0x80, &[]),
        Op::ChangePin { correct, new } => {
            let data = [pad(&value(*correct, &m.pin)), pad(&new_value(*new, false))].concat();
            c.try_send(0x24, 0, 0x80, &data)
        }
        Op::ChangePuk { correct, new } => {
            let data = [pad(&value(*correct, &m.puk)), pad(&new_value(*new, true))].concat();
            c.try_send(0x24, 0, 0x81, &data)
        }
        Op::Unblock { correct, new } => {
            let data = [pad(&value(*correct, &m.puk)), pad(&new_value(*new, false))].concat();
            c.try_send(0x2C, 0, 0x80, &data)
        }
        Op::Reset => {
            c.card().reset();
            return Ok(SW_OK);
        }
    }
    .map(|a| a.sw())
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|correct| Op::Verify { correct }),
        1 => Just(Op::Status),
        2 => (any::<bool>(), 0u8..4).prop_map(|(correct, new)| Op::ChangePin { correct, new }),
        1 => (any::<bool>(), 0u8..4).prop_map(|(correct, new)| Op::ChangePuk { correct, new }),
        2 => (prop::bool::weighted(0.3), 0u8..4).prop_map(|(correct, new)| Op::Unblock { correct, new }),
        1 => Just(Op::Reset),
    ]
}

fn cut_strategy() -> impl Strategy<Value = Option<(u64, CutPoint)>> {
    prop_oneof![
        3 => Just(None),
        1 => (1u64..5, prop_oneof![Just(CutPoint::BeforeWrite), Just(CutPoint::AfterWrite)]).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn card_follows_the_counter_model(ops in prop::collection::vec((op_strategy(), cut_strategy()), 1..24)) {
        let mut c = client();
        let mut m = Model { pin: PIN.to_vec(), puk: PUK.to_vec(), pin_left: LIMIT, puk_left: LIMIT, verified: false };
        for (op, cut) in ops {
            let (steps, sw) = writes(&m, &op);
            if let Some((k, point)) = cut {
                c.card().set_fault_plan(FaultPlan::cut_at_write(k, point));
            }
            let before = m.clone();
            let result = run(&mut c, &m, &op);
            let fired = cut.is_some() && !c.card().fault_pending();
            c.card().set_fault_plan(FaultPlan::none());
            match (result, cut) {
                (Err(CardError::PowerLost), Some((k, point))) => {
                    prop_assert!(fired);
                    let index = k as usize - 1;
                    let mut state = match point {
                        CutPoint::BeforeWrite if index == 0 => before.clone(),
                        CutPoint::BeforeWrite => steps[index - 1].clone(),
                        CutPoint::AfterWrite => steps[index].clone(),
                    };
                    state.verified = false;
                    m = state;
                    c.card().power_on();
                }
                (Ok(got), _) => {
                    prop_assert!(!fired, "a cut fired but the command answered");
                    prop_assert_eq!(got, sw, "{:?} on {:?}", op, before);
                    if let Some(last) = steps.last() {
                        m = last.clone();
                    }
                    if matches!(op, Op::Reset) {
                        m.verified = false;
                    }
                }
                (Err(e), _) => prop_assert!(false, "unexpected {:?}", e),
            }
            let (pin_left, puk_left) = c.counters();
            prop_assert_eq!((pin_left, puk_left), (m.pin_left, m.puk_left), "after {:?}", op);
            // No try is ever regained without proving the value or the PUK.
            let proved_pin = matches!(op, Op::Verify { correct: true } | Op::ChangePin { correct: true, .. });
            let proved_puk = matches!(op, Op::ChangePuk { correct: true, .. } | Op::Unblock { correct: true, .. });
            prop_assert!(pin_left <= before.pin_left || (before.pin_left > 0 && proved_pin) || (before.puk_left > 0 && proved_puk));
            prop_assert!(puk_left <= before.puk_left || (before.puk_left > 0 && proved_puk));
        }
    }
}

#[test]
fn set_pin_retries_needs_both_and_restores_defaults() {
    let config = PivConfig::default().with_pin(b"777777");
    let mut c = Client::new(card_with(PivApplet::new(config).unwrap()));
    assert_eq!(c.send(0xFA, 5, 4, &[]).sw(), 0x6982);
    c.authenticate_default();
    assert_eq!(c.send(0xFA, 5, 4, &[]).sw(), 0x6982, "the PIN too");
    assert_eq!(c.verify(b"777777"), SW_OK);
    assert_eq!(c.send(0xFA, 0, 4, &[]).sw(), 0x6A86);
    assert_eq!(c.send(0xFA, 5, 16, &[]).sw(), 0x6A86);
    assert_eq!(c.send(0xFA, 5, 4, &[]).sw(), SW_OK);
    assert_eq!(c.counters(), (5, 4));
    assert_eq!(
        c.metadata(0x80).data,
        [0x01, 0x01, 0xFF, 0x05, 0x01, 0x01, 0x06, 0x02, 5, 5]
    );
    assert_eq!(c.verify(b"777777"), 0x63C4, "back to the default PIN");
    assert_eq!(c.verify(PIN), SW_OK);
}
