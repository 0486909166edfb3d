//! A card's state as the handle sees it ([`CardStatus`], [`Link`]) and the
//! cell its thread updates ([`StatusCell`]): the only state shared between
//! a card's thread and the [`crate::BridgeHandle`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where a connected card can be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The vpcd end of the connection.
    pub peer: SocketAddr,
    /// The pcscd reader name, when pcscd's reader configuration tells it
    /// ([`crate::Mode::Slots`]); never guessed from the port.
    pub reader: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reader {
            Some(reader) => write!(f, "{reader} (vpcd {})", self.peer),
            None => write!(f, "vpcd {}", self.peer),
        }
    }
}

/// What the card's thread is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Desired {
    /// In the reader: stay connected to vpcd, reconnect when it goes away.
    Inserted,
    /// Pulled out: no connection (in reverse mode, not even listening).
    Removed,
    /// The bridge is stopping.
    Shutdown,
}

/// The state of a card's link to vpcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Removed: not connected and not trying.
    Removed,
    /// Inserted, waiting for vpcd (connecting with backoff, or listening).
    Waiting,
    /// TCP connection up; vpcd has not spoken on it yet.
    Connected {
        /// The vpcd end.
        peer: SocketAddr,
    },
    /// vpcd has spoken on this connection: pcscd sees the card.
    Serving(Location),
    /// The card's thread has ended.
    Stopped,
}

/// A snapshot of one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardStatus {
    /// True unless removed.
    pub inserted: bool,
    /// The link to vpcd.
    pub link: Link,
    /// True while the card is powered.
    pub powered: bool,
    /// Connections on which vpcd has spoken, since the start.
    pub sessions: u64,
    /// APDUs answered since the start.
    pub apdus: u64,
}

impl CardStatus {
    /// True when pcscd sees the card (vpcd has spoken on the connection).
    pub fn is_serving(&self) -> bool {
        matches!(self.link, Link::Serving(_))
    }

    /// True when the card is in a reader pcscd reports present: inserted,
    /// and vpcd has spoken on the live connection. vpcd speaks first to
    /// poll for the card (its presence check asks for the ATR) and pcscd
    /// reports the reader's card present once that ATR came back, so this
    /// is the bridge-side view of PC/SC's `SCARD_STATE_PRESENT`, for
    /// callers that cannot reach pcscd themselves (another namespace,
    /// another machine).
    pub fn is_present(&self) -> bool {
        self.inserted && self.is_serving()
    }

    /// The card's state as a JSON object, for `vscard ctl PATH status
    /// --json`: `card`, `inserted`, `link` (`removed`, `waiting`,
    /// `connected`, `serving` or `stopped`), `present`
    /// ([`CardStatus::is_present`]), `reader` and `peer` (null when not
    /// known), `powered`, `sessions`, `apdus`.
    pub fn to_json(&self, card: usize) -> serde_json::Value {
        let (link, peer, reader) = match &self.link {
            Link::Removed => ("removed", None, None),
            Link::Waiting => ("waiting", None, None),
            Link::Connected { peer } => ("connected", Some(peer.to_string()), None),
            Link::Serving(location) => (
                "serving",
                Some(location.peer.to_string()),
                location.reader.clone(),
            ),
            Link::Stopped => ("stopped", None, None),
        };
        serde_json::json!({
            "card": card,
            "inserted": self.inserted,
            "link": link,
            "present": self.is_present(),
            "reader": reader,
            "peer": peer,
            "powered": self.powered,
            "sessions": self.sessions,
            "apdus": self.apdus,
        })
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = match &self.link {
            Link::Removed => "removed".to_owned(),
            Link::Waiting => "inserted, waiting for vpcd".to_owned(),
            Link::Connected { peer } => format!("inserted, connected to {peer}"),
            Link::Serving(location) => format!("inserted, in {location}"),
            Link::Stopped => "stopped".to_owned(),
        };
        let power = if self.powered { "powered" } else { "unpowered" };
        write!(f, "{link}, {power}, {} APDUs", self.apdus)
    }
}

/// A card's status, shared between its thread and the handle, with the
/// live vpcd socket so that the handle can hang it up: the card's thread
/// serves a connection with blocking reads (the fastest path through
/// pcscd), and removal or shutdown unblocks it by shutting the socket down.
#[derive(Debug)]
pub(crate) struct StatusCell {
    status: Mutex<CardStatus>,
    changed: Condvar,
    socket: Mutex<Option<std::net::TcpStream>>,
    // Counted apart from `status`: nobody waits for it, so answering an
    // APDU takes no lock and wakes no one (the per-APDU path stays as
    // short as a trivial card's).
    apdus: AtomicU64,
}

impl StatusCell {
    pub(crate) fn new() -> StatusCell {
        StatusCell {
            status: Mutex::new(CardStatus {
                inserted: true,
                link: Link::Waiting,
                powered: false,
                sessions: 0,
                apdus: 0,
            }),
            changed: Condvar::new(),
            socket: Mutex::new(None),
            apdus: AtomicU64::new(0),
        }
    }

    /// Registers (a clone of) the connection being served.
    pub(crate) fn attach(&self, socket: std::net::TcpStream) {
        *self.socket.lock().unwrap_or_else(PoisonError::into_inner) = Some(socket);
    }

    /// Forgets the connection (it ended).
    pub(crate) fn detach(&self) {
        self.socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Shuts the served connection down, which ends the card thread's
    /// blocking read; nothing to do between connections.
    pub(crate) fn hang_up(&self) {
        let socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(socket) = socket.as_ref() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    fn lock(&self) -> MutexGuard<'_, CardStatus> {
        // The status is plain data: a panic elsewhere cannot leave it torn.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the status and wakes waiters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut CardStatus)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Counts one answered APDU.
    pub(crate) fn count_apdu(&self) {
        self.apdus.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> CardStatus {
        let mut status = self.lock().clone();
        status.apdus = self.apdus.load(Ordering::Relaxed);
        status
    }

    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&CardStatus) -> bool,
    ) -> Result<CardStatus, CardStatus> {
        let deadline = Instant::now() + timeout;
        let mut status = self.lock();
        loop {
            let mut current = status.clone();
            current.apdus = self.apdus.load(Ordering::Relaxed);
            if predicate(&current) {
                return Ok(current);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(current);
            }
            status = self
                .changed
                .wait_timeout(status, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
