//! Path checks for certificates of the test PKI (RFC 5280 6.1, reduced to
//! what a relying party of this PKI needs): names chain, signatures verify
//! with the issuer's key, issuers are CAs allowed to sign certificates, key
//! identifiers match, and each certificate is valid at the given moment.
//!
//! The CAs of the test PKI sign with ECDSA P-256 / SHA-256 only, so that is
//! the only signature algorithm checked here.

use std::time::SystemTime;

use der::Encode;
use der::asn1::ObjectIdentifier;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use spki::DecodePublicKey;
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier,
};

/// `ecdsa-with-SHA256` (RFC 5758 3.2).
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Why a certificate does not chain. `subject` is the RFC 4514 subject of
/// the certificate at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// The certificate names another issuer than the CA's subject.
    #[error("{subject}: issuer {issuer} is not the CA {ca}")]
    IssuerMismatch {
        /// The certificate at fault.
        subject: String,
        /// Its issuer field.
        issuer: String,
        /// The CA's subject.
        ca: String,
    },
    /// A signature algorithm other than ECDSA with SHA-256.
    #[error("{subject}: signature algorithm {algorithm} is not ecdsa-with-SHA256")]
    UnsupportedSignatureAlgorithm {
        /// The certificate at fault.
        subject: String,
        /// The algorithm it names.
        algorithm: String,
    },
    /// The signature does not verify with the CA's public key.
    #[error("{subject}: signature does not verify with the key of {ca}")]
    BadSignature {
        /// The certificate at fault.
        subject: String,
        /// The CA's subject.
        ca: String,
    },
    /// The issuing certificate is not a CA allowed to sign certificates.
    #[error("{subject}: not a CA certificate with keyCertSign")]
    NotACertificateAuthority {
        /// The would-be CA.
        subject: String,
    },
    /// The authority key identifier differs from the CA's subject key
    /// identifier.
    #[error("{subject}: authority key identifier does not match the CA's key identifier")]
    KeyIdentifierMismatch {
        /// The certificate at fault.
        subject: String,
    },
    /// The certificate is expired or not yet valid.
    #[error("{subject}: not valid at {at} (valid from {not_before} to {not_after})")]
    OutsideValidity {
        /// The certificate at fault.
        subject: String,
        /// The moment checked.
        at: String,
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// A field or extension does not decode.
    #[error("{subject}: {reason}")]
    Malformed {
        /// The certificate at fault.
        subject: String,
        /// What does not decode.
        reason: String,
    },
}

fn subject_of(certificate: &Certificate) -> String {
    certificate.tbs_certificate().subject().to_string()
}

fn malformed(certificate: &Certificate, reason: impl std::fmt::Display) -> ChainError {
    ChainError::Malformed {
        subject: subject_of(certificate),
        reason: reason.to_string(),
    }
}

/// Checks that `ca` issued and signed `certificate` (names, CA flag and
/// keyCertSign of `ca`, key identifiers, ECDSA signature over the TBS).
pub fn verify_issued_by(certificate: &Certificate, ca: &Certificate) -> Result<(), ChainError> {
    let tbs = certificate.tbs_certificate();
    let ca_tbs = ca.tbs_certificate();
    if tbs.issuer() != ca_tbs.subject() {
        return Err(ChainError::IssuerMismatch {
            subject: subject_of(certificate),
            issuer: tbs.issuer().to_string(),
            ca: subject_of(ca),
        });
    }
    check_is_ca(ca)?;
    check_key_identifiers(certificate, ca)?;
    let algorithm = certificate.signature_algorithm().oid;
    if algorithm != ECDSA_WITH_SHA256 || tbs.signature().oid != ECDSA_WITH_SHA256 {
        return Err(ChainError::UnsupportedSignatureAlgorithm {
            subject: subject_of(certificate),
            algorithm: algorithm.to_string(),
        });
    }
    let ca_key_der = ca_tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|error| malformed(ca, error))?;
    let key = VerifyingKey::from_public_key_der(&ca_key_der)
        .map_err(|error| malformed(ca, format!("CA key is not P-256: {error}")))?;
    let signature = DerSignature::try_from(certificate.signature().raw_bytes())
        .map_err(|error| malformed(certificate, format!("signature: {error}")))?;
    // The certificate was decoded as strict DER, so re-encoding the TBS
    // gives back exactly the signed bytes.
    let signed = tbs
        .to_der()
        .map_err(|error| malformed(certificate, error))?;
    key.verify(&signed, &signature)
        .map_err(|_| ChainError::BadSignature {
            subject: subject_of(certificate),
            ca: subject_of(ca),
        })
}

fn check_is_ca(ca: &Certificate) -> Result<(), ChainError> {
    let tbs = ca.tbs_certificate();
    let constraints = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|error| malformed(ca, error))?;
    let usage = tbs
        .get_extension::<KeyUsage>()
        .map_err(|error| malformed(ca, error))?;
    let is_ca = constraints.is_some_and(|(_, constraints)| constraints.ca);
    let may_sign = usage.is_none_or(|(_, usage)| usage.key_cert_sign());
    if is_ca && may_sign {
        Ok(())
    } else {
        Err(ChainError::NotACertificateAuthority {
            subject: subject_of(ca),
        })
    }
}

fn check_key_identifiers(certificate: &Certificate, ca: &Certificate) -> Result<(), ChainError> {
    let authority = certificate
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .map_err(|error| malformed(certificate, error))?;
    let subject = ca
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .map_err(|error| malformed(ca, error))?;
    match (authority, subject) {
        (Some((_, authority)), Some((_, subject)))
            if authority.key_identifier.as_ref() != Some(&subject.0) =>
        {
            Err(ChainError::KeyIdentifierMismatch {
                subject: subject_of(certificate),
            })
        }
        _ => Ok(()),
    }
}

/// Checks that `certificate` is valid at `at`.
pub fn verify_valid_at(certificate: &Certificate, at: SystemTime) -> Result<(), ChainError> {
    let validity = certificate.tbs_certificate().validity();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if not_before <= at && at <= not_after {
        return Ok(());
    }
    let at =
        der::DateTime::from_system_time(at).map_or_else(|_| "?".to_owned(), |at| at.to_string());
    Err(ChainError::OutsideValidity {
        subject: subject_of(certificate),
        at,
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
    })
}

/// Checks the whole path `card` -> `sub` -> `root` (self-signed) at `at`.
pub fn verify_chain(
    card: &Certificate,
    sub: &Certificate,
    root: &Certificate,
    at: SystemTime,
) -> Result<(), ChainError> {
    verify_issued_by(root, root)?;
    verify_issued_by(sub, root)?;
    verify_issued_by(card, sub)?;
    for certificate in [root, sub, card] {
        verify_valid_at(certificate, at)?;
    }
    Ok(())
}
