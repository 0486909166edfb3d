//! Per-command cost in-process (`Card::transmit`, in-memory store),
//! against one pcscd round trip of the trivial card measured by the pcscd
//! harness in the same run; and allocations per command.

use std::time::Duration;

use vscard_emulator::{Card, CardImage};

use crate::allocations::AllocationReport;
use crate::apdu::{self, Operation};
use crate::measure::{self, Sample, human, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture};

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

/// The in-process table. `round_trip` is the median pcscd round trip of
/// the trivial card (harness 1), when that harness ran.
pub fn run(
    image: &CardImage,
    budget: Duration,
    round_trip: Option<Duration>,
    allocations: Option<&AllocationReport>,
) -> Result<Section, BenchError> {
    let mut section = Section::new(
        "2. In-process, per command (`Card::transmit`)",
        "vscard in-process / one pcscd round trip (medians)",
    );
    let baseline = match round_trip {
        Some(rt) => format!("trivial card, one round trip through pcscd: {}", human(rt)),
        None => "pcscd harness not run".to_owned(),
    };
    let rt = round_trip.map_or(0.0, |rt| rt.as_secs_f64());
    let mut card = ready_card(image)?;
    for (op, crypto) in commands() {
        let sample = time_ops(&mut card, std::slice::from_ref(&op), budget)?;
        let goal = if crypto {
            Goal::None
        } else {
            Goal::AtMost(0.01)
        };
        section.rows.push(Row::new(
            op.name,
            format!("{} (p99 {})", human(sample.median), human(sample.p99)),
            baseline.clone(),
            ratio(sample.median.as_secs_f64(), rt),
            goal,
        ));
    }
    let login = apdu::login();
    let sample = time_ops(&mut card, &login, budget)?;
    section.rows.push(Row::new(
        "OpenSC-style login: SELECT, GET DATA x5, VERIFY, RSA sign",
        format!("{} (p99 {})", human(sample.median), human(sample.p99)),
        baseline,
        ratio(sample.median.as_secs_f64(), rt),
        Goal::None,
    ));
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
