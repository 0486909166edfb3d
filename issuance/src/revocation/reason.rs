//! Revocation reasons, by their RFC 5280 5.3.1 names.

use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::CrlReason;

/// Why a certificate was revoked (RFC 5280 5.3.1 `CRLReason`), written as
/// RFC 5280 spells the names (`keyCompromise`, ...) on the command line,
/// in the index and in `vscard` output. `certificateHold` and
/// `removeFromCRL` are left out: a revocation here is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RevocationReason {
    /// `unspecified` (0).
    Unspecified,
    /// `keyCompromise` (1): the private key may be known to others.
    KeyCompromise,
    /// `cACompromise` (2).
    #[serde(rename = "cACompromise")]
    CaCompromise,
    /// `affiliationChanged` (3): the holder left the organisation or role.
    AffiliationChanged,
    /// `superseded` (4): replaced by a renewed certificate.
    Superseded,
    /// `cessationOfOperation` (5): the card was cancelled.
    CessationOfOperation,
    /// `privilegeWithdrawn` (9).
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, in RFC 5280 order.
    pub const ALL: [RevocationReason; 7] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub const fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// A reason from its RFC 5280 name (exact spelling).
    pub fn parse(name: &str) -> Option<RevocationReason> {
        RevocationReason::ALL
            .into_iter()
            .find(|reason| reason.name() == name)
    }

    /// The CRL entry extension / OCSP value.
    pub const fn to_crl_reason(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for reason in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(reason.name()), Some(reason));
            let json = serde_json::to_string(&reason).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", reason.name()));
        }
        assert_eq!(RevocationReason::parse("KeyCompromise"), None);
        assert_eq!(RevocationReason::parse(""), None);
    }
}
