//! The vscard card inside other programs: a UniFFI interface that Python
//! (module `vscard`), Kotlin and Swift load from this crate's library.
//!
//! - [`issue_image`]: a card issued from a profile (JSON or TOML text, as
//!   `vscard issue --profile` reads) and a seed, as image bytes.
//! - [`Card`]: a card opened from image bytes, in memory or on a store the
//!   app provides ([`CardStore`], optionally sealed with the app's key),
//!   with `power_on` / `transmit` / `snapshot` and typed PIV helpers.
//! - [`Keystore`]: keys held by the app (the platform keystore signs;
//!   [`install_keystore_key`] puts its key into a slot).
//! - [`Card::serve_link`]: the card served to a `vscard relay` over the
//!   link, paired from a pairing URI, with a [`LinkObserver`].
//!
//! Every failure is a [`VscardError`] (a typed exception in Python, a
//! sealed class in Kotlin, an enum in Swift); no path relies on unwinding
//! (no `unwrap`, `expect` or indexing on data that crosses the boundary),
//! so a `panic = "abort"` phone build is as safe as this one.

mod card;
mod issue;
mod keystore;
mod link;
mod piv;
mod store;

pub use card::Card;
pub use issue::{issue_image, seal_image};
pub use keystore::{KEYSTORE_CUSTODY, Keystore, KeystoreError, install_keystore_key};
pub use link::LinkObserver;
pub use store::CardStore;

uniffi::setup_scaffolding!("vscard");

/// What went wrong, as a typed exception on the other side.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum VscardError {
    /// The profile is not valid JSON / TOML, or breaks a rule.
    #[error("{message}")]
    Profile {
        /// What is wrong (the field and the rule).
        message: String,
    },
    /// Issuing the card failed (key generation, certificates).
    #[error("{message}")]
    Issuance {
        /// What failed.
        message: String,
    },
    /// The image bytes are not a card image, damaged, of a future
    /// version, or not a PIV card.
    #[error("{message}")]
    Image {
        /// What is wrong.
        message: String,
    },
    /// An encrypted image could not be opened: no key, a wrong key, a
    /// modified byte, another card's image; or the key is not 32 bytes.
    /// Nothing was loaded.
    #[error("{message}")]
    Encryption {
        /// What failed.
        message: String,
    },
    /// The app's store failed (its callback raised, or gave bytes that
    /// are not an image). On a commit the card answers as for a failed
    /// write (`6581`) and regains no PIN try.
    #[error("{message}")]
    Store {
        /// What failed.
        message: String,
    },
    /// The card answered with a status word other than `9000` to a typed
    /// helper (`verify_pin` and friends return the status word instead).
    #[error("the card answered {sw:04X}")]
    Status {
        /// The status word.
        sw: u16,
    },
    /// The card cannot do this now: not powered, served over the link,
    /// power lost.
    #[error("{message}")]
    Card {
        /// What the card said.
        message: String,
    },
    /// A bad argument: a slot name, a pairing URI, a malformed APDU.
    #[error("{message}")]
    Argument {
        /// What is wrong with it.
        message: String,
    },
    /// The link failed (refused by the relay, a bad pairing URI, I/O).
    #[error("{message}")]
    Link {
        /// What failed.
        message: String,
    },
    /// A callback of the app failed in a way its declared errors do not
    /// cover (an exception of another type).
    #[error("callback failed: {message}")]
    Callback {
        /// What the other side reported.
        message: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for VscardError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> VscardError {
        VscardError::Callback {
            message: error.reason,
        }
    }
}

impl VscardError {
    fn argument(message: impl Into<String>) -> VscardError {
        VscardError::Argument {
            message: message.into(),
        }
    }
}

/// Sorts a store error: encryption, the app's store, or the image.
fn store_error(error: &vscard_emulator::StoreError) -> VscardError {
    use vscard_emulator::StoreError;
    let message = error.to_string();
    match error {
        StoreError::Sealed { .. }
        | StoreError::KeyNeeded { .. }
        | StoreError::NotEncrypted { .. } => VscardError::Encryption { message },
        StoreError::Damaged { .. } | StoreError::FutureVersion { .. } => {
            VscardError::Image { message }
        }
        _ => VscardError::Store { message },
    }
}

/// Sorts a card error.
fn card_error(error: vscard_emulator::CardError) -> VscardError {
    match &error {
        vscard_emulator::CardError::Store(store) => store_error(store),
        _ => VscardError::Card {
            message: error.to_string(),
        },
    }
}
