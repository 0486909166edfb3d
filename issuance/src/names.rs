//! X.509 distinguished names of the test PKI and the card certificates.
//!
//! Names are built attribute by attribute, never parsed from a string, so a
//! holder name with commas or plus signs needs no escaping.

use der::asn1::{Any, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::error::IssuanceError;
use super::profile::{CardProfile, Environment};

/// `id-at-commonName`.
pub const COMMON_NAME: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");
/// `id-at-serialNumber`.
pub const SERIAL_NUMBER: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.4.5");
/// `id-at-organizationName`.
pub const ORGANIZATION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.4.10");
/// `id-at-organizationalUnitName`.
pub const ORGANIZATIONAL_UNIT: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.4.11");

/// Organisation of the test CAs.
pub const CA_ORGANIZATION: &str = "vscard test PKI";

/// One attribute of a name, with the string type X.520 gives it.
enum Attribute<'a> {
    /// A `DirectoryString` as UTF8String (RFC 5280 4.1.2.6 MUST for new
    /// certificates).
    Utf8(der::asn1::ObjectIdentifier, &'a str),
    /// A PrintableString (`serialNumber` is PrintableString in X.520).
    Printable(der::asn1::ObjectIdentifier, &'a str),
}

/// A name from attributes, most general first (the DER order).
fn build_name(attributes: &[Attribute<'_>]) -> Result<Name, IssuanceError> {
    let mut sequence = RdnSequence::default();
    for attribute in attributes {
        let (oid, value) = match attribute {
            Attribute::Utf8(oid, text) => (*oid, Any::encode_from(&Utf8StringRef::new(text)?)?),
            Attribute::Printable(oid, text) => {
                (*oid, Any::encode_from(&PrintableStringRef::new(text)?)?)
            }
        };
        let rdn = RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue { oid, value }])?;
        sequence.push(rdn);
    }
    // `Name` has no public constructor from an `RdnSequence` outside the
    // `hazmat` feature; a DER round trip is exact and cheap.
    Ok(Name::from_der(&sequence.to_der()?)?)
}

/// How the CAs of a new PKI are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaNaming<'a> {
    /// `CN=vscard TEST Root CA (<env> PKI <id>)`: the environment and the
    /// PKI's id (see [`pki_id`]), so that the CAs of two installs (or of
    /// two seeds) have different names and a relying party, a log or a
    /// certificate viewer tells them apart. The default for every new PKI.
    Identified(&'a str),
    /// `CN=vscard TEST Root CA (<env>)`: the name every PKI had before
    /// issue 18, kept for fixtures whose recorded bytes contain it (the
    /// conformance golden transcript).
    Legacy,
}

/// `CN=vscard TEST Root CA (<env>[ PKI <id>]), OU=<env>, O=vscard test PKI`.
pub fn root_ca_name(
    environment: &Environment,
    naming: CaNaming<'_>,
) -> Result<Name, IssuanceError> {
    ca_name(environment, "Root", naming)
}

/// `CN=vscard TEST Sub CA (<env>[ PKI <id>]), OU=<env>, O=vscard test PKI`.
pub fn sub_ca_name(environment: &Environment, naming: CaNaming<'_>) -> Result<Name, IssuanceError> {
    ca_name(environment, "Sub", naming)
}

/// `CN=vscard TEST Attestation CA (<env> PKI <id>), OU=<env>, O=vscard
/// test PKI`: the root a YubiKey-model card's attestations chain to, as
/// Yubico's PIV attestation root is for a YubiKey's.
pub fn attestation_ca_name(environment: &Environment, id: &str) -> Result<Name, IssuanceError> {
    ca_name(environment, "Attestation", CaNaming::Identified(id))
}

/// `CN=vscard TEST PIV Attestation <serial>, OU=<env>, O=vscard test PKI`:
/// the subject of a card's own attestation certificate (`5FFF01`), the
/// issuer of every certificate its ATTEST answers.
pub fn device_attestation_name(
    environment: &Environment,
    serial: u32,
) -> Result<Name, IssuanceError> {
    build_name(&[
        Attribute::Utf8(ORGANIZATION, CA_ORGANIZATION),
        Attribute::Utf8(ORGANIZATIONAL_UNIT, environment.name()),
        Attribute::Utf8(
            COMMON_NAME,
            &format!("vscard TEST PIV Attestation {serial}"),
        ),
    ])
}

/// Hex digits of the PKI id.
pub const PKI_ID_HEX_DIGITS: usize = 8;

/// A PKI's id: the first 4 bytes of SHA-256 over the Root CA's
/// SubjectPublicKeyInfo DER, in lower-case hex. It follows from the Root
/// key alone, so a seeded or imported PKI has the same id on every
/// machine, and two random PKIs differ (a 1 in 2^32 collision is harmless:
/// the id names, it does not authenticate).
pub fn pki_id(root_public_key: &SubjectPublicKeyInfoOwned) -> Result<String, IssuanceError> {
    let digest = Sha256::digest(root_public_key.to_der()?);
    Ok(hex::encode(&digest[..PKI_ID_HEX_DIGITS / 2]))
}

fn ca_name(
    environment: &Environment,
    level: &str,
    naming: CaNaming<'_>,
) -> Result<Name, IssuanceError> {
    let common_name = match naming {
        CaNaming::Identified(id) => format!("vscard TEST {level} CA ({environment} PKI {id})"),
        CaNaming::Legacy => format!("vscard TEST {level} CA ({environment})"),
    };
    build_name(&[
        Attribute::Utf8(ORGANIZATION, CA_ORGANIZATION),
        Attribute::Utf8(ORGANIZATIONAL_UNIT, environment.name()),
        Attribute::Utf8(COMMON_NAME, &common_name),
    ])
}

/// The card holder's name: `CN=<name>, serialNumber=<uuid>, OU=<env>,
/// O=<first role's ODS code>`. The same for every slot: relying parties
/// identify the holder by the UUID in `serialNumber`.
pub fn card_subject(profile: &CardProfile) -> Result<Name, IssuanceError> {
    let mut attributes = Vec::with_capacity(4);
    if let Some(role) = profile.primary_role() {
        attributes.push(Attribute::Utf8(ORGANIZATION, &role.ods_code));
    }
    attributes.push(Attribute::Utf8(
        ORGANIZATIONAL_UNIT,
        profile.environment.name(),
    ));
    attributes.push(Attribute::Printable(SERIAL_NUMBER, &profile.uuid));
    attributes.push(Attribute::Utf8(COMMON_NAME, &profile.name));
    build_name(&attributes)
}
