//! The card's touch sensor: user presence for operations whose key says
//! so (a YubiKey's touch policy), without the card ever blocking.
//!
//! Decision: the card cannot wait. A card runs in a test, on a phone or
//! behind the vpcd bridge, and a runtime with no I/O has nothing to wait
//! on, so waiting is the caller's job and the card only keeps the facts:
//!
//! - An applet asks with [`Context::take_touch`]. A touch given (by
//!   [`Card::touch`]) no longer than [`TOUCH_TIMEOUT`] ago and not yet
//!   used is consumed and the operation goes on. Otherwise the applet
//!   answers what the card answers when nobody touches it in time (for
//!   PIV, `6982`), having changed nothing, and the runtime marks the
//!   command as waiting: the complete command (chained parts already
//!   joined) is held, and [`Card::awaiting_touch`] says so.
//! - The caller decides how long to wait. The vpcd bridge holds back the
//!   answer for up to [`TOUCH_TIMEOUT`] (a YubiKey gives up after 15 s)
//!   and, when a touch comes, calls [`Card::touch`], which runs the held
//!   command again with the touch and returns its answer instead; with no
//!   touch it sends the held answer and calls [`Card::abandon_touch`]. An
//!   in-process test does the same by hand, or touches first: a touch
//!   with nothing waiting is kept for the next command that asks within
//!   [`TOUCH_TIMEOUT`] (the card's clock), so a scripted `touch` never
//!   races the command it is meant for.
//! - Any other command, and every power event, drops a held command: the
//!   host has its answer and moved on.
//!
//! Cached policies ("a touch counts for 15 s") ask
//! [`Context::touched_within`] before taking a new touch.

use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::applet::Context;
use crate::card::{Card, CardError, Exchange};
use crate::{Class, CommandApdu};

/// How long a touch is waited for, and how long a touch given before it
/// was asked for is kept: a YubiKey waits 15 s.
pub const TOUCH_TIMEOUT: Duration = Duration::from_secs(15);

/// The touch state of one card.
#[derive(Debug, Default)]
pub(crate) struct TouchSensor {
    /// When the touch not yet used was given.
    given: Option<SystemTime>,
    /// When an operation last used a touch.
    last_used: Option<SystemTime>,
    /// Set by the current command when it asked for a touch it lacked.
    pub requested: bool,
    /// The command that waits for a touch.
    pub held: Option<HeldCommand>,
}

impl TouchSensor {
    /// Forgets the touches and what waits for one (power events).
    pub fn clear(&mut self) {
        *self = TouchSensor::default();
    }
}

/// A complete command, owned, to run again once touched.
#[derive(Debug)]
pub(crate) struct HeldCommand {
    class: Class,
    ins: u8,
    p1: u8,
    p2: u8,
    /// The data may carry a PIN or key material: zeroized when dropped.
    data: Zeroizing<Vec<u8>>,
    ne: usize,
    extended: bool,
}

impl HeldCommand {
    pub fn of(command: &CommandApdu<'_>) -> HeldCommand {
        HeldCommand {
            class: command.class,
            ins: command.ins,
            p1: command.p1,
            p2: command.p2,
            data: Zeroizing::new(command.data.to_vec()),
            ne: command.ne,
            extended: command.extended,
        }
    }

    pub fn command(&self) -> CommandApdu<'_> {
        CommandApdu {
            class: self.class,
            ins: self.ins,
            p1: self.p1,
            p2: self.p2,
            data: &self.data,
            ne: self.ne,
            extended: self.extended,
        }
    }
}

/// True when `then` is at most [`TOUCH_TIMEOUT`]-like `window` before
/// `now` (a clock that went back counts as "just now").
fn within(then: SystemTime, now: SystemTime, window: Duration) -> bool {
    now.duration_since(then).map_or(true, |age| age <= window)
}

impl Context<'_> {
    /// Takes the touch this operation needs: `true` when one was given and
    /// not yet used (at most [`TOUCH_TIMEOUT`] ago), which is now used up;
    /// `false` marks the command as waiting for a touch, and the applet
    /// then answers as on a touch timeout without changing anything (see
    /// the module documentation).
    pub fn take_touch(&mut self) -> bool {
        let now = self.env.clock.now();
        let touch = &mut self.env.touch;
        match touch.given.take() {
            Some(given) if within(given, now, TOUCH_TIMEOUT) => {
                touch.last_used = Some(now);
                true
            }
            _ => {
                touch.requested = true;
                false
            }
        }
    }

    /// True when an operation used a touch at most `window` ago (a cached
    /// touch policy).
    pub fn touched_within(&self, window: Duration) -> bool {
        let now = self.env.clock.now();
        self.env
            .touch
            .last_used
            .is_some_and(|used| within(used, now, window))
    }
}

impl Card {
    /// True when the last command waits for a touch: its answer (the
    /// touch-timeout one) was given, and [`Card::touch`] would run it again.
    pub fn awaiting_touch(&self) -> bool {
        self.env.touch.held.is_some()
    }

    /// Touches the card. When a command waits for a touch, it runs again
    /// with this touch and its answer is returned (`Ok(None)` otherwise:
    /// the touch is kept for the next command that asks for one within
    /// [`TOUCH_TIMEOUT`]). The error is a power cut during the command.
    pub fn touch(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        self.env.touch.given = Some(self.env.clock.now());
        let Some(held) = self.env.touch.held.take() else {
            return Ok(None);
        };
        if !self.is_powered() {
            return Ok(None);
        }
        self.env.touch.requested = false;
        let command = held.command();
        // Traced as the exchange the host sees (a trace line for the
        // touch-timeout answer would be wrong).
        let describe =
            self.record || tracing::enabled!(target: "vscard::apdu", tracing::Level::DEBUG);
        let started = describe.then(Instant::now);
        let name = describe.then(|| format!("{} (touched)", self.describe(&command)));
        let response = self.rerun(&command);
        if self.env.torn {
            self.env.torn = false;
            self.power_off();
            self.reload_all();
            tracing::warn!(target: "vscard::apdu", "power cut during the touched command");
            return Err(CardError::PowerLost);
        }
        if let Some(name) = name {
            self.trace(Exchange {
                channel: command.class.channel(),
                command: name,
                status: response.status,
                response_len: response.data.len(),
                duration: started.map(|t| t.elapsed()).unwrap_or_default(),
            });
        }
        Ok(Some(response.to_bytes()))
    }

    /// Gives up the command that waits for a touch (its touch-timeout
    /// answer stands).
    pub fn abandon_touch(&mut self) {
        self.env.touch.held = None;
        self.env.touch.requested = false;
    }
}
