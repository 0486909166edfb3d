//! The journal beside the image (see the parent module): fixed-size
//! slots, each one small commit of this era's image, written in place and
//! replayed in order on load.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ImageCodec;
use super::files::{Access, open_card_file, read_private, rename_into_place, sync_parent};
use super::image::Era;
use super::{JOURNAL_SLOT_SIZE, JOURNAL_SLOTS};
use crate::store::{CardImage, Changes, DamageKind, PartValue, StoreError};

pub(super) const JOURNAL_MAGIC: &[u8; 16] = b"vscard-journal/1";
/// The magic of a record sealed under the card's key (an encrypted card):
/// the payload is a sealed blob ([`crate::seal`]) of the same JSON.
pub(super) const SEALED_JOURNAL_MAGIC: &[u8; 16] = b"vscard-journal/S";
/// Magic, era, position, length; then the payload and its digest.
pub(super) const SLOT_HEADER: usize = 16 + 16 + 8 + 4;
pub(super) const SLOT_DIGEST: usize = 32;

/// The changed parts as one journal slot, `None` when they do not fit.
/// An encrypted card's record is sealed under its key, for this card,
/// era and slot.
pub(super) fn encode_slot(
    image: &CardImage,
    changes: Changes<'_>,
    era: Era,
    index: usize,
    codec: &ImageCodec,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let key = changes.applet();
    let Some(state) = image.applet(key) else {
        return Ok(None);
    };
    let mut parts = serde_json::Map::new();
    for name in changes.parts() {
        match state.part(name) {
            Some(part) => {
                parts.insert(name.to_owned(), serde_json::to_value(part)?);
            }
            // A removed part cannot be said in a slot.
            None => return Ok(None),
        }
    }
    // Both buffers hold part values (PIN records): wiped when dropped.
    let json = Zeroizing::new(serde_json::to_vec(&JournalRecord {
        applet: key.to_owned(),
        parts,
    })?);
    let Some(payload) = codec.seal_record(&era, index, &json)? else {
        return Ok(None);
    };
    let payload = Zeroizing::new(payload);
    let Ok(length) = u32::try_from(payload.len()) else {
        return Ok(None);
    };
    if SLOT_HEADER + payload.len() + SLOT_DIGEST > JOURNAL_SLOT_SIZE {
        return Ok(None);
    }
    let mut slot = Zeroizing::new(Vec::with_capacity(JOURNAL_SLOT_SIZE));
    slot.extend_from_slice(if codec.is_sealed() {
        SEALED_JOURNAL_MAGIC
    } else {
        JOURNAL_MAGIC
    });
    slot.extend_from_slice(&era.0);
    slot.extend_from_slice(&(index as u64).to_le_bytes());
    slot.extend_from_slice(&length.to_le_bytes());
    slot.extend_from_slice(&payload);
    let digest = Sha256::digest(slot.as_slice());
    slot.extend_from_slice(&digest);
    // The whole page: nothing of an older, longer record stays behind.
    slot.resize(JOURNAL_SLOT_SIZE, 0);
    Ok(Some(slot))
}

/// One small commit: parts of one applet.
#[derive(Serialize, Deserialize)]
pub(super) struct JournalRecord {
    applet: String,
    parts: serde_json::Map<String, serde_json::Value>,
}

/// An intact record: sealed or not, its era, its position, its payload.
pub(super) struct Slot<'a> {
    pub(super) sealed: bool,
    pub(super) era: Era,
    pub(super) index: u64,
    pub(super) payload: &'a [u8],
}

/// What a slot holds, if it is an intact record.
pub(super) fn decode_slot(slot: &[u8]) -> Option<Slot<'_>> {
    let magic = slot.get(..16)?;
    let sealed = match magic {
        m if m == JOURNAL_MAGIC => false,
        m if m == SEALED_JOURNAL_MAGIC => true,
        _ => return None,
    };
    let era: [u8; 16] = slot.get(16..32)?.try_into().ok()?;
    let index = u64::from_le_bytes(slot.get(32..40)?.try_into().ok()?);
    let length = u32::from_le_bytes(slot.get(40..44)?.try_into().ok()?) as usize;
    let end = SLOT_HEADER.checked_add(length)?;
    let digest = slot.get(end..end.checked_add(SLOT_DIGEST)?)?;
    if Sha256::digest(slot.get(..end)?).as_slice() != digest {
        return None;
    }
    Some(Slot {
        sealed,
        era: Era(era),
        index,
        payload: slot.get(SLOT_HEADER..end)?,
    })
}

/// Applies the journal's records of `era` to `image`; returns how many.
/// An encrypted card's records must be sealed (for this card, era and
/// slot) and a plain card's in the clear: anything else of this era is
/// damage.
pub(super) fn replay_journal(
    path: &Path,
    era: Era,
    image: &mut CardImage,
    codec: &ImageCodec,
) -> Result<usize, StoreError> {
    let damaged = |problem: DamageKind| StoreError::Damaged {
        path: path.to_owned(),
        problem,
    };
    let Some((_, bytes)) = read_private(path)? else {
        return Ok(0);
    };
    if bytes.len() != JOURNAL_SLOTS * JOURNAL_SLOT_SIZE {
        return Err(damaged(DamageKind::JournalSize {
            expected: JOURNAL_SLOTS * JOURNAL_SLOT_SIZE,
            found: bytes.len() as u64,
        }));
    }
    let mut applied = 0;
    let mut ended = false;
    for (index, slot) in bytes.chunks_exact(JOURNAL_SLOT_SIZE).enumerate() {
        let record = decode_slot(slot).filter(|slot| slot.era == era);
        match record {
            Some(slot) if !ended && slot.index == index as u64 => {
                if slot.sealed != codec.is_sealed() {
                    let (found, image) = if slot.sealed {
                        ("encrypted", "unencrypted")
                    } else {
                        ("in the clear", "encrypted")
                    };
                    return Err(damaged(DamageKind::MixedRecord {
                        index,
                        found,
                        image,
                    }));
                }
                let payload = codec
                    .open_record(&era, index, slot.payload)
                    .map_err(|problem| damaged(DamageKind::SealedRecord { index, problem }))?;
                let record: JournalRecord = serde_json::from_slice(&payload)
                    .map_err(|source| damaged(DamageKind::UnreadableRecord { index, source }))?;
                let state = image.applet_mut(&record.applet);
                for (name, value) in record.parts {
                    state.insert_part(&name, PartValue::Encoded(Arc::new(value)));
                }
                applied += 1;
            }
            Some(_) => {
                return Err(damaged(DamageKind::JournalGap {
                    index,
                    missing: applied,
                }));
            }
            None => ended = true,
        }
    }
    Ok(applied)
}

/// Opens the journal for writing, creating it (all slots empty) if absent.
pub(super) fn open_journal(path: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let Some(file) = open_card_file(path, Access::Write)? else {
        // Written whole (real zeros, so later slot writes allocate no
        // blocks and `fdatasync` has no metadata to flush), then renamed
        // into place; the file written is the one kept open, so nothing
        // planted at the name meanwhile is ever written to.
        let zeros = vec![0u8; JOURNAL_SLOTS * JOURNAL_SLOT_SIZE];
        let (file, _) = rename_into_place(path, &zeros, 0o600)?;
        sync_parent(path).map_err(io)?;
        return Ok(file);
    };
    let len = file.metadata().map_err(io)?.len();
    if len == (JOURNAL_SLOTS * JOURNAL_SLOT_SIZE) as u64 {
        Ok(file)
    } else {
        Err(StoreError::Damaged {
            path: path.to_owned(),
            problem: DamageKind::JournalSize {
                expected: JOURNAL_SLOTS * JOURNAL_SLOT_SIZE,
                found: len,
            },
        })
    }
}
