//! The issuer's index of every certificate it issued, and their status.
//!
//! The index is what the CRL and the OCSP responder say: a certificate the
//! index does not know is `unknown` to OCSP, one marked revoked is on the
//! CRL from then on. It is pure data here; [`super::store`] keeps it in
//! the environment's PKI folder.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

use super::reason::RevocationReason;
use crate::IssuanceError;
use vscard_applet::Slot;

/// The `format` every index file carries.
pub const INDEX_FORMAT: &str = "vscard certificate index";
/// The index layout version this build writes and reads.
pub const INDEX_VERSION: u32 = 1;

/// Every certificate an environment's Sub CA issued to cards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateIndex {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Always [`INDEX_VERSION`].
    pub version: u32,
    /// The number of the last CRL made (RFC 5280 5.2.3: CRL numbers only
    /// grow); 0 before the first.
    pub crl_number: u64,
    /// The certificates, in issuance order.
    pub certificates: Vec<IndexEntry>,
}

impl Default for CertificateIndex {
    fn default() -> CertificateIndex {
        CertificateIndex {
            format: INDEX_FORMAT.to_owned(),
            version: INDEX_VERSION,
            crl_number: 0,
            certificates: Vec::new(),
        }
    }
}

/// One issued certificate. Times are RFC 3339 UTC. (No
/// `deny_unknown_fields`: serde does not combine it with `flatten`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Serial number, upper-case hex (as `vscard inspect` shows it).
    pub serial: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// The PIV slot, `9A` .. `9E`.
    pub slot: String,
    /// The card image it was issued into (absolute path when known).
    pub card: String,
    /// Start of validity.
    pub not_before: String,
    /// End of validity.
    pub not_after: String,
    /// Valid or revoked.
    #[serde(flatten)]
    pub status: CertificateStatus,
}

/// A certificate's revocation status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Not revoked (it may still have expired).
    Valid,
    /// Revoked at `revoked_at` for `reason`.
    Revoked {
        /// When, RFC 3339 UTC.
        revoked_at: String,
        /// Why.
        reason: RevocationReason,
    },
}

/// What [`CertificateIndex::revoke`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Newly revoked.
    Revoked,
    /// It was revoked before; the first revocation (time and reason)
    /// stands, as RFC 5280 5.3.2 expects of a CRL entry.
    AlreadyRevoked(RevocationReason),
}

/// The serial of `certificate` in upper-case hex.
pub fn serial_hex(certificate: &Certificate) -> String {
    hex::encode_upper(certificate.tbs_certificate().serial_number().as_bytes())
}

/// `time` as RFC 3339 UTC (whole seconds).
pub fn rfc3339(time: SystemTime) -> Result<String, IssuanceError> {
    Ok(der::DateTime::from_system_time(time)
        .map_err(IssuanceError::TimeOutOfRange)?
        .to_string())
}

/// An RFC 3339 UTC time written by [`rfc3339`].
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, IssuanceError> {
    Ok(text
        .parse::<der::DateTime>()
        .map_err(IssuanceError::TimeOutOfRange)?
        .to_system_time())
}

impl CertificateIndex {
    /// The entry of the certificate with serial `serial` (upper-case hex).
    pub fn find(&self, serial: &str) -> Option<&IndexEntry> {
        self.certificates
            .iter()
            .find(|entry| entry.serial == serial)
    }

    /// Records `certificate`, issued into `card`'s `slot`, as valid; a
    /// serial already there is left as it is.
    pub fn record(
        &mut self,
        certificate: &Certificate,
        slot: Slot,
        card: &Path,
    ) -> Result<(), IssuanceError> {
        let serial = serial_hex(certificate);
        if self.find(&serial).is_some() {
            return Ok(());
        }
        let tbs = certificate.tbs_certificate();
        let validity = tbs.validity();
        self.certificates.push(IndexEntry {
            serial,
            subject: tbs.subject().to_string(),
            slot: slot.to_string(),
            card: card.display().to_string(),
            not_before: rfc3339(validity.not_before.to_system_time())?,
            not_after: rfc3339(validity.not_after.to_system_time())?,
            status: CertificateStatus::Valid,
        });
        Ok(())
    }

    /// Marks the certificate with `serial` revoked at `when` for `reason`;
    /// `None` when the index does not know it.
    pub fn revoke(
        &mut self,
        serial: &str,
        when: SystemTime,
        reason: RevocationReason,
    ) -> Result<Option<Revocation>, IssuanceError> {
        let Some(entry) = self
            .certificates
            .iter_mut()
            .find(|entry| entry.serial == serial)
        else {
            return Ok(None);
        };
        if let CertificateStatus::Revoked { reason, .. } = &entry.status {
            return Ok(Some(Revocation::AlreadyRevoked(*reason)));
        }
        entry.status = CertificateStatus::Revoked {
            revoked_at: rfc3339(when)?,
            reason,
        };
        Ok(Some(Revocation::Revoked))
    }

    /// The revoked entries, in issuance order.
    pub fn revoked(&self) -> impl Iterator<Item = &IndexEntry> {
        self.certificates
            .iter()
            .filter(|entry| matches!(entry.status, CertificateStatus::Revoked { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let text = rfc3339(time).unwrap_or_default();
        assert_eq!(text, "2027-01-15T08:00:00Z");
        assert_eq!(parse_rfc3339(&text).ok(), Some(time));
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn the_json_form_is_flat() {
        let entry = IndexEntry {
            serial: "40AB".into(),
            subject: "CN=x".into(),
            slot: "9A".into(),
            card: "/c.json".into(),
            not_before: "2027-01-01T00:00:00Z".into(),
            not_after: "2029-01-01T00:00:00Z".into(),
            status: CertificateStatus::Revoked {
                revoked_at: "2027-02-01T00:00:00Z".into(),
                reason: RevocationReason::KeyCompromise,
            },
        };
        let json = serde_json::to_value(&entry).unwrap_or_default();
        assert_eq!(json["status"], "revoked");
        assert_eq!(json["reason"], "keyCompromise");
        let back: IndexEntry = serde_json::from_value(json).unwrap_or_else(|_| entry.clone());
        assert_eq!(back, entry);
    }
}
