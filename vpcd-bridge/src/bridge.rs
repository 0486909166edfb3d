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
//! [`BridgeHandle::swap`] puts another card in the reader;
//! [`BridgeHandle::wait_for`] waits for a state without sleeping blindly.
//! Dropping the handle (or [`BridgeHandle::shutdown`]) closes every
//! connection and joins the threads.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;
use vscard_emulator::{Card, Exchange};

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::session;
use crate::status::{CardStatus, Desired, Link, StatusCell};
use crate::touch::{TouchButton, Touched};

/// One card's thread and its controls.
struct CardSlot {
    desired: watch::Sender<Desired>,
    status: Arc<StatusCell>,
    swap: Arc<session::CardSwap>,
    touch: Arc<TouchButton>,
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
            endpoint
                .precheck(config.peer)
                .map_err(|source| BridgeError::Peer { index, source })?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| BridgeError::Start { index, source })?;
            let (desired, desired_rx) = watch::channel(Desired::Inserted);
            let status = Arc::new(StatusCell::new());
            let swap = Arc::new(session::CardSwap::default());
            let touch = Arc::new(TouchButton::default());
            let worker = session::Worker {
                index,
                endpoint,
                config: config.clone(),
                desired: desired_rx,
                status: Arc::clone(&status),
                swap: Arc::clone(&swap),
                touch: Arc::clone(&touch),
            };
            let thread = std::thread::Builder::new()
                .name(format!("vscard-card-{index}"))
                .spawn(move || worker.run(runtime, card))
                .map_err(|source| BridgeError::Start { index, source })?;
            handle.slots.push(CardSlot {
                desired,
                status,
                swap,
                touch,
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

    /// Swaps the card in reader `index` for `card`, as a person swapping
    /// cards would: the old card is pulled out (its connection closed,
    /// power lost), `card` goes in, and the old card is given back (so
    /// the caller can release its image). Waits at most [`ACKNOWLEDGE`]
    /// for each step; on error `card` is dropped only if the thread took
    /// it.
    pub fn swap(&self, index: usize, card: Card) -> Result<Card, BridgeError> {
        let slot = self.slot(index)?;
        self.remove(index)?;
        drop(slot.swap.offer(card));
        let inserted = self.insert(index);
        match slot.swap.take_outgoing() {
            Some(old) => inserted.map(|()| old),
            None => {
                // The thread stopped (or timed out) before it took the new
                // card: take it back rather than leave it on offer.
                drop(slot.swap.withdraw());
                Err(inserted.err().unwrap_or(BridgeError::Stopped { index }))
            }
        }
    }

    /// Touches card `index` (its button, [`crate::touch`]): completes the
    /// command that waits for a touch, or keeps the touch for the next
    /// one that asks within [`crate::TOUCH_TIMEOUT`].
    pub fn touch(&self, index: usize) -> Result<Touched, BridgeError> {
        Ok(self.slot(index)?.touch.press())
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
            slot.touch.cancel();
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
            slot.touch.cancel();
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
