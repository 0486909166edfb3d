//! GET DATA and PUT DATA (SP 800-73-4 Part 2 3.1.2 and 3.3.2).
//!
//! Contract: GET DATA checks the access rule before looking the object
//! up, so a PIN-protected object's presence does not leak (`6982` before
//! `6A82`); answers are wrapped in `53` (Discovery in `7E`). PUT DATA needs
//! the management key, answers `6A84` when the card's storage would
//! overflow ([`crate::capacity`]) and commits the whole object table
//! atomically.

use vscard_emulator::{Context, Response, Status};

use crate::PivApplet;
use crate::objects::DataObjectTag;
use crate::tlv;

/// The largest object PUT DATA accepts (a certificate chain with room to
/// spare; YubiKeys take about 3 KB).
pub const MAX_OBJECT_LEN: usize = 16 * 1024;

impl PivApplet {
    /// GET DATA (3.1.2).
    pub(crate) fn get_data(
        &mut self,
        ctx: &mut Context<'_>,
        tag: DataObjectTag,
    ) -> Result<Response, Status> {
        if tag.read_needs_pin() && !self.pin_verified(ctx) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let value = self.state.object(tag).ok_or(Status::NotFound)?;
        let wrapper = if tag.is_discovery() { 0x7E } else { 0x53 };
        Ok(Response::ok(tlv::encode(wrapper, value)))
    }

    /// PUT DATA (3.3.2); an empty value deletes the object.
    pub(crate) fn put_data(
        &mut self,
        ctx: &mut Context<'_>,
        tag: DataObjectTag,
        value: &[u8],
    ) -> Result<Response, Status> {
        self.require_management(ctx)?;
        // ISO 7816-4 5.1.3 `6A84`: not enough memory, checked before the
        // table changes, so a refused object leaves the card as it was.
        if value.len() > MAX_OBJECT_LEN || !self.state.object_fits(tag, value.len()) {
            return Err(Status::NotEnoughMemory);
        }
        self.state.put_object(tag, value.to_vec());
        self.state.stage_objects(ctx)?;
        Ok(Response::empty())
    }
}
