//! APDUs per second through a private pcscd: the bridge with the echo
//! fixture card against a card that does nothing, in the same run.
//!
//! `cargo run --release -p vscard-vpcd --features testing --example
//! pcscd_throughput [COUNT]` (as root). Also shows how a program that is
//! not a libtest test uses the harness.

use std::time::{Duration, Instant};

use vscard_testkit::echo::echo_card;
use vscard_testkit::{
    PcscdOptions, PrivatePcscd, TrivialCard, pcsc, rerun_process_in_namespace, transmit,
};
use vscard_vpcd::{Bridge, BridgeConfig, VPCD_PORT};

const ECHO: [u8; 7] = [0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rerun_process_in_namespace()?;
    let count: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 5000,
    };
    let pcscd = PrivatePcscd::start_here(PcscdOptions {
        slots: 2,
        ..PcscdOptions::default()
    })?;
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let _bridge = Bridge::start(vec![echo_card()?], config)?;
    let _trivial = TrivialCard::connect(VPCD_PORT + 1)?;
    for slot in 0..2 {
        pcscd.wait_for_card(slot, Duration::from_secs(1))?;
    }
    let ours = pcscd.connect(0)?;
    let trivial = pcscd.connect(1)?;
    let rate = |card: &pcsc::Card| -> Result<f64, Box<dyn std::error::Error>> {
        let started = Instant::now();
        for _ in 0..count {
            transmit(card, &ECHO)?;
        }
        Ok(f64::from(count) / started.elapsed().as_secs_f64())
    };
    rate(&ours)?;
    rate(&trivial)?;
    let trivial_rate = rate(&trivial)?;
    let bridge_rate = rate(&ours)?;
    println!("trivial card:        {trivial_rate:>8.0} APDU/s");
    println!("bridge + echo card:  {bridge_rate:>8.0} APDU/s");
    println!("ratio:               {:>8.2}", bridge_rate / trivial_rate);
    Ok(())
}
