//! Each harness runs with a tiny budget and produces its rows. Not a
//! benchmark: nothing here is timed or compared.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use std::sync::OnceLock;
use std::time::Duration;

use vscard_benches::{
    allocations, crypto, fixture, hosted, inprocess, issuance, pcscd, persistence, report, scale,
};
use vscard_emulator::CardImage;
use vscard_testkit::PrivatePcscd;

const TINY: Duration = Duration::from_millis(5);

fn image() -> &'static CardImage {
    static IMAGE: OnceLock<CardImage> = OnceLock::new();
    IMAGE.get_or_init(|| fixture::image(&fixture::demo_state().unwrap()))
}

#[test]
fn in_process_rows_cover_every_command_and_the_login() {
    let report = allocations::AllocationReport {
        floor: 1,
        commands: vec![("SELECT PIV".to_owned(), 2)],
        heap_per_card: vec![(1, 1024.0)],
    };
    let mut round_trips = pcscd::RoundTrips::default();
    for (op, crypto) in inprocess::commands() {
        round_trips
            .by_operation
            .insert(op.name.to_owned(), (Duration::from_micros(20), 1));
        if !crypto {
            round_trips
                .unpinned
                .insert(op.name.to_owned(), (Duration::from_micros(60), 1));
        }
    }
    round_trips.by_operation.insert(
        inprocess::LOGIN.to_owned(),
        (Duration::from_micros(300), 16),
    );
    let section = inprocess::run(image(), TINY, Some(&round_trips), Some(&report)).unwrap();
    let non_crypto = inprocess::commands().iter().filter(|(_, c)| !c).count();
    // Each command, the non-crypto ones again against the unpinned round
    // trip, the login, one allocation row.
    assert_eq!(
        section.rows.len(),
        inprocess::commands().len() + non_crypto + 2
    );
    assert!(section.rows.iter().all(|row| row.ratio > 0.0));
}

#[test]
fn persistence_rows_compare_with_a_bare_write() {
    let section = persistence::run(image(), Duration::from_millis(20)).unwrap();
    assert!(section.rows.len() >= 2);
    assert!(section.rows[0].baseline.contains("fsync"));
}

#[test]
fn scale_rows_for_two_sizes() {
    let section = scale::run(image(), &[1, 2], TINY, None).unwrap();
    // RSS for the largest set, throughput for each size, 2 signing rows.
    assert_eq!(section.rows.len(), 1 + 2 + 2);
}

#[test]
fn issuance_rows() {
    let section = issuance::run(image(), 1, TINY).unwrap();
    assert_eq!(section.rows.len(), 3);
}

#[test]
fn allocations_are_counted_with_any_counter() {
    // No counting allocator here: a counter that reports nothing still
    // yields a report with every command and size.
    let report = allocations::measure(image(), &[1], &|f: &mut dyn FnMut()| {
        f();
        allocations::Allocations::default()
    })
    .unwrap();
    assert_eq!(report.commands.len(), 3);
    assert_eq!(report.heap_per_card.len(), 1);
}

#[test]
fn pcscd_rows_against_the_trivial_card() {
    // Re-runs this test in private namespaces (or skips it where they
    // cannot be had, outside CI).
    let Some(pcscd) = PrivatePcscd::enter(pcscd::options()) else {
        return;
    };
    // The harness starts its own pcscd (one per pass): this one only got
    // the test into the namespaces.
    drop(pcscd);
    let (section, round_trips) = pcscd::run(image(), TINY).unwrap();
    let non_crypto = inprocess::commands().iter().filter(|(_, c)| !c).count();
    // Pinned: each command, the login, the echo applet through the same
    // bridge; unpinned: the non-crypto commands again.
    assert_eq!(
        section.rows.len(),
        inprocess::commands().len() + 2 + non_crypto
    );
    assert_eq!(
        round_trips.by_operation.len(),
        inprocess::commands().len() + 1
    );
    assert_eq!(round_trips.unpinned.len(), non_crypto);
    assert!(
        round_trips
            .by_operation
            .values()
            .chain(round_trips.unpinned.values())
            .all(|(t, n)| !t.is_zero() && *n > 0)
    );
}

#[test]
fn openssl_speed_is_read() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no openssl command");
        return;
    }
    assert!(crypto::openssl_speed("ecdsap256", 1).unwrap() > 0.0);
}

#[test]
fn link_rows_against_straight_to_vpcd() {
    let Some(pcscd) = PrivatePcscd::enter(pcscd::options()) else {
        return;
    };
    // The harness starts its own pcscd: this one only got the test into
    // the namespaces.
    drop(pcscd);
    let section = vscard_benches::link::run(image(), TINY).unwrap();
    for row in &section.rows {
        println!(
            "{}: {} / {} = {}",
            row.what, row.ours, row.baseline, row.ratio
        );
    }
    let goals: Vec<_> = section.rows.iter().map(|row| row.goal).collect();
    assert_eq!(
        goals,
        [
            report::Goal::AtLeast(0.5),
            report::Goal::AtMost(60.0),
            report::Goal::AtMost(0.6),
            report::Goal::None
        ]
    );
    for row in [0, 2, 3] {
        assert!(section.rows[row].ratio > 0.0, "{section:?}");
    }
}

#[test]
fn the_5_7_key_type_primitives_run_and_openssl_speed_lines_parse() {
    for bits in [3072, 4096] {
        let key = crypto::fixed_rsa_key(bits).unwrap();
        assert!(crypto::rsa_rustcrypto_any(&key, TINY).unwrap().per_second() > 0.0);
    }
    assert!(crypto::ed25519_rustcrypto(TINY).unwrap().per_second() > 0.0);
    assert!(crypto::x25519_rustcrypto(TINY).unwrap().per_second() > 0.0);
    // `openssl speed -mr` lines of OpenSSL 3.0 (RSA, ECDSA, ECDH, EdDSA).
    for (line, rate) in [
        ("+F2:3:3072:435.820896:18220.000000", 435.820896),
        ("+F4:0:256:50113.0:17000.0", 50113.0),
        ("+F5:22:253:23565.671642:0.000042", 23565.671642),
        ("+F6:0:253:Ed25519:14125.373134:5340.000000", 14125.373134),
    ] {
        let text = format!("+DT:x:1:2\n{line}\n");
        assert_eq!(crypto::parse_openssl_speed(&text), Some(rate), "{line}");
    }
    assert_eq!(crypto::parse_openssl_speed("+F6:0:253:Ed25519"), None);
}

#[test]
fn card_host_rows_compare_with_a_bare_update() {
    // A few cards and sessions: the rows' labels say how many.
    let scale = hosted::HostScale {
        cards: 20,
        sessions: 4,
        vscard: vscard_benches::host_process::vscard_beside(),
    };
    let Some(section) = hosted::run(image(), Duration::from_millis(20), &scale).unwrap() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI has PostgreSQL (.ci/install-deps)"
        );
        return;
    };
    for row in &section.rows {
        println!(
            "{} | {} | {} | {:.3}",
            row.what, row.ours, row.baseline, row.ratio
        );
    }
    assert!(section.rows[0].baseline.contains("UPDATE"));
    // The memory per session (row 3) can round to nothing with 4
    // sessions in pages the warm-up sessions left; every other row has a
    // figure.
    for (i, row) in section.rows.iter().enumerate() {
        assert!(i == 3 || row.ratio > 0.0, "{row:?}");
    }
    if scale.vscard.is_none() {
        // `cargo test --workspace` (CI) builds vscard beside this test.
        assert!(std::env::var_os("CI").is_none(), "CI builds vscard");
        assert_eq!(section.rows.len(), 2);
        return;
    }
    let goals: Vec<_> = section.rows.iter().map(|row| row.goal).collect();
    assert_eq!(
        goals[2..],
        [
            report::Goal::AtMost(1.05),
            report::Goal::AtMost(1.0),
            report::Goal::AtLeast(1.5)
        ]
    );
    assert!(section.rows[2].what.contains("20 cards"), "{section:?}");
    assert!(section.rows[4].what.contains("4 sessions"), "{section:?}");
}
