//! Revocation: the issuer's index of every certificate it issued, the
//! CRL, the OCSP responder, and the URLs card certificates carry to find
//! them.
//!
//! Contract: the index is the truth. A certificate is recorded when it is
//! issued (`vscard issue`, `renew`); `vscard revoke` marks it revoked,
//! once (the first time and reason stand); the CRL ([`build_crl`]) lists
//! every revoked entry, and the OCSP responder ([`OcspResponder`]) answers
//! from the same index. Everything here is pure but [`store`], which
//! keeps the files in the environment's PKI folder.

mod crl;
mod index;
pub mod ocsp;
mod reason;
mod settings;
pub mod store;

pub use crl::{CRL_LIFETIME, build_crl};
pub use index::{
    CertificateIndex, CertificateStatus, INDEX_FORMAT, INDEX_VERSION, IndexEntry, Revocation,
    parse_rfc3339, rfc3339, serial_hex,
};
pub use ocsp::{OcspResponder, ResponseCache};
pub use reason::RevocationReason;
pub use settings::{CRL_PATH, DEFAULT_RESPONDER_ADDRESS, MAX_URL_BYTES, RevocationUrls, check_url};
