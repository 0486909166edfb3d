//! Per-command cost in-process (`Card::transmit`, in-memory store),
//! against the time the same APDUs take through pcscd to the trivial card
//! (measured by the pcscd harness in the same run, in its pinned pass:
//! the shortest round trips, so the strictest baseline); and allocations
//! per command.

use std::time::Duration;

use vscard_emulator::{Card, CardImage};

use crate::allocations::AllocationReport;
use crate::apdu::{self, Operation};
use crate::measure::{self, Sample, human, ratio};
use crate::pcscd::RoundTrips;
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture};

/// The name of the OpenSC-style login row (several operations).
pub const LOGIN: &str = "OpenSC-style login: SELECT, GET DATA x5, VERIFY, RSA sign";

/// The commands measured one by one, whether each is a crypto command.
pub fn commands() -> Vec<(Operation, bool)> {
    vec![
        (apdu::select(), false),
        (
            apdu::get_data("GET DATA cert 9A (~1 KB, with GET RESPONSE)", apdu::CERT_9A),
            false,
        ),
        (
            apdu::verify("VERIFY (right PIN)", apdu::DEMO_PIN, 0x9000),
            false,
        ),
        (apdu::sign_p256(), true),
        (apdu::sign_rsa(), true),
    ]
}

/// Every row of tables 1 and 2: each command alone, then the login; by
/// name, with whether it is crypto.
pub fn operations() -> Vec<(String, Vec<Operation>, bool)> {
    let mut operations: Vec<(String, Vec<Operation>, bool)> = commands()
        .into_iter()
        .map(|(op, crypto)| (op.name.to_owned(), vec![op], crypto))
        .collect();
    operations.push((LOGIN.to_owned(), apdu::login(), true));
    operations
}

/// A card ready for every command: PIN verified (for 9A).
pub fn ready_card(image: &CardImage) -> Result<Card, BenchError> {
    let mut card = fixture::card_from(image)?;
    apdu::perform(
        &mut card,
        &apdu::verify("VERIFY", apdu::DEMO_PIN, 0x9000),
        None,
    )?;
    Ok(card)
}

/// Times `ops` performed in sequence.
pub fn time_ops(
    card: &mut Card,
    ops: &[Operation],
    budget: Duration,
) -> Result<Sample, BenchError> {
    measure::run(budget, 10, || {
        for op in ops {
            apdu::perform(card, op, None)?;
        }
        Ok::<_, BenchError>(())
    })
}

/// The in-process table. `round_trips` holds the trivial card's times
/// through pcscd (harness 1), when that harness ran: each non-crypto
/// command is divided by the pinned round trip (the strict reading of the
/// goal) and by the unpinned one (what an unbound client waits for).
pub fn run(
    image: &CardImage,
    budget: Duration,
    round_trips: Option<&RoundTrips>,
    allocations: Option<&AllocationReport>,
) -> Result<Section, BenchError> {
    let mut section = Section::new(
        "2. In-process, per command (`Card::transmit`)",
        "vscard in-process / the same APDUs through pcscd (medians)",
    );
    let mut card = ready_card(image)?;
    for (name, ops, crypto) in &operations() {
        let sample = time_ops(&mut card, ops, budget)?;
        let goal = if *crypto {
            Goal::None
        } else {
            Goal::AtMost(0.01)
        };
        let row = |what: String, through_pcscd: Option<&(Duration, usize)>, pass: &str| {
            let (baseline, seconds) = match through_pcscd {
                Some((median, apdus)) => {
                    let trips = if *apdus == 1 {
                        "one round trip".to_owned()
                    } else {
                        format!("{apdus} round trips")
                    };
                    (
                        format!(
                            "trivial card, same APDUs through pcscd, {pass} ({trips}): {}",
                            human(*median)
                        ),
                        median.as_secs_f64(),
                    )
                }
                None => ("pcscd harness not run".to_owned(), 0.0),
            };
            Row::new(
                what,
                format!("{} (p99 {})", human(sample.median), human(sample.p99)),
                baseline,
                ratio(sample.median.as_secs_f64(), seconds),
                goal,
            )
        };
        section.rows.push(row(
            name.clone(),
            round_trips.and_then(|r| r.by_operation.get(name)),
            "pinned",
        ));
        if !crypto {
            section.rows.push(row(
                format!("{name}, against an unpinned round trip"),
                round_trips.and_then(|r| r.unpinned.get(name)),
                "unpinned",
            ));
        }
    }
    match allocations {
        Some(report) => allocation_rows(&mut section, report),
        None => section.notes.push(
            "Allocations not counted: `vscard-alloc` was not built next to `vscard-bench` \
             (`cargo build --release -p vscard-benches --bins`)."
                .to_owned(),
        ),
    }
    Ok(section)
}

fn allocation_rows(section: &mut Section, report: &AllocationReport) {
    for (name, n) in &report.commands {
        section.rows.push(Row::new(
            format!("allocations: {name}"),
            n.to_string(),
            format!("unknown instruction (runtime floor): {}", report.floor),
            ratio(*n as f64, report.floor as f64),
            Goal::None,
        ));
    }
    section.notes.push(
        "Allocations are counted by `vscard-alloc` (a counting global allocator, `stats_alloc`), \
         a separate program so that no timed row pays for the counting."
            .to_owned(),
    );
}
