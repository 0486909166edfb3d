//! The bridge through a real pcscd with the vsmartcard vpcd driver, each
//! test in its own private namespaces (see `vscard_testkit::pcscd`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::{Duration, Instant};

use vscard_testkit::echo::echo_card;
use vscard_testkit::{
    PcscdOptions, PrivatePcscd, TrivialCard, private_pcscd, transmit, wait_until_listening,
};
use vscard_vpcd::{Bridge, BridgeConfig, BridgeHandle, Mode};

const SECOND: Duration = Duration::from_secs(1);
const ECHO_AB: [u8; 7] = [0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00];
const INCREMENT: [u8; 5] = [0x00, 0x02, 0x00, 0x00, 0x00];
const READ_COUNTER: [u8; 5] = [0x00, 0x03, 0x00, 0x00, 0x00];

fn bridge(pcscd: &PrivatePcscd, cards: usize) -> BridgeHandle {
    let cards = (0..cards).map(|_| echo_card().unwrap()).collect();
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    Bridge::start(cards, config).unwrap()
}

#[test]
fn the_card_appears_within_a_second_and_answers() {
    let Some(pcscd) = private_pcscd() else { return };
    let started = Instant::now();
    let _bridge = bridge(&pcscd, 1);
    pcscd.wait_for_card(0, SECOND).unwrap();
    println!("card in the reader after {:?}", started.elapsed());

    let card = pcscd.connect(0).unwrap();
    assert_eq!(transmit(&card, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
    let atr = card.status2_owned().unwrap().atr().to_vec();
    assert_eq!(atr, echo_card().unwrap().atr());

    let count = 2000;
    let started = Instant::now();
    for _ in 0..count {
        assert_eq!(transmit(&card, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
    }
    let elapsed = started.elapsed();
    println!(
        "{count} echo APDUs through pcscd in {elapsed:?}: {:.0} APDU/s",
        f64::from(count) / elapsed.as_secs_f64()
    );
}

#[test]
fn removal_empties_the_reader_and_insertion_fills_it() {
    let Some(pcscd) = private_pcscd() else { return };
    let bridge = bridge(&pcscd, 1);
    pcscd.wait_for_card(0, SECOND).unwrap();

    bridge.remove(0).unwrap();
    let gone = pcscd.wait_for_no_card(0, SECOND).unwrap();
    println!("card gone {gone:?} after removal");

    bridge.insert(0).unwrap();
    let back = pcscd.wait_for_card(0, SECOND).unwrap();
    println!("card back {back:?} after insertion");
    let card = pcscd.connect(0).unwrap();
    assert_eq!(transmit(&card, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
}

#[test]
fn the_card_comes_back_by_itself_when_pcscd_restarts() {
    let Some(mut pcscd) = private_pcscd() else {
        return;
    };
    let bridge = bridge(&pcscd, 1);
    pcscd.wait_for_card(0, SECOND).unwrap();
    let card = pcscd.connect(0).unwrap();
    assert_eq!(
        transmit(&card, &INCREMENT).unwrap(),
        [0, 0, 0, 1, 0x90, 0x00]
    );
    drop(card);

    // A crash, then a clean stop, each followed by a new pcscd.
    for how in ["killed", "stopped"] {
        if how == "killed" {
            pcscd.kill().unwrap();
        } else {
            pcscd.stop().unwrap();
        }
        bridge.wait_for(0, SECOND, |s| !s.is_serving()).unwrap();
        pcscd.start().unwrap();
        let back = pcscd.wait_for_card(0, SECOND).unwrap();
        println!("pcscd {how} and restarted: card back {back:?} after vpcd listened");
        let card = pcscd.connect(0).unwrap();
        // Persistent state survived; the session started afresh.
        assert_eq!(
            transmit(&card, &READ_COUNTER).unwrap(),
            [0, 0, 0, 1, 0x90, 0x00]
        );
        assert_eq!(transmit(&card, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
    }
    assert!(bridge.status(0).unwrap().sessions >= 3);
}

#[test]
fn two_cards_sit_in_two_readers() {
    let Some(pcscd) = PrivatePcscd::enter(PcscdOptions {
        slots: 2,
        ..PcscdOptions::default()
    }) else {
        return;
    };
    let bridge = bridge(&pcscd, 2);
    for slot in 0..2 {
        pcscd.wait_for_card(slot, SECOND).unwrap();
    }
    let first = pcscd.connect(0).unwrap();
    let second = pcscd.connect(1).unwrap();
    assert_eq!(
        transmit(&first, &INCREMENT).unwrap(),
        [0, 0, 0, 1, 0x90, 0x00]
    );
    assert_eq!(
        transmit(&first, &INCREMENT).unwrap(),
        [0, 0, 0, 2, 0x90, 0x00]
    );
    assert_eq!(
        transmit(&second, &INCREMENT).unwrap(),
        [0, 0, 0, 1, 0x90, 0x00]
    );

    // Removing one card leaves the other alone.
    bridge.remove(1).unwrap();
    pcscd.wait_for_no_card(1, SECOND).unwrap();
    assert_eq!(transmit(&first, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
}

#[test]
fn reverse_mode_through_pcscd() {
    let port = 35_990;
    let Some(mut pcscd) = PrivatePcscd::enter(PcscdOptions {
        reverse_port: Some(port),
        slots: 2,
    }) else {
        return;
    };
    assert!(matches!(pcscd.bridge_mode(), Mode::Reverse { .. }));
    // Debian's vpcd opens two slots and each must find a listening card.
    let _bridge = bridge(&pcscd, 2);
    for slot in 0..2 {
        wait_until_listening(port + slot, SECOND).unwrap();
    }
    pcscd.start().unwrap();
    pcscd.wait_for_card(0, SECOND).unwrap();
    let card = pcscd.connect(0).unwrap();
    assert_eq!(transmit(&card, &ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);
    assert!(pcscd.is_running());
    // No removal here: Debian's vpcd 3.3 aborts pcscd when a reverse-mode
    // connection ends (see `PcscdOptions::reverse_port`).
}

/// Not a timed test: prints APDUs per second through the bridge and
/// through a card that does nothing, on the same pcscd (the benchmark in
/// `benches/` owns the claim).
#[test]
fn throughput_against_a_trivial_card() {
    let Some(pcscd) = PrivatePcscd::enter(PcscdOptions {
        slots: 2,
        ..PcscdOptions::default()
    }) else {
        return;
    };
    let _bridge = bridge(&pcscd, 1);
    let _trivial = TrivialCard::connect(vscard_vpcd::VPCD_PORT + 1).unwrap();
    pcscd.wait_for_card(0, SECOND).unwrap();
    pcscd.wait_for_card(1, SECOND).unwrap();
    let ours = pcscd.connect(0).unwrap();
    let trivial = pcscd.connect(1).unwrap();
    let count = 3000;
    let rate = |card: &vscard_testkit::pcsc::Card, apdu: &[u8], answer: &[u8]| {
        let started = Instant::now();
        for _ in 0..count {
            assert_eq!(transmit(card, apdu).unwrap(), answer);
        }
        f64::from(count) / started.elapsed().as_secs_f64()
    };
    // Warm up both paths, then measure in turn.
    rate(&ours, &ECHO_AB, &[0xAB, 0x90, 0x00]);
    rate(&trivial, &ECHO_AB, &[0x90, 0x00]);
    let trivial_rate = rate(&trivial, &ECHO_AB, &[0x90, 0x00]);
    let bridge_rate = rate(&ours, &ECHO_AB, &[0xAB, 0x90, 0x00]);
    println!(
        "through pcscd: bridge + echo card {bridge_rate:.0} APDU/s, trivial card {trivial_rate:.0} APDU/s, ratio {:.2}",
        bridge_rate / trivial_rate
    );
}
