//! Every scenario against the journey card in this process.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vscard_conformance::cards::{card_with, facts_for, journey_profile, journey_state};
use vscard_conformance::report::{TransportReport, markdown};
use vscard_conformance::scenarios;
use vscard_conformance::{InProcess, run_all};

#[test]
fn every_scenario_passes_in_process() {
    let card = card_with(journey_state().unwrap()).unwrap();
    let mut transport = InProcess::new(card);
    let facts = facts_for(&journey_profile());
    let results = run_all(&scenarios::all(), &mut transport, &facts, true);
    let report = TransportReport {
        transport: "in-process".into(),
        results: results.clone(),
    };
    println!("{}", markdown(&[report]));
    let bad: Vec<_> = results.iter().filter(|r| r.result != "passed").collect();
    assert!(bad.is_empty(), "not passed: {bad:#?}");
    assert!(results.len() >= 40, "{} scenarios", results.len());
}
