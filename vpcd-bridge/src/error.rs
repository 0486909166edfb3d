//! The errors of the bridge's API.

use std::time::Duration;

use thiserror::Error;

use crate::peer::PeerError;
use crate::status::CardStatus;

/// Errors of the bridge's API.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// No card with this index.
    #[error("no card {index} (the bridge has {count})")]
    NoSuchCard {
        /// The index asked for.
        index: usize,
        /// How many cards there are.
        count: usize,
    },
    /// A wait ran out.
    #[error("card {index}: still {status} after {waited:?}")]
    Timeout {
        /// The card.
        index: usize,
        /// Its last state.
        status: CardStatus,
        /// How long it waited.
        waited: Duration,
    },
    /// The tokio runtime or the thread for a card could not be created.
    #[error("cannot start card {index}: {source}")]
    Start {
        /// The card.
        index: usize,
        /// Why.
        source: std::io::Error,
    },
    /// A port would pass 65535.
    #[error("card {index} would need port {port}, past 65535")]
    PortRange {
        /// The card.
        index: usize,
        /// The port it would need.
        port: u32,
    },
    /// The card's thread has stopped (the bridge is shutting down, or the
    /// peer check refused vpcd).
    #[error("card {index} is stopped")]
    Stopped {
        /// The card.
        index: usize,
    },
    /// The peer check refuses the configured vpcd address before any
    /// connection (an address that is not loopback).
    #[error("card {index}: {source}")]
    Peer {
        /// The card.
        index: usize,
        /// Why.
        source: PeerError,
    },
}
