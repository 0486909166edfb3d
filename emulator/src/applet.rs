//! The contract between the runtime and the applets it hosts.
//!
//! The runtime owns the transport (chaining, GET RESPONSE, logical
//! channels, SELECT by AID) and hands an applet one complete command at a
//! time through [`Applet::process`], with a [`Context`] that gives it the
//! card's RNG, clock and commit API. An applet answers with a [`Response`]
//! or a [`Status`]; it never sees 61xx, never splits a response, never
//! touches a store directly.
//!
//! Persistent state is committed as named, typed parts ([`Part`]):
//! [`Context::stage`] records a part, and the staged parts are written in one atomic commit at the end
//! of a command that succeeded, or earlier at an explicit
//! [`Context::commit`]. A command that fails discards what it staged and
//! the runtime reloads the applet from the committed image, so the applet's
//! memory always equals what would survive a power cut (Java Card
//! transaction semantics). Debug and test builds check it: after every
//! successful command, each part [`Applet::save`] gives must equal the
//! committed one, or the command answers `6F00` and the applet is reloaded
//! (a change the applet forgot to stage).

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::environment::CardRng;
use crate::services::Env;
use crate::store::{AppletState, Part, PartValue, StagedParts, StateError, encode_part};
use crate::transient::ClearOn;
use crate::{Aid, CommandApdu, Status};

/// A successful answer: data and a status word (normally `9000`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The response data.
    pub data: Vec<u8>,
    /// The status word sent after the data (`9000` unless the applet chose
    /// a warning).
    pub status: Status,
}

impl Response {
    /// `9000` without data.
    pub fn empty() -> Response {
        Response::default()
    }

    /// `9000` with data.
    pub fn ok(data: Vec<u8>) -> Response {
        Response {
            data,
            status: Status::Success,
        }
    }

    /// Data with a chosen status (a warning such as `6282`).
    pub fn with_status(data: Vec<u8>, status: Status) -> Response {
        Response { data, status }
    }
}

/// An application hosted by the runtime. Object safe: a card holds
/// `Box<dyn Applet>`.
pub trait Applet: Send {
    /// The applet's AID; fixed for its lifetime.
    fn aid(&self) -> Aid;

    /// A short name for traces (`SELECT PIV`).
    fn name(&self) -> &str {
        "applet"
    }

    /// Called when the applet is selected on a channel: `command` is the
    /// SELECT, or `None` for an implicit selection (default applet after
    /// power-on or reset, or a newly opened channel). The response data is
    /// returned to the host (for example the FCI or an application property
    /// template). An error refuses the selection.
    fn select(
        &mut self,
        ctx: &mut Context<'_>,
        command: Option<&CommandApdu<'_>>,
    ) -> Result<Response, Status> {
        let _ = (ctx, command);
        Ok(Response::empty())
    }

    /// Called when the applet stops being selected on a channel (another
    /// SELECT, channel closed). Not called on power loss: use
    /// [`crate::Transient`] for state that must not outlive a reset.
    fn deselect(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// Handles one complete command addressed to this applet.
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandApdu<'_>,
    ) -> Result<Response, Status>;

    /// The shortest right-truncated name a SELECT by DF name may use to
    /// select this applet (ISO 7816-4 11.1.1 leaves the rule to the card;
    /// the default is the RID, [`Aid::MIN_LEN`] bytes, so that `SELECT A0`
    /// selects nothing). The full AID always matches.
    fn min_select_len(&self) -> usize {
        Aid::MIN_LEN
    }

    /// True when the applet may be selected on several channels at once.
    fn multi_selectable(&self) -> bool {
        false
    }

    /// A one-line description of `command` for traces (`VERIFY PIN`,
    /// `GENERAL AUTHENTICATE 9C P-256`). It must never include secret
    /// data; `None` falls back to the header bytes.
    fn describe(&self, command: &CommandApdu<'_>) -> Option<String> {
        let _ = command;
        None
    }

    /// The applet's whole persistent state, for the first commit of a new
    /// card and for exports.
    fn save(&self) -> Result<AppletState, StateError>;

    /// Replaces the applet's persistent state with `state` (at card start,
    /// and after a failed command or a power cut).
    fn load(&mut self, state: &AppletState) -> Result<(), StateError>;

    /// Called on every power-on, power-off and reset, after transient
    /// memory was invalidated, so an applet can zeroize secrets it keeps
    /// outside [`crate::Transient`] values at once.
    fn power_reset(&mut self) {}
}

/// What an applet may use while it handles one command.
pub struct Context<'a> {
    pub(crate) env: &'a mut Env,
    pub(crate) key: &'a str,
    pub(crate) channel: u8,
    pub(crate) selection: u64,
    pub(crate) staged: StagedParts,
    pub(crate) commit_failed: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(env: &'a mut Env, key: &'a str, channel: u8, selection: u64) -> Self {
        Context {
            env,
            key,
            channel,
            selection,
            staged: Vec::new(),
            commit_failed: false,
        }
    }

    /// The logical channel the command arrived on.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// The card's random number generator.
    pub fn rng(&mut self) -> &mut CardRng {
        &mut self.env.rng
    }

    /// The card's clock.
    pub fn now(&self) -> SystemTime {
        self.env.clock.now()
    }

    /// Records `part` of this applet's persistent state, to be
    /// committed at the end of the command (or at the next
    /// [`Context::commit`]). `6F00` if it cannot be encoded.
    pub fn stage<T: Serialize + ?Sized>(&mut self, part: Part<T>, value: &T) -> Result<(), Status> {
        let name = part.name();
        let encoded = encode_part(name, value).map_err(|e| {
            tracing::error!(target: "vscard::store", error = %e, "cannot stage state");
            Status::UnknownError
        })?;
        self.stage_part(name, encoded);
        Ok(())
    }

    fn stage_part(&mut self, name: &str, part: PartValue) {
        if let Some(slot) = self.staged.iter_mut().find(|(n, _)| n.as_ref() == name) {
            slot.1 = Some(part);
        } else {
            let name = self
                .env
                .committed
                .applet(self.key)
                .and_then(|state| state.part_name(name))
                .unwrap_or_else(|| Arc::from(name));
            self.staged.push((name, Some(part)));
        }
    }

    /// Commits the staged parts now, atomically. `6581` if the store failed
    /// (the runtime then reloads the applet from the committed image) or if
    /// power was cut during the write.
    pub fn commit(&mut self) -> Result<(), Status> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let mut staged = std::mem::take(&mut self.staged);
        let result = self.env.write_parts(self.key, &mut staged);
        // Reused by the next stage: no allocation per commit.
        staged.clear();
        self.staged = staged;
        result.inspect_err(|_| self.commit_failed = true)
    }

    /// Makes sure `commits` small commits can follow without a write that
    /// could fail where they would not (see [`crate::Store::reserve`]):
    /// what a PIN check asks before it counts a try, so that the reset
    /// after a correct PIN is never the commit that fails. `6581` when the
    /// store cannot promise it; nothing was committed then.
    pub fn reserve_commits(&mut self, commits: usize) -> Result<(), Status> {
        self.env.reserve(commits)
    }

    /// Stages `part` and commits at once: the pattern for a try
    /// counter that must be durable before the comparison it guards. The
    /// value is kept as it is (a copy) and encoded only when the store
    /// writes it out or the state is read back, so that a try costs no
    /// encoding on an in-memory card; its encoding must not fail (a plain
    /// record does not).
    pub fn commit_part<T: Serialize + Clone + Send + Sync + 'static>(
        &mut self,
        part: Part<T>,
        value: &T,
    ) -> Result<(), Status> {
        self.stage_part(part.name(), PartValue::Typed(Arc::new(value.clone())));
        self.commit()
    }

    /// The current epoch of transient memory of the given kind; values
    /// stamped with an older epoch read as cleared.
    pub fn epoch(&self, clear_on: ClearOn) -> u64 {
        match clear_on {
            ClearOn::Reset => self.env.power_epoch,
            ClearOn::Deselect => self.selection,
        }
    }
}
