//! GENERAL AUTHENTICATE (SP 800-73-4 Part 2 3.2.4 and Appendix A).
//!
//! Contract: for a slot key, the key must exist (`6A88`), match the
//! algorithm in P1 (`6A80`, as a YubiKey 5) and its PIN policy must be
//! satisfied (`6982`):
//! "once" needs a verified PIN, "always" (9C) needs a VERIFY since the
//! last use. For the management key, mutual authentication (witness
//! `80`, then witness + challenge `80`/`81`, answer `82`) and external
//! authentication (challenge `81`, then response `82`) are state machines
//! kept in the security status; a step out of order is `6985`, a wrong
//! witness or response `6982`, and both end the authentication. A new
//! step 1 in an authenticated session keeps it authenticated until its
//! step 2 succeeds or fails. A challenge request for another algorithm
//! than the management key's simply returns random bytes (OpenSC uses it
//! as GET CHALLENGE with P1 `00`).

use subtle::ConstantTimeEq;
use vscard_emulator::rand_core::Rng as _;
use vscard_emulator::{Context, Response, Status};
use zeroize::Zeroizing;

use crate::PivApplet;
use crate::command::{AuthKey, AuthRequest};
use crate::reference::{Algorithm, PinPolicy, Slot};
use crate::security::{ManagementAuth, PinStatus};
use crate::tlv::Writer;

/// `7C { tag value }`.
fn template(tag: u32, value: &[u8]) -> Response {
    Response::ok(
        Writer::new()
            .nest(0x7C, |w| {
                w.put(tag, value);
            })
            .finish(),
    )
}

fn random(ctx: &mut Context<'_>, len: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    ctx.rng().fill_bytes(&mut bytes);
    bytes
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl PivApplet {
    /// GENERAL AUTHENTICATE.
    pub(crate) fn general_authenticate(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        key: AuthKey,
        request: AuthRequest<'_>,
    ) -> Result<Response, Status> {
        match key {
            AuthKey::Management => self.authenticate_management(ctx, algorithm, request),
            AuthKey::Slot(slot) => self.use_private_key(ctx, algorithm, slot, request),
        }
    }

    fn authenticate_management(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        request: AuthRequest<'_>,
    ) -> Result<Response, Status> {
        let key_algorithm = self.state.management.algorithm();
        match request {
            AuthRequest::ChallengeRequest => {
                let challenge = random(ctx, algorithm.block_len());
                let response = template(0x81, &challenge);
                // Step 1 of an external authentication, also in a session
                // already authenticated (which stays so until step 2, see
                // `ManagementAuth`): OpenSC asks for random bytes this way
                // (GET CHALLENGE), and middleware authenticates again.
                let security = self.security.get_mut(ctx);
                if algorithm == key_algorithm {
                    let was_authenticated = security.management_authenticated();
                    security.management = ManagementAuth::ChallengeIssued {
                        algorithm,
                        challenge,
                        was_authenticated,
                    };
                }
                Ok(response)
            }
            AuthRequest::WitnessRequest => {
                if algorithm != key_algorithm {
                    return Err(Status::IncorrectP1P2);
                }
                let witness = random(ctx, algorithm.block_len());
                let encrypted = self
                    .state
                    .management
                    .encrypt_block(&witness)
                    .ok_or(Status::UnknownError)?;
                let security = self.security.get_mut(ctx);
                let was_authenticated = security.management_authenticated();
                security.management = ManagementAuth::WitnessIssued {
                    algorithm,
                    witness,
                    was_authenticated,
                };
                Ok(template(0x80, &encrypted))
            }
            AuthRequest::MutualResponse { witness, challenge } => {
                self.mutual_response(ctx, algorithm, witness.expose(), challenge.expose())
            }
            AuthRequest::ExternalResponse(response) => {
                self.external_response(ctx, algorithm, response.expose())
            }
            AuthRequest::Sign(_) | AuthRequest::KeyAgreement(_) => Err(Status::IncorrectData),
        }
    }

    /// Mutual authentication step 2 (Appendix A.2).
    fn mutual_response(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        witness: &[u8],
        challenge: &[u8],
    ) -> Result<Response, Status> {
        let pending = std::mem::take(&mut self.security.get_mut(ctx).management);
        let ManagementAuth::WitnessIssued {
            algorithm: issued,
            witness: expected,
            ..
        } = pending
        else {
            return Err(Status::ConditionsNotSatisfied);
        };
        if issued != algorithm {
            return Err(Status::ConditionsNotSatisfied);
        }
        if !same(witness, &expected) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let answer = self
            .state
            .management
            .encrypt_block(challenge)
            .ok_or(Status::IncorrectData)?;
        self.security.get_mut(ctx).management = ManagementAuth::Authenticated;
        Ok(template(0x82, &answer))
    }

    /// External authentication step 2 (Appendix A.1).
    fn external_response(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        response: &[u8],
    ) -> Result<Response, Status> {
        let pending = std::mem::take(&mut self.security.get_mut(ctx).management);
        let ManagementAuth::ChallengeIssued {
            algorithm: issued,
            challenge,
            ..
        } = pending
        else {
            return Err(Status::ConditionsNotSatisfied);
        };
        if issued != algorithm {
            return Err(Status::ConditionsNotSatisfied);
        }
        let expected = self
            .state
            .management
            .encrypt_block(&challenge)
            .ok_or(Status::UnknownError)?;
        if !same(response, &expected) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        self.security.get_mut(ctx).management = ManagementAuth::Authenticated;
        Ok(Response::empty())
    }

    /// Fails with `6982` unless the PIN policy allows a use now. The
    /// PIN-always permission is spent by [`Self::spend_pin_always`] once the
    /// operation succeeded, so a malformed request does not cost a VERIFY.
    fn authorize(&self, ctx: &Context<'_>, policy: PinPolicy) -> Result<(), Status> {
        let pin = self.security(ctx).map_or(PinStatus::NotVerified, |s| s.pin);
        let allowed = match policy {
            PinPolicy::Never => true,
            PinPolicy::Once => pin != PinStatus::NotVerified,
            PinPolicy::Always => pin == PinStatus::VerifiedFresh,
        };
        if allowed {
            Ok(())
        } else {
            Err(Status::SecurityStatusNotSatisfied)
        }
    }

    /// After a successful PIN-always operation: the next one needs a new
    /// VERIFY (SP 800-73-4 Part 1 3.2, key 9C).
    fn spend_pin_always(&mut self, ctx: &Context<'_>, policy: PinPolicy) {
        if policy == PinPolicy::Always {
            let security = self.security.get_mut(ctx);
            if security.pin == PinStatus::VerifiedFresh {
                security.pin = PinStatus::Verified;
            }
        }
    }

    fn use_private_key(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        slot: Slot,
        request: AuthRequest<'_>,
    ) -> Result<Response, Status> {
        let (key_algorithm, policy, touch) = match self.state.keys.get(&slot) {
            Some(stored) => (stored.algorithm(), stored.pin_policy, stored.touch_policy),
            None => return Err(Status::ReferenceNotFound),
        };
        // A YubiKey 5 answers `6A80` here: P1 is well formed and names an
        // algorithm of the card, it just does not fit the data (the key) the
        // command refers to.
        if key_algorithm != algorithm {
            return Err(Status::IncorrectData);
        }
        self.authorize(ctx, policy)?;
        // Last of the checks, before the key is used: a command that waits
        // for a touch has changed nothing when it is run again.
        touch.require(ctx)?;
        let stored = self
            .state
            .keys
            .get(&slot)
            .ok_or(Status::ReferenceNotFound)?;
        // The key's custody does the operation (the image's software key,
        // or the attached external custody); a custody failure returns
        // here, before the PIN-always permission is spent.
        let custody = self.custody.as_deref();
        let target = self.state.custody();
        let output = match request {
            AuthRequest::Sign(input) => {
                stored.sign(custody, target, algorithm, input.expose(), ctx.rng())?
            }
            AuthRequest::KeyAgreement(point) => stored.agree(custody, target, point.get())?,
            _ => return Err(Status::IncorrectData),
        };
        self.spend_pin_always(ctx, policy);
        Ok(template(0x82, &output))
    }
}
