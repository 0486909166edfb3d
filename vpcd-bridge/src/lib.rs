//! The vpcd bridge: connects virtual cards to pcscd through the vsmartcard
//! vpcd driver. A library: typed errors, no printing; the `vscard` command
//! line (the `cli/` crate) decides what to show.
//!
//! - [`codec`]: the vpcd frame format, decoded into [`VpcdRequest`]s.
//! - [`Bridge`] / [`BridgeHandle`]: each card on its own thread, in client
//!   mode (connect to vpcd, the default) or reverse mode (vpcd connects),
//!   reconnecting with capped backoff; insert, remove and status at run
//!   time.
//! - [`control`]: the Unix control socket behind `vscard ctl`.
//! - [`peer`]: who listens on vpcd's port (root's pcscd, or refused).
//! - [`reader_conf`]: pcscd's reader configuration: which ports vpcd
//!   listens on and the reader names pcscd gives them.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// A library never prints: what reaches a terminal is the caller's choice
// (issue 11); events go to `tracing` and the `Observer`.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod bridge;
pub mod codec;
mod config;
pub mod control;
mod error;
mod labels;
mod net;
pub mod peer;
pub mod reader_conf;
mod session;
mod status;
pub mod touch;

pub use bridge::{ACKNOWLEDGE, Bridge, BridgeHandle, trace_line};
pub use codec::VpcdRequest;
pub use config::{Backoff, BridgeConfig, Mode, Observer, VPCD_PORT};
pub use error::BridgeError;
pub use peer::{PeerError, PeerPolicy};
pub use reader_conf::ReaderSlot;
pub use session::vpcd_port;
pub use status::{CardStatus, Link, Location};
pub use touch::{TOUCH_TIMEOUT, Touched};
