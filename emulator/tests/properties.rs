//! Properties of a card under arbitrary input.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::prelude::*;
use support::*;
use vscard_emulator::{Card, CardRng, MemoryStore, ResponseApdu};

#[derive(Clone, Debug)]
enum Step {
    Raw(Vec<u8>),
    Command {
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: Vec<u8>,
        le: Option<u8>,
    },
    PowerOff,
    PowerOn,
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    let ins = prop_oneof![
        Just(ins::ECHO),
        Just(ins::BIG),
        Just(ins::READ),
        Just(ins::INCREMENT),
        Just(ins::VERIFY),
        Just(ins::SET_FLAGS),
        Just(ins::STAGE_THEN_FAIL),
        Just(0xA4u8),
        Just(0x70u8),
        Just(0xC0u8),
        any::<u8>(),
    ];
    let cla = prop_oneof![
        Just(0x00u8),
        Just(0x10),
        Just(0x01),
        Just(0x41),
        any::<u8>()
    ];
    prop_oneof![
        8 => (cla, ins, any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40), proptest::option::of(any::<u8>()))
            .prop_map(|(cla, ins, p1, p2, data, le)| Step::Command { cla, ins, p1, p2, data, le }),
        3 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Step::Raw),
        1 => Just(Step::PowerOff),
        1 => Just(Step::PowerOn),
        1 => Just(Step::Reset),
    ]
}

fn encode(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut apdu = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        apdu.push(data.len() as u8);
        apdu.extend_from_slice(data);
    }
    apdu.extend(le);
    apdu
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of commands and power events gets well-formed answers
    /// ending in a status word, and the counters stay consistent.
    #[test]
    fn any_sequence_gets_well_formed_answers(steps in proptest::collection::vec(step(), 1..60)) {
        let store = MemoryStore::new();
        let mut card = Card::builder()
            .rng(CardRng::from_u64(9))
            .store(store.clone())
            // A panic must fail the property, not hide behind 6F00.
            .catch_panics(false)
            .install_default(TestApplet::a())
            .install(TestApplet::b())
            .build()
            .unwrap();
        card.power_on();
        for step in steps {
            let bytes = match step {
                Step::PowerOff => { card.power_off(); continue; }
                Step::PowerOn => { card.power_on(); continue; }
                Step::Reset => { card.reset(); continue; }
                Step::Raw(bytes) => bytes,
                Step::Command { cla, ins, p1, p2, data, le } => encode(cla, ins, p1, p2, &data, le),
            };
            match card.transmit(&bytes) {
                Ok(response) => {
                    let parsed = ResponseApdu::parse(&response);
                    prop_assert!(parsed.is_some(), "no status word");
                }
                Err(e) => prop_assert!(!card.is_powered(), "error {e} from a powered card"),
            }
        }
        // Whatever happened, the committed counters never disagree.
        card.power_on();
        let (a, b) = counters(&mut card);
        prop_assert_eq!(a, b);
        prop_assert_eq!(Some(card.image().clone()), store.image());
    }
}
