//! A secret-free description of a certificate, for `vscard inspect` and
//! logs: subject, issuer, serial, validity and key algorithm.

use serde::Serialize;
use x509_cert::Certificate;

use vscard_applet::Algorithm;

use super::applet_format;
use super::keys::algorithm_of_public_key;

/// What a person wants to see of a certificate. Times are RFC 3339 UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateSummary {
    /// Subject, RFC 4514 (most specific first, e.g. `CN=...,O=RX1`).
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number in upper-case hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: String,
    /// End of validity.
    pub not_after: String,
    /// The subject key's algorithm, when it is one a card holds
    /// (`rsa2048`, `p256`, `p384` in JSON).
    #[serde(serialize_with = "applet_format::optional_slot_algorithm")]
    pub key_algorithm: Option<Algorithm>,
}

impl CertificateSummary {
    /// Summarises `certificate`.
    pub fn of(certificate: &Certificate) -> CertificateSummary {
        let tbs = certificate.tbs_certificate();
        let serial = tbs
            .serial_number()
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect();
        let spki = tbs.subject_public_key_info();
        CertificateSummary {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            serial,
            not_before: tbs.validity().not_before.to_string(),
            not_after: tbs.validity().not_after.to_string(),
            key_algorithm: algorithm_of_public_key(spki).ok(),
        }
    }
}
