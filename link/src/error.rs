//! The link's errors.

use std::path::PathBuf;

use thiserror::Error;

use crate::frame::FrameError;

/// What went wrong on a link, in its state, or with a pairing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A file of the state folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A file of the state folder is malformed.
    #[error("{}: {reason}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The network failed.
    #[error("network: {0}")]
    Net(#[from] std::io::Error),
    /// The Noise library refused (a handshake or a message that fails
    /// authentication).
    #[error("noise: {0}")]
    Noise(String),
    /// No randomness from the system.
    #[error("no randomness: {0}")]
    Random(String),
    /// A malformed pairing URI (the secret is never in the message).
    #[error("pairing URI {0}")]
    BadUri(String),
    /// The peer is refused: unknown key, no such pairing, a used or
    /// expired secret, a relay key that is not the one pinned.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A frame could not be decoded or encoded.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer closed the connection (with its reason, when it gave one).
    #[error("closed by the peer{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// Nothing arrived within the keep-alive timeout.
    #[error("peer silent for {0:?}")]
    Silent(std::time::Duration),
    /// The target names no pinned relay.
    #[error(
        "{0} is not a paired relay: pair first with `vscard serve CARD.json --link-file URI-FILE` (the URI from `vscard relay pair`)"
    )]
    NotPaired(String),
}

impl From<snow::Error> for LinkError {
    fn from(error: snow::Error) -> LinkError {
        LinkError::Noise(error.to_string())
    }
}
