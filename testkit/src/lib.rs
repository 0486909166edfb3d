//! What every vscard test shares (`publish = false`).
//!
//! - [`pcscd`]: a private pcscd with the vpcd driver in its own Linux
//!   namespaces, the [`TrivialCard`] baseline, and PC/SC helpers; re-exported
//!   at the crate root.
//! - [`echo`]: a tiny echo / counter / slow applet for the bridge's tests.
//! - [`client`]: the one host-side APDU client ([`Transport`], [`Client`]:
//!   status words, GET RESPONSE, command chaining), with the PIV commands
//!   of [`piv`] and the management-key authentication of [`management`]
//!   on it.
//! - [`softhsm`]: a throwaway SoftHSM2 token for the key-custody tests.
//! - [`python`]: the Python virtual environment (pyscard, PyKCS11) of
//!   `scripts/python-env`.
//!
//! Nothing here is a product path: the `vscard` binary and the card crates
//! never depend on this crate.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod echo;
pub mod management;
pub mod pcscd;
pub mod piv;
pub mod python;
pub mod softhsm;

pub use client::{Client, ClientError, PcscCard, Reply, Transport, TransportError};

pub use pcscd::*;
