//! The X.509 extensions each kind of certificate carries, as a
//! [`BuilderProfile`] for the `x509-cert` builder.
//!
//! - Root CA: basicConstraints CA (critical), keyUsage keyCertSign + cRLSign
//!   (critical), subject key identifier, authority key identifier = its own.
//! - Sub CA: the same with pathLenConstraint 0, authority key identifier =
//!   the Root's.
//! - Card: basicConstraints not-CA (critical), keyUsage and extended key
//!   usage per slot (below), subject and authority key identifiers; when
//!   the Sub CA has revocation URLs, a CRL distribution point (RFC 5280
//!   4.2.1.13) and an Authority Information Access OCSP URL (4.2.2.1);
//!   with a Windows logon UPN, a subject alternative name otherName
//!   (Microsoft's UPN, `1.3.6.1.4.1.311.20.2.3`).
//! - OCSP responder: not-CA, keyUsage digitalSignature, extended key
//!   usage OCSPSigning and id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1).
//!
//! Key identifiers are the SHA-1 of the subject public key bits (RFC 5280
//! 4.2.1.2 method 1), so a certificate's authority key identifier always
//! equals its issuer's subject key identifier.

use der::Encode;
use der::asn1::ObjectIdentifier;
use der::asn1::{Ia5String, Null, OctetString, Utf8StringRef};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;

use vscard_applet::{Algorithm, Slot};

/// `id-kp-clientAuth` (RFC 5280 4.2.1.12).
pub const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// `id-kp-emailProtection` (RFC 5280 4.2.1.12).
pub const EMAIL_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
/// `id-kp-documentSigning` (RFC 9336).
pub const DOCUMENT_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.36");
/// Microsoft Smart Card Logon, which Windows wants for smartcard logon.
pub const SMARTCARD_LOGON: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.2");
/// `id-PIV-cardAuth` (FIPS 201-3, for the Card Authentication key).
pub const PIV_CARD_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.8");

/// `id-kp-OCSPSigning` (RFC 5280 4.2.1.12).
pub const OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// `id-pkix-ocsp-nocheck` (RFC 6960 4.2.2.2.1).
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// `id-ad-ocsp` (RFC 5280 4.2.2.1).
pub const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// Microsoft's User Principal Name otherName (`szOID_NT_PRINCIPAL_NAME`),
/// which Windows smart card logon maps to the account.
pub const MS_UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");

/// What a certificate is for, which decides its extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateKind {
    /// A self-signed root CA.
    RootCa,
    /// An intermediate CA that issues end-entity certificates only.
    SubCa,
    /// A card holder's certificate for one slot and key algorithm.
    Card(Slot, Algorithm),
    /// The delegated OCSP responder of a Sub CA.
    OcspResponder,
    /// A YubiKey-model card's own attestation certificate (`5FFF01`),
    /// which issues the certificates of its ATTEST answers.
    DeviceAttestation {
        /// The card's serial number (Yubico extension `.3.7`).
        serial: u32,
        /// The firmware version the card reports (Yubico extension `.3.3`).
        version: [u8; 3],
    },
}

/// Yubico's firmware version extension (3 bytes: major, minor, patch).
pub const YUBICO_FIRMWARE_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
/// Yubico's serial number extension (a DER INTEGER).
pub const YUBICO_SERIAL_NUMBER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");

/// Key usage bits for a card slot. RSA keys in 9A also get
/// keyEncipherment (TLS RSA key exchange and Windows logon expect it); the
/// 9D key encrypts with RSA and agrees keys with EC and X25519, and so do
/// the retired key-management keys (82-95, SP 800-73-4 Part 1 3.3.3) it
/// becomes. An Ed25519 key only signs (RFC 8410 5), wherever it is; an
/// X25519 key only agrees keys.
pub fn card_key_usage(slot: Slot, algorithm: Algorithm) -> KeyUsage {
    let is_rsa = algorithm.rsa_bits().is_some();
    let usages = match (slot, algorithm) {
        (_, Algorithm::X25519) => KeyUsages::KeyAgreement.into(),
        (Slot::SIGNATURE, _) => KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
        (Slot::AUTHENTICATION, _) if is_rsa => {
            KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
        }
        (Slot::AUTHENTICATION | Slot::CARD_AUTHENTICATION, _) | (_, Algorithm::Ed25519) => {
            KeyUsages::DigitalSignature.into()
        }
        _ if is_rsa => KeyUsages::KeyEncipherment.into(),
        _ => KeyUsages::KeyAgreement.into(),
    };
    KeyUsage(usages)
}

/// Extended key usages for a card slot (retired key-management keys as
/// 9D).
pub fn card_extended_key_usage(slot: Slot) -> ExtendedKeyUsage {
    ExtendedKeyUsage(match slot {
        Slot::AUTHENTICATION => vec![CLIENT_AUTH, SMARTCARD_LOGON],
        Slot::SIGNATURE => vec![EMAIL_PROTECTION, DOCUMENT_SIGNING],
        Slot::CARD_AUTHENTICATION => vec![CLIENT_AUTH, PIV_CARD_AUTH],
        _ => vec![EMAIL_PROTECTION],
    })
}

/// Subject, issuer and extensions of one certificate to build.
pub struct IssuanceProfile {
    /// The certificate's kind.
    pub kind: CertificateKind,
    /// Its subject.
    pub subject: Name,
    /// Its issuer (ignored for a root, which is its own issuer).
    pub issuer: Name,
    /// Revocation URLs for a card certificate (CRL distribution point and
    /// OCSP), from the issuing Sub CA.
    pub revocation: Option<super::revocation::RevocationUrls>,
    /// The Windows logon UPN of a 9A certificate (subject alternative
    /// name otherName).
    pub windows_logon_upn: Option<String>,
}

impl BuilderProfile for IssuanceProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        match self.kind {
            CertificateKind::RootCa => subject.clone(),
            _ => self.issuer.clone(),
        }
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let mut extensions = Vec::with_capacity(5);
        let (constraints, key_usage, extended) = match self.kind {
            CertificateKind::RootCa => (ca_constraints(None), ca_key_usage(), None),
            CertificateKind::SubCa => (ca_constraints(Some(0)), ca_key_usage(), None),
            CertificateKind::DeviceAttestation { .. } => (
                ca_constraints(Some(0)),
                KeyUsage(KeyUsages::KeyCertSign.into()),
                None,
            ),
            CertificateKind::Card(slot, algorithm) => (
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                card_key_usage(slot, algorithm),
                Some(card_extended_key_usage(slot)),
            ),
            CertificateKind::OcspResponder => (
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                KeyUsage(KeyUsages::DigitalSignature.into()),
                Some(ExtendedKeyUsage(vec![OCSP_SIGNING])),
            ),
        };
        extensions.push(constraints.to_extension(subject, &extensions)?);
        extensions.push(key_usage.to_extension(subject, &extensions)?);
        if let Some(extended) = extended {
            extensions.push(extended.to_extension(subject, &extensions)?);
        }
        let subject_key_id = SubjectKeyIdentifier::try_from(spk)?;
        let authority_key_id = AuthorityKeyIdentifier {
            key_identifier: Some(SubjectKeyIdentifier::try_from(issuer_spk)?.0),
            ..Default::default()
        };
        extensions.push(subject_key_id.to_extension(subject, &extensions)?);
        extensions.push(authority_key_id.to_extension(subject, &extensions)?);
        if let Some(upn) = &self.windows_logon_upn {
            extensions.push(upn_alt_name(upn)?.to_extension(subject, &extensions)?);
        }
        if let (CertificateKind::Card(..), Some(urls)) = (self.kind, &self.revocation) {
            let (points, access) = revocation_extensions(urls)?;
            extensions.push(points.to_extension(subject, &extensions)?);
            extensions.push(access.to_extension(subject, &extensions)?);
        }
        if let CertificateKind::DeviceAttestation { serial, version } = self.kind {
            extensions.push(Extension {
                extn_id: YUBICO_FIRMWARE_VERSION,
                critical: false,
                extn_value: OctetString::new(version.to_vec())?,
            });
            extensions.push(Extension {
                extn_id: YUBICO_SERIAL_NUMBER,
                critical: false,
                extn_value: OctetString::new(serial.to_der()?)?,
            });
        }
        if self.kind == CertificateKind::OcspResponder {
            extensions.push(Extension {
                extn_id: OCSP_NOCHECK,
                critical: false,
                extn_value: OctetString::new(Null.to_der()?)?,
            });
        }
        Ok(extensions)
    }
}

fn ca_constraints(path_len_constraint: Option<u8>) -> BasicConstraints {
    BasicConstraints {
        ca: true,
        path_len_constraint,
    }
}

fn ca_key_usage() -> KeyUsage {
    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
}

/// The CRL distribution point and OCSP access of `urls`.
fn revocation_extensions(
    urls: &super::revocation::RevocationUrls,
) -> der::Result<(CrlDistributionPoints, AuthorityInfoAccessSyntax)> {
    let uri = |url: &str| Ia5String::new(url).map(GeneralName::UniformResourceIdentifier);
    let points = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(&urls.crl_url)?])),
        reasons: None,
        crl_issuer: None,
    }]);
    let access = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: AD_OCSP,
        access_location: uri(&urls.ocsp_url)?,
    }]);
    Ok((points, access))
}

/// A subject alternative name holding `upn` as Microsoft's UPN otherName
/// (a UTF8String, `[0] EXPLICIT` inside the otherName).
pub(crate) fn upn_alt_name(upn: &str) -> der::Result<SubjectAltName> {
    let value = der::Any::encode_from(&Utf8StringRef::new(upn)?)?;
    Ok(SubjectAltName(vec![GeneralName::OtherName(OtherName {
        type_id: MS_UPN,
        value,
    })]))
}

/// The Windows logon UPN of `certificate`'s subject alternative name, if
/// it has one.
pub(crate) fn upn_of(certificate: &x509_cert::Certificate) -> Option<String> {
    let (_, names) = certificate
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .ok()??;
    names.0.iter().find_map(|name| match name {
        GeneralName::OtherName(other) if other.type_id == MS_UPN => other
            .value
            .decode_as::<Utf8StringRef<'_>>()
            .ok()
            .map(|upn| upn.to_string()),
        _ => None,
    })
}
