//! `cargo bench -p vscard-benches`: per-command cost of the issued demo
//! card in-process (`Card::transmit`, in-memory store), with criterion.
//! Small samples, so the whole run takes a minute or two; the harness
//! behind BENCHMARKS.md (`vscard-bench`) compares the same commands with
//! their baselines.

#![allow(missing_docs)] // criterion_main! generates an undocumented `main`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vscard_benches::apdu::{self, Operation};
use vscard_benches::{fixture, inprocess};

fn per_command(c: &mut Criterion) {
    let image = match fixture::demo_state() {
        Ok(state) => fixture::image(&state),
        Err(e) => {
            eprintln!("cannot issue the demo card: {e}");
            return;
        }
    };
    let mut card = match inprocess::ready_card(&image) {
        Ok(card) => card,
        Err(e) => {
            eprintln!("cannot build the demo card: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("in-process");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let mut bench = |name: &str, ops: &[Operation]| {
        group.bench_function(name, |b| {
            b.iter(|| {
                for op in ops {
                    if let Err(e) = apdu::perform(&mut card, op, None) {
                        panic!("{}: {e}", op.name);
                    }
                }
            })
        });
    };
    for (op, _) in inprocess::commands() {
        bench(op.name, std::slice::from_ref(&op));
    }
    bench("OpenSC-style login", &apdu::login());
    group.finish();
}

criterion_group!(benches, per_command);
criterion_main!(benches);
