//! Application identifiers (ISO 7816-5).
//!
//! An [`Aid`] is 5 to 16 bytes: a 5-byte registered application provider
//! identifier (RID) and an optional proprietary extension (PIX).
//!
//! Partial matching (ISO 7816-4 5.3.1, "right-truncated" DF names): a
//! SELECT whose data is a prefix of an installed AID selects that applet.
//! [`Aid::matches`] implements the rule: the command's name must be 1 to 16
//! bytes and a prefix of (or equal to) the installed AID.

use std::fmt;

/// An application identifier of 5 to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid {
    bytes: [u8; Aid::MAX_LEN],
    len: u8,
}

/// Why bytes are not an AID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an AID is 5 to 16 bytes, got {0}")]
pub struct AidLengthError(pub usize);

impl Aid {
    /// The shortest AID: a bare RID.
    pub const MIN_LEN: usize = 5;
    /// The longest AID.
    pub const MAX_LEN: usize = 16;

    /// An AID from its bytes.
    pub const fn new(bytes: &[u8]) -> Result<Aid, AidLengthError> {
        if bytes.len() < Aid::MIN_LEN || bytes.len() > Aid::MAX_LEN {
            return Err(AidLengthError(bytes.len()));
        }
        let mut out = [0u8; Aid::MAX_LEN];
        let mut i = 0;
        while i < bytes.len() {
            out[i] = bytes[i];
            i += 1;
        }
        Ok(Aid {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    /// An AID from an array whose length is checked at compile time, for
    /// the constant AID of an applet: `const PIV: Aid = Aid::from_array([..])`.
    pub const fn from_array<const N: usize>(bytes: [u8; N]) -> Aid {
        const {
            assert!(
                N >= Aid::MIN_LEN && N <= Aid::MAX_LEN,
                "an AID is 5 to 16 bytes"
            )
        };
        let mut out = [0u8; Aid::MAX_LEN];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        Aid {
            bytes: out,
            len: N as u8,
        }
    }

    /// The AID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The registered application provider identifier (first 5 bytes).
    pub fn rid(&self) -> &[u8] {
        &self.bytes[..Aid::MIN_LEN]
    }

    /// The proprietary application identifier extension.
    pub fn pix(&self) -> &[u8] {
        &self.bytes[Aid::MIN_LEN..usize::from(self.len)]
    }

    /// True when `name` (the data of a SELECT by DF name) selects this AID:
    /// it is equal to it or a right-truncated prefix of it, 1..=16 bytes.
    pub fn matches(&self, name: &[u8]) -> bool {
        !name.is_empty() && name.len() <= Aid::MAX_LEN && self.as_bytes().starts_with(name)
    }

    /// Upper-case hex, as used for keys in the card image.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.as_bytes())
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({})", self.to_hex())
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl TryFrom<&[u8]> for Aid {
    type Error = AidLengthError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Aid::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIV: &[u8] = &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0];

    #[test]
    fn length_bounds() {
        assert_eq!(Aid::new(&[1, 2, 3, 4]), Err(AidLengthError(4)));
        assert!(Aid::new(&[0; 16]).is_ok());
        assert_eq!(Aid::new(&[0; 17]), Err(AidLengthError(17)));
    }

    #[test]
    fn partial_matching() {
        let aid = Aid::new(PIV).unwrap();
        assert!(aid.matches(PIV));
        assert!(aid.matches(&PIV[..5]));
        assert!(aid.matches(&PIV[..9]));
        assert!(!aid.matches(&[]));
        assert!(!aid.matches(&[0xA0, 0, 0, 3, 9]));
        let mut longer = PIV.to_vec();
        longer.push(0);
        assert!(!aid.matches(&longer));
        assert_eq!(aid.rid(), &PIV[..5]);
        assert_eq!(aid.pix(), &PIV[5..]);
        assert_eq!(aid.to_hex(), "A000000308000010000100");
        const FROM_ARRAY: Aid = Aid::from_array([0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
        assert_eq!(FROM_ARRAY, aid);
    }
}
