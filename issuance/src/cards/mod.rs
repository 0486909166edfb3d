//! PIV card image files: what `vscard issue`, `inspect`, `renew` and
//! `serve` do with them.
//!
//! - [`issue_card_file`]: a profile issued from the environment's test PKI
//!   into a new image ([`read_profile`] reads a profile file), in the
//!   [`KnownState`]s asked for.
//! - [`read_applet`]: the PIV application of an image, for `inspect`
//!   (no lock).
//! - [`renew_card_file`]: new certificates (and optionally keys), PIN
//!   counters kept.
//! - [`revoke_card_file`]: the card's certificates revoked in its
//!   environment's index, and a new CRL.
//! - [`open_card`]: a [`vscard_emulator::Card`] on the image's
//!   `FileStore`, for `serve`.
//!
//! Every failure is a [`CardFileError`], whose
//! [`exit_code`](CardFileError::exit_code) tells bad input (2) from other
//! failures (1).

mod error;
mod image;
mod issue;
mod revoke;
mod states;

pub use error::{CardFileError, EXIT_BAD_INPUT, EXIT_FAILURE};
pub use image::{
    NewCardFile, open_card, open_card_with, read_applet, read_applet_with, renew_card_file,
    renew_card_file_with,
};
pub use issue::{issue_card_file, issue_card_file_with, read_profile};
pub use revoke::{RevokedCertificate, revoke_card_file, revoke_card_file_with};
pub use states::{EXPIRING_SOON_DAYS, KnownState, apply_states};
