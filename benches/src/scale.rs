//! Many cards in one process: resident memory per idle card, in-process
//! throughput with N cards, and signing throughput on 1 thread against
//! one thread per core.
//!
//! Cards are cloned from one issued image (issuing a thousand RSA cards
//! would take minutes). Every set of cards is kept alive while the next
//! is built, so each resident-memory delta is that set's own.

use std::time::{Duration, Instant};

use vscard_emulator::{Card, CardImage};

use crate::allocations::{AllocationReport, idle_cards};
use crate::apdu::{self, Operation};
use crate::measure::{rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, inprocess, io_error};

/// The memory goal per idle card (issue 7).
pub const IDLE_CARD_BUDGET: u64 = 64 * 1024;

/// Resident memory of this process in bytes (`VmRSS` of
/// `/proc/self/status`).
pub fn resident() -> Result<u64, BenchError> {
    resident_of("/proc/self/status")
}

/// Resident memory in bytes from a `/proc/PID/status` file (`VmRSS`).
pub fn resident_of(status_file: &str) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(status_file).map_err(io_error(status_file))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .ok_or_else(|| BenchError::Io {
            what: "VmRSS".to_owned(),
            source: std::io::Error::other("no VmRSS line"),
        })
}

/// Operations per second over `cards`, round robin, for `budget`.
fn round_robin(cards: &mut [Card], ops: &[Operation], budget: Duration) -> Result<f64, BenchError> {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < budget {
        for card in cards.iter_mut() {
            for op in ops {
                apdu::perform(card, op, None)?;
            }
            done += 1;
        }
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Signatures per second with `threads` threads, each signing on its own
/// card.
pub fn signing(
    image: &CardImage,
    op: &Operation,
    threads: usize,
    budget: Duration,
) -> Result<f64, BenchError> {
    let mut cards = (0..threads)
        .map(|_| inprocess::ready_card(image))
        .collect::<Result<Vec<_>, BenchError>>()?;
    let started = Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = cards
            .iter_mut()
            .map(|card| {
                scope.spawn(move || -> Result<u64, BenchError> {
                    let mut n = 0;
                    while started.elapsed() < budget {
                        apdu::perform(card, op, None)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Crypto("a signing thread panicked".into())))
            })
            .collect::<Result<Vec<u64>, BenchError>>()
    })?;
    Ok(counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64())
}

/// The scale table for `sizes` cards (the largest set is built first, so
/// that its resident-memory delta is not absorbed by memory freed
/// earlier in the run).
pub fn run(
    image: &CardImage,
    sizes: &[usize],
    budget: Duration,
    allocations: Option<&AllocationReport>,
) -> Result<Section, BenchError> {
    let mut section = Section::new("5. Scale: many cards in one process", "see baseline");
    let image_bytes = serde_json::to_vec(image).map_or(0, |v| v.len());
    let budget_text = format!("budget 64 KiB (image file: {image_bytes} bytes of JSON)");
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut sets: Vec<(usize, Vec<Card>)> = Vec::new();
    for &n in &sizes {
        let before = resident()?;
        let cards = idle_cards(image, n)?;
        let after = resident()?;
        if sets.is_empty() {
            let per_card = after.saturating_sub(before) as f64 / n.max(1) as f64;
            section.rows.push(Row::new(
                format!(
                    "resident memory per idle card (VmRSS delta), {}",
                    card_count(n)
                ),
                format!("{:.1} KiB", per_card / 1024.0),
                budget_text.clone(),
                ratio(per_card, IDLE_CARD_BUDGET as f64),
                Goal::AtMost(1.0),
            ));
        }
        sets.push((n, cards));
    }
    for (n, per_card) in allocations
        .map(|r| r.heap_per_card.as_slice())
        .unwrap_or_default()
    {
        section.rows.push(Row::new(
            format!(
                "heap per idle card (net bytes allocated), {}",
                card_count(*n)
            ),
            format!("{:.1} KiB", per_card / 1024.0),
            budget_text.clone(),
            ratio(*per_card, IDLE_CARD_BUDGET as f64),
            Goal::AtMost(1.0),
        ));
    }
    sets.sort_unstable_by_key(|(n, _)| *n);
    let ops = [
        apdu::select(),
        apdu::get_data("GET DATA CHUID", apdu::CHUID),
    ];
    let mut single = None;
    for (n, cards) in &mut sets {
        let throughput = round_robin(cards, &ops, budget)?;
        let one = *single.get_or_insert(throughput);
        section.rows.push(Row::new(
            format!(
                "SELECT + GET DATA CHUID, round robin over {}",
                card_count(*n)
            ),
            rate(throughput),
            format!("1 card: {}", rate(one)),
            ratio(throughput, one),
            Goal::None,
        ));
    }
    drop(sets);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for op in [apdu::sign_p256(), apdu::sign_rsa()] {
        let one = signing(image, &op, 1, budget)?;
        let many = signing(image, &op, cores, budget)?;
        section.rows.push(Row::new(
            format!("{}: {cores} threads, a card each", op.name),
            rate(many),
            format!("1 thread: {}", rate(one)),
            ratio(many, one),
            Goal::AtLeast(0.9 * cores as f64),
        ));
    }
    section.notes.push(
        "Idle card: built from the image, powered, PIV selected. Heap: net bytes allocated while \
         the set was built (`vscard-alloc`); resident memory: VmRSS before and after the largest set, built first. All sets stay \
         alive until the throughput rows; cards share the parts of the one issued image until they commit."
            .to_owned(),
    );
    Ok(section)
}

fn card_count(n: usize) -> String {
    if n == 1 {
        "1 card".to_owned()
    } else {
        format!("{n} cards")
    }
}
