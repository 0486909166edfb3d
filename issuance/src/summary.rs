//! A secret-free description of a certificate, for `vscard inspect` and
//! logs: subject, issuer, serial, validity, key algorithm, SHA-256
//! fingerprint and PEM, and (given an instant) where its validity stands.

use std::time::SystemTime;

use der::{Encode, EncodePem, pem::LineEnding};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use vscard_applet::Algorithm;

use super::applet_format;
use super::error::IssuanceError;
use super::keys::algorithm_of_public_key;

/// Seconds in a day, for [`CertificateStatus::days_left`].
const DAY_SECONDS: i64 = 24 * 60 * 60;

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
    /// SHA-256 of the DER certificate, upper-case hex pairs joined by `:`
    /// (as `openssl x509 -fingerprint -sha256` prints it).
    pub sha256_fingerprint: String,
    /// The certificate in PEM.
    pub pem: String,
    /// Where the validity stands at the instant the summary was made for
    /// ([`CertificateSummary::at`]); in JSON its fields sit beside the
    /// others (`expired`, `not_yet_valid`, `days_left`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub status: Option<CertificateStatus>,
}

/// Where a certificate's validity stands at one instant: one value per
/// certificate, so that more (a renewal window, revocation) can be added
/// beside these without changing how summaries are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateStatus {
    /// The end of validity has passed.
    pub expired: bool,
    /// The start of validity has not come yet.
    pub not_yet_valid: bool,
    /// Whole days until the end of validity (rounded towards zero);
    /// negative: whole days since it ended.
    pub days_left: i64,
}

impl CertificateStatus {
    /// The status of `certificate` at `now` (RFC 5280 4.1.2.5: valid from
    /// notBefore to notAfter, both included).
    pub fn at(certificate: &Certificate, now: SystemTime) -> CertificateStatus {
        let validity = certificate.tbs_certificate().validity();
        let not_before = validity.not_before.to_system_time();
        let not_after = validity.not_after.to_system_time();
        CertificateStatus {
            expired: now > not_after,
            not_yet_valid: now < not_before,
            days_left: seconds_between(now, not_after) / DAY_SECONDS,
        }
    }

    /// True when the certificate is within its validity.
    pub fn is_valid(&self) -> bool {
        !self.expired && !self.not_yet_valid
    }
}

/// `to - from` in whole seconds (negative when `to` is earlier).
fn seconds_between(from: SystemTime, to: SystemTime) -> i64 {
    let seconds =
        |duration: std::time::Duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    match to.duration_since(from) {
        Ok(ahead) => seconds(ahead),
        Err(behind) => -seconds(behind.duration()),
    }
}

impl CertificateSummary {
    /// Summarises `certificate`, without a status (no clock is read).
    pub fn of(certificate: &Certificate) -> CertificateSummary {
        let tbs = certificate.tbs_certificate();
        let serial = tbs
            .serial_number()
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect();
        let spki = tbs.subject_public_key_info();
        // A certificate decoded from DER always encodes again; the
        // fields stay empty rather than fail the whole summary.
        let sha256_fingerprint = certificate_der(certificate)
            .map(|der| fingerprint(&der))
            .unwrap_or_default();
        CertificateSummary {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            serial,
            not_before: tbs.validity().not_before.to_string(),
            not_after: tbs.validity().not_after.to_string(),
            key_algorithm: algorithm_of_public_key(spki).ok(),
            sha256_fingerprint,
            pem: certificate_pem(certificate).unwrap_or_default(),
            status: None,
        }
    }

    /// Summarises `certificate` with its [`CertificateStatus`] at `now`.
    pub fn at(certificate: &Certificate, now: SystemTime) -> CertificateSummary {
        CertificateSummary {
            status: Some(CertificateStatus::at(certificate, now)),
            ..CertificateSummary::of(certificate)
        }
    }
}

/// `AB:CD:...`: SHA-256 of `der`.
fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The certificate in DER.
pub fn certificate_der(certificate: &Certificate) -> Result<Vec<u8>, IssuanceError> {
    Ok(certificate.to_der()?)
}

/// The certificate in PEM (`-----BEGIN CERTIFICATE-----`, LF line ends).
pub fn certificate_pem(certificate: &Certificate) -> Result<String, IssuanceError> {
    Ok(certificate.to_pem(LineEnding::LF)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn days_left_round_towards_zero_both_ways() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(86_400);
        assert_eq!(seconds_between(now, now + day * 3) / DAY_SECONDS, 3);
        assert_eq!(
            seconds_between(now, now + day - Duration::from_secs(1)) / DAY_SECONDS,
            0
        );
        assert_eq!(
            seconds_between(now, now - day - Duration::from_secs(5)) / DAY_SECONDS,
            -1
        );
        assert_eq!(fingerprint(b"").len(), 32 * 3 - 1);
        assert!(fingerprint(b"").starts_with("E3:B0:C4:42"));
    }
}
