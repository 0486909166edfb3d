//! What can go wrong with a card file, and the exit code each failure
//! gives the `vscard` command line.

use std::io;
use std::path::PathBuf;

use crate::{IssuanceError, PkiError, ProfileError};
use thiserror::Error;
use vscard_emulator::{CardError, StateError, StoreError};

/// Exit code of a bad command line or bad input (profile, card file).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of every other failure.
pub const EXIT_FAILURE: u8 = 1;

/// Failures of issuing, reading, renewing and serving card files.
///
/// Messages name the file or the field at fault and never carry a secret
/// (profile errors describe a PIN by its length only).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardFileError {
    /// The card profile (from a file or the flags) breaks a rule.
    #[error("invalid card profile: {0}")]
    Profile(#[from] ProfileError),
    /// The profile file cannot be read.
    #[error("{}: cannot read the profile: {source}", path.display())]
    ProfileFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A command-line value the option does not take.
    #[error("{option}: {reason}")]
    BadValue {
        /// The option, e.g. `--not-before`.
        option: &'static str,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// `issue` would replace a card image that exists.
    #[error("{}: a card image already exists; pass --force to replace it", path.display())]
    Exists {
        /// The image.
        path: PathBuf,
    },
    /// No card image at the path.
    #[error("{}: no card image there", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A sound card image that holds no PIV application.
    #[error("{}: not a PIV card image (it has no PIV application state)", path.display())]
    NotPiv {
        /// The image.
        path: PathBuf,
    },
    /// The image's PIV state does not load.
    #[error("{}: damaged PIV state: {source}", path.display())]
    State {
        /// The image.
        path: PathBuf,
        /// Why it does not load.
        source: StateError,
    },
    /// The environment's test PKI is not in the state directory.
    #[error(
        "no test PKI for the environment {environment} under {}: use the state directory the card was issued with (--state-dir or VSCARD_HOME)",
        state_dir.display()
    )]
    NoPki {
        /// The card's environment.
        environment: String,
        /// Where it was looked for.
        state_dir: PathBuf,
    },
    /// `renew` would re-sign the card under another CA than the one that
    /// issued it (another PKI of the same environment name: another
    /// machine's, or one re-created since); refused unless `--new-ca`.
    #[error(
        "{}: the card's certificates were not issued by the Sub CA of the test PKI {pki} under {}: renewing would move the card to another CA; pass --new-ca to do so, or use the state directory that issued it (--state-dir or VSCARD_HOME)",
        path.display(),
        state_dir.display()
    )]
    DifferentCa {
        /// The card image.
        path: PathBuf,
        /// The id of the PKI that would sign.
        pki: String,
        /// Where that PKI is.
        state_dir: PathBuf,
    },
    /// The card file store refused (damaged, locked, unwritable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The card could not be built from its image.
    #[error(transparent)]
    Card(#[from] CardError),
    /// The test PKI could not be opened or created.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Keys or certificates could not be made.
    #[error(transparent)]
    Issuance(#[from] IssuanceError),
    /// `revoke` of a card the environment's Sub CA did not issue: its
    /// index cannot revoke another CA's certificates.
    #[error(
        "{}: the card's certificates were not issued by the Sub CA of the test PKI {pki} under {}: revoke it with the state directory that issued it (--state-dir or VSCARD_HOME)",
        path.display(),
        state_dir.display()
    )]
    RevokeOtherCa {
        /// The card image.
        path: PathBuf,
        /// The id of the state directory's PKI.
        pki: String,
        /// The state directory.
        state_dir: PathBuf,
    },
    /// `renew` of a card whose certificate is revoked: a cancelled card is
    /// not brought back, and a compromised key is not certified again.
    #[error(
        "{}: the {slot} certificate was revoked ({reason}) on {revoked_at}: {}",
        path.display(),
        if *.reason == crate::revocation::RevocationReason::KeyCompromise {
            "renew with --new-keys, or issue a new card"
        } else {
            "a revoked card is not renewed; issue a new card"
        }
    )]
    Revoked {
        /// The card image.
        path: PathBuf,
        /// The slot, e.g. `9A`.
        slot: String,
        /// Why it was revoked.
        reason: crate::revocation::RevocationReason,
        /// When, RFC 3339.
        revoked_at: String,
    },
    /// The operating system's random generator failed.
    #[error("cannot seed the random generator")]
    Rng(#[source] vscard_emulator::SysError),
    /// A file or folder operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl CardFileError {
    /// True when the failure is the user's input: the profile, a flag's
    /// value, or a card file that is missing, damaged or not a PIV card.
    pub fn is_bad_input(&self) -> bool {
        match self {
            CardFileError::Profile(_)
            | CardFileError::ProfileFile { .. }
            | CardFileError::BadValue { .. }
            | CardFileError::Exists { .. }
            | CardFileError::Missing { .. }
            | CardFileError::NotPiv { .. }
            | CardFileError::State { .. }
            | CardFileError::DifferentCa { .. }
            | CardFileError::RevokeOtherCa { .. }
            | CardFileError::Revoked { .. }
            | CardFileError::Pki(PkiError::Import { .. } | PkiError::Different { .. }) => true,
            CardFileError::Store(error) | CardFileError::Card(CardError::Store(error)) => {
                store_input(error)
            }
            CardFileError::Card(CardError::State { .. }) => true,
            CardFileError::Issuance(error) => issuance_input(error),
            _ => false,
        }
    }

    /// [`EXIT_BAD_INPUT`] or [`EXIT_FAILURE`].
    pub fn exit_code(&self) -> u8 {
        if self.is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILURE
        }
    }
}

fn store_input(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Damaged { .. }
            | StoreError::FutureVersion { .. }
            | StoreError::Sealed { .. }
            | StoreError::KeyNeeded { .. }
            | StoreError::NotEncrypted { .. }
    )
}

fn issuance_input(error: &IssuanceError) -> bool {
    matches!(
        error,
        IssuanceError::Profile(_)
            | IssuanceError::EmptyValidity { .. }
            | IssuanceError::TimeOutOfRange(_)
    )
}

/// An I/O error on `path`.
pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CardFileError {
    let path = path.into();
    move |source| CardFileError::Io { path, source }
}
