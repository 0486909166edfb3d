//! The bridge: cards, each on its own thread, connected to vpcd.
//!
//! [`Bridge::start`] takes ownership of the cards and gives back a
//! [`BridgeHandle`]. Each card runs on a dedicated thread with its own
//! single-threaded tokio runtime that owns the [`Card`]: the card's work
//! (an RSA signature, a key generation) runs inline on that thread, so it
//! never delays another card, and a card handles one APDU at a time, as a
//! real card does (vpcd waits for each answer anyway).
//!
//! The handle is synchronous (tests call it from plain `#[test]`s):
//! [`BridgeHandle::remove`] closes the card's vpcd connection, as pulling
//! the card out of the reader; [`BridgeHandle::insert`] reconnects;
//! [`BridgeHandle::wait_for`] waits for a state without sleeping blindly.
//! Dropping the handle (or [`BridgeHandle::shutdown`]) closes every
//! connection and joins the threads.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::watch;
use vscard_emulator::{Card, Exchange};

use crate::session;

/// vpcd's default port (`0x8C7B`, reader slot 0); slot `i` listens on
/// `35963 + i`.
pub const VPCD_PORT: u16 = 35963;

/// Where the cards meet vpcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Connect to vpcd (the default reader configuration): card `i` goes to
    /// `port + i` of `host`.
    Client {
        /// Host name or address of pcscd's machine.
        host: String,
        /// vpcd's port for the first card.
        port: u16,
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

/// Where a connected card can be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The vpcd end of the connection.
    pub peer: SocketAddr,
    /// The pcscd reader name, when it can be known: in client mode with
    /// vpcd's default ports, slot `i` is `Virtual PCD 00 0i`.
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
    /// Who hears about connections and exchanges.
    pub observer: Option<Arc<dyn Observer>>,
}

impl fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("mode", &self.mode)
            .field("trace", &self.trace)
            .field("backoff", &self.backoff)
            .field("observer", &self.observer.is_some())
            .finish()
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
    fn new() -> StatusCell {
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
    fn hang_up(&self) {
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

    fn wait_for(
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

/// One card's thread and its controls.
struct CardSlot {
    desired: watch::Sender<Desired>,
    status: Arc<StatusCell>,
    thread: Mutex<Option<JoinHandle<Card>>>,
}

/// How long [`BridgeHandle::insert`] and [`BridgeHandle::remove`] wait for
/// the card's thread to act.
pub const ACKNOWLEDGE: Duration = Duration::from_secs(10);

/// Starts bridges.
#[derive(Debug)]
pub struct Bridge;

impl Bridge {
    /// Starts one thread per card; each card is inserted and starts
    /// reaching vpcd at once.
    pub fn start(cards: Vec<Card>, config: BridgeConfig) -> Result<BridgeHandle, BridgeError> {
        let mut handle = BridgeHandle { slots: Vec::new() };
        for (index, mut card) in cards.into_iter().enumerate() {
            if config.trace {
                card.record_exchanges(true);
            }
            let endpoint = session::Endpoint::for_card(&config.mode, index)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| BridgeError::Start { index, source })?;
            let (desired, desired_rx) = watch::channel(Desired::Inserted);
            let status = Arc::new(StatusCell::new());
            let worker = session::Worker {
                index,
                endpoint,
                config: config.clone(),
                desired: desired_rx,
                status: Arc::clone(&status),
            };
            let thread = std::thread::Builder::new()
                .name(format!("vscard-card-{index}"))
                .spawn(move || worker.run(runtime, card))
                .map_err(|source| BridgeError::Start { index, source })?;
            handle.slots.push(CardSlot {
                desired,
                status,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(handle)
    }
}

/// Controls a running bridge: insert, remove, status, shutdown.
pub struct BridgeHandle {
    slots: Vec<CardSlot>,
}

impl fmt::Debug for BridgeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeHandle")
            .field("cards", &self.slots.len())
            .finish()
    }
}

impl BridgeHandle {
    /// How many cards the bridge serves.
    pub fn card_count(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, index: usize) -> Result<&CardSlot, BridgeError> {
        self.slots.get(index).ok_or(BridgeError::NoSuchCard {
            index,
            count: self.slots.len(),
        })
    }

    /// Puts the card back in the reader: it reconnects to vpcd. Returns
    /// once the card's thread has taken the card back (it may still be
    /// connecting); waits at most [`ACKNOWLEDGE`] (the card may be busy
    /// with a slow command).
    pub fn insert(&self, index: usize) -> Result<(), BridgeError> {
        self.set_desired(index, Desired::Removed, Desired::Inserted)?;
        self.wait_for(index, ACKNOWLEDGE, |s| {
            s.inserted || s.link == Link::Stopped
        })
        .map(drop)
    }

    /// Pulls the card out: its vpcd connection is closed and pcscd reports
    /// the card gone on its next poll (vpcd polls about every 400 ms). The
    /// card loses power. Returns once the connection is closed; waits at
    /// most [`ACKNOWLEDGE`] (the card may be busy with a slow command).
    pub fn remove(&self, index: usize) -> Result<(), BridgeError> {
        self.set_desired(index, Desired::Inserted, Desired::Removed)?;
        self.wait_for(index, ACKNOWLEDGE, |s| {
            s.link == Link::Removed || s.link == Link::Stopped
        })
        .map(drop)
    }

    fn set_desired(&self, index: usize, from: Desired, to: Desired) -> Result<(), BridgeError> {
        let slot = self.slot(index)?;
        let changed = slot.desired.send_if_modified(|desired| {
            let change = *desired == from;
            if change {
                *desired = to;
            }
            change
        });
        // After the new wish is visible: a session that registers its
        // socket later sees the wish itself and ends.
        if changed && to != Desired::Inserted {
            slot.status.hang_up();
        }
        Ok(())
    }

    /// A snapshot of the card's state.
    pub fn status(&self, index: usize) -> Result<CardStatus, BridgeError> {
        Ok(self.slot(index)?.status.get())
    }

    /// Waits until the card's state satisfies `predicate`. It is checked
    /// again on every change of link, power or insertion, not on every
    /// APDU: to wait for an APDU count, poll [`BridgeHandle::status`].
    pub fn wait_for(
        &self,
        index: usize,
        timeout: Duration,
        predicate: impl Fn(&CardStatus) -> bool,
    ) -> Result<CardStatus, BridgeError> {
        self.slot(index)?
            .status
            .wait_for(timeout, predicate)
            .map_err(|status| BridgeError::Timeout {
                index,
                status,
                waited: timeout,
            })
    }

    /// Closes every connection, stops the threads, and gives the cards
    /// back (in the order given to [`Bridge::start`]; a card whose thread
    /// panicked is missing).
    pub fn shutdown(self) -> Vec<Card> {
        self.stop()
    }

    /// As [`BridgeHandle::shutdown`], through a shared reference (the
    /// handle may be shared with a control socket). A second call returns
    /// no cards.
    pub fn stop(&self) -> Vec<Card> {
        for slot in &self.slots {
            slot.desired.send_replace(Desired::Shutdown);
            slot.status.hang_up();
        }
        let mut cards = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let thread = slot
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                match thread.join() {
                    Ok(card) => cards.push(card),
                    Err(_) => {
                        tracing::error!(target: "vscard::vpcd", card = index, "card thread panicked")
                    }
                }
            }
        }
        cards
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `--trace` line for an exchange: `VERIFY PIN -> 63C2 (2 tries
/// left)`, `GET DATA -> 9000 (71 bytes)`.
pub fn trace_line(exchange: &Exchange) -> String {
    match exchange.response_len {
        0 => format!("{} -> {}", exchange.command, exchange.status),
        1 => format!("{} -> {} (1 byte)", exchange.command, exchange.status),
        n => format!("{} -> {} ({n} bytes)", exchange.command, exchange.status),
    }
}
