//! Cards issued in known states (`--state`): each state checked through
//! the issued file's card, by the status words a client would see.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use vscard_applet::{PivApplet, Slot};
use vscard_emulator::Card;
use vscard_issuance::cards::{KnownState, apply_states, issue_card_file, open_card};
use vscard_issuance::{
    CardProfile, CertificateValidity, SecretString, SlotAlgorithms, certificate, verify_valid_at,
};

const OK: [u8; 2] = [0x90, 0x00];
const BLOCKED: [u8; 2] = [0x69, 0x83];
const SECURITY_NOT_SATISFIED: [u8; 2] = [0x69, 0x82];
const INCORRECT_P1P2: [u8; 2] = [0x6A, 0x86];

/// The demo PIN `123456` and unlock code `654321`, padded with FF.
const PIN: [u8; 8] = *b"123456\xFF\xFF";
const UNLOCK_CODE: [u8; 8] = *b"654321\xFF\xFF";

fn profile() -> CardProfile {
    CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        seed: Some(SecretString::new("known states")),
        ..CardProfile::demo()
    }
}

/// Issues the seeded P-256 demo card in `states` into `dir`.
fn issue(dir: &Path, name: &str, states: &[KnownState]) -> PathBuf {
    let profile = profile();
    // One "now" for the whole binary: two issues of the same seed must not
    // differ because a second ticked between them.
    static NOW: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(SystemTime::now);
    let validity = KnownState::validity(states, &profile, now, false)
        .unwrap()
        .unwrap_or_else(|| CertificateValidity::for_profile(&profile, now).unwrap());
    let out = dir.join(name);
    issue_card_file(
        &out,
        &profile,
        validity,
        states,
        &dir.join("state"),
        false,
        |_, _| {},
    )
    .unwrap();
    out
}

fn powered(path: &Path) -> Card {
    let (mut card, _) = open_card(path).unwrap();
    card.power_on();
    card
}

fn sw(card: &mut Card, apdu: &[u8]) -> [u8; 2] {
    let answer = card.transmit(apdu).unwrap();
    answer[answer.len() - 2..].try_into().unwrap()
}

fn verify(pin: &[u8; 8]) -> Vec<u8> {
    [&[0x00, 0x20, 0x00, 0x80, 0x08][..], pin].concat()
}

/// RESET RETRY COUNTER with the unlock code and the new PIN `111111`.
fn reset_retry_counter(code: &[u8; 8]) -> Vec<u8> {
    [&[0x00, 0x2C, 0x00, 0x80, 0x10][..], code, b"111111\xFF\xFF"].concat()
}

#[test]
fn state_names_parse_exactly_as_documented() {
    let names = [
        ("pin-blocked", KnownState::PinBlocked),
        ("puk-blocked", KnownState::PukBlocked),
        ("pin-tries=2", KnownState::PinTries(2)),
        ("expired", KnownState::Expired),
        ("not-yet-valid", KnownState::NotYetValid),
        ("management-key-locked", KnownState::ManagementKeyLocked),
    ];
    for (name, state) in names {
        assert_eq!(KnownState::parse(name).unwrap(), state, "{name}");
    }
    for bad in ["PIN-BLOCKED", "pin-tries=", "pin-tries=x", "blocked", ""] {
        let error = KnownState::parse(bad).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad}");
        assert!(error.to_string().starts_with("--state: "), "{error}");
    }
}

#[test]
fn pin_blocked_refuses_the_right_pin_with_6983() {
    let dir = tempfile::tempdir().unwrap();
    let card = issue(dir.path(), "blocked.json", &[KnownState::PinBlocked]);
    let (mut served, summary) = open_card(&card).unwrap();
    assert!(summary.unwrap().pin.blocked);
    served.power_on();
    assert_eq!(sw(&mut served, &verify(&PIN)), BLOCKED);
    // The unlock code still unblocks it, as on a real card.
    assert_eq!(sw(&mut served, &reset_retry_counter(&UNLOCK_CODE)), OK);
    assert_eq!(sw(&mut served, &verify(b"111111\xFF\xFF")), OK);
}

#[test]
fn pin_tries_leaves_that_many_tries() {
    let dir = tempfile::tempdir().unwrap();
    let card = issue(dir.path(), "two.json", &[KnownState::PinTries(2)]);
    let mut served = powered(&card);
    // VERIFY without data reports the tries left (SP 800-73-4 Part 2
    // 3.2.1).
    assert_eq!(sw(&mut served, &[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC2]);
    assert_eq!(sw(&mut served, &verify(b"000000\xFF\xFF")), [0x63, 0xC1]);
    assert_eq!(sw(&mut served, &verify(&PIN)), OK);
}

#[test]
fn puk_blocked_refuses_the_right_unlock_code_and_keeps_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let card = issue(dir.path(), "puk.json", &[KnownState::PukBlocked]);
    let mut served = powered(&card);
    assert_eq!(sw(&mut served, &reset_retry_counter(&UNLOCK_CODE)), BLOCKED);
    assert_eq!(sw(&mut served, &verify(&PIN)), OK);
}

#[test]
fn pin_and_puk_blocked_together_make_a_dead_card() {
    let dir = tempfile::tempdir().unwrap();
    let states = [KnownState::PinBlocked, KnownState::PukBlocked];
    let card = issue(dir.path(), "dead.json", &states);
    let mut served = powered(&card);
    assert_eq!(sw(&mut served, &verify(&PIN)), BLOCKED);
    assert_eq!(sw(&mut served, &reset_retry_counter(&UNLOCK_CODE)), BLOCKED);
}

#[test]
fn management_key_locked_refuses_the_default_key_and_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let states = [KnownState::ManagementKeyLocked];
    let card = issue(dir.path(), "locked.json", &states);
    let mut served = powered(&card);
    // GENERAL AUTHENTICATE with the default 3DES key (P1 03, key 9B): the
    // card's key is AES-256 now, so the request itself is refused.
    let witness = [0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00];
    assert_eq!(sw(&mut served, &witness), INCORRECT_P1P2);
    // PUT DATA of the CHUID without management authentication.
    let put = [
        0x00, 0xDB, 0x3F, 0xFF, 0x09, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x53, 0x02, 0x01, 0x02,
    ];
    assert_eq!(sw(&mut served, &put), SECURITY_NOT_SATISFIED);
    // Reproducible with the seed: the same key again, byte for byte.
    let again = issue(dir.path(), "again.json", &states);
    assert_eq!(
        std::fs::read(&card).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_fail_now() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    for (name, state) in [
        ("expired.json", KnownState::Expired),
        ("future.json", KnownState::NotYetValid),
    ] {
        let card = issue(dir.path(), name, &[state]);
        let applet = vscard_issuance::cards::read_applet(&card).unwrap();
        let cert = certificate(applet.state(), Slot::AUTHENTICATION)
            .unwrap()
            .unwrap();
        let validity = cert.tbs_certificate().validity();
        let (start, end) = (
            validity.not_before.to_system_time(),
            validity.not_after.to_system_time(),
        );
        assert!(verify_valid_at(&cert, now).is_err(), "{name}");
        if state == KnownState::Expired {
            assert!(end < now && start < end, "{name}");
        } else {
            assert!(start > now && end > start, "{name}");
        }
    }
}

#[test]
fn contradictory_states_are_bad_input() {
    let profile = profile();
    let now = SystemTime::now();
    let both = [KnownState::Expired, KnownState::NotYetValid];
    let error = KnownState::validity(&both, &profile, now, false).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    let explicit = KnownState::validity(&[KnownState::Expired], &profile, now, true).unwrap_err();
    assert_eq!(explicit.exit_code(), 2);
    let window = KnownState::validity(&[KnownState::PinBlocked], &profile, now, true).unwrap();
    assert!(window.is_none());

    let mut rng = vscard_emulator::CardRng::from_u64(1);
    let pin_twice = [KnownState::PinBlocked, KnownState::PinTries(1)];
    let error = apply_states(PivApplet::with_defaults(), &pin_twice, &mut rng).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    // The default card allows 3 tries.
    let too_many = [KnownState::PinTries(4)];
    let error = apply_states(PivApplet::with_defaults(), &too_many, &mut rng).unwrap_err();
    assert_eq!(
        error.to_string(),
        "--state: pin-tries=4: the card allows at most 3 PIN tries"
    );
    let full = apply_states(
        PivApplet::with_defaults(),
        &[KnownState::PinTries(3)],
        &mut rng,
    )
    .unwrap();
    assert_eq!(full.state().pin_tries_left(), 3);
}
