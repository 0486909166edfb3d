//! SELECT by DF name (ISO 7816-4 11.1.1): an exact AID beats a
//! right-truncated match whatever the installation order, a prefix shorter
//! than the applet's minimum (the RID by default) selects nothing, and a
//! SELECT that selects nothing leaves the channel as it was.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;
use vscard_emulator::{Card, CardRng};

/// An applet whose AID is the 5-byte prefix of `AID_A`.
fn short() -> TestApplet {
    TestApplet::new(&PREFIX, "short", false)
}

fn card_of(applets: Vec<TestApplet>) -> Card {
    let mut builder = Card::builder().rng(CardRng::from_u64(3));
    for applet in applets {
        builder = builder.install(applet);
    }
    let mut card = builder.build().unwrap();
    card.power_on();
    card
}

/// The AID in the test applet's FCI (`6F L 84 L aid`), or the SW.
fn selected(card: &mut Card, name: &[u8], p2: u8) -> Result<Vec<u8>, u16> {
    match send(card, &select(name, p2)) {
        (fci, 0x9000) => Ok(fci[4..].to_vec()),
        (_, sw) => Err(sw),
    }
}

#[test]
fn an_exact_aid_wins_when_installed_after_a_longer_match() {
    let mut card = card_of(vec![TestApplet::a(), short()]);
    assert_eq!(selected(&mut card, &PREFIX, 0x00), Ok(PREFIX.to_vec()));
    // The exact match is the first occurrence; the truncated one is next.
    assert_eq!(selected(&mut card, &PREFIX, 0x02), Ok(AID_A.to_vec()));
    assert_eq!(selected(&mut card, &PREFIX, 0x02), Err(0x6A82));
    assert_eq!(selected(&mut card, &PREFIX, 0x01), Ok(AID_A.to_vec()));
    assert_eq!(selected(&mut card, &PREFIX, 0x03), Ok(PREFIX.to_vec()));
}

#[test]
fn an_exact_aid_wins_when_installed_before_a_longer_match() {
    let mut card = card_of(vec![short(), TestApplet::a()]);
    assert_eq!(selected(&mut card, &PREFIX, 0x00), Ok(PREFIX.to_vec()));
    assert_eq!(selected(&mut card, &PREFIX, 0x02), Ok(AID_A.to_vec()));
    // The longer AID itself selects only its own applet.
    assert_eq!(selected(&mut card, &AID_A, 0x00), Ok(AID_A.to_vec()));
    assert_eq!(selected(&mut card, &AID_A, 0x02), Err(0x6A82));
}

#[test]
fn a_prefix_shorter_than_the_rid_selects_nothing() {
    let mut card = card_of(vec![TestApplet::a(), TestApplet::b()]);
    assert_eq!(selected(&mut card, &PREFIX[..4], 0x00), Err(0x6A82));
    assert_eq!(selected(&mut card, &PREFIX[..1], 0x00), Err(0x6A82));
    assert_eq!(selected(&mut card, &PREFIX, 0x00), Ok(AID_A.to_vec()));
}

#[test]
fn an_applet_may_ask_for_a_longer_minimum_prefix() {
    let mut strict = TestApplet::a();
    strict.min_select_len = AID_A.len();
    let mut card = card_of(vec![strict, TestApplet::b()]);
    // Five bytes no longer reach A, but still reach B.
    assert_eq!(selected(&mut card, &PREFIX, 0x00), Ok(AID_B.to_vec()));
    assert_eq!(selected(&mut card, &AID_A, 0x00), Ok(AID_A.to_vec()));
}

#[test]
fn a_select_that_selects_nothing_leaves_the_channel_as_it_was() {
    let mut card = card_of(vec![TestApplet::a(), TestApplet::b()]);
    assert_eq!(selected(&mut card, &AID_A, 0x00), Ok(AID_A.to_vec()));
    send(&mut card, &[0x00, ins::SET_FLAGS, 0x11, 0x22]);
    let unknown = [0xF0, 0x00, 0x00, 0x00, 0x02];
    for name in [&unknown[..], &PREFIX[..4], &[0xF0]] {
        assert_eq!(selected(&mut card, name, 0x00), Err(0x6A82));
    }
    // Still A, with its deselect-cleared memory intact.
    assert_eq!(
        send(&mut card, &[0x00, ins::GET_FLAGS, 0, 0, 2]),
        (vec![0x11, 0x22], 0x9000)
    );
}
