//! PIN and PUK values: the card's rules for them and the 8-byte padded
//! reference data format (SP 800-73-4 Part 2 2.4.3).
//!
//! Contract: the card stores and compares the padded 8-byte form, so a
//! VERIFY compares the command data as sent, in constant time, without any
//! format check before the comparison (a malformed candidate is simply a
//! wrong one and costs a try). The rules are checked only on a *new* value,
//! after the old value or the PUK was verified.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The length of padded PIN and PUK reference data.
pub const PADDED_LEN: usize = 8;

/// The card's rules for its PIN and PUK: length bounds, character set and
/// try limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRules {
    /// Shortest value, 1..=8 (default 6).
    pub min_length: u8,
    /// Longest value, `min_length..=8` (default 8).
    pub max_length: u8,
    /// Only the digits `0`-`9` in the PIN (default true, as SP 800-73-4
    /// Part 2 2.4.3 requires). It does not apply to a new PUK set by CHANGE
    /// REFERENCE DATA: the PUK may hold any byte values but `FF` (2.4.3,
    /// and YubiKeys accept them), see [`PinRules::for_puk`].
    pub digits_only: bool,
    /// PIN tries before it blocks, 1..=15 (default 3).
    pub pin_tries: u8,
    /// PUK tries before it blocks, 1..=15 (default 3).
    pub puk_tries: u8,
}

impl Default for PinRules {
    fn default() -> Self {
        PinRules {
            min_length: 6,
            max_length: 8,
            digits_only: true,
            pin_tries: 3,
            puk_tries: 3,
        }
    }
}

/// Why a set of rules or a value does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinRuleError {
    /// The length bounds are not `1 <= min <= max <= 8`.
    #[error("PIN length bounds {min}..={max} are not within 1..=8")]
    Bounds {
        /// The minimum given.
        min: u8,
        /// The maximum given.
        max: u8,
    },
    /// A try limit outside 1..=15.
    #[error("a try limit is 1..=15, got {0}")]
    Tries(u8),
    /// A value that breaks the rules.
    #[error("the value does not satisfy the PIN rules")]
    Value,
}

impl PinRules {
    /// Checks that the rules themselves make sense.
    pub fn check(&self) -> Result<(), PinRuleError> {
        let (min, max) = (self.min_length, self.max_length);
        if min == 0 || min > max || usize::from(max) > PADDED_LEN {
            return Err(PinRuleError::Bounds { min, max });
        }
        for tries in [self.pin_tries, self.puk_tries] {
            if tries == 0 || tries > 15 {
                return Err(PinRuleError::Tries(tries));
            }
        }
        Ok(())
    }

    /// The rules a new PUK is checked against: the same length bounds, any
    /// byte values but the padding byte `FF` (SP 800-73-4 Part 2 2.4.3
    /// restricts only the PIN to digits).
    pub fn for_puk(&self) -> PinRules {
        PinRules {
            digits_only: false,
            ..*self
        }
    }

    /// True when the unpadded `value` satisfies the rules.
    pub fn accepts(&self, value: &[u8]) -> bool {
        let length_ok =
            (usize::from(self.min_length)..=usize::from(self.max_length)).contains(&value.len());
        let chars_ok = if self.digits_only {
            value.iter().all(u8::is_ascii_digit)
        } else {
            !value.contains(&0xFF)
        };
        length_ok && chars_ok
    }

    /// True when padded reference data carries a value that satisfies the
    /// rules.
    pub fn accepts_padded(&self, padded: &[u8]) -> bool {
        unpad(padded).is_some_and(|value| self.accepts(value))
    }

    /// Pads a value that satisfies the rules.
    pub fn pad(&self, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, PinRuleError> {
        if !self.accepts(value) {
            return Err(PinRuleError::Value);
        }
        Ok(pad(value))
    }
}

/// Pads `value` with `FF` to 8 bytes (longer values are not padded).
pub fn pad(value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(value.to_vec());
    padded.resize(PADDED_LEN.max(value.len()), 0xFF);
    padded
}

/// The value inside 8-byte padded reference data: the bytes before the
/// first `FF`, when everything after it is `FF`.
pub fn unpad(padded: &[u8]) -> Option<&[u8]> {
    if padded.len() != PADDED_LEN {
        return None;
    }
    let end = padded.iter().position(|&b| b == 0xFF).unwrap_or(PADDED_LEN);
    let (value, padding) = padded.split_at(end);
    padding.iter().all(|&b| b == 0xFF).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_round_trips() {
        assert_eq!(&*pad(b"123456"), b"123456\xFF\xFF");
        assert_eq!(unpad(b"123456\xFF\xFF"), Some(&b"123456"[..]));
        assert_eq!(unpad(b"12345678"), Some(&b"12345678"[..]));
        assert_eq!(unpad(b"123\xFF56\xFF\xFF"), None);
        assert_eq!(unpad(b"123456\xFF"), None);
    }

    #[test]
    fn rules_apply() {
        let rules = PinRules::default();
        rules.check().unwrap();
        assert!(rules.accepts(b"123456"));
        assert!(!rules.accepts(b"12345"));
        assert!(!rules.accepts(b"123456789"));
        assert!(!rules.accepts(b"12345a"));
        assert!(rules.accepts_padded(b"1234567\xFF"));
        assert!(!rules.accepts_padded(b"1234\xFF\xFF\xFF\xFF"));
        let open = PinRules {
            digits_only: false,
            ..rules
        };
        assert!(open.accepts(b"abcdef"));
        assert_eq!(rules.for_puk(), open);
        assert!(!rules.for_puk().accepts(b"abc\xFFef"));
        assert_eq!(
            PinRules {
                min_length: 7,
                max_length: 6,
                ..rules
            }
            .check(),
            Err(PinRuleError::Bounds { min: 7, max: 6 })
        );
        assert_eq!(
            PinRules {
                pin_tries: 0,
                ..rules
            }
            .check(),
            Err(PinRuleError::Tries(0))
        );
    }
}
