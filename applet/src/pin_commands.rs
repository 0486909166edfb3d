//! VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER (SP 800-73-4
//! Part 2 3.2.1-3.2.3).
//!
//! Contract, the order every handler follows: blocked? (`6983`, nothing
//! counted) -> count the try and commit it -> constant-time compare ->
//! wrong: `63Cx` with the tries left (the PIN's security status is
//! forgotten) -> right: the counter is reset and committed. Only then is a
//! new value checked against the PIN rules (`6A80`), so the response never
//! depends on the new value before the old one was proven. A new PIN must
//! be digits; a new PUK may be any bytes but `FF` (SP 800-73-4 Part 2
//! 2.4.3).

use vscard_emulator::{Context, PinCheck, Response, Status};

use crate::PivApplet;
use crate::command::Verify;
use crate::config::{DEFAULT_PIN, DEFAULT_PUK};
use crate::reference::PinRef;
use crate::security::PinStatus;
use crate::state::{PivState, is_default};

/// The status word for a failed check.
fn refused(check: PinCheck) -> Status {
    match check {
        PinCheck::Wrong { tries_left } => Status::retries(tries_left),
        PinCheck::Blocked | PinCheck::Verified => Status::AuthenticationMethodBlocked,
    }
}

impl PivApplet {
    /// VERIFY (3.2.1).
    pub(crate) fn verify(
        &mut self,
        ctx: &mut Context<'_>,
        verify: Verify<'_>,
    ) -> Result<Response, Status> {
        match verify {
            Verify::LogOut => {
                self.security.get_mut(ctx).forget_pin();
                Ok(Response::empty())
            }
            Verify::Status => {
                if self.pin_verified(ctx) {
                    Ok(Response::empty())
                } else if self.state.pin.is_blocked() {
                    Err(Status::AuthenticationMethodBlocked)
                } else {
                    Err(Status::retries(self.state.pin.tries_left()))
                }
            }
            Verify::Check(candidate) => {
                let check = self
                    .state
                    .pin
                    .check(ctx, PivState::PIN_PART, candidate.expose());
                let security = self.security.get_mut(ctx);
                match check? {
                    PinCheck::Verified => {
                        security.pin = PinStatus::VerifiedFresh;
                        Ok(Response::empty())
                    }
                    refusal => {
                        security.forget_pin();
                        Err(refused(refusal))
                    }
                }
            }
        }
    }

    /// CHANGE REFERENCE DATA (3.2.2) for the PIN or the PUK.
    pub(crate) fn change_reference_data(
        &mut self,
        ctx: &mut Context<'_>,
        reference: PinRef,
        old: &[u8],
        new: &[u8],
    ) -> Result<Response, Status> {
        let rules = self.state.settings.rules;
        // The PIN must be digits, the PUK may be any bytes (SP 800-73-4
        // Part 2 2.4.3).
        let (owner, part, rules) = match reference {
            PinRef::Pin => (&mut self.state.pin, PivState::PIN_PART, rules),
            PinRef::Puk => (&mut self.state.puk, PivState::PUK_PART, rules.for_puk()),
        };
        let check = owner.check(ctx, part, old)?;
        if check != PinCheck::Verified {
            if reference == PinRef::Pin {
                self.security.get_mut(ctx).forget_pin();
            }
            return Err(refused(check));
        }
        if !rules.accepts_padded(new) {
            return Err(Status::IncorrectData);
        }
        owner.update(new).map_err(|_| Status::IncorrectData)?;
        match reference {
            PinRef::Pin => {
                self.state.defaults.pin = is_default(new, DEFAULT_PIN);
                self.state.stage_pin(ctx)?;
            }
            PinRef::Puk => {
                self.state.defaults.puk = is_default(new, DEFAULT_PUK);
                self.state.stage_puk(ctx)?;
            }
        }
        self.state.stage_defaults(ctx)?;
        Ok(Response::empty())
    }

    /// RESET RETRY COUNTER (3.2.3): the PUK sets a new PIN and unblocks it.
    /// A blocked PUK (`6983`) means the PIN can never be unblocked again.
    pub(crate) fn reset_retry_counter(
        &mut self,
        ctx: &mut Context<'_>,
        puk: &[u8],
        new_pin: &[u8],
    ) -> Result<Response, Status> {
        let check = self.state.puk.check(ctx, PivState::PUK_PART, puk)?;
        if check != PinCheck::Verified {
            return Err(refused(check));
        }
        if !self.state.settings.rules.accepts_padded(new_pin) {
            return Err(Status::IncorrectData);
        }
        self.state
            .pin
            .update(new_pin)
            .map_err(|_| Status::IncorrectData)?;
        self.state.defaults.pin = is_default(new_pin, DEFAULT_PIN);
        self.state.stage_pin(ctx)?;
        self.state.stage_defaults(ctx)?;
        Ok(Response::empty())
    }
}
