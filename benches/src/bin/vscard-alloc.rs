//! `vscard-alloc IMAGE [SIZES...]`: allocations per command and heap per
//! idle card of the card image at IMAGE, as JSON on standard output. Run
//! by `vscard-bench`; a separate program so that the counting allocator
//! slows down none of the timed rows.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use vscard_benches::allocations::{self, Allocations};
use vscard_emulator::FileStore;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn count(f: &mut dyn FnMut()) -> Allocations {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Allocations {
        count: (change.allocations + change.reallocations) as u64,
        net_bytes: to_i64(change.bytes_allocated) - to_i64(change.bytes_deallocated)
            + change.bytes_reallocated as i64,
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: vscard-alloc IMAGE [SIZES...]");
        return ExitCode::from(2);
    };
    let sizes: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    let image = match FileStore::read(std::path::Path::new(&path)) {
        Ok(Some(image)) => image,
        Ok(None) => {
            eprintln!("vscard-alloc: {path}: no such image");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("vscard-alloc: {e}");
            return ExitCode::FAILURE;
        }
    };
    match allocations::measure(&image, &sizes, &count)
        .map_err(|e| e.to_string())
        .and_then(|report| serde_json::to_string(&report).map_err(|e| e.to_string()))
    {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vscard-alloc: {e}");
            ExitCode::FAILURE
        }
    }
}
