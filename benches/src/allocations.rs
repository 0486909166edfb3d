//! Heap activity: allocations per command and heap per idle card.
//!
//! Counting needs a counting global allocator, whose shared atomic
//! counters would slow down (and, across threads, serialise) every timed
//! row, so it lives in its own binary, `vscard-alloc`: `vscard-bench`
//! writes the card image to a temporary file, runs `vscard-alloc IMAGE
//! SIZES...` from its own folder and reads this module's
//! [`AllocationReport`] as JSON from its standard output.

use std::path::Path;
use std::process::Command;

use vscard_emulator::{Card, CardImage, FileStore};

use crate::apdu;
use crate::{BenchError, fixture, io_error};

/// Heap activity while a closure ran.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocations {
    /// Allocations (and reallocations) made.
    pub count: u64,
    /// Bytes allocated minus bytes freed.
    pub net_bytes: i64,
}

/// Runs a closure and reports the heap activity it caused.
pub type AllocationCounter<'a> = &'a dyn Fn(&mut dyn FnMut()) -> Allocations;

/// What `vscard-alloc` measured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AllocationReport {
    /// Allocations of an instruction no applet knows (the runtime's floor,
    /// the response vector included).
    pub floor: u64,
    /// Allocations per command, by name.
    pub commands: Vec<(String, u64)>,
    /// Net heap bytes per idle card, by number of cards.
    pub heap_per_card: Vec<(usize, f64)>,
}

/// Idle cards: built from `image`, powered, PIV selected.
pub fn idle_cards(image: &CardImage, n: usize) -> Result<Vec<Card>, BenchError> {
    let select = apdu::select();
    (0..n)
        .map(|_| {
            let mut card = fixture::card_from(image)?;
            apdu::perform(&mut card, &select, None)?;
            Ok(card)
        })
        .collect()
}

/// Measures with `count` (the caller's counting allocator).
pub fn measure(
    image: &CardImage,
    sizes: &[usize],
    count: AllocationCounter<'_>,
) -> Result<AllocationReport, BenchError> {
    let mut card = fixture::card_from(image)?;
    let mut counted = |apdu: &[u8]| -> Result<u64, BenchError> {
        // Warm up first (lazily built state, grown buffers).
        card.transmit(apdu)?;
        let mut result = Ok(());
        let n = count(&mut || {
            if let Err(e) = card.transmit(apdu) {
                result = Err(e);
            }
        });
        result.map(|()| n.count).map_err(BenchError::from)
    };
    let floor = counted(&[0x00, 0x00, 0x00, 0x00])?;
    let select = apdu::select();
    let verify = apdu::verify("VERIFY", apdu::DEMO_PIN, 0x9000);
    let chuid = apdu::get_data("GET DATA", apdu::CHUID);
    let mut commands = Vec::new();
    for (name, op) in [
        ("SELECT PIV", &select),
        ("VERIFY (right PIN, two commits)", &verify),
        ("GET DATA CHUID", &chuid),
    ] {
        let apdu = op.apdus.first().map(Vec::as_slice).unwrap_or_default();
        commands.push((name.to_owned(), counted(apdu)?));
    }
    let mut heap_per_card = Vec::new();
    let mut kept = Vec::new();
    for &n in sizes {
        let mut built = Ok(Vec::new());
        let heap = count(&mut || built = idle_cards(image, n));
        kept.push(built?);
        heap_per_card.push((n, heap.net_bytes.max(0) as f64 / n.max(1) as f64));
    }
    Ok(AllocationReport {
        floor,
        commands,
        heap_per_card,
    })
}

/// Runs `vscard-alloc` from this program's folder; `Ok(None)` when it
/// has not been built.
pub fn from_sibling(
    image: &CardImage,
    sizes: &[usize],
) -> Result<Option<AllocationReport>, BenchError> {
    let exe = std::env::current_exe().map_err(io_error("finding vscard-bench"))?;
    let sibling = exe.with_file_name("vscard-alloc");
    if !sibling.exists() {
        return Ok(None);
    }
    let dir = tempfile::tempdir().map_err(io_error("temporary folder"))?;
    let path = dir.path().join("card.json");
    FileStore::write(&path, image)?;
    run_sibling(&sibling, &path, sizes).map(Some)
}

fn run_sibling(
    sibling: &Path,
    image: &Path,
    sizes: &[usize],
) -> Result<AllocationReport, BenchError> {
    let output = Command::new(sibling)
        .arg(image)
        .args(sizes.iter().map(usize::to_string))
        .output()
        .map_err(io_error(format!("running {}", sibling.display())))?;
    if !output.status.success() {
        return Err(BenchError::Io {
            what: format!("{} failed", sibling.display()),
            source: std::io::Error::other(String::from_utf8_lossy(&output.stderr).into_owned()),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|e| BenchError::Io {
        what: "reading vscard-alloc's report".to_owned(),
        source: std::io::Error::other(e),
    })
}
