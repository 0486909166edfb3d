//! The touch button of a served card: where `vscard ctl PATH touch` (and
//! [`crate::BridgeHandle::touch`]) presses, and where the card's thread
//! waits when a command needs a touch.
//!
//! The card itself never waits (see `vscard_emulator`'s touch module):
//! after a command, [`vscard_emulator::Card::awaiting_touch`] says whether
//! it wants a touch. The card's thread then holds the answer back (vpcd has
//! no read timeout, and pcscd waits for it as for a slow card) until the
//! button is pressed, the configured auto-touch delay passes, the card is
//! removed, or the touch timeout ([`TOUCH_TIMEOUT`], 15 s, a YubiKey's,
//! unless [`crate::BridgeConfig::touch_timeout`] says less) runs out; a touch runs
//! the command again through [`vscard_emulator::Card::touch`], the timeout
//! sends the answer the card already gave (`6982` for PIV). Only the card's
//! own thread waits: other cards go on. A press with nothing waiting is
//! kept for [`TOUCH_TIMEOUT`], so a script may press as soon as it started
//! the operation, without watching for the moment the card waits.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use vscard_emulator::TOUCH_TIMEOUT;

/// What [`crate::BridgeHandle::touch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touched {
    /// A command waited and was completed with this touch.
    Completed,
    /// Nothing waited: the touch is kept for the next command that asks
    /// within [`TOUCH_TIMEOUT`].
    Kept,
}

/// How a wait for a touch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Pressed (or auto-touched).
    Touched,
    /// No touch in time, or the card is being removed.
    GaveUp,
}

#[derive(Debug, Default)]
struct State {
    /// A press not yet used, and when.
    pressed: Option<Instant>,
    /// True while the card's thread waits.
    waiting: bool,
    /// Bumped by a removal or shutdown, to end a wait at once.
    cancels: u64,
}

/// One card's button.
#[derive(Debug, Default)]
pub(crate) struct TouchButton {
    state: Mutex<State>,
    changed: Condvar,
}

impl TouchButton {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Presses the button.
    pub fn press(&self) -> Touched {
        let mut state = self.lock();
        state.pressed = Some(Instant::now());
        let waiting = state.waiting;
        drop(state);
        self.changed.notify_all();
        if waiting {
            Touched::Completed
        } else {
            Touched::Kept
        }
    }

    /// Ends a wait now (the card is leaving the reader).
    pub fn cancel(&self) {
        self.lock().cancels += 1;
        self.changed.notify_all();
    }

    /// Waits for a press (one kept from the last [`TOUCH_TIMEOUT`] counts)
    /// for up to `timeout`; `auto` presses by itself after that long.
    pub fn wait(&self, auto: Option<Duration>, timeout: Duration) -> Wait {
        let started = Instant::now();
        let deadline = started + timeout;
        let auto_at = auto.map(|delay| started + delay);
        let mut state = self.lock();
        let cancels = state.cancels;
        state.waiting = true;
        let outcome = loop {
            let now = Instant::now();
            // A press older than the timeout is dropped: it was for
            // something else.
            if let Some(pressed) = state.pressed.take()
                && now.duration_since(pressed) <= TOUCH_TIMEOUT
            {
                break Wait::Touched;
            }
            if state.cancels != cancels || now >= deadline {
                break Wait::GaveUp;
            }
            if auto_at.is_some_and(|at| now >= at) {
                break Wait::Touched;
            }
            let until = auto_at.map_or(deadline, |at| at.min(deadline));
            state = self
                .changed
                .wait_timeout(state, until.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        state.waiting = false;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_kept_press_counts_and_is_used_once() {
        let button = TouchButton::default();
        assert_eq!(button.press(), Touched::Kept);
        assert_eq!(
            button.wait(Some(Duration::ZERO), TOUCH_TIMEOUT),
            Wait::Touched
        );
        assert!(button.lock().pressed.is_none());
    }

    #[test]
    fn a_press_ends_a_wait_and_a_cancel_gives_up() {
        let button = Arc::new(TouchButton::default());
        let waiter = {
            let button = Arc::clone(&button);
            std::thread::spawn(move || button.wait(None, TOUCH_TIMEOUT))
        };
        // Pressed once the thread waits: no sleep, the flag says when.
        while !button.lock().waiting {
            std::thread::yield_now();
        }
        assert_eq!(button.press(), Touched::Completed);
        assert_eq!(waiter.join().unwrap(), Wait::Touched);

        let waiter = {
            let button = Arc::clone(&button);
            std::thread::spawn(move || button.wait(None, TOUCH_TIMEOUT))
        };
        while !button.lock().waiting {
            std::thread::yield_now();
        }
        button.cancel();
        assert_eq!(waiter.join().unwrap(), Wait::GaveUp);
    }

    #[test]
    fn auto_touch_presses_after_its_delay() {
        let button = TouchButton::default();
        let started = Instant::now();
        assert_eq!(
            button.wait(Some(Duration::from_millis(50)), TOUCH_TIMEOUT),
            Wait::Touched
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn no_touch_gives_up_at_the_timeout() {
        let button = TouchButton::default();
        let started = Instant::now();
        assert_eq!(button.wait(None, Duration::from_millis(100)), Wait::GaveUp);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < TOUCH_TIMEOUT, "{waited:?}");
        // An auto-touch later than the timeout never comes.
        assert_eq!(
            button.wait(Some(Duration::from_secs(60)), Duration::from_millis(50)),
            Wait::GaveUp
        );
    }
}
