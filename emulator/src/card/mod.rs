//! [`Card`]: one smartcard as a value.
//!
//! A card has an ATR, a power state, installed applets, a channel table,
//! transient memory and a committed image behind a [`crate::Store`]. There is no
//! global state: cards are `Send` and any number run side by side.
//!
//! Power: a new card is off. [`Card::power_on`], [`Card::reset`] and
//! [`Card::power_off`] each invalidate transient memory, close every
//! channel but the basic one, forget security states, and select the
//! default applet (if any) implicitly on the basic channel.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use thiserror::Error;

mod builder;

pub use builder::CardBuilder;

use crate::apdu::SHORT_NE_MAX;
use crate::applet::Context;
use crate::channel::ChannelTable;
use crate::environment::FaultPlan;
use crate::services::Env;
use crate::store::{AppletState, CardImage, StateError, StoreError};
use crate::{Aid, Applet, Atr, Class, CommandApdu, Response, ResponseApdu, Status};

/// CLA `00`: the basic channel, no chaining, no secure messaging
/// (evaluated at compile time: the panic cannot happen at run time).
const BASIC_CLASS: Class = match Class::parse(0x00) {
    Ok(class) => class,
    Err(_) => panic!("00 is a class byte"),
};

/// Why a card could not be built or could not answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardError {
    /// A command was sent to a card that is not powered.
    #[error("the card is not powered")]
    NotPowered,
    /// Power was cut during the command (a [`FaultPlan`] fired): there is
    /// no answer and the card is now off.
    #[error("power was lost during the command")]
    PowerLost,
    /// The store could not load or write the image.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An applet could not load or save its state.
    #[error("applet {aid}: {source}")]
    State {
        /// The applet.
        aid: Aid,
        /// What went wrong.
        source: StateError,
    },
    /// Two applets with the same AID.
    #[error("two applets have the AID {0}")]
    DuplicateAid(Aid),
    /// The default applet named is not installed.
    #[error("the default applet {0} is not installed")]
    UnknownDefaultApplet(Aid),
    /// The operating system's random generator failed.
    #[error("cannot seed the card's random generator: {0}")]
    Rng(#[source] rand::rngs::SysError),
}

/// The card's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// No power: only [`Card::power_on`] and [`Card::reset`] do anything.
    Off,
    /// Powered and answering commands.
    On,
}

/// One decoded exchange, kept when exchange recording is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The logical channel.
    pub channel: u8,
    /// The command, as the runtime or applet described it (never secret
    /// data).
    pub command: String,
    /// The status word answered.
    pub status: Status,
    /// The number of response data bytes.
    pub response_len: usize,
    /// How long the card took.
    pub duration: Duration,
}

/// One event of a raw transcript ([`Card::record_transcript`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranscriptEvent {
    /// Power-on or reset (the card answered with its ATR).
    PowerOn,
    /// Power-off.
    PowerOff,
    /// One command APDU and the card's response APDU, byte for byte.
    Exchange {
        /// The command.
        command: Vec<u8>,
        /// The response (data and status word).
        response: Vec<u8>,
    },
}

/// An installed applet and its key in the image.
pub(crate) struct Slot {
    pub applet: Box<dyn Applet>,
    pub aid: Aid,
    pub key: String,
}

/// One virtual smartcard.
pub struct Card {
    atr: Atr,
    pub(crate) slots: Vec<Slot>,
    pub(crate) default_applet: Option<usize>,
    pub(crate) channels: ChannelTable,
    pub(crate) env: Env,
    power: PowerState,
    pub(crate) max_command_data: usize,
    catch_panics: bool,
    pub(crate) record: bool,
    last: Option<Exchange>,
    transcript: Option<Vec<TranscriptEvent>>,
}

impl Card {
    /// The ATR.
    pub fn atr(&self) -> &[u8] {
        self.atr.as_bytes()
    }

    /// The power state.
    pub fn power_state(&self) -> PowerState {
        self.power
    }

    /// True when powered.
    pub fn is_powered(&self) -> bool {
        self.power == PowerState::On
    }

    /// Cold start: powers the card on (or restarts it when already on) and
    /// returns the ATR.
    pub fn power_on(&mut self) -> &[u8] {
        self.note(TranscriptEvent::PowerOn);
        self.restart();
        self.power = PowerState::On;
        self.select_default_on_basic_channel();
        self.atr.as_bytes()
    }

    /// Warm reset; powers the card on if it was off. Returns the ATR.
    pub fn reset(&mut self) -> &[u8] {
        self.power_on()
    }

    /// Removes power: transient memory, selections and security states are
    /// gone.
    pub fn power_off(&mut self) {
        self.note(TranscriptEvent::PowerOff);
        self.restart();
        self.power = PowerState::Off;
    }

    fn restart(&mut self) {
        self.env.touch.clear();
        self.channels.close_all();
        self.env.power_epoch = self.env.next_stamp();
        for slot in &mut self.slots {
            slot.applet.power_reset();
        }
    }

    fn select_default_on_basic_channel(&mut self) {
        let stamp = self.env.next_stamp();
        if let Some(channel) = self.channels.open(0) {
            channel.selection = stamp;
        }
        if let Some(index) = self.default_applet {
            // A default applet that refuses selection leaves the basic
            // channel with nothing selected, as on a real card.
            let _ = self.select_implicitly(0, index);
        }
    }

    /// Sends one command APDU and returns the response APDU (data and
    /// status word). Malformed commands get a status word, never an error:
    /// errors are only for a card without power.
    pub fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        self.transmit_bytes(command)
            .map(|response| response.to_bytes())
    }

    /// [`Card::transmit`] for a typed command: the same exchange (traces
    /// and transcripts see the command's encoding), typed both ways.
    pub fn transmit_apdu(&mut self, command: &CommandApdu<'_>) -> Result<ResponseApdu, CardError> {
        self.transmit_bytes(&command.to_bytes())
    }

    /// SELECT by DF name (`00 A4 04 00 Lc aid 00`) on the basic channel.
    pub fn select(&mut self, aid: &Aid) -> Result<ResponseApdu, CardError> {
        let command = CommandApdu::new(BASIC_CLASS, 0xA4, 0x04, 0x00, aid.as_bytes(), SHORT_NE_MAX);
        self.transmit_apdu(&command)
    }

    fn transmit_bytes(&mut self, command: &[u8]) -> Result<ResponseApdu, CardError> {
        if !self.is_powered() {
            return Err(CardError::NotPowered);
        }
        // A new command: whatever waited for a touch has had its answer.
        self.abandon_touch();
        let describe =
            self.record || tracing::enabled!(target: "vscard::apdu", tracing::Level::DEBUG);
        // The clock is read only when the duration goes somewhere.
        let started = describe.then(Instant::now);
        let (response, channel, name) = self.exchange(command, describe);
        if self.env.torn {
            self.env.torn = false;
            self.power_off();
            self.reload_all();
            tracing::warn!(target: "vscard::apdu", "power cut during the command");
            return Err(CardError::PowerLost);
        }
        if let Some(name) = name {
            let exchange = Exchange {
                channel,
                command: name,
                status: response.status,
                response_len: response.data.len(),
                duration: started.map(|t| t.elapsed()).unwrap_or_default(),
            };
            self.trace(exchange);
        }
        if self.transcript.is_some() {
            self.note(TranscriptEvent::Exchange {
                command: command.to_vec(),
                response: response.to_bytes(),
            });
        }
        Ok(response)
    }

    pub(crate) fn trace(&mut self, exchange: Exchange) {
        tracing::debug!(
            target: "vscard::apdu",
            direction = "out",
            channel = exchange.channel,
            command = %exchange.command,
            sw = %exchange.status,
            response_len = exchange.response_len,
            micros = exchange.duration.as_micros() as u64,
            "exchange"
        );
        if self.record {
            self.last = Some(exchange);
        }
    }

    /// Records every power event and exchange byte for byte, for golden
    /// transcripts in tests. Unlike the trace, a transcript holds the data
    /// as sent, PINs included: use it with test cards only.
    pub fn record_transcript(&mut self, on: bool) {
        self.transcript = on.then(Vec::new);
    }

    /// The transcript recorded so far (recording goes on, empty).
    pub fn take_transcript(&mut self) -> Vec<TranscriptEvent> {
        self.transcript
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, event: TranscriptEvent) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(event);
        }
    }

    /// Keeps a decoded [`Exchange`] of every command for
    /// [`Card::last_exchange`] (used by `vscard serve --trace`).
    pub fn record_exchanges(&mut self, on: bool) {
        self.record = on;
        if !on {
            self.last = None;
        }
    }

    /// The last exchange, when recording is on.
    pub fn last_exchange(&self) -> Option<&Exchange> {
        self.last.as_ref()
    }

    /// Plans a power cut at a later persistent write (tearing tests).
    pub fn set_fault_plan(&mut self, plan: FaultPlan) {
        self.env.fault = plan;
    }

    /// True while a planned power cut has not fired yet.
    pub fn fault_pending(&self) -> bool {
        self.env.fault.is_armed()
    }

    /// The committed image (what a power cut would leave).
    pub fn image(&self) -> &CardImage {
        &self.env.committed
    }

    /// Runs `f` on the applet at `index` with a context for `channel`,
    /// then commits what it staged (on success) or rolls the applet back to
    /// the committed image (on failure with uncommitted changes).
    pub(crate) fn run_applet(
        &mut self,
        index: usize,
        channel: u8,
        f: impl FnOnce(&mut dyn Applet, &mut Context<'_>) -> Result<Response, Status>,
    ) -> Result<Response, Status> {
        let selection = self.channels.get(channel).map_or(0, |c| c.selection);
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(Status::UnknownError);
        };
        let mut ctx = Context::new(&mut self.env, &slot.key, channel, selection);
        // A panic inside an applet (its own bug, or a dependency's on
        // input it did not expect) must not take the card down: the
        // command answers 6F00 and the applet is reloaded from the
        // committed image, as after a failed command. Tests may turn the
        // catcher off ([`CardBuilder::catch_panics`]) to see the panic.
        let applet = slot.applet.as_mut();
        let outcome = if self.catch_panics {
            std::panic::catch_unwind(AssertUnwindSafe(|| f(applet, &mut ctx)))
        } else {
            Ok(f(applet, &mut ctx))
        };
        let panicked = outcome.is_err();
        let mut result = outcome.unwrap_or_else(|_| {
            tracing::error!(target: "vscard::apdu", aid = %slot.aid, "the applet panicked; answering 6F00");
            Err(Status::UnknownError)
        });
        if result.is_ok()
            && let Err(status) = ctx.commit()
        {
            result = Err(status);
        }
        let rollback = panicked || ctx.commit_failed || (result.is_err() && !ctx.staged.is_empty());
        drop(ctx);
        #[cfg(debug_assertions)]
        let rollback = if result.is_ok() && !self.env.torn && !self.state_is_committed(index) {
            result = Err(Status::UnknownError);
            true
        } else {
            rollback
        };
        if rollback && !self.env.torn {
            self.reload(index);
        }
        result
    }

    /// Debug and test builds only: true when every part the applet at
    /// `index` would save now equals the committed part, i.e. the command
    /// staged everything it changed. A forgotten `stage` would otherwise
    /// show only after a power cut, as state that "comes back"; here the
    /// command answers `6F00` at once, an error is logged, and the applet
    /// is reloaded from the committed image (what a power cut would leave).
    /// Parts that are committed but no longer saved (an older format's)
    /// are not compared. Release builds skip the check: it encodes the
    /// whole state on every command.
    #[cfg(debug_assertions)]
    fn state_is_committed(&self, index: usize) -> bool {
        let Some(slot) = self.slots.get(index) else {
            return true;
        };
        let saved = match slot.applet.save() {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(target: "vscard::store", aid = %slot.aid, error = %e, "cannot save applet state for the committed-state check");
                return false;
            }
        };
        let committed = self.env.committed.applet(&slot.key);
        let stale: Vec<&str> = saved
            .part_names()
            .filter(|name| committed.and_then(|c| c.part(name)) != saved.part(name))
            .collect();
        if stale.is_empty() {
            return true;
        }
        tracing::error!(
            target: "vscard::store",
            aid = %slot.aid,
            parts = ?stale,
            "the applet changed persistent state it did not stage; answering 6F00"
        );
        false
    }

    fn reload(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let empty = AppletState::new();
        let state = self.env.committed.applet(&slot.key).unwrap_or(&empty);
        if let Err(e) = slot.applet.load(state) {
            tracing::error!(target: "vscard::store", aid = %slot.aid, error = %e, "cannot reload applet state");
        }
    }

    pub(crate) fn reload_all(&mut self) {
        for index in 0..self.slots.len() {
            self.reload(index);
        }
    }
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("atr", &hex::encode_upper(self.atr.as_bytes()))
            .field("power", &self.power)
            .field(
                "applets",
                &self.slots.iter().map(|s| s.aid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
