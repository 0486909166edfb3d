//! Touch policies (Yubico tag `AB` of GENERATE and IMPORT; GET METADATA
//! tag `02`, second byte): when a slot key needs the user's touch.
//!
//! Contract: `ALWAYS` takes a fresh touch for every use, `CACHED` accepts
//! a touch used in the last 15 s, `NEVER` (the default) none. An operation
//! without its touch answers `6982`, what a YubiKey answers when nobody
//! touched it in time (yubico-piv-tool reports "Failed sign command with
//! code 6982" then), after checking everything else and before using the
//! key, so nothing (a PIN-always permission) is spent; the runtime holds
//! the command so that a touch can still complete it (see
//! `vscard_emulator`'s touch module for how the wait is realised).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vscard_emulator::{Context, Status};

/// How long a touch counts for a key with the cached policy.
pub const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// When a slot key needs a touch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TouchPolicy {
    /// `01`: never (the default).
    #[default]
    Never,
    /// `02`: a touch for every use.
    Always,
    /// `03`: a touch, then none for 15 s.
    Cached,
}

impl TouchPolicy {
    /// The policy byte.
    pub const fn byte(self) -> u8 {
        match self {
            TouchPolicy::Never => 0x01,
            TouchPolicy::Always => 0x02,
            TouchPolicy::Cached => 0x03,
        }
    }

    /// The policy for a byte: `00` means the default (never).
    pub const fn from_byte(byte: u8) -> Option<TouchPolicy> {
        match byte {
            0x00 | 0x01 => Some(TouchPolicy::Never),
            0x02 => Some(TouchPolicy::Always),
            0x03 => Some(TouchPolicy::Cached),
            _ => None,
        }
    }

    /// For `skip_serializing_if`: keys without a touch policy are stored
    /// as before touch policies existed.
    pub fn is_never(policy: &TouchPolicy) -> bool {
        *policy == TouchPolicy::Never
    }

    /// `6982` unless the policy is satisfied now; takes the touch it needs.
    pub(crate) fn require(self, ctx: &mut Context<'_>) -> Result<(), Status> {
        let touched = match self {
            TouchPolicy::Never => true,
            TouchPolicy::Cached if ctx.touched_within(TOUCH_CACHE) => true,
            TouchPolicy::Always | TouchPolicy::Cached => ctx.take_touch(),
        };
        if touched {
            Ok(())
        } else {
            Err(Status::SecurityStatusNotSatisfied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        for policy in [TouchPolicy::Never, TouchPolicy::Always, TouchPolicy::Cached] {
            assert_eq!(TouchPolicy::from_byte(policy.byte()), Some(policy));
        }
        assert_eq!(TouchPolicy::from_byte(0x00), Some(TouchPolicy::Never));
        assert_eq!(TouchPolicy::from_byte(0x04), None);
    }
}
