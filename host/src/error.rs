//! [`HostError`]: what the card host's database work can fail with.

use thiserror::Error;

/// Why a card-host operation failed. No variant carries the database URL
/// (it may hold a password).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HostError {
    /// The database answered with an error, or the connection broke.
    #[error("database: {0}")]
    Database(#[from] postgres::Error),
    /// No connection could be had from the pool in time (the database is
    /// down or unreachable).
    #[error("no database connection: {0}")]
    Pool(#[from] r2d2::Error),
    /// The database URL does not parse (shown redacted).
    #[error("bad database URL {url}: {reason}")]
    BadUrl {
        /// The URL, its password replaced.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database was migrated by a newer vscard.
    #[error(
        "the database's schema is version {found}, newer than this vscard knows ({supported}); nothing was changed: upgrade vscard"
    )]
    FutureSchema {
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// The lease this host held moved to another host, or expired: the
    /// write was refused.
    #[error(
        "card {card}: this host's lease (fencing number {fence}) expired or moved to another host; nothing was written"
    )]
    LeaseLost {
        /// The card.
        card: String,
        /// The fencing number this host held.
        fence: i64,
    },
    /// The lease was not renewed in time: it may have expired, so the
    /// session ended before answering anything more.
    #[error(
        "card {card}: this host's lease (fencing number {fence}) was not renewed in time and may have expired; the session ended"
    )]
    LeaseLapsed {
        /// The card.
        card: String,
        /// The fencing number this host held.
        fence: i64,
    },
    /// Another session (on this host or another) has the card: one
    /// session per card at a time.
    #[error(
        "card {card} is in another session (its lease is held by {holder} for {seconds:.1} s more): one session per card at a time"
    )]
    LeaseHeld {
        /// The card.
        card: String,
        /// Who holds its lease.
        holder: String,
        /// How long the lease has left.
        seconds: f64,
    },
    /// The device a session is for is no longer enrolled for the card
    /// (revoked): its lease is not taken, or not renewed.
    #[error(
        "card {card}: device {device} is no longer enrolled for it (revoked); the card is not served to it"
    )]
    DeviceNotEnrolled {
        /// The card.
        card: String,
        /// The device's fingerprint (its first 16 hex digits).
        device: String,
    },
    /// The hosts' link key in the database is refused (its public half is
    /// not its private half's, or a host with a key found it in the
    /// clear); the reason says what to do.
    #[error("the hosts' link key in the database is refused: {0}")]
    HostIdentity(String),
    /// No card with this ID.
    #[error("no card {0} in the database")]
    NoSuchCard(String),
    /// The card was revoked: it is never served again.
    #[error("card {0} is revoked")]
    Revoked(String),
    /// A card with this ID is already in the database.
    #[error("card {0} is already in the database (revoke it, or pick another --id)")]
    CardExists(String),
    /// A card ID that is not 1 to 64 letters, digits, `.`, `_` or `-`.
    #[error("bad card ID {0:?}: 1 to 64 letters, digits, '.', '_' or '-'")]
    BadCardId(String),
    /// A stored part cannot be read.
    #[error("card {card}: part {applet}/{part} cannot be read: {reason}")]
    DamagedPart {
        /// The card.
        card: String,
        /// The applet's AID key.
        applet: String,
        /// The part's name.
        part: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is sealed (encrypted at rest) and this host has no key.
    #[error("{what} is encrypted: give the key it was encrypted under (--encrypt-key-file FILE)")]
    KeyNeeded {
        /// What is sealed (`card ID`, `the hosts' link key`).
        what: String,
    },
    /// A value is in the clear, and this host, given a key, reads only
    /// sealed ones (a plaintext row may have been planted, or the card put
    /// in without the key).
    #[error(
        "{what} is stored in the clear, and this host encrypts card images at rest \
         (--encrypt-key-file): refused; put the card in again with the key"
    )]
    NotEncrypted {
        /// What is in the clear.
        what: String,
    },
    /// A value could not be sealed (no randomness, an identity too long).
    #[error("cannot encrypt: {0}")]
    Seal(vscard_emulator::seal::SealError),
    /// The card image could not be encoded or decoded.
    #[error("card image: {0}")]
    Image(#[from] serde_json::Error),
    /// The holder refused the session on the enrolled device.
    #[error("the holder refused the session for card {0}")]
    ApprovalRefused(String),
    /// Another session's approval request for the card is open.
    #[error("card {0}: another session is waiting for the holder's approval; try again later")]
    ApprovalBusy(String),
    /// Nobody approved the session in time.
    #[error("the holder did not approve the session for card {card} within {seconds} s")]
    ApprovalTimedOut {
        /// The card.
        card: String,
        /// How long the host waited.
        seconds: u64,
    },
    /// No enrolled device matches (or more than one does).
    #[error("{0}")]
    NoSuchDevice(String),
    /// The relay went away while its session waited for the holder.
    #[error("card {0}: the relay went away before the holder decided")]
    Withdrawn(String),
    /// The card's image does not make a card.
    #[error("card {card} cannot be opened: {reason}")]
    CardUnusable {
        /// The card.
        card: String,
        /// Why.
        reason: String,
    },
    /// A device key file cannot be read or written.
    #[error("{}: {reason}", path.display())]
    BadDeviceKey {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A stored setting this vscard does not know (the database was
    /// changed by hand or by a newer vscard): refused, never defaulted.
    #[error("the database holds an unknown {what} {value:?}")]
    BadSetting {
        /// Which setting.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// A device tried what its role does not allow.
    #[error("{0}")]
    WrongRole(String),
    /// The operating system's random generator failed.
    #[error("random generator: {0}")]
    Random(String),
}

impl HostError {
    /// True when the database could not be reached (as opposed to a
    /// refusal): worth retrying once it is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            HostError::Pool(_) => true,
            HostError::Database(e) => e.is_closed() || e.code().is_none(),
            _ => false,
        }
    }
}

/// Checks a card ID (it names rows and appears in messages and logs).
pub(crate) fn check_card_id(id: &str) -> Result<(), HostError> {
    let good = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if good {
        Ok(())
    } else {
        Err(HostError::BadCardId(id.to_owned()))
    }
}
