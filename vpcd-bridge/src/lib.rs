//! The vpcd bridge: connects virtual cards to pcscd through the vsmartcard
//! vpcd driver, and hosts the `vscard` command line.
//!
//! - [`codec`]: the vpcd frame format, decoded into [`VpcdRequest`]s.
//! - [`Bridge`] / [`BridgeHandle`]: each card on its own thread, in client
//!   mode (connect to vpcd, the default) or reverse mode (vpcd connects),
//!   reconnecting with capped backoff; insert, remove and status at run
//!   time.
//! - [`control`]: the Unix control socket behind `vscard ctl`.
//! - [`cards`]: PIV card image files: issue, read, renew, open for
//!   serving.
//! - [`CardSource`]: where `vscard serve` gets its cards ([`PivCardSource`]:
//!   card images, or the demo card issued on first use).
//! - [`fixture`]: an echo test applet (a test fixture, not a product card).
//! - `testing` (feature `testing`): a private pcscd in its own namespaces,
//!   for tests through real PC/SC.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bridge;
pub mod cards;
pub mod codec;
pub mod control;
pub mod fixture;
mod net;
mod serve;
mod session;
mod source;
#[cfg(feature = "testing")]
pub mod testing;

pub use bridge::{
    ACKNOWLEDGE, Backoff, Bridge, BridgeConfig, BridgeError, BridgeHandle, CardStatus, Link,
    Location, Mode, Observer, VPCD_PORT, trace_line,
};
pub use codec::VpcdRequest;
pub use serve::{ServeOptions, serve};
pub use source::{
    CardSource, DEMO_CARD_FILE, EchoFixtureSource, PIV_HINT, PivCardSource, ServedCard,
};
