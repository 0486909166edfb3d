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

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bridge;
pub mod codec;
pub mod control;
mod net;
mod session;

pub use bridge::{
    ACKNOWLEDGE, Backoff, Bridge, BridgeConfig, BridgeError, BridgeHandle, CardStatus, Link,
    Location, Mode, Observer, VPCD_PORT, trace_line,
};
pub use codec::VpcdRequest;
