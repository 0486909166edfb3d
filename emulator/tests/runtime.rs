//! The runtime through `Card::transmit`: power, SELECT, channels, chaining,
//! GET RESPONSE, extended length, transient memory, rollback and traces.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;
use vscard_emulator::{Card, CardError, CardRng, MemoryStore, Part, PowerState};

fn card() -> Card {
    card_on(MemoryStore::new())
}

fn card_on(store: MemoryStore) -> Card {
    let mut card = Card::builder()
        .rng(CardRng::from_u64(1))
        .store(store)
        .install_default(TestApplet::a())
        .install(TestApplet::b())
        .build()
        .unwrap();
    card.power_on();
    card
}

#[test]
fn a_card_needs_power() {
    let mut card = Card::builder()
        .rng(CardRng::from_u64(1))
        .install_default(TestApplet::a())
        .build()
        .unwrap();
    assert_eq!(card.power_state(), PowerState::Off);
    assert!(matches!(
        card.transmit(&[0x00, ins::ECHO, 0, 0]),
        Err(CardError::NotPowered)
    ));
    let atr = card.power_on().to_vec();
    assert_eq!(atr, card.atr());
    assert_eq!(atr[0], 0x3B);
    card.power_off();
    assert!(matches!(
        card.transmit(&[0x00, ins::ECHO, 0, 0]),
        Err(CardError::NotPowered)
    ));
}

#[test]
fn default_applet_answers_without_select() {
    let mut card = card();
    assert_eq!(
        send(&mut card, &[0x00, ins::ECHO, 0, 0, 2, 0xAB, 0xCD, 0x00]),
        (vec![0xAB, 0xCD], 0x9000)
    );
}

#[test]
fn malformed_and_unsupported_commands_get_status_words() {
    let mut card = card();
    assert_eq!(send(&mut card, &[0x00, 0x01]), (vec![], 0x6700));
    assert_eq!(send(&mut card, &[0x00, 0x01, 0, 0, 3, 1]), (vec![], 0x6700));
    assert_eq!(send(&mut card, &[0xFF, 0x01, 0, 0]), (vec![], 0x6E00));
    assert_eq!(send(&mut card, &[0x0C, 0x01, 0, 0]), (vec![], 0x6882));
    assert_eq!(send(&mut card, &[0x00, 0x7F, 0, 0]), (vec![], 0x6D00));
}

#[test]
fn select_exact_truncated_and_by_occurrence() {
    let mut card = card();
    // Exact: the applet's FCI comes back.
    let (fci, sw) = send(&mut card, &select(&AID_B, 0x00));
    assert_eq!(sw, 0x9000);
    assert_eq!(&fci[4..], &AID_B);
    // Right-truncated: the first match in installation order is A.
    let (fci, _) = send(&mut card, &select(&PREFIX, 0x00));
    assert_eq!(&fci[4..], &AID_A);
    // Next occurrence from A is B; from B there is no next one.
    let (fci, _) = send(&mut card, &select(&PREFIX, 0x02));
    assert_eq!(&fci[4..], &AID_B);
    assert_eq!(send(&mut card, &select(&PREFIX, 0x02)).1, 0x6A82);
    // Last occurrence, and "no response data".
    let (fci, _) = send(&mut card, &select(&PREFIX, 0x01));
    assert_eq!(&fci[4..], &AID_B);
    assert_eq!(send(&mut card, &select(&AID_A, 0x0C)), (vec![], 0x9000));
    // Previous from A: none.
    assert_eq!(send(&mut card, &select(&PREFIX, 0x03)).1, 0x6A82);
    // RFU bits of P2.
    assert_eq!(send(&mut card, &select(&AID_A, 0x10)).1, 0x6A86);
}

#[test]
fn unknown_aid_keeps_selection_and_security_state() {
    let mut card = card();
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    assert_eq!(
        send(&mut card, &select(&[0xA0, 0, 0, 0, 0x99], 0)),
        (vec![], 0x6A82)
    );
    // Still test-a, and its deselect-cleared state survived.
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]),
        (vec![0x11, 0x22], 0x9000)
    );
}

#[test]
fn an_applet_that_refuses_selection_leaves_nothing_selected() {
    let mut refusing = TestApplet::b();
    refusing.refuse_select = true;
    let mut card = Card::builder()
        .rng(CardRng::from_u64(1))
        .install_default(TestApplet::a())
        .install(refusing)
        .build()
        .unwrap();
    card.power_on();
    assert_eq!(send(&mut card, &select(&AID_B, 0)).1, 0x6999);
    assert_eq!(send(&mut card, &[0x00, ins::ECHO, 0, 0]).1, 0x6A82);
}

#[test]
fn transient_memory_clears_on_reset_and_deselect() {
    let mut card = card();
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    // Deselect (select B, then A again): only the deselect flag goes.
    send(&mut card, &select(&AID_B, 0));
    send(&mut card, &select(&AID_A, 0));
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]),
        (vec![0x11, 0x00], 0x9000)
    );
    // Reselecting the selected applet is a deselect too.
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    send(&mut card, &select(&AID_A, 0));
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]).0,
        vec![0x11, 0x00]
    );
    // Warm reset clears both.
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    card.reset();
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]).0,
        vec![0, 0]
    );
    // So does a power cycle.
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    card.power_off();
    card.power_on();
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]).0,
        vec![0, 0]
    );
}

#[test]
fn command_chaining_is_reassembled() {
    let mut card = card();
    assert_eq!(
        send(&mut card, &[0x10, ins::ECHO, 0, 0, 2, 1, 2]),
        (vec![], 0x9000)
    );
    assert_eq!(
        send(&mut card, &[0x10, ins::ECHO, 0, 0, 2, 3, 4]),
        (vec![], 0x9000)
    );
    assert_eq!(
        send(&mut card, &[0x00, ins::ECHO, 0, 0, 1, 5, 0x00]),
        (vec![1, 2, 3, 4, 5], 0x9000)
    );
    // A different command in the middle of a chain ends it.
    send(&mut card, &[0x10, ins::ECHO, 0, 0, 1, 1]);
    assert_eq!(send(&mut card, &[0x00, ins::READ, 0, 0, 8]).1, 0x6883);
    // The chain is gone: a plain command works again.
    assert_eq!(
        send(&mut card, &[0x00, ins::ECHO, 0, 0, 1, 9, 0]),
        (vec![9], 0x9000)
    );
}

#[test]
fn chains_longer_than_the_maximum_are_refused() {
    let mut card = Card::builder()
        .rng(CardRng::from_u64(1))
        .max_command_data(4096)
        .install_default(TestApplet::a())
        .build()
        .unwrap();
    card.power_on();
    let mut link = vec![0x10, ins::ECHO, 0, 0, 0xFF];
    link.extend_from_slice(&[0xEE; 255]);
    for _ in 0..16 {
        assert_eq!(send(&mut card, &link).1, 0x9000);
    }
    // 16 * 255 = 4080; 255 more would pass 4096.
    assert_eq!(send(&mut card, &link).1, 0x6700);
    // A single extended command over the limit, too.
    let mut extended = vec![0x00, ins::ECHO, 0, 0, 0x00, 0x13, 0x88];
    extended.extend_from_slice(&[0u8; 5000]);
    assert_eq!(send(&mut card, &extended).1, 0x6700);
}

#[test]
fn long_responses_come_through_get_response() {
    let mut card = card();
    // 600 bytes, Le = 00 (256).
    let (first, sw) = send(&mut card, &[0x00, ins::BIG, 0x02, 0x58, 0x00]);
    assert_eq!((first.len(), sw), (256, 0x6100));
    let (second, sw) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x00]);
    assert_eq!((second.len(), sw), (256, 0x6158));
    // Asking for more than is left: 6Cxx with the exact count, data kept.
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x60]),
        (vec![], 0x6C58)
    );
    let (third, sw) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x58]);
    assert_eq!((third.len(), sw), (88, 0x9000));
    let all: Vec<u8> = [first, second, third].concat();
    assert_eq!(all, (0..600).map(|i| i as u8).collect::<Vec<_>>());
    // Nothing pending any more.
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x00]),
        (vec![], 0x6985)
    );
}

#[test]
fn another_command_discards_a_pending_response() {
    let mut card = card();
    assert_eq!(
        send(&mut card, &[0x00, ins::BIG, 0x01, 0x00, 0x10]).1,
        0x61F0
    );
    send(&mut card, &[0x00, ins::ECHO, 0, 0, 1, 1, 0]);
    assert_eq!(send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x00]).1, 0x6985);
}

#[test]
fn a_command_without_le_gets_its_data_as_under_t1() {
    let mut card = card();
    // Case 3 ECHO: no Le, the data comes back with 9000 (Le taken as 00).
    assert_eq!(
        send(&mut card, &[0x00, ins::ECHO, 0, 0, 2, 7, 8]),
        (vec![7, 8], 0x9000)
    );
    // Case 1 with more than 256 bytes: 256 now, the rest behind 61xx.
    let (first, sw) = send(&mut card, &[0x00, ins::BIG, 0x01, 0x10]);
    assert_eq!((first.len(), sw), (256, 0x6110));
    assert_eq!(send(&mut card, &[0x00, 0xC0, 0, 0, 0x10]).0.len(), 16);
}

#[test]
fn warnings_with_data_keep_their_status() {
    let mut card = card();
    assert_eq!(
        send(&mut card, &[0x00, ins::WARN, 0, 0, 0]),
        (vec![1, 2, 3], 0x6282)
    );
    // Split over GET RESPONSE, the last piece carries the warning.
    assert_eq!(
        send(&mut card, &[0x00, ins::WARN, 0, 0, 1]),
        (vec![1], 0x6102)
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0, 0, 0]),
        (vec![2, 3], 0x6282)
    );
}

#[test]
fn extended_length_round_trips_in_one_exchange() {
    let mut card = card();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let mut apdu = vec![0x00, ins::ECHO, 0, 0, 0x00, 0x13, 0x88];
    apdu.extend_from_slice(&data);
    apdu.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(send(&mut card, &apdu), (data, 0x9000));
    // Case 2E for a big response.
    let (big, sw) = send(&mut card, &[0x00, ins::BIG, 0x10, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!((big.len(), sw), (4096, 0x9000));
}

#[test]
fn logical_channels_have_their_own_selection() {
    let mut card = card();
    // Card-assigned open from the basic channel: channel 1, default applet.
    assert_eq!(
        send(&mut card, &[0x00, 0x70, 0x00, 0x00, 0x01]),
        (vec![0x01], 0x9000)
    );
    assert_eq!(
        send(&mut card, &[0x01, ins::ECHO, 0, 0, 1, 5, 0]),
        (vec![5], 0x9000)
    );
    // B is not multi-selectable: selected on 1, it cannot be selected on 0.
    assert_eq!(send(&mut card, &select_on(1, &AID_B)).1, 0x9000);
    assert_eq!(send(&mut card, &select(&AID_B, 0)).1, 0x6985);
    // Channel 0 kept A.
    assert_eq!(
        send(&mut card, &[0x00, ins::ECHO, 0, 0, 1, 6, 0]),
        (vec![6], 0x9000)
    );
    // Opening from channel 1 would select B twice.
    assert_eq!(send(&mut card, &[0x01, 0x70, 0x00, 0x00, 0x01]).1, 0x6985);
    // Host-assigned channel 19 (further interindustry class 4F).
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x00, 19]), (vec![], 0x9000));
    assert_eq!(
        send(&mut card, &[0x4F, ins::ECHO, 0, 0, 1, 7, 0]),
        (vec![7], 0x9000)
    );
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x00, 19]).1, 0x6985);
    // Closed and never-opened channels answer 6881.
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x80, 19]), (vec![], 0x9000));
    assert_eq!(send(&mut card, &[0x4F, ins::ECHO, 0, 0]).1, 0x6881);
    assert_eq!(send(&mut card, &[0x02, ins::ECHO, 0, 0]).1, 0x6881);
    // Closing channel 1 deselects B: it can be selected on 0 now.
    assert_eq!(send(&mut card, &[0x01, 0x70, 0x80, 0x00]).1, 0x9000);
    assert_eq!(send(&mut card, &select(&AID_B, 0)).1, 0x9000);
    // The basic channel cannot be closed.
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x80, 0x00]).1, 0x6A86);
}

#[test]
fn channels_run_out_and_reset_closes_them() {
    let mut card = card();
    for expected in 1..20u8 {
        assert_eq!(
            send(&mut card, &[0x00, 0x70, 0x00, 0x00, 0x01]),
            (vec![expected], 0x9000)
        );
    }
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x00, 0x00, 0x01]).1, 0x6A81);
    card.reset();
    assert_eq!(send(&mut card, &[0x01, ins::ECHO, 0, 0]).1, 0x6881);
    assert_eq!(send(&mut card, &[0x00, 0x70, 0x00, 0x00, 0x01]).0, vec![1]);
}

fn select_on(channel: u8, aid: &[u8]) -> Vec<u8> {
    let mut apdu = select(aid, 0);
    apdu[0] = channel;
    apdu
}

#[test]
fn a_failed_command_rolls_back_what_it_staged() {
    let mut card = card();
    send(&mut card, &[0x00, ins::INCREMENT, 0, 0]);
    assert_eq!(
        send(&mut card, &[0x00, ins::STAGE_THEN_FAIL, 0, 0]).1,
        0x6985
    );
    assert_eq!(counters(&mut card), (1, 1));
}

#[test]
fn a_failed_store_write_answers_6581_and_keeps_the_old_state() {
    let store = MemoryStore::new();
    let mut card = card_on(store.clone());
    send(&mut card, &[0x00, ins::INCREMENT, 0, 0]);
    let committed = card.image().clone();
    store.fail_writes(true);
    assert_eq!(send(&mut card, &[0x00, ins::INCREMENT, 0, 0]).1, 0x6581);
    assert_eq!(counters(&mut card), (1, 1));
    // The failed commit left the runtime's committed image as it was.
    assert_eq!(card.image(), &committed);
    // A PIN try that cannot be recorded is not compared.
    assert_eq!(
        send(
            &mut card,
            &[0x00, ins::VERIFY, 0, 0, 4, b'1', b'2', b'3', b'4']
        )
        .1,
        0x6581
    );
    store.fail_writes(false);
    assert_eq!(send(&mut card, &[0x00, ins::INCREMENT, 0, 0]).1, 0x9000);
    assert_eq!(counters(&mut card), (2, 2));
    // The store, which takes only the changed parts, holds the same image.
    assert_eq!(store.image().as_ref(), Some(card.image()));
}

#[test]
fn exchanges_are_described_for_traces() {
    let mut card = card();
    card.record_exchanges(true);
    send(&mut card, &select(&AID_B, 0));
    let last = card.last_exchange().unwrap();
    assert_eq!(last.command, "SELECT test-b");
    assert_eq!(last.status.to_u16(), 0x9000);
    send(&mut card, &select(&AID_A, 0));
    send(
        &mut card,
        &[0x00, ins::VERIFY, 0, 0, 4, b'9', b'9', b'9', b'9'],
    );
    let last = card.last_exchange().unwrap();
    assert_eq!(last.command, "VERIFY");
    assert_eq!(last.status.to_string(), "63C2 (2 tries left)");
    send(&mut card, &[0x00, ins::BIG, 0, 4, 0]);
    let last = card.last_exchange().unwrap();
    assert_eq!(
        (last.command.as_str(), last.response_len),
        ("00 02 00 04", 4)
    );
    send(&mut card, &[0x00, 0xC0, 0, 0]);
    assert_eq!(card.last_exchange().unwrap().command, "GET RESPONSE");
}

#[test]
fn a_transcript_records_power_and_bytes() {
    let mut card = card();
    card.record_transcript(true);
    send(&mut card, &[0x00, ins::ECHO, 0, 0, 1, 0x42, 0]);
    card.reset();
    card.power_off();
    use vscard_emulator::TranscriptEvent;
    assert_eq!(
        card.take_transcript(),
        vec![
            TranscriptEvent::Exchange {
                command: vec![0x00, ins::ECHO, 0, 0, 1, 0x42, 0],
                response: vec![0x42, 0x90, 0x00],
            },
            TranscriptEvent::PowerOn,
            TranscriptEvent::PowerOff,
        ]
    );
    assert!(card.take_transcript().is_empty());
    card.record_transcript(false);
    card.power_on();
    send(&mut card, &[0x00, ins::ECHO, 0, 0]);
    assert!(card.take_transcript().is_empty());
}

#[test]
fn a_panicking_applet_answers_6f00_and_is_rolled_back() {
    use vscard_emulator::{
        Aid, Applet, AppletState, CommandApdu, Context, Response, StateError, Status,
    };

    /// Stages a change, then panics on INS 66; counts otherwise.
    struct Fragile(u32);
    impl Applet for Fragile {
        fn aid(&self) -> Aid {
            Aid::from_array([0xF0, 0, 0, 0, 0x66])
        }
        fn process(
            &mut self,
            ctx: &mut Context<'_>,
            c: &CommandApdu<'_>,
        ) -> Result<Response, Status> {
            self.0 += 1;
            ctx.stage(Part::new("n"), &self.0)?;
            if c.ins == 0x66 {
                panic!("applet bug on purpose");
            }
            Ok(Response::ok(self.0.to_be_bytes().to_vec()))
        }
        fn save(&self) -> Result<AppletState, StateError> {
            AppletState::new().with(Part::new("n"), &self.0)
        }
        fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
            self.0 = state.get(Part::new("n"))?;
            Ok(())
        }
    }

    let mut card = Card::builder()
        .rng(CardRng::from_u64(1))
        .install_default(Fragile(0))
        .build()
        .unwrap();
    card.power_on();
    assert_eq!(
        send(&mut card, &[0x00, 0x01, 0, 0, 0]),
        (vec![0, 0, 0, 1], 0x9000)
    );
    assert_eq!(send(&mut card, &[0x00, 0x66, 0, 0, 0]), (vec![], 0x6F00));
    // The staged change of the panicking command is gone; the card goes on.
    assert_eq!(
        send(&mut card, &[0x00, 0x01, 0, 0, 0]),
        (vec![0, 0, 0, 2], 0x9000)
    );
}

/// Counts on INS 01 (staging the count unless `forget_to_stage`), panics on
/// INS 66, reads the count on INS 02.
struct Counting {
    count: u32,
    forget_to_stage: bool,
}

impl Counting {
    fn card(forget_to_stage: bool, catch_panics: bool) -> Card {
        let applet = Counting {
            count: 0,
            forget_to_stage,
        };
        let mut card = Card::builder()
            .rng(CardRng::from_u64(1))
            .catch_panics(catch_panics)
            .install_default(applet)
            .build()
            .unwrap();
        card.power_on();
        card
    }
}

impl vscard_emulator::Applet for Counting {
    fn aid(&self) -> vscard_emulator::Aid {
        vscard_emulator::Aid::from_array([0xF0, 0, 0, 0, 0x67])
    }
    fn process(
        &mut self,
        ctx: &mut vscard_emulator::Context<'_>,
        c: &vscard_emulator::CommandApdu<'_>,
    ) -> Result<vscard_emulator::Response, vscard_emulator::Status> {
        use vscard_emulator::{Response, Status};
        match c.ins {
            0x01 => {
                self.count += 1;
                if !self.forget_to_stage {
                    ctx.stage(Part::new("count"), &self.count)?;
                }
                Ok(Response::empty())
            }
            0x02 => Ok(Response::ok(self.count.to_be_bytes().to_vec())),
            0x66 => panic!("applet bug on purpose"),
            _ => Err(Status::InstructionNotSupported),
        }
    }
    fn save(&self) -> Result<vscard_emulator::AppletState, vscard_emulator::StateError> {
        vscard_emulator::AppletState::new().with(Part::new("count"), &self.count)
    }
    fn load(
        &mut self,
        state: &vscard_emulator::AppletState,
    ) -> Result<(), vscard_emulator::StateError> {
        self.count = state.get(Part::new("count"))?;
        Ok(())
    }
}

#[test]
fn with_the_catcher_off_an_applet_panic_reaches_the_caller() {
    let mut caught = Counting::card(false, true);
    assert_eq!(send(&mut caught, &[0x00, 0x66, 0, 0]), (vec![], 0x6F00));

    let mut strict = Counting::card(false, false);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        strict.transmit(&[0x00, 0x66, 0, 0])
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"applet bug on purpose")
    );
}

/// Debug and test builds compare the applet's state with the committed
/// image after every successful command (release builds do not).
#[cfg(debug_assertions)]
#[test]
fn a_forgotten_stage_is_caught_and_rolled_back() {
    let mut card = Counting::card(true, true);
    assert_eq!(send(&mut card, &[0x00, 0x01, 0, 0]), (vec![], 0x6F00));
    // The unstaged change is gone: memory equals what a power cut leaves.
    assert_eq!(
        send(&mut card, &[0x00, 0x02, 0, 0, 0]),
        (vec![0, 0, 0, 0], 0x9000)
    );
    // The same applet that stages its change is fine.
    let mut card = Counting::card(false, true);
    assert_eq!(send(&mut card, &[0x00, 0x01, 0, 0]), (vec![], 0x9000));
    assert_eq!(
        send(&mut card, &[0x00, 0x02, 0, 0, 0]),
        (vec![0, 0, 0, 1], 0x9000)
    );
}

#[test]
fn typed_commands_and_select_answer_typed_responses() {
    use vscard_emulator::{Aid, Class, CommandApdu, ResponseApdu, Status};
    let mut card = card();
    let class = Class::parse(0x00).unwrap();
    let echo = CommandApdu::new(class, ins::ECHO, 0, 0, &[0xAB, 0xCD], 256);
    assert_eq!(
        card.transmit_apdu(&echo).unwrap(),
        ResponseApdu {
            data: vec![0xAB, 0xCD],
            status: Status::Success,
        }
    );
    // The typed answer is the bytes answer, parsed.
    let bytes = card.transmit(&echo.to_bytes()).unwrap();
    assert_eq!(
        ResponseApdu::parse(&bytes),
        Some(card.transmit_apdu(&echo).unwrap())
    );
    let b = card.select(&Aid::new(&AID_B).unwrap()).unwrap();
    assert_eq!((&b.data[4..], b.status), (&AID_B[..], Status::Success));
    let unknown = card
        .select(&Aid::from_array([0xA0, 0, 0, 0, 0x99]))
        .unwrap();
    assert_eq!(unknown.status.to_u16(), 0x6A82);
    card.power_off();
    assert!(matches!(
        card.transmit_apdu(&echo),
        Err(CardError::NotPowered)
    ));
}

#[test]
fn a_card_built_from_an_image_starts_where_the_other_stood() {
    let mut first = card();
    send(&mut first, &[0x00, ins::INCREMENT, 0, 0]);
    send(&mut first, &[0x00, ins::INCREMENT, 0, 0]);
    let snapshot = first.image().clone();
    let mut second = Card::builder()
        .rng(CardRng::from_u64(5))
        .image(snapshot.clone())
        .install_default(TestApplet::a())
        .install(TestApplet::b())
        .build()
        .unwrap();
    second.power_on();
    assert_eq!(counters(&mut second), (2, 2));
    assert_eq!(second.image(), &snapshot);
    // The two cards share nothing from here on.
    send(&mut second, &[0x00, ins::INCREMENT, 0, 0]);
    assert_eq!(counters(&mut second), (3, 3));
    assert_eq!(counters(&mut first), (2, 2));
    assert_eq!(first.image(), &snapshot);
}
