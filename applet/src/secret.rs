//! [`Secret`]: secret bytes carried by a parsed command (PIN, PUK, key
//! material, authentication data).
//!
//! Contract: a `Secret`'s `Debug` shows its length only, so a [`Command`]
//! can derive `Debug` and still never print a secret (STYLE habit 7). It
//! borrows the command's data field, which the runtime owns and clears:
//! the applet makes no copy of it to zeroize.
//!
//! [`Bytes`] does the same for public data that is long or personal (a
//! certificate, printed information), which a trace needs only the length
//! of.
//!
//! [`Command`]: crate::command::Command

use std::fmt;

/// Secret bytes of a command; `Debug` prints `<N bytes redacted>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret<'a>(&'a [u8]);

impl<'a> Secret<'a> {
    /// Wraps the secret `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Secret<'a> {
        Secret(bytes)
    }

    /// The bytes themselves, for the handler that uses them.
    pub const fn expose(self) -> &'a [u8] {
        self.0
    }

    /// The length, which is not secret (it is in the APDU's Lc).
    pub const fn len(self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub const fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

/// Public bytes of a command that can be long or personal (a data
/// object's value, a host's EC point); `Debug` prints `<N bytes>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    /// Wraps `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Bytes<'a> {
        Bytes(bytes)
    }

    /// The bytes.
    pub const fn get(self) -> &'a [u8] {
        self.0
    }

    /// The length.
    pub const fn len(self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub const fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_only() {
        let secret = Secret::new(b"123456");
        assert_eq!(format!("{secret:?}"), "<6 bytes redacted>");
        assert_eq!(secret.expose(), b"123456");
        assert_eq!(format!("{:?}", Bytes::new(b"abc")), "<3 bytes>");
    }
}
