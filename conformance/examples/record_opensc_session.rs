//! Records the golden transcript of an OpenSC session with the golden card:
//! `pkcs15-tool -D`, `pkcs11-tool -L`, and PIN-protected signatures with the
//! RSA key (9A) and the EC key (9C), through a private pcscd and the vpcd
//! bridge. Run as root after a deliberate change to the card's answers:
//!
//! ```text
//! cargo run -p vscard-conformance --example record_opensc_session
//! ```
//!
//! It rewrites `conformance/tests/data/opensc-session.transcript`, which
//! `tests/golden_transcript.rs` replays in-process byte for byte.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vscard_conformance::cards::golden_card;
use vscard_conformance::transcript::to_text;
use vscard_testkit::{PcscdOptions, PrivatePcscd, rerun_process_in_namespace};
use vscard_vpcd::{Bridge, BridgeConfig};

const COMMANDS: &[&[&str]] = &[
    &["pkcs15-tool", "-D"],
    &["pkcs11-tool", "-L"],
    &[
        "pkcs11-tool",
        "--login",
        "--pin",
        "123456",
        "--sign",
        "--id",
        "01",
        "-m",
        "SHA256-RSA-PKCS",
        "-i",
        "{data}",
        "-o",
        "{out}",
    ],
    &[
        "pkcs11-tool",
        "--login",
        "--pin",
        "123456",
        "--sign",
        "--id",
        "02",
        "-m",
        "ECDSA",
        "-i",
        "{digest}",
        "-o",
        "{out}",
    ],
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rerun_process_in_namespace()?;
    let pcscd = PrivatePcscd::start_here(PcscdOptions::default())?;
    let mut card = golden_card()?;
    card.record_transcript(true);
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![card], config)?;
    pcscd.wait_for_card(0, Duration::from_secs(5))?;

    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let digest = work.path().join("digest");
    std::fs::write(&data, b"vscard golden transcript")?;
    std::fs::write(&digest, [0x5Au8; 32])?;
    let out = work.path().join("out");
    let mut header = String::from(
        "# OpenSC session with the golden card (conformance/src/cards.rs),\n# recorded by examples/record_opensc_session.rs:\n",
    );
    for command in COMMANDS {
        let args: Vec<String> = command
            .iter()
            .map(|a| {
                a.replace("{data}", &data.display().to_string())
                    .replace("{digest}", &digest.display().to_string())
                    .replace("{out}", &out.display().to_string())
            })
            .collect();
        let status = Command::new(&args[0]).args(&args[1..]).status()?;
        if !status.success() {
            return Err(format!("{} failed: {status}", args.join(" ")).into());
        }
        header.push_str(&format!("#   {}\n", command.join(" ")));
    }
    let mut cards = bridge.shutdown();
    let card = cards.pop().ok_or("the bridge gave no card back")?;
    let mut card = card;
    let transcript = card.take_transcript();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/opensc-session.transcript");
    std::fs::write(&path, header + &to_text(&transcript))?;
    println!("{} events written to {}", transcript.len(), path.display());
    Ok(())
}
