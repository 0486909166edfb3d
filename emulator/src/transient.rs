//! Transient memory (Java Card `CLEAR_ON_RESET` / `CLEAR_ON_DESELECT`).
//!
//! A [`Transient<T>`] is stamped with the epoch it was written in. The
//! runtime starts a new reset epoch at every power-on, power-off and reset,
//! and a new selection epoch at every selection; a value read in a later
//! epoch than it was written in reads as cleared (`T::default()`), and the
//! stale value is dropped (zeroized, for a `ZeroizeOnDrop` type) on that
//! access. No applet code has to remember to clear anything.

use crate::Context;

/// When a transient value is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearOn {
    /// On power-on, power-off and reset.
    Reset,
    /// Also when the applet is deselected on the channel it was written on
    /// (and when it is accessed from another channel's selection).
    Deselect,
}

/// A value that lives until the next reset or deselection.
#[derive(Clone)]
pub struct Transient<T> {
    clear_on: ClearOn,
    epoch: Option<u64>,
    value: T,
}

impl<T: Default> Transient<T> {
    /// A cleared value.
    pub fn new(clear_on: ClearOn) -> Self {
        Transient {
            clear_on,
            epoch: None,
            value: T::default(),
        }
    }

    /// The value, or `None` when it was never set in the current epoch.
    pub fn get(&self, ctx: &Context<'_>) -> Option<&T> {
        (self.epoch == Some(ctx.epoch(self.clear_on))).then_some(&self.value)
    }

    /// The value for writing; cleared first when it belongs to an earlier
    /// epoch.
    pub fn get_mut(&mut self, ctx: &Context<'_>) -> &mut T {
        let now = ctx.epoch(self.clear_on);
        if self.epoch != Some(now) {
            self.value = T::default();
            self.epoch = Some(now);
        }
        &mut self.value
    }

    /// Sets the value for the current epoch.
    pub fn set(&mut self, ctx: &Context<'_>, value: T) {
        self.epoch = Some(ctx.epoch(self.clear_on));
        self.value = value;
    }

    /// Clears the value now.
    pub fn clear(&mut self) {
        self.value = T::default();
        self.epoch = None;
    }
}

impl<T> std::fmt::Debug for Transient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Transient values often hold session secrets (challenges, verified
        // flags); they are not printed.
        f.debug_struct("Transient")
            .field("clear_on", &self.clear_on)
            .field("set", &self.epoch.is_some())
            .finish_non_exhaustive()
    }
}
