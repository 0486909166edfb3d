//! Every scenario against the journey card behind the vpcd bridge, through
//! a private pcscd and the PC/SC client library: the path real middleware
//! takes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vscard_conformance::cards::{card_with, facts_for, journey_profile, journey_state};
use vscard_conformance::report::{TransportReport, markdown};
use vscard_conformance::{Pcsc, run_all, scenarios};
use vscard_testkit::private_pcscd;
use vscard_vpcd::{Bridge, BridgeConfig};

#[test]
fn every_scenario_passes_through_pcscd() {
    let Some(pcscd) = private_pcscd() else { return };
    let card = card_with(journey_state().unwrap()).unwrap();
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        // The touch scenario's signature gives up after this, not 15 s.
        touch_timeout: Some(Duration::from_millis(500)),
        ..BridgeConfig::default()
    };
    let _bridge = Bridge::start(vec![card], config).unwrap();
    pcscd.wait_for_card(0, Duration::from_secs(2)).unwrap();
    let mut transport = Pcsc::connect(&pcscd.reader(0)).unwrap();
    let facts = facts_for(&journey_profile());
    let results = run_all(&scenarios::all(), &mut transport, &facts, true);
    let report = TransportReport {
        transport: "pcscd + vpcd".into(),
        results: results.clone(),
    };
    println!("{}", markdown(&[report]));
    let bad: Vec<_> = results.iter().filter(|r| r.result != "passed").collect();
    assert!(bad.is_empty(), "not passed: {bad:#?}");
}
