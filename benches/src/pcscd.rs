//! Through pcscd: the issued PIV card behind the vpcd bridge and a trivial
//! responder card (answers `9000` at once, same socket options) in two
//! slots of the same private pcscd, driven with the `pcsc` crate (the C
//! client library), in the same run.
//!
//! For each operation the APDUs sent to the PIV card (chain parts and GET
//! RESPONSEs included) are recorded once and replayed to the trivial card,
//! so both sides make the same number of round trips. The two are
//! measured in alternating halves so drift hits both alike.
//!
//! Must run inside the private namespaces: the harness binary calls
//! `rerun_process_in_namespace` first.

use std::time::Duration;

use vscard_emulator::CardImage;
use vscard_vpcd::testing::{PcscdOptions, PrivatePcscd, TrivialCard};
use vscard_vpcd::{Bridge, BridgeConfig, VPCD_PORT};

use crate::apdu::{self, Operation, PcscTransport};
use crate::measure::{self, Sample, human, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture, inprocess};

fn merge(a: &Sample, b: &Sample) -> Sample {
    Sample {
        count: a.count + b.count,
        elapsed: a.elapsed + b.elapsed,
        median: (a.median + b.median) / 2,
        p99: a.p99.max(b.p99),
    }
}

fn describe(sample: &Sample) -> String {
    format!(
        "{} (median {}, p99 {})",
        rate(sample.per_second()),
        human(sample.median),
        human(sample.p99)
    )
}

/// Starts the private pcscd the harness uses: two vpcd slots in server
/// mode. Call inside the private namespaces only.
pub fn start() -> Result<PrivatePcscd, BenchError> {
    Ok(PrivatePcscd::start_here(options())?)
}

/// The pcscd options the harness needs (two slots).
pub fn options() -> PcscdOptions {
    PcscdOptions {
        slots: 2,
        ..PcscdOptions::default()
    }
}

/// One comparison: `ops` on the card behind `ours`, the same APDUs
/// replayed to the trivial card. Returns the row and the trivial card's
/// median when the operation is a single APDU.
fn compare(
    ours: &mut PcscTransport<'_>,
    trivial: &mut PcscTransport<'_>,
    name: &str,
    ops: &[Operation],
    goal: Goal,
    budget: Duration,
) -> Result<(Row, Option<Duration>), BenchError> {
    let mut script = Vec::new();
    for op in ops {
        apdu::perform(ours, op, Some(&mut script))?;
    }
    let half = budget / 2;
    let mut ours_run = || {
        measure::run(half, 5, || {
            for op in ops {
                apdu::perform(ours, op, None)?;
            }
            Ok::<_, BenchError>(())
        })
    };
    // Alternating halves, so drift hits both alike.
    let a = ours_run()?;
    let t_a = measure::run(half, 5, || apdu::replay(trivial, &script))?;
    let b = ours_run()?;
    let t_b = measure::run(half, 5, || apdu::replay(trivial, &script))?;
    let (ours_sample, trivial_sample) = (merge(&a, &b), merge(&t_a, &t_b));
    let apdus = match script.len() {
        1 => "1 APDU".to_owned(),
        n => format!("{n} APDUs"),
    };
    let row = Row::new(
        format!("{name} ({apdus})"),
        describe(&ours_sample),
        format!("trivial card, same APDUs: {}", describe(&trivial_sample)),
        ratio(ours_sample.per_second(), trivial_sample.per_second()),
        goal,
    );
    Ok((row, (script.len() == 1).then_some(trivial_sample.median)))
}

/// The pcscd table, and the trivial card's shortest median single-APDU
/// round trip (the baseline of the in-process table: the shortest is the
/// strictest). `pcscd` was started with [`options`].
pub fn run(
    pcscd: &PrivatePcscd,
    image: &CardImage,
    budget: Duration,
) -> Result<(Section, Duration), BenchError> {
    let mut section = Section::new(
        "1. Through pcscd (vpcd bridge, `pcsc` crate)",
        "vscard / trivial card (operations per second)",
    );
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![fixture::card_from(image)?], config.clone())
        .map_err(|e| BenchError::Bridge(e.to_string()))?;
    let _trivial_card = TrivialCard::connect(VPCD_PORT + 1)?;
    for slot in 0..2 {
        pcscd.wait_for_card(slot, Duration::from_secs(5))?;
    }
    let trivial_handle = pcscd.connect(1)?;
    let mut trivial = PcscTransport::new(&trivial_handle);
    let mut round_trips = Vec::new();
    {
        let ours_handle = pcscd.connect(0)?;
        let mut ours = PcscTransport::new(&ours_handle);
        apdu::perform(
            &mut ours,
            &apdu::verify("VERIFY", apdu::DEMO_PIN, 0x9000),
            None,
        )?;
        for (op, crypto) in inprocess::commands() {
            let goal = if crypto {
                Goal::None
            } else {
                Goal::AtLeast(0.95)
            };
            let (row, rt) = compare(
                &mut ours,
                &mut trivial,
                op.name,
                std::slice::from_ref(&op),
                goal,
                budget,
            )?;
            section.rows.push(row);
            round_trips.extend(rt);
        }
        let (row, _) = compare(
            &mut ours,
            &mut trivial,
            "OpenSC-style login: SELECT, GET DATA x5, VERIFY, RSA sign",
            &apdu::login(),
            Goal::None,
            budget,
        )?;
        section.rows.push(row);
    }
    // The bridge alone: the same bridge serving the echo fixture applet
    // (the runtime, no PIV) in the same slot.
    bridge.shutdown();
    pcscd.wait_for_no_card(0, Duration::from_secs(5))?;
    let echo_card = vscard_vpcd::fixture::echo_card()?;
    let _echo_bridge =
        Bridge::start(vec![echo_card], config).map_err(|e| BenchError::Bridge(e.to_string()))?;
    pcscd.wait_for_card(0, Duration::from_secs(5))?;
    let echo_handle = pcscd.connect(0)?;
    let mut echo = PcscTransport::new(&echo_handle);
    let echo_op = Operation {
        name: "bridge + echo fixture applet (no PIV)",
        apdus: vec![vec![0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00]],
        expect: 0x9000,
    };
    let (row, rt) = compare(
        &mut echo,
        &mut trivial,
        echo_op.name,
        std::slice::from_ref(&echo_op),
        Goal::None,
        budget,
    )?;
    section.rows.push(row);
    round_trips.extend(rt);
    section.notes.push(
        "One private pcscd (own namespaces), vpcd in server mode, slot 0 the vscard bridge \
         with the issued card (then with the echo fixture card), slot 1 the trivial card; \
         shared-mode connections, T=1."
            .to_owned(),
    );
    let round_trip = round_trips.into_iter().min().unwrap_or_default();
    Ok((section, round_trip))
}
