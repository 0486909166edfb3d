//! What the Python bindings add to a card's `transmit`: the script
//! `benches/python/bindings_transmit.py` run by a Python that imports the
//! `vscard` wheel (`VSCARD_BENCH_PYTHON`, optional `VSCARD_BENCH_WHEEL`
//! for the wheel's size). The script times `card.transmit` from Python
//! against `Card::transmit` of the same card in Rust in the same process,
//! and a `card.atr()` call: UniFFI's own cost for a call that lowers
//! nothing.

use std::path::Path;
use std::process::Command;

use crate::BenchError;
use crate::measure::ratio;
use crate::report::{Goal, Row, Section};

fn failed(error: impl std::fmt::Display) -> BenchError {
    BenchError::Crypto(format!("python bindings: {error}"))
}

/// Microseconds, two decimals.
fn micros(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

/// The section, from `python` running the script `count` times per figure.
pub fn run(python: &Path, wheel: Option<&Path>, count: u64) -> Result<Section, BenchError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("bindings_transmit.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(count.to_string())
        .output()
        .map_err(failed)?;
    if !output.status.success() {
        return Err(failed(format!(
            "{} {}: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<f64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("vscard-bench\t"))
        .map(|line| line.split('\t').filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    let [python_ns, native_ns, floor_ns] = figures[..] else {
        return Err(failed(format!(
            "no figures in the script's output: {stdout}"
        )));
    };
    let added = python_ns - native_ns;
    let mut section = Section::new(
        "11. The Python bindings (UniFFI)",
        "the figure in the goal's unit (µs)",
    );
    section.rows.push(Row::new(
        "added per APDU: Python `card.transmit` minus `Card::transmit`, VERIFY status (no commit)",
        micros(added),
        format!(
            "`Card::transmit` in the same process: {}; from Python: {}",
            micros(native_ns),
            micros(python_ns)
        ),
        added / 1000.0,
        Goal::AtMost(2.0),
    ));
    section.rows.push(Row::new(
        "UniFFI's floor: `card.atr()` from Python (no argument, bytes back)",
        micros(floor_ns),
        format!("Python transmit: {}", micros(python_ns)),
        ratio(floor_ns, 1000.0),
        Goal::None,
    ));
    if let Some(wheel) = wheel {
        let size = std::fs::metadata(wheel).map_err(failed)?.len();
        section.rows.push(Row::new(
            format!(
                "wheel size ({})",
                wheel
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
            format!("{:.1} MB", size as f64 / 1e6),
            "",
            size as f64 / 1e6,
            Goal::None,
        ));
    }
    section.notes.push(format!(
        "{count} calls per figure, one Python thread. Every UniFFI call from Python goes through ctypes: \
         the object handle cloned (a foreign call), the bytes argument copied into a Rust buffer, \
         the call, the result lifted and its buffer freed (another foreign call)."
    ));
    Ok(section)
}
