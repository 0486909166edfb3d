//! The card's storage: a fixed number of bytes for data objects and slot
//! keys together, as a real card has.
//!
//! Contract: PUT DATA, GENERATE ASYMMETRIC KEY PAIR and IMPORT ASYMMETRIC
//! KEY ask [`PivState::object_fits`] / [`PivState::key_fits`] before they
//! change anything, and answer `6A84` (ISO 7816-4 5.1.3, "not enough memory
//! space in the file") when the new total would exceed the capacity. The
//! total counts every object value (the card's own CCC, Discovery and Key
//! History too) and every slot key at [`key_cost`]; replacing an object or
//! a key counts only the difference, and deleting one always fits.
//! Personalisation outside APDUs (issuance) is not limited here; issuance
//! checks its own result with [`PivState::used_bytes`].

use crate::objects::DataObjectTag;
use crate::reference::{Algorithm, Slot};
use crate::state::PivState;

/// Bytes of storage a card has unless personalised otherwise: 256 KiB,
/// about what a PIV card or YubiKey offers for objects.
pub const DEFAULT_CAPACITY: u32 = 256 * 1024;

/// The storage a slot key takes: its PKCS #8 encoding, rounded up (a
/// fixed cost per algorithm, so a key generation can be refused before
/// the slow RSA generation runs).
pub const fn key_cost(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Rsa1024 => 656,
        Algorithm::Rsa2048 => 1232,
        Algorithm::Rsa3072 => 1808,
        Algorithm::Rsa4096 => 2400,
        Algorithm::EccP256 => 144,
        Algorithm::EccP384 => 192,
        Algorithm::Ed25519 | Algorithm::X25519 => 48,
        // Symmetric keys never live in a slot.
        Algorithm::Tdes | Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => 0,
    }
}

/// The persisted default, for state images written before the capacity
/// existed (they load with [`DEFAULT_CAPACITY`]).
pub(crate) const fn default_capacity() -> u32 {
    DEFAULT_CAPACITY
}

/// True for the default capacity, which is not written, so images of
/// default cards stay byte for byte what older builds wrote and read.
pub(crate) fn is_default_capacity(capacity: &u32) -> bool {
    *capacity == DEFAULT_CAPACITY
}

impl PivState {
    /// The card's capacity in bytes.
    pub fn capacity(&self) -> usize {
        usize::try_from(self.settings.capacity).unwrap_or(usize::MAX)
    }

    /// Bytes in use: every data object's value and every slot key's
    /// [`key_cost`].
    pub fn used_bytes(&self) -> usize {
        let objects: usize = self.objects.values().map(Vec::len).sum();
        let keys: usize = self.keys.values().map(|k| key_cost(k.algorithm())).sum();
        objects.saturating_add(keys)
    }

    /// Whether setting object `tag` to a value of `len` bytes (0 deletes)
    /// stays within the capacity.
    pub fn object_fits(&self, tag: DataObjectTag, len: usize) -> bool {
        let old = self.objects.get(&tag).map_or(0, Vec::len);
        len <= old || self.fits(len - old)
    }

    /// Whether a key of `algorithm` in `slot` (replacing its key, if any)
    /// stays within the capacity.
    pub fn key_fits(&self, slot: Slot, algorithm: Algorithm) -> bool {
        let old = self.keys.get(&slot).map_or(0, |k| key_cost(k.algorithm()));
        let new = key_cost(algorithm);
        new <= old || self.fits(new - old)
    }

    fn fits(&self, growth: usize) -> bool {
        self.used_bytes().saturating_add(growth) <= self.capacity()
    }
}
