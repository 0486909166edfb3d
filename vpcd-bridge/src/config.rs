//! The bridge's settings: where the cards meet vpcd, retry pacing, and who
//! hears about connections. Plain data, shared by the handle and the card
//! threads.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use vscard_emulator::Exchange;

use crate::peer::{PeerError, PeerPolicy};
use crate::reader_conf::ReaderSlot;
use crate::status::Location;

/// vpcd's default port (`0x8C7B`, reader slot 0); slot `i` listens on
/// `35963 + i`.
pub const VPCD_PORT: u16 = 35963;

/// Where the cards meet vpcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Connect to vpcd (the default reader configuration): card `i` goes to
    /// `port + i` of `host`. The reader names are not known.
    Client {
        /// Host name or address of pcscd's machine.
        host: String,
        /// vpcd's port for the first card.
        port: u16,
    },
    /// Connect to vpcd's slots as pcscd's reader configuration lays them
    /// out ([`crate::reader_conf`]): card `i` goes to `slots[i]`, named as
    /// the configuration names it. Cards past the last slot go to the
    /// ports after it (no reader listens there until one is configured).
    Slots {
        /// Host name or address of pcscd's machine.
        host: String,
        /// The slots, in the order cards take them.
        slots: Vec<ReaderSlot>,
    },
    /// Listen and let vpcd connect (a reader configured with a host name):
    /// card `i` listens on `port + i` of the address.
    Reverse {
        /// Where the first card listens.
        listen: SocketAddr,
    },
}

impl Default for Mode {
    fn default() -> Mode {
        Mode::Client {
            host: "127.0.0.1".to_owned(),
            port: VPCD_PORT,
        }
    }
}

/// How often a card retries to reach vpcd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay after a failure.
    pub initial: Duration,
    /// The longest delay. vpcd polls for cards about every 400 ms, so a cap
    /// of 250 ms keeps "card back within a second of vpcd listening".
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(250),
        }
    }
}

/// Hears what the cards do (the CLI prints it; tests may record it).
/// Called from the card threads.
pub trait Observer: Send + Sync {
    /// vpcd spoke on a new connection: pcscd now sees the card.
    fn serving(&self, card: usize, location: &Location) {
        let _ = (card, location);
    }

    /// A connection ended (removal, vpcd gone, a protocol error).
    fn disconnected(&self, card: usize, reason: &str) {
        let _ = (card, reason);
    }

    /// One APDU was answered (only with [`BridgeConfig::trace`]).
    fn exchange(&self, card: usize, exchange: &Exchange) {
        let _ = (card, exchange);
    }

    /// The peer check refused what listens on the card's port
    /// ([`BridgeConfig::peer`]): the connection was closed before the card
    /// answered anything, and the card's thread has stopped.
    fn refused(&self, card: usize, error: &PeerError) {
        let _ = (card, error);
    }
}

/// The bridge's settings.
#[derive(Clone, Default)]
pub struct BridgeConfig {
    /// Client or reverse mode.
    pub mode: Mode,
    /// Record each exchange and report it to the observer.
    pub trace: bool,
    /// Retry pacing.
    pub backoff: Backoff,
    /// Whom a card accepts as vpcd in client mode (default: root's pcscd,
    /// checked at each connection).
    pub peer: PeerPolicy,
    /// Who hears about connections and exchanges.
    pub observer: Option<Arc<dyn Observer>>,
    /// Touch a card this long after one of its commands started to wait
    /// for a touch (`serve --auto-touch MS`); `None`: only a press
    /// ([`crate::BridgeHandle::touch`]) touches.
    pub auto_touch: Option<Duration>,
    /// How long an operation waits for a touch before it answers as
    /// timed out (`serve --touch-timeout SECONDS`); `None`: a YubiKey's
    /// [`crate::TOUCH_TIMEOUT`], 15 s.
    pub touch_timeout: Option<Duration>,
}

impl fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("mode", &self.mode)
            .field("trace", &self.trace)
            .field("backoff", &self.backoff)
            .field("peer", &self.peer)
            .field("observer", &self.observer.is_some())
            .field("auto_touch", &self.auto_touch)
            .field("touch_timeout", &self.touch_timeout)
            .finish()
    }
}
