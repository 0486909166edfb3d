//! `cards.json` and `relays.json` are read, changed and written under the
//! state folder's lock: pairings and forgets at once lose no entry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::{Arc, Barrier};

use vscard_link::{LinkState, PinnedRelay};

/// Threads that all start at once, each pinning its own card (each opens
/// the lock file itself, as two `vscard relay pair` processes would).
#[test]
fn concurrent_pairings_and_forgets_keep_every_other_entry() {
    const CARDS: u8 = 16;
    let dir = tempfile::tempdir().unwrap();
    let state = LinkState::new(dir.path());
    // Two cards pinned first, one of them forgotten during the pairings.
    state.pin_card("stays", &[0xEE; 32]).unwrap();
    state.pin_card("goes", &[0xDD; 32]).unwrap();
    let start = Arc::new(Barrier::new(usize::from(CARDS) + 1));
    let mut threads = Vec::new();
    for n in 0..CARDS {
        let (start, root) = (Arc::clone(&start), dir.path().to_owned());
        threads.push(std::thread::spawn(move || {
            let state = LinkState::new(&root);
            start.wait();
            state.pin_card(&format!("card {n}"), &[n; 32]).unwrap()
        }));
    }
    let forget = {
        let (start, root) = (Arc::clone(&start), dir.path().to_owned());
        std::thread::spawn(move || {
            start.wait();
            LinkState::new(&root).forget_card("goes").unwrap()
        })
    };
    let mut names: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(forget.join().unwrap());
    names.sort();
    names.dedup();
    assert_eq!(names.len(), usize::from(CARDS), "{names:?}");
    let cards = state.cards().unwrap();
    assert_eq!(cards.len(), usize::from(CARDS) + 1, "{cards:?}");
    for n in 0..CARDS {
        assert!(state.card_by_key(&[n; 32]).unwrap().is_some(), "card {n}");
    }
    assert!(state.card_by_key(&[0xEE; 32]).unwrap().is_some());
    assert!(state.card_by_key(&[0xDD; 32]).unwrap().is_none());
}

#[test]
fn concurrent_relay_pins_keep_every_relay() {
    let dir = tempfile::tempdir().unwrap();
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|n| {
            let (start, root) = (Arc::clone(&start), dir.path().to_owned());
            std::thread::spawn(move || {
                let state = LinkState::new(&root);
                start.wait();
                state
                    .pin_relay(PinnedRelay {
                        name: format!("relay-{n}"),
                        address: format!("127.0.0.1:{}", 40000 + u16::from(n)),
                        key: hex::encode([n; 32]),
                        paired: 0,
                    })
                    .unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(LinkState::new(dir.path()).relays().unwrap().len(), 8);
}
