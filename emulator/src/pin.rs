//! [`OwnerPin`]: a try-limited secret, as Java Card's `OwnerPIN`.
//!
//! Order of a check (the one real cards use, so that cutting power during
//! a check never gives a try back): blocked? -> count the try and commit it
//! through the store -> compare in constant time -> on success reset the
//! counter and commit again. A failed commit aborts before the comparison.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Context, Part, Status};

/// The longest value an [`OwnerPin`] holds.
pub const PIN_MAX_LEN: usize = 16;

/// A PIN (or PUK, or any try-limited secret) with its try counter. It is
/// one part of its applet's persistent state; a stored form that breaks
/// the invariants of [`OwnerPin::new`] (too long, a try limit outside
/// 1..=15, more tries left than the limit) is refused when it is loaded.
#[derive(Clone, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(try_from = "StoredPin")]
pub struct OwnerPin {
    // Inline, not on the heap: a try copies the record into the commit,
    // and a copy without an allocation is what keeps a try cheap.
    value: [u8; PIN_MAX_LEN],
    len: u8,
    try_limit: u8,
    tries_left: u8,
}

/// The stored form: `{"value": "<hex>", "try_limit": n, "tries_left": n}`.
impl Serialize for OwnerPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        struct Hex<'a>(&'a [u8]);
        impl Serialize for Hex<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                hex_secret::serialize(self.0, serializer)
            }
        }
        let mut record = serializer.serialize_struct("OwnerPin", 3)?;
        record.serialize_field("value", &Hex(self.value()))?;
        record.serialize_field("try_limit", &self.try_limit)?;
        record.serialize_field("tries_left", &self.tries_left)?;
        record.end()
    }
}

/// The stored form of an [`OwnerPin`], checked before it becomes one.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredPin {
    #[serde(with = "hex_secret")]
    value: Vec<u8>,
    try_limit: u8,
    tries_left: u8,
}

impl TryFrom<StoredPin> for OwnerPin {
    type Error = String;

    fn try_from(stored: StoredPin) -> Result<OwnerPin, String> {
        let mut pin = OwnerPin::new(&stored.value, stored.try_limit).map_err(|e| e.to_string())?;
        if stored.tries_left > stored.try_limit {
            return Err(format!(
                "{} tries left is more than the limit of {}",
                stored.tries_left, stored.try_limit
            ));
        }
        pin.tries_left = stored.tries_left;
        Ok(pin)
    }
}

/// The outcome of [`OwnerPin::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// The candidate matched; the counter is back at the limit.
    Verified,
    /// The candidate did not match; this many tries are left (0 = now
    /// blocked).
    Wrong {
        /// Tries left after this one.
        tries_left: u8,
    },
    /// No tries were left; nothing was compared.
    Blocked,
}

/// Why a value cannot be an [`OwnerPin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// Longer than [`PIN_MAX_LEN`].
    #[error("a PIN value is at most {PIN_MAX_LEN} bytes, got {0}")]
    TooLong(usize),
    /// A try limit must be 1..=15 (it is reported in a 63Cx nibble).
    #[error("a try limit is 1..=15, got {0}")]
    TryLimit(u8),
}

impl OwnerPin {
    /// A PIN with `value` and `try_limit` tries.
    pub fn new(value: &[u8], try_limit: u8) -> Result<OwnerPin, PinError> {
        if value.len() > PIN_MAX_LEN {
            return Err(PinError::TooLong(value.len()));
        }
        if try_limit == 0 || try_limit > 15 {
            return Err(PinError::TryLimit(try_limit));
        }
        let mut pin = OwnerPin {
            value: [0; PIN_MAX_LEN],
            len: 0,
            try_limit,
            tries_left: try_limit,
        };
        pin.set_value(value)?;
        Ok(pin)
    }

    fn set_value(&mut self, value: &[u8]) -> Result<(), PinError> {
        let Some(slot) = self.value.get_mut(..value.len()) else {
            return Err(PinError::TooLong(value.len()));
        };
        slot.copy_from_slice(value);
        self.len = value.len() as u8;
        Ok(())
    }

    fn value(&self) -> &[u8] {
        self.value.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Tries left before the PIN blocks.
    pub fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// The try limit.
    pub fn try_limit(&self) -> u8 {
        self.try_limit
    }

    /// True when no tries are left.
    pub fn is_blocked(&self) -> bool {
        self.tries_left == 0
    }

    /// Checks `candidate`, committing this PIN as part `part` of the
    /// applet's state before the comparison (see the module doc). An error
    /// means the try could not be made durable; nothing was compared.
    pub fn check(
        &mut self,
        ctx: &mut Context<'_>,
        part: Part<OwnerPin>,
        candidate: &[u8],
    ) -> Result<PinCheck, Status> {
        if self.tries_left == 0 {
            return Ok(PinCheck::Blocked);
        }
        // The try and the reset after a correct PIN: both must be
        // committable before the try is counted, or a full disk could
        // take the try and refuse the reset (a correct PIN costing a try).
        ctx.reserve_commits(2)?;
        self.tries_left -= 1;
        ctx.commit_part(part, self)?;
        if self.matches(candidate) {
            self.tries_left = self.try_limit;
            ctx.commit_part(part, self)?;
            Ok(PinCheck::Verified)
        } else {
            Ok(PinCheck::Wrong {
                tries_left: self.tries_left,
            })
        }
    }

    /// Constant-time comparison over the full buffer: neither the position
    /// of the first difference nor the stored length leaks through timing.
    fn matches(&self, candidate: &[u8]) -> bool {
        let mut stored = Zeroizing::new([0u8; PIN_MAX_LEN]);
        let mut given = Zeroizing::new([0u8; PIN_MAX_LEN]);
        for (slot, byte) in stored.iter_mut().zip(self.value()) {
            *slot = *byte;
        }
        for (slot, byte) in given.iter_mut().zip(candidate) {
            *slot = *byte;
        }
        let same_len = u64::from(self.len).ct_eq(&(candidate.len() as u64));
        bool::from(stored[..].ct_eq(&given[..]) & same_len)
    }

    /// Replaces the value (after the caller verified the old one or the
    /// unblocking secret) and resets the counter. The caller commits.
    pub fn update(&mut self, value: &[u8]) -> Result<(), PinError> {
        if value.len() > PIN_MAX_LEN {
            return Err(PinError::TooLong(value.len()));
        }
        self.value.zeroize();
        self.set_value(value)?;
        self.tries_left = self.try_limit;
        Ok(())
    }
}

impl fmt::Debug for OwnerPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerPin")
            .field("value", &"<redacted>")
            .field("try_limit", &self.try_limit)
            .field("tries_left", &self.tries_left)
            .finish()
    }
}

/// Serde helpers that keep secrets out of intermediate strings that are
/// not zeroized: hex on the way out, decoded into a zeroizing buffer.
pub mod hex_secret {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    /// Serializes bytes as hex.
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(hex::encode(value));
        serializer.serialize_str(&encoded)
    }

    /// Deserializes bytes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let encoded = Zeroizing::new(String::deserialize(deserializer)?);
        hex::decode(encoded.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(
            OwnerPin::new(&[0; 17], 3).err(),
            Some(PinError::TooLong(17))
        );
        assert_eq!(OwnerPin::new(b"1234", 0).err(), Some(PinError::TryLimit(0)));
        assert_eq!(
            OwnerPin::new(b"1234", 16).err(),
            Some(PinError::TryLimit(16))
        );
    }

    #[test]
    fn comparison_needs_equal_length_and_bytes() {
        let pin = OwnerPin::new(b"123456", 3).unwrap();
        assert!(pin.matches(b"123456"));
        assert!(!pin.matches(b"12345"));
        assert!(!pin.matches(b"1234560"));
        assert!(!pin.matches(b"123457"));
        assert!(!pin.matches(&[b'1'; 40]));
    }

    #[test]
    fn a_stored_pin_that_breaks_the_invariants_is_refused() {
        let long = format!(
            r#"{{"value":"{}","try_limit":3,"tries_left":3}}"#,
            "31".repeat(17)
        );
        assert!(serde_json::from_str::<OwnerPin>(&long).is_err());
        let limit = r#"{"value":"31323334","try_limit":0,"tries_left":0}"#;
        assert!(serde_json::from_str::<OwnerPin>(limit).is_err());
        let more = r#"{"value":"31323334","try_limit":3,"tries_left":9}"#;
        let err = serde_json::from_str::<OwnerPin>(more)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("9 tries left is more than the limit of 3"),
            "{err}"
        );
        let ok = r#"{"value":"31323334","try_limit":3,"tries_left":1}"#;
        assert_eq!(
            serde_json::from_str::<OwnerPin>(ok).unwrap().tries_left(),
            1
        );
    }

    #[test]
    fn debug_redacts_and_serde_round_trips() {
        let pin = OwnerPin::new(b"123456", 3).unwrap();
        let debug = format!("{pin:?}");
        assert!(!debug.contains("123456") && debug.contains("<redacted>"));
        let json = serde_json::to_string(&pin).unwrap();
        let back: OwnerPin = serde_json::from_str(&json).unwrap();
        assert!(back.matches(b"123456"));
        assert_eq!(back.tries_left(), 3);
    }
}
