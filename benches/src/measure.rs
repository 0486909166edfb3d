//! Timing helpers: run an operation for a while, report rates and
//! percentiles. Every figure the harness prints is a ratio against a
//! baseline measured by the same helpers in the same run.

use std::time::{Duration, Instant};

/// Rates and latencies of one measured operation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    /// Operations completed.
    pub count: u64,
    /// Wall time spent in the measured part of the operations.
    pub elapsed: Duration,
    /// Median latency.
    pub median: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Sample {
    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Mean time per operation.
    pub fn mean(&self) -> Duration {
        self.elapsed
            .checked_div(self.count.max(1) as u32)
            .unwrap_or_default()
    }

    fn from_latencies(mut latencies: Vec<Duration>) -> Sample {
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 - 1.0).max(0.0) * q).round() as usize;
            latencies.get(i).copied().unwrap_or_default()
        };
        Sample {
            count: latencies.len() as u64,
            elapsed: latencies.iter().sum(),
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

/// Runs `op` repeatedly for about `budget` (at least `min_count` times) and
/// records each call's latency.
pub fn run<E>(
    budget: Duration,
    min_count: u64,
    mut op: impl FnMut() -> Result<(), E>,
) -> Result<Sample, E> {
    run_split(budget, min_count, || {
        let started = Instant::now();
        op()?;
        Ok(started.elapsed())
    })
}

/// Like [`run`], but `op` times its own measured part (set-up steps it
/// takes outside the timed part are not counted, but do use the budget).
pub fn run_split<E>(
    budget: Duration,
    min_count: u64,
    mut op: impl FnMut() -> Result<Duration, E>,
) -> Result<Sample, E> {
    let mut latencies = Vec::with_capacity(1024);
    let started = Instant::now();
    while started.elapsed() < budget || (latencies.len() as u64) < min_count {
        latencies.push(op()?);
    }
    Ok(Sample::from_latencies(latencies))
}

/// Runs `a` and `b` in turn for about `budget` (each at least `min_count`
/// times), switching which goes first every round, and records each
/// call's latency: both see the same moments of a drifting machine.
pub fn run_pair<E>(
    budget: Duration,
    min_count: u64,
    mut a: impl FnMut() -> Result<(), E>,
    mut b: impl FnMut() -> Result<(), E>,
) -> Result<(Sample, Sample), E> {
    let timed = |op: &mut dyn FnMut() -> Result<(), E>| {
        let started = Instant::now();
        op().map(|()| started.elapsed())
    };
    let (mut la, mut lb) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
    let started = Instant::now();
    while started.elapsed() < budget || (la.len() as u64) < min_count {
        if la.len() % 2 == 0 {
            la.push(timed(&mut a)?);
            lb.push(timed(&mut b)?);
        } else {
            lb.push(timed(&mut b)?);
            la.push(timed(&mut a)?);
        }
    }
    Ok((Sample::from_latencies(la), Sample::from_latencies(lb)))
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// A duration for tables: ns, µs, ms or s with three decimals.
pub fn human(duration: Duration) -> String {
    let ns = duration.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.3} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.3} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

/// A rate for tables.
pub fn rate(per_second: f64) -> String {
    if per_second >= 100.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.2}/s")
    }
}
