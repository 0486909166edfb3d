//! `vscard-conformance`: runs the scenarios against one or more transports
//! and prints a table of scenario x result (also as Markdown and JSON).
//!
//! ```text
//! vscard-conformance --transport in-process --transport private-pcscd --destructive \
//!     --markdown conformance/REPORT.md --json conformance/REPORT.json
//! vscard-conformance --transport pcsc --reader "Yubico" --pin 123456 --puk 12345678
//! ```
//!
//! `in-process` and `private-pcscd` make their own card (the journey card:
//! the demo holder with two roles); `pcsc` uses whatever card is in the
//! named reader, with the secrets given on the command line (defaults: the
//! demo card's). Destructive scenarios (blocking the PIN, GENERATE, PUT
//! DATA) run only with `--destructive`. Exit code 1 when a scenario fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use vscard_conformance::TransportError;
use vscard_conformance::cards::{
    TestCardError, card_with, facts_for, journey_profile, journey_state,
};
use vscard_conformance::report::{TransportReport, json, markdown, summary};
use vscard_conformance::{CardFacts, InProcess, Pcsc, Transport, run_all, scenarios};

/// Why a run stopped before it could report (exit code 2); a failing
/// scenario is a result, not one of these.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The journey card could not be made.
    #[error("the journey card: {0}")]
    JourneyCard(#[source] &'static TestCardError),
    /// The journey card did not build around its state.
    #[error("the journey card: {0}")]
    Card(#[from] vscard_emulator::CardError),
    /// The private namespaces or pcscd could not be set up.
    #[error("private pcscd: {0}")]
    Harness(#[from] vscard_testkit::HarnessError),
    /// The vpcd bridge did not start.
    #[error("vpcd bridge: {0}")]
    Bridge(#[from] vscard_vpcd::BridgeError),
    /// The PC/SC reader could not be used.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// `--management-key` is not hex.
    #[error("--management-key: {0}")]
    ManagementKey(#[source] hex::FromHexError),
    /// A report file could not be written.
    #[error("{}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// The journey card in this process.
    InProcess,
    /// The journey card behind the vpcd bridge and a pcscd of its own, in
    /// private namespaces (Linux, root, pcscd and vsmartcard-vpcd).
    PrivatePcscd,
    /// The card in a PC/SC reader (`--reader`).
    Pcsc,
}

#[derive(Debug, Parser)]
#[command(version, about = "Run vscard's conformance scenarios")]
struct Args {
    /// Transports to run, in order.
    #[arg(long = "transport", value_enum, default_values_t = [Kind::InProcess])]
    transports: Vec<Kind>,
    /// Part of the reader name, for `--transport pcsc`.
    #[arg(long, default_value = "Virtual PCD")]
    reader: String,
    /// Also run scenarios that change the card for good.
    #[arg(long)]
    destructive: bool,
    /// Write the table as Markdown here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// PIN of the card in the reader (`--transport pcsc`).
    #[arg(long, default_value = "123456")]
    pin: String,
    /// PUK / unlock code of the card in the reader.
    #[arg(long, default_value = "654321")]
    puk: String,
    /// Management key of the card in the reader, hex.
    #[arg(
        long,
        default_value = "010203040506070801020304050607080102030405060708"
    )]
    management_key: String,
    /// Its algorithm: 3 (3DES), 8, 10, 12 (AES-128/192/256).
    #[arg(long, default_value_t = 3)]
    management_algorithm: u8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("vscard-conformance: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, RunError> {
    if args.transports.contains(&Kind::PrivatePcscd) {
        // Re-runs this whole program inside private namespaces (never
        // returns outside them).
        vscard_testkit::rerun_process_in_namespace()?;
    }
    let mut reports = Vec::new();
    for kind in &args.transports {
        reports.push(run_transport(*kind, args)?);
    }
    let table = markdown(&reports);
    println!("{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, report_document(&table)).map_err(|source| RunError::Write {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, json(&reports) + "\n").map_err(|source| RunError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(reports.iter().all(|r| summary(&r.results).1 == 0))
}

fn run_transport(kind: Kind, args: &Args) -> Result<TransportReport, RunError> {
    let scenarios = scenarios::all();
    let journey_facts = facts_for(&journey_profile());
    let (name, results) = match kind {
        Kind::InProcess => {
            let card = card_with(journey_state().map_err(RunError::JourneyCard)?)?;
            let mut transport = InProcess::new(card);
            (
                "in-process".to_owned(),
                run_all(&scenarios, &mut transport, &journey_facts, args.destructive),
            )
        }
        Kind::PrivatePcscd => {
            let pcscd = vscard_testkit::PrivatePcscd::start_here(Default::default())?;
            let card = card_with(journey_state().map_err(RunError::JourneyCard)?)?;
            let config = vscard_vpcd::BridgeConfig {
                mode: pcscd.bridge_mode(),
                // The touch scenario's signature gives up after this.
                touch_timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            };
            let _bridge = vscard_vpcd::Bridge::start(vec![card], config)?;
            pcscd.wait_for_card(0, Duration::from_secs(5))?;
            let mut transport = Pcsc::connect(&pcscd.reader(0))?;
            let results = run_all(&scenarios, &mut transport, &journey_facts, args.destructive);
            ("pcscd + vpcd".to_owned(), results)
        }
        Kind::Pcsc => {
            let facts = CardFacts {
                pin: args.pin.as_bytes().to_vec(),
                puk: args.puk.as_bytes().to_vec(),
                management_key: hex::decode(&args.management_key)
                    .map_err(RunError::ManagementKey)?,
                management_algorithm: args.management_algorithm,
                uuid: None,
                ..CardFacts::default()
            };
            let mut transport = Pcsc::connect(&args.reader)?;
            let name = transport.name();
            (
                name,
                run_all(&scenarios, &mut transport, &facts, args.destructive),
            )
        }
    };
    Ok(TransportReport {
        transport: name,
        results,
    })
}

fn report_document(table: &str) -> String {
    format!(
        "# vscard conformance report\n\n\
         Generated by `cargo run -p vscard-conformance -- --transport in-process --transport private-pcscd \
         --destructive --markdown conformance/REPORT.md --json conformance/REPORT.json` \
         (run as root: the private-pcscd transport uses Linux namespaces). Each row is one scenario \
         (`conformance/src/scenarios/`); `passed` means every status word and signature it checks held.\n\n\
         Physical cards: none has been run through this suite yet; `--transport pcsc --reader NAME` \
         runs it against one (without `--destructive` it does not block PINs or replace keys).\n\n{table}"
    )
}
