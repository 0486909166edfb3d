//! The runtime's services that applets reach through their
//! [`crate::Context`]: the store and committed image, the RNG, the clock,
//! the fault plan and the card's stamps. [`crate::Card`] owns one [`Env`];
//! a context borrows it for one command. Kept apart from `card.rs` so that
//! the applet contract (`applet.rs`) depends on these services, not on the
//! card that hosts it.

use crate::Status;
use crate::environment::{CardRng, Clock, CutPoint, FaultPlan};
use crate::store::{CardImage, Changes, StagedParts, Store};

/// The runtime's services shared by all applets of a card.
pub(crate) struct Env {
    store: Box<dyn Store>,
    pub committed: CardImage,
    pub rng: CardRng,
    pub clock: Box<dyn Clock>,
    pub fault: FaultPlan,
    pub power_epoch: u64,
    stamps: u64,
    /// Set when a planned power cut fired during the current command.
    pub torn: bool,
    /// The touch sensor ([`crate::touch`]).
    pub touch: crate::touch::TouchSensor,
}

impl Env {
    pub fn new(
        store: Box<dyn Store>,
        committed: CardImage,
        rng: CardRng,
        clock: Box<dyn Clock>,
    ) -> Env {
        Env {
            store,
            committed,
            rng,
            clock,
            fault: FaultPlan::none(),
            power_epoch: 0,
            stamps: 0,
            torn: false,
            touch: crate::touch::TouchSensor::default(),
        }
    }

    /// Writes the committed image with `staged` merged into applet `key`'s
    /// state through the store, honouring the fault plan; on success it is
    /// the committed image, on failure the committed image is unchanged.
    /// The merge happens in place and is undone on failure, so a commit
    /// copies no image.
    pub fn write_parts(&mut self, key: &str, staged: &mut StagedParts) -> Result<(), Status> {
        if self.torn {
            return Err(Status::MemoryFailure);
        }
        let cut = self.fault.on_write();
        if cut == Some(CutPoint::BeforeWrite) {
            self.torn = true;
            return Err(Status::MemoryFailure);
        }
        self.committed.applet_mut(key).swap_in(staged);
        if let Err(e) = self
            .store
            .commit_changes(&self.committed, Changes::new(key, staged))
        {
            self.committed.applet_mut(key).swap_back(staged);
            tracing::error!(target: "vscard::store", error = %e, "commit failed");
            return Err(Status::MemoryFailure);
        }
        if cut == Some(CutPoint::AfterWrite) {
            self.torn = true;
            return Err(Status::MemoryFailure);
        }
        Ok(())
    }

    /// Asks the store for room for `commits` small commits before any is
    /// made (see [`Store::reserve`]); `6581` when it cannot promise it.
    /// Nothing of the committed image changes.
    pub fn reserve(&mut self, commits: usize) -> Result<(), Status> {
        if self.torn {
            return Err(Status::MemoryFailure);
        }
        self.store
            .reserve(&self.committed, commits)
            .map_err(|e| {
                tracing::error!(target: "vscard::store", error = %e, "cannot make room for the next commits");
                Status::MemoryFailure
            })
    }

    /// A stamp never handed out before on this card.
    pub fn next_stamp(&mut self) -> u64 {
        self.stamps += 1;
        self.stamps
    }
}
