//! The Yubico MOVE KEY and DELETE KEY instruction (`F6`, YubiKey 5.7).
//!
//! Contract, as yubikit sends it and ykman reads the answers: P2 names the
//! source slot, P1 the destination slot, or `FF` to delete the key. Both
//! need the management key (`6982`). The source must hold a key (`6A88`,
//! "no key in SOURCE"), a destination must be empty (`6A80`, "DEST slot is
//! not empty"); a destination equal to the source is `6A86`. The key moves
//! with its metadata (algorithm, PIN and touch policy, origin); the
//! certificate objects stay where they are, as on a YubiKey. Only the
//! models that have the instruction (see [`Model::has_move_key`]) answer
//! it; the others `6D00`. A key in an external custody moves as its
//! reference; a deleted one is destroyed in the custody after the commit.
//!
//! [`Model::has_move_key`]: crate::model::Model::has_move_key

use vscard_emulator::{Context, Response, Status};

use crate::PivApplet;
use crate::reference::Slot;

/// P1 of `F6` that asks for a deletion instead of a move.
const DELETE_DESTINATION: u8 = 0xFF;

/// What an `F6` command asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveKey {
    /// Move the key of `from` into the empty slot `to`.
    Move {
        /// The slot holding the key (P2).
        from: Slot,
        /// The empty slot it goes to (P1).
        to: Slot,
    },
    /// Delete the key of the slot (P2; P1 `FF`).
    Delete(Slot),
}

impl MoveKey {
    /// Parses P1 and P2 of `F6`: `6A86` unless both name slots (P1 may be
    /// `FF`) and they differ.
    pub fn parse(p1: u8, p2: u8) -> Result<MoveKey, Status> {
        let from = Slot::new(p2).ok_or(Status::IncorrectP1P2)?;
        if p1 == DELETE_DESTINATION {
            return Ok(MoveKey::Delete(from));
        }
        match Slot::new(p1) {
            Some(to) if to != from => Ok(MoveKey::Move { from, to }),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    /// A one-line description for traces.
    pub fn describe(self) -> String {
        match self {
            MoveKey::Move { from, to } => format!("MOVE KEY {from} -> {to}"),
            MoveKey::Delete(slot) => format!("DELETE KEY {slot}"),
        }
    }
}

impl PivApplet {
    /// MOVE KEY / DELETE KEY: one atomic commit of the key table.
    pub(crate) fn move_key(
        &mut self,
        ctx: &mut Context<'_>,
        request: MoveKey,
    ) -> Result<Response, Status> {
        if !self.state.settings.model.has_move_key() {
            return Err(Status::InstructionNotSupported);
        }
        self.require_management(ctx)?;
        match request {
            MoveKey::Move { from, to } => {
                if !self.state.keys.contains_key(&from) {
                    return Err(Status::ReferenceNotFound);
                }
                if self.state.keys.contains_key(&to) {
                    return Err(Status::IncorrectData);
                }
                let key = self
                    .state
                    .keys
                    .remove(&from)
                    .ok_or(Status::ReferenceNotFound)?;
                self.state.keys.insert(to, key);
            }
            MoveKey::Delete(slot) => {
                let removed = self
                    .state
                    .keys
                    .remove(&slot)
                    .ok_or(Status::ReferenceNotFound)?;
                if let Some(reference) = removed.custody_reference() {
                    // Committed first: a cut before the custody destroys
                    // the key leaves an unreferenced key, never a
                    // reference to a destroyed one.
                    self.state.stage_keys(ctx)?;
                    ctx.commit()?;
                    self.destroy_unreferenced(vec![reference.clone()]);
                    return Ok(Response::empty());
                }
            }
        }
        self.state.stage_keys(ctx)?;
        Ok(Response::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_name_source_and_destination() {
        assert_eq!(
            MoveKey::parse(0x9D, 0x9A),
            Ok(MoveKey::Move {
                from: Slot::AUTHENTICATION,
                to: Slot::KEY_MANAGEMENT
            })
        );
        assert_eq!(
            MoveKey::parse(0xFF, 0x9C),
            Ok(MoveKey::Delete(Slot::SIGNATURE))
        );
        assert_eq!(MoveKey::parse(0x9A, 0x9A), Err(Status::IncorrectP1P2));
        assert_eq!(MoveKey::parse(0x9B, 0x9A), Err(Status::IncorrectP1P2));
        assert_eq!(MoveKey::parse(0x9A, 0xFF), Err(Status::IncorrectP1P2));
    }
}
