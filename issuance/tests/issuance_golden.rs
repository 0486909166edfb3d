//! A PKI state directory written by an earlier build must keep opening:
//! the layout and file formats of `<state>/pki/<environment>/` are a
//! contract with every developer's existing state directory.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use der::DateTime;
use vscard_emulator::CardRng;
use vscard_issuance::{
    CardProfile, CertificateSummary, CertificateValidity, Environment, Pki, SlotAlgorithms,
    issue_card, verify_chain,
};

fn golden_state() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/issuance/golden-state")
}

fn at(year: u16, month: u8, day: u8) -> SystemTime {
    DateTime::new(year, month, day, 0, 0, 0)
        .unwrap()
        .to_system_time()
}

#[test]
fn the_golden_pki_opens_and_issues() {
    let pki = Pki::open(&golden_state(), &Environment::Sandbox).unwrap();
    let root = CertificateSummary::of(pki.root().certificate());
    let sub = CertificateSummary::of(pki.sub().certificate());
    assert_eq!(
        root.subject,
        "CN=vscard TEST Root CA (sandbox),OU=sandbox,O=vscard test PKI"
    );
    assert_eq!(root.issuer, root.subject);
    assert_eq!(sub.issuer, root.subject);
    assert_eq!(sub.serial, "6992DB3A32E02AC93FE74B68E8A7203B");
    assert_eq!(sub.not_after, "2036-11-23T05:46:22Z");

    let profile = CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..CardProfile::demo()
    };
    let validity = CertificateValidity::new(at(2027, 1, 1), at(2029, 1, 1)).unwrap();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(1),
        |_, _| {},
    )
    .unwrap();
    for slot in &issued {
        verify_chain(
            &slot.certificate,
            pki.sub().certificate(),
            pki.root().certificate(),
            at(2027, 6, 1),
        )
        .unwrap();
    }
}

#[test]
fn opening_an_existing_pki_never_rewrites_it() {
    let copy = tempfile::tempdir().unwrap();
    let source = golden_state().join("pki/sandbox");
    let target = copy.path().join("pki/sandbox");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    let before: Vec<Vec<u8>> = ["root-ca.cert.pem", "sub-ca.key.pem"]
        .iter()
        .map(|name| std::fs::read(target.join(name)).unwrap())
        .collect();
    let pki = Pki::open_or_create(
        copy.path(),
        &Environment::Sandbox,
        &mut CardRng::from_u64(5),
    )
    .unwrap();
    let golden = Pki::open(&golden_state(), &Environment::Sandbox).unwrap();
    assert_eq!(pki.sub().certificate(), golden.sub().certificate());
    let after: Vec<Vec<u8>> = ["root-ca.cert.pem", "sub-ca.key.pem"]
        .iter()
        .map(|name| std::fs::read(target.join(name)).unwrap())
        .collect();
    assert_eq!(before, after);
}
