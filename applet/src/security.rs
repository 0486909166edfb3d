//! The security status of one PIV selection (SP 800-73-4 Part 2 2.4):
//! which authentications the host has performed since the application was
//! selected.
//!
//! Contract: this is transient state. The applet keeps it in a
//! [`vscard_emulator::Transient`] cleared on deselection, so a reset, a
//! power cut, selecting another application or a second logical channel
//! all start from [`SecurityStatus::default`]: nothing verified.

use zeroize::Zeroizing;

use crate::reference::Algorithm;

/// What the host proved since the PIV application was selected.
#[derive(Debug, Default)]
pub struct SecurityStatus {
    /// Where the PIN verification stands.
    pub pin: PinStatus,
    /// Where the management key authentication stands.
    pub management: ManagementAuth,
}

/// The PIN's part of the security status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PinStatus {
    /// Not verified (or logged out, or a VERIFY failed since).
    #[default]
    NotVerified,
    /// Verified; the VERIFY that did it was already used by a PIN-always
    /// key (9C), which needs a new one.
    Verified,
    /// Verified by a VERIFY that no PIN-always key used yet: it unlocks
    /// exactly one PIN-always operation.
    VerifiedFresh,
}

/// The management key (`9B`) authentication, a multi-step protocol
/// (SP 800-73-4 Part 2 Appendix A.1 external, A.2 mutual).
///
/// A session already authenticated stays so while a new authentication is
/// under way (`was_authenticated`): a challenge or witness request only
/// starts one, as on a YubiKey, where middleware authenticates again in
/// the same session (and OpenSC asks for random bytes through a challenge
/// request). The new authentication then decides: its success keeps the
/// session authenticated, its failure (a wrong answer, or a step out of
/// order) ends the authentication.
#[derive(Default)]
pub enum ManagementAuth {
    /// Nothing in progress, not authenticated.
    #[default]
    None,
    /// Mutual authentication step 1 done: the card sent the encrypted
    /// witness and waits for the decrypted one.
    WitnessIssued {
        /// The algorithm named in step 1.
        algorithm: Algorithm,
        /// The plaintext witness.
        witness: Zeroizing<Vec<u8>>,
        /// The session was authenticated when step 1 came.
        was_authenticated: bool,
    },
    /// External authentication step 1 done: the card sent a challenge and
    /// waits for its encryption.
    ChallengeIssued {
        /// The algorithm named in step 1.
        algorithm: Algorithm,
        /// The challenge sent.
        challenge: Zeroizing<Vec<u8>>,
        /// The session was authenticated when step 1 came.
        was_authenticated: bool,
    },
    /// The host proved it holds the management key.
    Authenticated,
}

impl std::fmt::Debug for ManagementAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ManagementAuth::None => "None",
            ManagementAuth::WitnessIssued { .. } => "WitnessIssued(<redacted>)",
            ManagementAuth::ChallengeIssued { .. } => "ChallengeIssued(<redacted>)",
            ManagementAuth::Authenticated => "Authenticated",
        })
    }
}

impl SecurityStatus {
    /// True once the management key was authenticated.
    pub fn management_authenticated(&self) -> bool {
        match self.management {
            ManagementAuth::None => false,
            ManagementAuth::WitnessIssued {
                was_authenticated, ..
            }
            | ManagementAuth::ChallengeIssued {
                was_authenticated, ..
            } => was_authenticated,
            ManagementAuth::Authenticated => true,
        }
    }

    /// True while the PIN is verified.
    pub fn pin_verified(&self) -> bool {
        self.pin != PinStatus::NotVerified
    }

    /// Forgets the PIN verification (failed VERIFY, log out).
    pub fn forget_pin(&mut self) {
        self.pin = PinStatus::NotVerified;
    }
}
