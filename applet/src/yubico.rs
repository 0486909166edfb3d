//! The Yubico extensions middleware probes for: GET METADATA (`F7`), SET
//! MANAGEMENT KEY (`FF`), RESET (`FB`) and SET PIN RETRIES (`FA`); GET VERSION (`FD`) and GET
//! SERIAL (`F8`) are answered from the settings directly.
//!
//! Contract: the encodings follow the YubiKey 5 firmware as documented by
//! Yubico: metadata is a flat list of TLVs `01` algorithm, `02` policy
//! (PIN, touch), `03` origin, `04` public key, `05` default value, `06`
//! retries (limit, left); an empty slot or the Bio reference `96` is
//! `6A88`. RESET works only when PIN and PUK are both blocked (`6985`
//! otherwise) and restores the personalised try limits.

use vscard_emulator::{Context, Response, Status};

use crate::PivApplet;
use crate::management::ManagementKey;
use crate::reference::{Algorithm, KeyRef, PinRef, TOUCH_NEVER};
use crate::tlv::Writer;

/// The algorithm byte GET METADATA reports for a PIN or PUK.
const PIN_ALGORITHM: u8 = 0xFF;

impl PivApplet {
    /// GET METADATA: `6A88` (reference data not found) for an empty slot,
    /// as a YubiKey answers; ykman lists a card's keys this way.
    pub(crate) fn get_metadata(
        &mut self,
        _ctx: &mut Context<'_>,
        key: KeyRef,
    ) -> Result<Response, Status> {
        let mut writer = Writer::new();
        match key {
            KeyRef::Pin(reference) => {
                let (owner, default) = match reference {
                    PinRef::Pin => (&self.state.pin, self.state.defaults.pin),
                    PinRef::Puk => (&self.state.puk, self.state.defaults.puk),
                };
                writer
                    .put(0x01, &[PIN_ALGORITHM])
                    .put(0x05, &[u8::from(default)])
                    .put(0x06, &[owner.try_limit(), owner.tries_left()]);
            }
            KeyRef::Management => {
                let management = &self.state.management;
                writer
                    .put(0x01, &[management.algorithm().byte()])
                    .put(0x02, &[0x00, TOUCH_NEVER])
                    .put(0x05, &[u8::from(management.is_default())]);
            }
            KeyRef::Slot(slot) => {
                let stored = self
                    .state
                    .keys
                    .get(&slot)
                    .ok_or(Status::ReferenceNotFound)?;
                writer
                    .put(0x01, &[stored.algorithm().byte()])
                    .put(
                        0x02,
                        &[stored.pin_policy.byte(), stored.touch_policy.byte()],
                    )
                    .put(0x03, &[stored.origin.byte()])
                    .put(0x04, &stored.public_key().to_data_objects());
            }
        }
        Ok(Response::ok(writer.finish()))
    }

    /// SET MANAGEMENT KEY: needs the current management key.
    pub(crate) fn set_management_key(
        &mut self,
        ctx: &mut Context<'_>,
        algorithm: Algorithm,
        key: &[u8],
    ) -> Result<Response, Status> {
        self.require_management(ctx)?;
        self.state.management =
            ManagementKey::new(algorithm, key).map_err(|_| Status::IncorrectData)?;
        self.state.stage_management(ctx)?;
        Ok(Response::empty())
    }

    /// SET PIN RETRIES: needs the management key and the PIN; puts PIN and
    /// PUK back to their defaults with the new limits (as YubiKeys do).
    pub(crate) fn set_pin_retries(
        &mut self,
        ctx: &mut Context<'_>,
        pin_tries: u8,
        puk_tries: u8,
    ) -> Result<Response, Status> {
        self.require_management(ctx)?;
        if !self.pin_verified(ctx) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        self.state.set_try_limits(pin_tries, puk_tries)?;
        self.state.stage_settings(ctx)?;
        self.state.stage_pin(ctx)?;
        self.state.stage_puk(ctx)?;
        self.state.stage_defaults(ctx)?;
        Ok(Response::empty())
    }

    /// RESET: back to factory state, only when PIN and PUK are blocked.
    pub(crate) fn reset(&mut self, ctx: &mut Context<'_>) -> Result<Response, Status> {
        if !(self.state.pin.is_blocked() && self.state.puk.is_blocked()) {
            return Err(Status::ConditionsNotSatisfied);
        }
        let old = self.state.custody_references();
        self.state.factory_reset()?;
        self.state.stage_all(ctx)?;
        self.security.set(ctx, Default::default());
        if !old.is_empty() {
            // The custody keys go after the commit (see `crate::custody`).
            ctx.commit()?;
            self.destroy_unreferenced(old);
        }
        Ok(Response::empty())
    }
}
