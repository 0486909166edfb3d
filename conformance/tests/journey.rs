//! The healthcare worker's journey end to end: issue a card with two roles,
//! insert it, enter the PIN, choose a role, authenticate, lock and unlock
//! it, renew the certificates, and meet an expired card.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use vscard_applet::{PIV_AID, PivApplet};
use vscard_conformance::cards::{card_with, facts_for, issue, journey_profile};
use vscard_conformance::facts::verify_pin;
use vscard_conformance::scenarios::journey;
use vscard_conformance::{InProcess, Scenario, Session, run_all, run_one};
use vscard_emulator::Applet;
use vscard_issuance::{CertificateValidity, Pki, renew_applet, summarize};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn scenario(name: &str) -> Scenario {
    *journey::SCENARIOS
        .iter()
        .find(|s| s.name.starts_with(name))
        .unwrap()
}

fn not_after(transport: &mut InProcess) -> SystemTime {
    let facts = facts_for(&journey_profile());
    let mut session = Session::new(transport, &facts);
    vscard_conformance::piv::select_piv(&mut session).unwrap();
    let certificate = vscard_conformance::piv::certificate(&mut session, 0x9A).unwrap();
    certificate
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time()
}

#[test]
fn issue_use_lock_unlock_and_renew() {
    let state_dir = tempfile::tempdir().unwrap();
    let profile = journey_profile();
    let facts = facts_for(&profile);
    let applet = issue(&profile, state_dir.path(), SystemTime::now()).unwrap();
    let mut transport = InProcess::new(card_with(&applet.save().unwrap()).unwrap());

    // Insert, PIN, role, authenticate, validity, lock and unlock.
    let results = run_all(journey::SCENARIOS, &mut transport, &facts, true);
    for result in &results {
        assert_eq!(result.result, "passed", "{result:#?}");
    }

    // One mistyped PIN before the renewal: the counter must survive it.
    let mut session = Session::new(&mut transport, &facts);
    vscard_conformance::piv::select_piv(&mut session).unwrap();
    session
        .expect("wrong PIN", &verify_pin(b"000000"), 0x63C2)
        .unwrap();
    let before = not_after(&mut transport);

    // Two years on the card later: renewal, from the card's own image.
    let image = transport
        .card()
        .image()
        .applet(&PIV_AID.to_hex())
        .unwrap()
        .clone();
    let mut applet = PivApplet::from_saved(&image).unwrap();
    let pki = Pki::open(state_dir.path(), &profile.environment).unwrap();
    let validity = CertificateValidity::years_from(SystemTime::now() + YEAR, 2).unwrap();
    let mut rng = vscard_emulator::CardRng::from_u64(3);
    renew_applet(&mut applet, pki.sub(), validity, false, &mut rng).unwrap();
    assert_eq!(summarize(applet.state()).unwrap().pin.tries_left, 2);

    let mut renewed = InProcess::new(card_with(&applet.save().unwrap()).unwrap());
    let after = not_after(&mut renewed);
    assert!(
        after >= before + YEAR - Duration::from_secs(86_400),
        "renewal extends the window"
    );
    let mut session = Session::new(&mut renewed, &facts);
    vscard_conformance::piv::select_piv(&mut session).unwrap();
    session
        .expect(
            "the mistyped PIN still counts",
            &[0x00, 0x20, 0x00, 0x80],
            0x63C2,
        )
        .unwrap();
    for name in ["authenticate with 9A", "read the role profiles"] {
        let result = run_one(&scenario(name), &mut renewed, &facts);
        assert_eq!(result.result, "passed", "{result:#?}");
    }
}

#[test]
fn an_expired_card_is_readable_and_visibly_expired() {
    let state_dir = tempfile::tempdir().unwrap();
    let profile = journey_profile();
    let facts = facts_for(&profile);
    // Issued three years ago for two years.
    let applet = issue(&profile, state_dir.path(), SystemTime::now() - 3 * YEAR).unwrap();
    let mut transport = InProcess::new(card_with(&applet.save().unwrap()).unwrap());

    // The certificates are still on the card and readable ...
    assert!(not_after(&mut transport) < SystemTime::now() - YEAR + Duration::from_secs(86_400));
    // ... and the validity check says so.
    let validity = run_one(&scenario("certificates are within"), &mut transport, &facts);
    assert_eq!(validity.result, "failed");
    assert!(
        validity.detail.contains("does not contain now"),
        "{}",
        validity.detail
    );
    // The card itself does not look at dates: it still signs; refusing an
    // expired certificate is the relying party's job.
    let authenticate = run_one(&scenario("authenticate with 9A"), &mut transport, &facts);
    assert_eq!(authenticate.result, "passed", "{authenticate:#?}");
}
