//! vscard-conformance: what vscard guarantees, as scenarios.
//!
//! Each scenario is a plain function over a [`Session`], which speaks raw
//! APDUs through a [`Transport`]: the same scenarios run against the card
//! in this process, through pcscd and the vpcd bridge, or against a
//! physical card in a reader. Scenarios that would change a real card
//! irreversibly are marked destructive and run only when asked.

#![forbid(unsafe_code)]

pub mod cards;
pub mod facts;
pub mod pcsc_transport;
pub mod piv;
pub mod report;
pub mod scenario;
pub mod scenarios;
pub mod session;
pub mod transcript;
pub mod transport;

pub use facts::CardFacts;
pub use pcsc_transport::Pcsc;
pub use scenario::{Group, Outcome, Scenario, ScenarioResult, run_all, run_one};
pub use session::{Failure, Reply, Session};
pub use transport::{InProcess, Transport, TransportError};
