//! The link: a card away from its reader, reached over an encrypted,
//! mutually authenticated connection.
//!
//! ```text
//!  phone / card host                      computer
//!  vscard serve CARD --link  ==Noise==>  vscard relay  -(loopback)->  vpcd  ->  pcscd  ->  PC/SC apps
//! ```
//!
//! # Decision: Noise (`snow`), not TLS (rustls)
//!
//! Both are well-kept libraries and either would do; Noise fits better:
//!
//! - **Raw keys are native.** Both ends are identified by a bare X25519
//!   key pinned at pairing; there is no name to certify. With rustls that
//!   means self-signed certificates (an X.509 encoder, custom verifiers on
//!   both sides) or the newer raw-public-key support; with Noise the
//!   pinned key *is* the handshake's static key.
//! - **Pairing by a one-time secret is a pattern, not a construction.**
//!   `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` mixes the secret from the QR
//!   code in as a pre-shared key: without it the last handshake message
//!   fails to decrypt, and the secret never crosses the wire. TLS would
//!   need an external PSK mode (not in rustls) or an exchange of our own
//!   on top of the channel.
//! - **Pinned reconnects are one round trip.** `Noise_IK`: the card knows
//!   the relay's key; its first message carries its own static key,
//!   which the relay looks up among the pinned cards before answering. A
//!   stranger gets no answer at all. Because IK's first message can be
//!   replayed, the relay connects the card to vpcd only after the card's
//!   first transport frame (its key confirmation) has authenticated.
//! - **Small.** snow with one cipher suite (ChaChaPoly, BLAKE2s, 25519; no
//!   ring, no certificates), which the phone build also carries.
//!
//! What Noise does not give, and this crate adds (no cryptography): the
//! framing (a 2-byte big-endian length before each message, since a
//! Noise message is at most 65535 bytes), a cleartext hello naming the
//! handshake (bound into it as the prologue), and the typed [`Frame`]s.
//! Transport messages carry sequential nonces, so a replayed, reordered
//! or changed message fails authentication; the receiver then drops the
//! link before the frame reaches the card.
//!
//! # Roles and state
//!
//! [`run_relay`] (the computer) and [`serve_card`] / [`CardLinkHandle`]
//! (the card's side). Keys and pins live in [`LinkState`] (mode 0600,
//! written atomically); secrets are zeroized in memory.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod card;
mod error;
pub mod frame;
mod handshake;
pub mod hosted;
mod noise;
mod relay;
pub mod state;

use std::time::Duration;

pub use card::{
    CardLinkConfig, CardLinkHandle, CardObserver, UnansweredFrame, answer_frame, serve_card,
};
pub use error::LinkError;
pub use frame::Frame;
pub use handshake::{Peer, Target, accept, connect};
pub use noise::Link;
pub use relay::{RelayConfig, RelayObserver, run_relay};
pub use state::{Identity, LinkState, PairingUri, PinnedCard, PinnedRelay, RelayInfo, fingerprint};

/// The relay's default port (vpcd's is 35963).
pub const DEFAULT_PORT: u16 = 35950;

/// Keep-alive pacing: each side sends a keep-alive after `interval`
/// without sending, and drops a peer silent for `timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Idle time before a keep-alive.
    pub interval: Duration,
    /// Silence before the peer is dropped.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> KeepAlive {
        KeepAlive {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}
