//! The card host: many cards in PostgreSQL, any number of host processes
//! on one database, one host per card at a time.
//!
//! ```text
//!  PostgreSQL  <-  host A  \   (a card is served by the host that holds
//!  (cards,     <-  host B   >   its lease; its commits carry the lease's
//!   parts,     <-  host C  /    fencing number)
//!   leases)
//! ```
//!
//! - [`Database`]: the pool of connections, the versioned schema (applied
//!   on start, a database newer than this build refused) and the card
//!   administration (put a card in, list, revoke).
//! - [`Lease`]: a row per card with its holder, expiry and a fencing
//!   number that grows with every new lease. A host serves a card only
//!   while it holds the lease, and renews it while it serves.
//! - [`PostgresStore`]: the emulator's [`vscard_emulator::Store`] on those
//!   rows. A card's image is one row per part; each commit is one
//!   transaction with `synchronous_commit` on (a PIN try is durable before
//!   the compare, as on a file) that also checks the fencing number and
//!   the expiry, so a host that was paused or cut off past its lease can
//!   never write, whoever holds the card now.
//! - Sealing ([`Database::with_seal_key`]): given a key, every part is
//!   stored AES-256-GCM-sealed for its card, applet and part
//!   (`card_parts.encoding = 'aes256gcm'`), and so is the hosts' link
//!   key; such a host refuses parts in the clear.
//!
//! Time is the database's (`clock_timestamp()`): hosts' clocks never
//! decide who holds a card.
//!
//! Threads: the PostgreSQL client here is synchronous, like the `Store`
//! trait. It must not run inside a tokio runtime (its own `block_on`
//! would panic there), so a served card runs on a thread of its own.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod approval;
mod approver;
mod database;
mod device;
mod error;
mod lease;
mod schema;
mod sealing;
pub mod serve;
mod signature;
mod store;

pub use approval::{Decision, PendingApproval};
pub use database::{Approval, CardOptions, CardRow, Database, DeviceRole, redact_url};
pub use device::{DEVICE_KEY_FORMAT, DeviceKey, RevokedDevice};
pub use error::HostError;
pub use lease::{Lease, holder_name};
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;
