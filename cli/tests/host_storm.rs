//! Issue 16's storm, with real processes: a card in the database (a real
//! PostgreSQL, the test's own), two `vscard host` processes on it, one
//! `vscard relay --host A,B` putting the card into the private pcscd's
//! vpcd reader. A thread sends wrong VERIFYs through pcscd without a
//! pause (unblocking the PIN with the unlock code whenever it blocks)
//! while, 20 times, the host serving the card is killed with SIGKILL:
//! the relay moves to the other host (once the dead host's lease ran
//! out), the card comes back, the killed host is started again on its
//! port for the next round. Every answer is checked against what the
//! answers before it allow: a try is never regained (the tries left go
//! up only right after a RESET RETRY COUNTER), and the counter the
//! database committed, read at the end, is the one the answers imply.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::hosted::{
    HOST_A, HOST_B, PIN_STATUS, SELECT_PIV, assert_pkcs11_lists, enrol_device, host, import_card,
    pin_command, relay_to, status_word,
};
use support::{p256_card, run_ok, vscard};
use vscard_testkit::postgres::private_postgres;
use vscard_testkit::{PrivatePcscd, pcsc, private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const ROUNDS: usize = 20;
/// The PIN's tries (the card's default).
const TRIES: u8 = 3;
const WRONG_PIN: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, 0x39, 0x39, 0x39, 0x39, 0x39, 0x39, 0xFF, 0xFF,
];
/// RESET RETRY COUNTER (SP 800-73-4 Part 2 3.2.3): the profile's unlock
/// code, then a new PIN (123456, still not the storm's).
const RESET: [u8; 21] = [
    0x00, 0x2C, 0x00, 0x80, 0x10, b'6', b'5', b'4', b'3', b'2', b'1', 0xFF, 0xFF, b'1', b'2', b'3',
    b'4', b'5', b'6', 0xFF, 0xFF,
];

/// What the storm saw, and what the database may hold: the PIN's tries
/// left are known to be in `lo..=hi` (a command whose answer was lost,
/// to a host killed while it worked, may or may not have been
/// committed).
#[derive(Debug, Default)]
struct Tally {
    lo: u8,
    hi: u8,
    /// Wrong VERIFYs answered 63Cx: a try counted.
    counted: usize,
    /// Wrong VERIFYs answered 6983: blocked, nothing counted.
    blocked: usize,
    /// RESET RETRY COUNTERs answered 9000.
    resets: usize,
    /// Commands with no answer (the host died under them, the card was
    /// gone).
    unanswered: usize,
    /// Connection attempts while the card was out of the reader.
    absent: usize,
}

impl Tally {
    /// The tries left, once known for sure.
    fn known(&self) -> Option<u8> {
        (self.lo == self.hi).then_some(self.lo)
    }
}

/// The status word `apdu` is answered with, if any (an error or a
/// response cut short: the card went away under it).
fn answer(card: &pcsc::Card, apdu: &[u8]) -> Option<String> {
    transmit(card, apdu)
        .ok()
        .filter(|response| response.len() >= 2)
        .map(|response| status_word(&response))
}

/// Wrong VERIFYs through pcscd until `stop` (and the tries left known),
/// reconnecting whenever the card is gone; `answers` counts the answered
/// commands. Panics at the first answer that regains a try.
fn storm(pcscd: &PrivatePcscd, stop: &AtomicBool, answers: &AtomicUsize) -> Tally {
    let mut tally = Tally {
        lo: TRIES,
        hi: TRIES,
        ..Tally::default()
    };
    let mut card = None;
    loop {
        let Some(connection) = &card else {
            if stop.load(Ordering::SeqCst) && tally.known().is_some() {
                return tally;
            }
            match pcscd.connect(0) {
                Ok(connection) => match answer(&connection, &SELECT_PIV) {
                    Some(sw) if sw == "9000" => card = Some(connection),
                    _ => tally.absent += 1,
                },
                Err(_) => {
                    tally.absent += 1;
                    // Bounded: returns as soon as a card is in.
                    let _ = pcscd.wait_for_card(0, SECOND / 10);
                }
            }
            continue;
        };
        if stop.load(Ordering::SeqCst) && tally.known().is_some() {
            return tally;
        }
        if tally.hi == 0 {
            // Blocked for sure: the unlock code, so the storm goes on.
            match answer(connection, &RESET) {
                Some(sw) if sw == "9000" => {
                    (tally.lo, tally.hi) = (TRIES, TRIES);
                    tally.resets += 1;
                    answers.fetch_add(1, Ordering::SeqCst);
                }
                Some(sw) if sw == "6581" => {
                    // Not written: maybe staged, never committed.
                    tally.hi = TRIES;
                    tally.unanswered += 1;
                }
                Some(sw) => panic!("RESET RETRY COUNTER answered {sw}; {tally:?}"),
                None => {
                    // The reset may have been committed before the host
                    // died: only now may the tries left go up.
                    tally.hi = TRIES;
                    tally.unanswered += 1;
                    card = None;
                }
            }
            continue;
        }
        match answer(connection, &WRONG_PIN) {
            Some(sw) if sw.starts_with("63C") => {
                let left = u8::from_str_radix(&sw[3..], 16).unwrap();
                // This try was counted from a value in lo..=hi (at least 1).
                assert!(
                    left < tally.hi,
                    "a try regained: {sw} after {}..={} tries left; {tally:?}",
                    tally.lo,
                    tally.hi
                );
                assert!(
                    left + 1 >= tally.lo.max(1),
                    "{sw}: more tries counted than commands sent; {tally:?}"
                );
                (tally.lo, tally.hi) = (left, left);
                tally.counted += 1;
                answers.fetch_add(1, Ordering::SeqCst);
            }
            Some(sw) if sw == "6983" => {
                assert_eq!(tally.lo, 0, "blocked with tries left; {tally:?}");
                (tally.lo, tally.hi) = (0, 0);
                tally.blocked += 1;
                answers.fetch_add(1, Ordering::SeqCst);
            }
            Some(sw) if sw == "6581" => {
                tally.lo = tally.lo.saturating_sub(1);
                tally.unanswered += 1;
            }
            Some(sw) => panic!("a wrong VERIFY answered {sw}; {tally:?}"),
            None => {
                tally.lo = tally.lo.saturating_sub(1);
                tally.unanswered += 1;
                card = None;
            }
        }
    }
}

#[test]
fn twenty_kill_9s_of_the_serving_host_during_a_wrong_pin_storm_regain_no_try() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let started = Instant::now();
    let url = cluster.url();
    let (dir, state, card) = p256_card("storm card");
    import_card(&state, dir.path(), &card, "storm", &url, &[]);
    let (key, _) = enrol_device(&state, dir.path(), "storm", &url, "device.key", &[]);
    let addresses = [HOST_A, HOST_B];
    let names = ["host-a", "host-b"];
    let mut hosts = [
        Some(host(&state, &url, HOST_A, names[0])),
        Some(host(&state, &url, HOST_B, names[1])),
    ];
    let mut relay = relay_to(&state, &format!("{HOST_A},{HOST_B}"), &key, "storm");
    relay.expect_line(&format!(
        "card storm from host {HOST_A}: in the vpcd reader"
    ));
    relay.seen.clear();
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();

    let stop = AtomicBool::new(false);
    let answers = AtomicUsize::new(0);
    let tally = std::thread::scope(|scope| {
        let storm = scope.spawn(|| storm(&pcscd, &stop, &answers));
        let mut serving = 0;
        for round in 0..ROUNDS {
            let round_started = Instant::now();
            // A few answers from this host first (a different number each
            // round), then the kill lands somewhere in the storm.
            let wanted = answers.load(Ordering::SeqCst) + 2 + round % 4;
            let deadline = Instant::now() + 20 * SECOND;
            while answers.load(Ordering::SeqCst) < wanted {
                assert!(!storm.is_finished(), "round {round}: the storm ended");
                assert!(Instant::now() < deadline, "round {round}: no answers");
                std::thread::sleep(Duration::from_millis(5));
            }
            hosts[serving].take().unwrap().kill9();
            let other = 1 - serving;
            relay.expect_line_within(
                &format!(
                    "card storm from host {}: in the vpcd reader",
                    addresses[other]
                ),
                20 * SECOND,
            );
            relay.seen.clear();
            pcscd.wait_for_card(0, 20 * SECOND).unwrap();
            hosts[serving] = Some(host(&state, &url, addresses[serving], names[serving]));
            println!(
                "round {round}: {} killed, card back from {} in {:?}",
                names[serving],
                names[other],
                round_started.elapsed()
            );
            serving = other;
        }
        // A last few answers from the last host, then the storm stops on
        // an answer.
        let wanted = answers.load(Ordering::SeqCst) + 3;
        let deadline = Instant::now() + 20 * SECOND;
        while answers.load(Ordering::SeqCst) < wanted {
            assert!(!storm.is_finished(), "the storm ended");
            assert!(Instant::now() < deadline, "no answers after the last round");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
        storm.join().unwrap()
    });
    println!(
        "after {ROUNDS} rounds in {:?}: {tally:?}",
        started.elapsed()
    );
    assert!(tally.counted >= 3 * ROUNDS, "{tally:?}");
    assert!(tally.resets >= 1, "{tally:?}");

    // What the database committed is what the answers imply.
    let left = tally.known().unwrap();
    let expected = if left == 0 {
        "6983".to_owned()
    } else {
        format!("63C{left:X}")
    };
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), expected);
    // Every round moved the card to another host: one fence each.
    let listed = run_ok(vscard(&state).args(["host", "list", "--json", "--database", &url]));
    let cards: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(cards[0]["id"], "storm");
    assert_eq!(cards[0]["fence"], ROUNDS + 1, "{listed}");
    // And the card is still the one middleware sees.
    assert_pkcs11_lists(dir.path(), "Pat Example");
    println!("the whole test: {:?}", started.elapsed());
}
