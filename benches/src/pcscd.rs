//! Through pcscd: the issued PIV card behind the vpcd bridge and a trivial
//! responder card (answers `9000` at once, same socket options) in two
//! slots of the same private pcscd, driven with the `pcsc` crate (the C
//! client library), in the same run.
//!
//! For each operation the APDUs sent to the PIV card (chain parts and GET
//! RESPONSEs included) and its answers are recorded once; the APDUs are
//! replayed to the trivial card, which answers with the recorded bytes, so
//! both sides make the same round trips with the same bytes. The two are
//! measured in turn, operation by operation, so drift hits both alike.
//!
//! Two passes. In the first (the rows with goals) the client, pcscd and
//! both cards share one CPU ([`Pinned`]): every wake-up is then a switch
//! on that CPU, and what differs between the two cards is the work on
//! their path. In the second nothing is pinned, as on a user's machine:
//! on a small virtual machine each wake-up of a thread on the other,
//! idle, CPU costs a hypervisor round trip that varies from run to run,
//! which dominates the round trip and makes it noisy; those rows have no
//! goal and say how large that effect is.
//!
//! Must run inside the private namespaces: the harness binary calls
//! `rerun_process_in_namespace` first.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use vscard_emulator::CardImage;
use vscard_testkit::{PcscCard, PcscdOptions, PrivatePcscd, TrivialCard, pcsc};
use vscard_vpcd::{Bridge, BridgeConfig, BridgeHandle, VPCD_PORT};

use crate::apdu::{self, Operation};
use crate::measure::{self, Sample, human, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture, inprocess};

fn describe(sample: &Sample) -> String {
    format!(
        "{} (median {}, p99 {})",
        rate(sample.per_second()),
        human(sample.median),
        human(sample.p99)
    )
}

/// The calling thread bound to one CPU; threads and processes it starts
/// meanwhile inherit the binding (and keep it). Dropping it gives the
/// thread its previous CPUs back.
pub struct Pinned {
    previous: CpuSet,
    cpu: usize,
}

impl Pinned {
    /// Binds the calling thread to the first CPU it may run on.
    pub fn to_one_cpu() -> Result<Pinned, BenchError> {
        let this_thread = Pid::from_raw(0);
        let affinity = |e: nix::Error| BenchError::Io {
            what: "CPU affinity".to_owned(),
            source: std::io::Error::from(e),
        };
        let previous = sched_getaffinity(this_thread).map_err(affinity)?;
        let cpu = (0..CpuSet::count())
            .find(|&cpu| previous.is_set(cpu).unwrap_or(false))
            .ok_or_else(|| BenchError::Io {
                what: "CPU affinity".to_owned(),
                source: std::io::Error::other("no CPU in this thread's affinity"),
            })?;
        let mut one = CpuSet::new();
        one.set(cpu).map_err(affinity)?;
        sched_setaffinity(this_thread, &one).map_err(affinity)?;
        Ok(Pinned { previous, cpu })
    }

    /// The CPU.
    pub fn cpu(&self) -> usize {
        self.cpu
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.previous);
    }
}

/// What the in-process table divides by: the trivial card's median time
/// through pcscd for the same APDUs as each operation, by operation name:
/// from the pinned pass (the shorter, so the stricter baseline) and, for
/// the non-crypto commands, from the unpinned pass (what an unbound
/// client waits for).
#[derive(Clone, Debug, Default)]
pub struct RoundTrips {
    /// Operation name -> (median, APDUs), pinned pass.
    pub by_operation: BTreeMap<String, (Duration, usize)>,
    /// The same, unpinned pass.
    pub unpinned: BTreeMap<String, (Duration, usize)>,
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
/// replayed to the trivial card, in turn. Returns the row, the trivial
/// card's median and the number of APDUs.
fn compare(
    ours: &mut PcscCard<&pcsc::Card>,
    (trivial, trivial_card): (&mut PcscCard<&pcsc::Card>, &TrivialCard),
    name: &str,
    ops: &[Operation],
    goal: Goal,
    budget: Duration,
) -> Result<(Row, Duration, usize), BenchError> {
    let mut script = apdu::Script::default();
    for op in ops {
        apdu::perform(ours, op, Some(&mut script))?;
    }
    // The same bytes back: the two cards differ only in their work.
    trivial_card.answer_with(&script.responses);
    let (ours_sample, trivial_sample) = measure::run_pair(
        budget,
        5,
        || {
            for op in ops {
                apdu::perform(ours, op, None)?;
            }
            Ok::<_, BenchError>(())
        },
        || apdu::replay(trivial, &script),
    )?;
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
    Ok((row, trivial_sample.median, script.len()))
}

/// The issued card and the trivial card in a fresh private pcscd.
struct Readers {
    pcscd: PrivatePcscd,
    bridge: Option<BridgeHandle>,
    trivial: TrivialCard,
}

impl Readers {
    fn start(image: &CardImage) -> Result<Readers, BenchError> {
        let pcscd = start()?;
        let bridge = Bridge::start(vec![fixture::card_from(image)?], bridge_config(&pcscd))
            .map_err(|e| BenchError::Bridge(e.to_string()))?;
        let trivial = TrivialCard::connect(VPCD_PORT + 1)?;
        for slot in 0..2 {
            pcscd.wait_for_card(slot, Duration::from_secs(5))?;
        }
        Ok(Readers {
            pcscd,
            bridge: Some(bridge),
            trivial,
        })
    }
}

/// The vscard card (slot 0), its PIN verified (signing in 9A needs it).
fn connect_verified(pcscd: &PrivatePcscd) -> Result<vscard_testkit::pcsc::Card, BenchError> {
    let card = pcscd.connect(0)?;
    apdu::perform(
        &mut PcscCard::new(&card),
        &apdu::verify("VERIFY", apdu::DEMO_PIN, 0x9000),
        None,
    )?;
    Ok(card)
}

fn bridge_config(pcscd: &PrivatePcscd) -> BridgeConfig {
    BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    }
}

/// The pcscd table, and the trivial card's times for the in-process
/// table. Starts (and stops) its own private pcscd for each pass.
pub fn run(image: &CardImage, budget: Duration) -> Result<(Section, RoundTrips), BenchError> {
    let mut section = Section::new(
        "1. Through pcscd (vpcd bridge, `pcsc` crate)",
        "vscard / trivial card (operations per second)",
    );
    let mut round_trips = RoundTrips::default();
    let pinned = Pinned::to_one_cpu()?;
    let cpu = pinned.cpu();
    {
        let mut readers = Readers::start(image)?;
        pinned_pass(&mut readers, budget, &mut section, &mut round_trips)?;
        // pcscd and the cards stop here, still on the one CPU.
    }
    drop(pinned);
    let readers = Readers::start(image)?;
    unpinned_pass(&readers, budget, &mut section, &mut round_trips)?;
    section.notes.push(format!(
        "One private pcscd (own namespaces), vpcd in server mode, slot 0 the vscard bridge with \
         the issued card (then with the echo fixture card), slot 1 the trivial card; shared-mode \
         connections, T=1. The two cards are measured in turn, operation by operation. Rows \
         with goals: client, pcscd and both cards bound to CPU {cpu}. Rows marked unpinned: a \
         second pcscd and bridge, nothing bound."
    ));
    Ok((section, round_trips))
}

fn pinned_pass(
    readers: &mut Readers,
    budget: Duration,
    section: &mut Section,
    round_trips: &mut RoundTrips,
) -> Result<(), BenchError> {
    let trivial_handle = readers.pcscd.connect(1)?;
    let mut trivial = PcscCard::new(&trivial_handle);
    {
        let ours_handle = connect_verified(&readers.pcscd)?;
        let mut ours = PcscCard::new(&ours_handle);
        for (name, ops, crypto) in &inprocess::operations() {
            let goal = if *crypto {
                Goal::None
            } else {
                Goal::AtLeast(0.95)
            };
            let (row, median, apdus) = compare(
                &mut ours,
                (&mut trivial, &readers.trivial),
                name,
                ops,
                goal,
                budget,
            )?;
            section.rows.push(row);
            round_trips
                .by_operation
                .insert(name.clone(), (median, apdus));
        }
    }
    // The bridge alone: the same bridge serving the echo fixture applet
    // (the runtime, no PIV) in the same slot.
    if let Some(bridge) = readers.bridge.take() {
        bridge.shutdown();
    }
    readers.pcscd.wait_for_no_card(0, Duration::from_secs(5))?;
    let echo_bridge = Bridge::start(
        vec![vscard_testkit::echo::echo_card()?],
        bridge_config(&readers.pcscd),
    )
    .map_err(|e| BenchError::Bridge(e.to_string()))?;
    readers.bridge = Some(echo_bridge);
    readers.pcscd.wait_for_card(0, Duration::from_secs(5))?;
    let echo_handle = readers.pcscd.connect(0)?;
    let mut echo = PcscCard::new(&echo_handle);
    let (row, _, _) = compare(
        &mut echo,
        (&mut trivial, &readers.trivial),
        ECHO_NAME,
        &[echo_operation()],
        Goal::None,
        budget,
    )?;
    section.rows.push(row);
    Ok(())
}

const ECHO_NAME: &str = "bridge + echo fixture applet (no PIV)";

fn echo_operation() -> Operation {
    Operation {
        name: ECHO_NAME,
        apdus: vec![vec![0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00]],
        expect: 0x9000,
    }
}

/// The non-crypto commands again, with nothing pinned (no goal).
fn unpinned_pass(
    readers: &Readers,
    budget: Duration,
    section: &mut Section,
    round_trips: &mut RoundTrips,
) -> Result<(), BenchError> {
    let trivial_handle = readers.pcscd.connect(1)?;
    let mut trivial = PcscCard::new(&trivial_handle);
    let ours_handle = connect_verified(&readers.pcscd)?;
    let mut ours = PcscCard::new(&ours_handle);
    for (op, crypto) in inprocess::commands() {
        if crypto {
            continue;
        }
        let key = op.name.to_owned();
        let name = format!("unpinned: {}", op.name);
        let (row, median, apdus) = compare(
            &mut ours,
            (&mut trivial, &readers.trivial),
            &name,
            &[op],
            Goal::None,
            budget,
        )?;
        section.rows.push(row);
        round_trips.unpinned.insert(key, (median, apdus));
    }
    Ok(())
}
