//! The environment's CRL (RFC 5280 5), signed by the Sub CA that issued
//! the certificates it lists.
//!
//! x509-cert's `CrlBuilder` takes the issuer's *own* authority key
//! identifier (the Root's, for a Sub CA) into the CRL, which then does not
//! name its signer; the TBS is built here instead, with the Sub CA's key
//! identifier (5.2.1), a CRL number (5.2.3), and a reason code per entry
//! (5.3.1).

use std::time::{Duration, SystemTime};

use der::Encode;
use der::asn1::BitString;
use der::referenced::OwnedToRef;
use p256::ecdsa::DerSignature;
use p256::ecdsa::signature::Signer;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::index::{CertificateIndex, CertificateStatus, parse_rfc3339};
use crate::{CertificateAuthority, ECDSA_WITH_SHA256, IssuanceError};

/// How long a CRL is current (its nextUpdate after its thisUpdate): a
/// relying party refuses a stale CRL, so `vscard crl` must run again
/// within this time (or `vscard ocsp`, which makes a new one when the old
/// one is due).
pub const CRL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The CRL of `index` numbered `number`, current from `now` for
/// [`CRL_LIFETIME`], signed by `sub_ca`.
pub fn build_crl(
    sub_ca: &CertificateAuthority,
    index: &CertificateIndex,
    number: u64,
    now: SystemTime,
) -> Result<CertificateList, IssuanceError> {
    let issuer = sub_ca.certificate().tbs_certificate().subject().clone();
    let mut revoked = Vec::new();
    for entry in index.revoked() {
        let CertificateStatus::Revoked { revoked_at, reason } = &entry.status else {
            continue;
        };
        let serial = hex::decode(&entry.serial).map_err(|_| {
            IssuanceError::Der(
                der::ErrorKind::Value {
                    tag: der::Tag::Integer,
                }
                .into(),
            )
        })?;
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&serial)?,
            revocation_date: time(parse_rfc3339(revoked_at)?)?,
            crl_entry_extensions: Some(vec![reason.to_crl_reason().to_extension(&issuer, &[])?]),
        });
    }
    let key_id = SubjectKeyIdentifier::try_from(
        sub_ca
            .certificate()
            .tbs_certificate()
            .subject_public_key_info()
            .owned_to_ref(),
    )?;
    let authority = AuthorityKeyIdentifier {
        key_identifier: Some(key_id.0),
        ..Default::default()
    }
    .to_extension(&issuer, &[])?;
    let number = CrlNumber::try_from(number)?.to_extension(&issuer, &[])?;
    let extensions: Vec<Extension> = vec![authority, number];
    let algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer,
        this_update: time(now)?,
        next_update: Some(time(now + CRL_LIFETIME)?),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(extensions),
    };
    let signature: DerSignature = sub_ca.signing_key().sign(&tbs.to_der()?);
    Ok(CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.as_bytes())?,
    })
}

/// An X.509 time (UTCTime until 2049, RFC 5280 5.1.2.4).
fn time(at: SystemTime) -> Result<Time, IssuanceError> {
    let date = der::DateTime::from_system_time(at).map_err(IssuanceError::TimeOutOfRange)?;
    Ok(Time::from(date))
}
