//! The PIV application (NIST SP 800-73-4 Parts 1-2 subset, plus the Yubico
//! extensions middleware probes for) and the NHS identity profile.
//!
//! This crate will hold the applet that runs on the `vscard-emulator`
//! runtime: PIN and unlock-code handling, RSA-2048 and P-256 signing,
//! certificates and data objects, and issuance from a test PKI.

pub mod issuance;
