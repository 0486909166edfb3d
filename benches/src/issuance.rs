//! Issuance: a full card (2 RSA-2048 + 2 P-256 keys, 4 certificates from
//! the test PKI) against `openssl genrsa 2048` twice, and the fast paths
//! for test fixtures against full issuance, in the same run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vscard_emulator::CardImage;
use vscard_issuance::SlotAlgorithms;

use crate::measure::{self, Sample, human, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture, io_error};

fn genrsa_twice() -> Result<(), BenchError> {
    for _ in 0..2 {
        let status = Command::new("openssl")
            .args(["genrsa", "2048"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io_error("openssl genrsa"))?;
        if !status.success() {
            return Err(BenchError::Openssl(format!("genrsa: {status}")));
        }
    }
    Ok(())
}

/// The issuance table; `rounds` full issuances (RSA key generation time
/// varies a lot from key to key, so medians of several).
pub fn run(image: &CardImage, rounds: u64, budget: Duration) -> Result<Section, BenchError> {
    let mut section = Section::new("6. Issuance", "see each row");
    let issuer = fixture::Issuer::new()?;
    let mut round = 0u64;
    let full = measure::run(Duration::ZERO, rounds, || {
        round += 1;
        issuer
            .issue(SlotAlgorithms::default(), &format!("issuance-{round}"))
            .map(|_| ())
    })?;
    let openssl = measure::run(Duration::ZERO, rounds, genrsa_twice)?;
    section.rows.push(Row::new(
        "issue a full card: 2 RSA-2048 + 2 P-256 keys, 4 certificates (vscard / OpenSSL)",
        format!("{} (median of {})", human(full.median), full.count),
        format!(
            "`openssl genrsa 2048` x2: {} (median of {})",
            human(openssl.median),
            openssl.count
        ),
        ratio(full.median.as_secs_f64(), openssl.median.as_secs_f64()),
        Goal::None,
    ));
    let mut round = 0u64;
    let p256: Sample = measure::run(budget, 5, || {
        round += 1;
        issuer
            .issue(SlotAlgorithms::ALL_P256, &format!("fixture-{round}"))
            .map(|_| ())
    })?;
    section.rows.push(Row::new(
        "seeded fixture: P-256-only card, 4 certificates (speed-up over a full card)",
        human(p256.median),
        format!("full card: {}", human(full.median)),
        ratio(full.median.as_secs_f64(), p256.median.as_secs_f64()),
        Goal::AtLeast(100.0),
    ));
    let cached = measure::run_split(budget, 5, || {
        let started = Instant::now();
        let card = fixture::card_from(image)?;
        let took = started.elapsed();
        drop(card);
        Ok::<_, BenchError>(took)
    })?;
    section.rows.push(Row::new(
        "fixture from a cached issued image (keys decoded, none generated; speed-up over a full card)",
        human(cached.median),
        format!("full card: {}", human(full.median)),
        ratio(full.median.as_secs_f64(), cached.median.as_secs_f64()),
        Goal::AtLeast(100.0),
    ));
    Ok(section)
}
