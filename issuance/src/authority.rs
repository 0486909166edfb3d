//! Certificate authorities of the per-environment test PKI: a self-signed
//! Root CA and a Sub CA it certifies, which issues the card certificates.
//!
//! Both CAs use P-256 keys and sign with ECDSA-with-SHA256: key generation
//! is instant and every PIV middleware and TLS stack verifies it. ECDSA
//! signing here is deterministic (RFC 6979), so with a seeded generator a
//! whole PKI is reproducible. This module is pure; the files live in
//! [`super::pki_store`].

use std::fmt;
use std::time::SystemTime;

use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::serial_number::SerialNumber;

use super::error::{IssuanceError, KeyEncodingError};
use super::extensions::{CertificateKind, IssuanceProfile};
use super::names::{self, CaNaming};
use super::profile::Environment;
use super::revocation::RevocationUrls;
use super::validity::CertificateValidity;

/// Root CA lifetime in years.
pub const ROOT_CA_YEARS: u32 = 20;
/// Sub CA lifetime in years: long enough for many two-year card cycles.
pub const SUB_CA_YEARS: u32 = 10;
/// Bytes of a certificate serial number (RFC 5280 allows up to 20).
pub const SERIAL_BYTES: usize = 16;

/// A CA: its certificate and the P-256 key that signs with it.
#[derive(Clone)]
pub struct CertificateAuthority {
    certificate: Certificate,
    signing_key: SigningKey,
    revocation: Option<RevocationUrls>,
}

impl CertificateAuthority {
    /// Pairs a certificate with its private key, checking that they match.
    pub fn from_parts(
        certificate: Certificate,
        signing_key: SigningKey,
        role: &'static str,
    ) -> Result<CertificateAuthority, IssuanceError> {
        let public_key = public_key_info(&signing_key)?;
        if &public_key != certificate.tbs_certificate().subject_public_key_info() {
            return Err(IssuanceError::KeyDoesNotMatchCertificate(role));
        }
        Ok(CertificateAuthority {
            certificate,
            signing_key,
            revocation: None,
        })
    }

    /// The CA with revocation URLs, which every card certificate it
    /// signs from then on carries (CRL distribution point, OCSP).
    pub fn with_revocation(mut self, urls: RevocationUrls) -> CertificateAuthority {
        self.revocation = Some(urls);
        self
    }

    /// The CA without revocation URLs: its card certificates carry no CRL
    /// distribution point or OCSP URL (recorded fixtures made before them).
    pub fn without_revocation(mut self) -> CertificateAuthority {
        self.revocation = None;
        self
    }

    /// The revocation URLs its card certificates carry, if any.
    pub fn revocation(&self) -> Option<&RevocationUrls> {
        self.revocation.as_ref()
    }

    /// The CA's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The id of the PKI this CA's key roots ([`names::pki_id`] of its
    /// public key; meaningful for a Root CA).
    pub fn pki_id(&self) -> Result<String, IssuanceError> {
        names::pki_id(self.certificate.tbs_certificate().subject_public_key_info())
    }

    /// The CA's signing key (for the key file; never put it on a card).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// Builds and signs a certificate for `subject_public_key`.
    pub(crate) fn sign(
        &self,
        profile: IssuanceProfile,
        serial_number: SerialNumber,
        validity: CertificateValidity,
        subject_public_key: SubjectPublicKeyInfoOwned,
    ) -> Result<Certificate, IssuanceError> {
        let builder = CertificateBuilder::new(
            profile,
            serial_number,
            validity.to_x509(),
            subject_public_key,
        )?;
        Ok(builder.build::<_, DerSignature>(&self.signing_key)?)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field(
                "subject",
                &self.certificate.tbs_certificate().subject().to_string(),
            )
            .field("signing_key", &"<redacted>")
            .finish()
    }
}

/// The two CAs of one environment.
#[derive(Clone, Debug)]
pub struct Authorities {
    /// The self-signed Root CA (relying parties trust it).
    pub root: CertificateAuthority,
    /// The Sub CA, certified by the Root, which issues card certificates.
    pub sub: CertificateAuthority,
}

/// Creates a Root CA and a Sub CA for `environment`, valid from `now`,
/// named with the new PKI's id ([`CaNaming::Identified`]).
pub fn create_authorities<R: CryptoRng + ?Sized>(
    environment: &Environment,
    now: SystemTime,
    rng: &mut R,
) -> Result<Authorities, IssuanceError> {
    create_authorities_named(environment, now, Naming::Identified, rng)
}

/// Which names [`create_authorities_named`] gives the CAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// With the environment and the PKI id (the default).
    Identified,
    /// The pre-issue-18 names, without an id (fixtures only).
    Legacy,
}

/// As [`create_authorities`], choosing the names: [`Naming::Legacy`] keeps
/// recorded fixtures (whose bytes contain the old CA names) stable.
pub fn create_authorities_named<R: CryptoRng + ?Sized>(
    environment: &Environment,
    now: SystemTime,
    naming: Naming,
    rng: &mut R,
) -> Result<Authorities, IssuanceError> {
    let root = create_root_ca(environment, now, naming, rng)?;
    let validity = CertificateValidity::years_from(now, SUB_CA_YEARS)?;
    let sub = create_sub_ca(&root, environment, validity, naming, rng)?;
    Ok(Authorities { root, sub })
}

/// Creates a self-signed Root CA for `environment`.
pub fn create_root_ca<R: CryptoRng + ?Sized>(
    environment: &Environment,
    now: SystemTime,
    naming: Naming,
    rng: &mut R,
) -> Result<CertificateAuthority, IssuanceError> {
    let signing_key = SigningKey::generate_from_rng(rng);
    let public_key = public_key_info(&signing_key)?;
    // The id comes from the key, so the key is drawn before the name.
    let id = names::pki_id(&public_key)?;
    let name = names::root_ca_name(environment, ca_naming(naming, &id))?;
    let profile = IssuanceProfile {
        kind: CertificateKind::RootCa,
        subject: name.clone(),
        issuer: name,
        revocation: None,
        windows_logon_upn: None,
    };
    let validity = CertificateValidity::years_from(now, ROOT_CA_YEARS)?;
    // A root signs itself, so its key signs before any authority exists.
    let builder =
        CertificateBuilder::new(profile, random_serial(rng)?, validity.to_x509(), public_key)?;
    let certificate = builder.build::<_, DerSignature>(&signing_key)?;
    CertificateAuthority::from_parts(certificate, signing_key, "Root CA")
}

/// Creates a Sub CA for `environment`, certified by `root` for `validity`;
/// with [`Naming::Identified`] its name carries the id of `root`'s PKI.
pub fn create_sub_ca<R: CryptoRng + ?Sized>(
    root: &CertificateAuthority,
    environment: &Environment,
    validity: CertificateValidity,
    naming: Naming,
    rng: &mut R,
) -> Result<CertificateAuthority, IssuanceError> {
    let signing_key = SigningKey::generate_from_rng(rng);
    let id = root.pki_id()?;
    let profile = IssuanceProfile {
        kind: CertificateKind::SubCa,
        subject: names::sub_ca_name(environment, ca_naming(naming, &id))?,
        issuer: root.certificate().tbs_certificate().subject().clone(),
        revocation: None,
        windows_logon_upn: None,
    };
    let certificate = root.sign(
        profile,
        random_serial(rng)?,
        validity,
        public_key_info(&signing_key)?,
    )?;
    CertificateAuthority::from_parts(certificate, signing_key, "Sub CA")
}

/// Creates the attestation CA of `root`'s PKI: a self-signed CA of its
/// own (as Yubico's PIV attestation root is apart from any other PKI),
/// valid for as long as `root`, which certifies the attestation keys of
/// YubiKey-model cards ([`crate::personalise_attestation`]).
pub fn create_attestation_ca<R: CryptoRng + ?Sized>(
    root: &CertificateAuthority,
    environment: &Environment,
    rng: &mut R,
) -> Result<CertificateAuthority, IssuanceError> {
    let signing_key = SigningKey::generate_from_rng(rng);
    let public_key = public_key_info(&signing_key)?;
    let name = names::attestation_ca_name(environment, &root.pki_id()?)?;
    let profile = IssuanceProfile {
        kind: CertificateKind::RootCa,
        subject: name.clone(),
        issuer: name,
        revocation: None,
        windows_logon_upn: None,
    };
    let validity = *root.certificate().tbs_certificate().validity();
    let builder = CertificateBuilder::new(profile, random_serial(rng)?, validity, public_key)?;
    let certificate = builder.build::<_, DerSignature>(&signing_key)?;
    CertificateAuthority::from_parts(certificate, signing_key, "Attestation CA")
}

fn ca_naming(naming: Naming, id: &str) -> CaNaming<'_> {
    match naming {
        Naming::Identified => CaNaming::Identified(id),
        Naming::Legacy => CaNaming::Legacy,
    }
}

/// A random positive serial of exactly [`SERIAL_BYTES`] bytes: the top bit
/// is cleared (positive) and the next one set (no leading zero byte).
pub fn random_serial<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<SerialNumber, IssuanceError> {
    let mut bytes = [0u8; SERIAL_BYTES];
    rng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7F) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

pub(crate) fn public_key_info(
    signing_key: &SigningKey,
) -> Result<SubjectPublicKeyInfoOwned, IssuanceError> {
    SubjectPublicKeyInfoOwned::from_key(signing_key.verifying_key()).map_err(|source| {
        IssuanceError::KeyEncoding {
            algorithm: vscard_applet::Algorithm::EccP256,
            source: KeyEncodingError::PublicKey(source),
        }
    })
}
