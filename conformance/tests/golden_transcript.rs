//! Replays a recorded OpenSC session (pkcs15-tool -D, pkcs11-tool -L, RSA
//! and ECDSA signatures) against the golden card in this process: a change
//! to any byte the card answers fails here. Regenerate deliberately with
//! `cargo run -p vscard-conformance --example record_opensc_session`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vscard_conformance::cards::golden_card;
use vscard_conformance::transcript::{ReplayError, from_text, replay};

const SESSION: &str = include_str!("data/opensc-session.transcript");

#[test]
fn the_opensc_session_replays_byte_for_byte() {
    let events = from_text(SESSION).unwrap();
    let mut card = golden_card().unwrap();
    let exchanges = replay(&mut card, &events).unwrap_or_else(|e| panic!("{e}"));
    assert!(exchanges > 20, "{exchanges} exchanges");
}

#[test]
fn a_changed_byte_is_caught() {
    let mut events = from_text(SESSION).unwrap();
    let last = events
        .iter_mut()
        .rev()
        .find_map(|e| match e {
            vscard_emulator::TranscriptEvent::Exchange { response, .. } if response.len() > 2 => {
                Some(response)
            }
            _ => None,
        })
        .unwrap();
    last[0] ^= 1;
    let mut card = golden_card().unwrap();
    assert!(matches!(
        replay(&mut card, &events),
        Err(ReplayError::Mismatch { .. })
    ));
}
