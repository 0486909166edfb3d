//! A text secret (PIN, unlock code, seed) that is wiped from memory when it
//! is dropped and never shows up in `Debug` output.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string: zeroized on drop, `Debug` prints `<redacted>`.
///
/// It deliberately has no `PartialEq`: the applet compares PINs in constant
/// time against its own stored reference data, never through this type.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The secret itself. Callers must not log or display it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Number of characters, safe to report in error messages.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> SecretString {
        SecretString::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = SecretString::new("123456");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "123456");
        assert_eq!(secret.char_count(), 6);
    }
}
