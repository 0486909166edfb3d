//! Benchmarks for vscard: criterion benches of the in-process card
//! (`cargo bench -p vscard-benches`) and the harnesses behind
//! `BENCHMARKS.md` (`vscard-bench --write BENCHMARKS.md`).
//!
//! Contract: every figure a harness reports is a ratio against a baseline
//! measured by the same process in the same run (OpenSSL, a bare file
//! write, a trivial responder card on the same pcscd), because the
//! machines these run on are shared and absolute times drift from run to
//! run. Nothing here runs as a timed test: `tests/smoke.rs` only checks
//! that each harness produces its rows with a tiny budget.

#![forbid(unsafe_code)]

pub mod allocations;
pub mod apdu;
pub mod crypto;
pub mod custody;
pub mod fixture;
pub mod host_process;
pub mod hosted;
pub mod inprocess;
pub mod issuance;
pub mod link;
pub mod machine;
pub mod measure;
pub mod ocsp;
pub mod pcscd;
pub mod persistence;
pub mod python;
pub mod report;
pub mod scale;

/// Why a harness could not produce its rows.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The emulated card failed (not an APDU status: a runtime error).
    #[error("card: {0}")]
    Card(#[from] vscard_emulator::CardError),
    /// A command answered another status word than the harness expects.
    #[error("{command}: unexpected status {sw:04X}")]
    Status {
        /// The command.
        command: String,
        /// The status word.
        sw: u16,
    },
    /// A card could not be reached (PC/SC, or the in-process card).
    #[error("transport: {0}")]
    Transport(#[from] vscard_testkit::TransportError),
    /// The host-side client could not complete a command.
    #[error("{command}: {source}")]
    Client {
        /// The command.
        command: String,
        /// What went wrong.
        source: vscard_testkit::ClientError,
    },
    /// A response too short to hold a status word.
    #[error("{0}: response without a status word")]
    ShortResponse(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Issuing the benchmark card failed.
    #[error("issuance: {0}")]
    Issuance(String),
    /// Applet state could not be saved or loaded.
    #[error("state: {0}")]
    State(#[from] vscard_emulator::StateError),
    /// A store failed.
    #[error("store: {0}")]
    Store(#[from] vscard_emulator::StoreError),
    /// A crypto primitive failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// `openssl` (the command) could not be run or read.
    #[error("openssl: {0}")]
    Openssl(String),
    /// The private pcscd harness failed.
    #[error("pcscd harness: {0}")]
    Harness(#[from] vscard_testkit::HarnessError),
    /// The bridge could not start.
    #[error("bridge: {0}")]
    Bridge(String),
    /// The card host or its PostgreSQL cluster failed.
    #[error("card host: {0}")]
    Host(String),
}

/// `BenchError::Io` with a description.
pub fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}
