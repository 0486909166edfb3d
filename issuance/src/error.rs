//! Errors of the pure issuance layer: profile parsing and validation,
//! key generation and certificate building. File errors of the PKI store
//! live in [`super::pki_store`].

use std::fmt;

use thiserror::Error;

use der::asn1::ObjectIdentifier;
use vscard_applet::{Algorithm, Slot};

use super::applet_format::algorithm_name;

/// The text format a profile was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileFormat {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl fmt::Display for ProfileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileFormat::Toml => "TOML",
            ProfileFormat::Json => "JSON",
        })
    }
}

/// A card profile that cannot be used. The message always starts with the
/// field (a path such as `roles[0].code`) followed by the rule it breaks.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// The text is not a profile: bad syntax, an unknown field, a missing
    /// field, a value of the wrong type or an unknown algorithm name.
    #[error("{field}: {message} (in the {format} profile)")]
    Parse {
        /// Format of the text.
        format: ProfileFormat,
        /// Path of the offending field (`profile` for the document itself).
        field: String,
        /// The parser's explanation.
        message: String,
    },
    /// A field holds a value that breaks one of the profile's rules.
    #[error("{field}: {rule}")]
    Invalid {
        /// Path of the offending field, e.g. `uuid` or `roles[1].ods_code`.
        field: String,
        /// The rule the value breaks.
        rule: ProfileRule,
    },
}

impl ProfileError {
    /// A rule violation of `field`.
    pub(crate) fn invalid(field: impl Into<String>, rule: ProfileRule) -> ProfileError {
        ProfileError::Invalid {
            field: field.into(),
            rule,
        }
    }
}

/// The rules a profile field must follow. The messages never repeat the
/// value of a secret (PIN, unlock code, seed), only its length.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileRule {
    /// A fixed-length digit string of the wrong length.
    #[error("must be exactly {expected} digits, got {got}")]
    ExactDigits {
        /// Required number of digits.
        expected: usize,
        /// Number of characters given.
        got: usize,
    },
    /// A digit string whose length is outside its bounds.
    #[error("must be {min} to {max} digits, got {got}")]
    DigitCount {
        /// Fewest digits allowed.
        min: usize,
        /// Most digits allowed.
        max: usize,
        /// Number of characters given.
        got: usize,
    },
    /// A character other than `0`-`9` in a digit string.
    #[error("must contain only the digits 0-9")]
    NotDigits,
    /// An empty text.
    #[error("must not be empty")]
    Empty,
    /// A text longer than allowed.
    #[error("must be at most {max} characters, got {got}")]
    TooLong {
        /// Most characters allowed.
        max: usize,
        /// Number of characters given.
        got: usize,
    },
    /// A control character in a printable text.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// A malformed NHS job role code.
    #[error("must be R followed by 1 to 8 digits (e.g. R8000), got {got:?}")]
    RoleCode {
        /// The value given.
        got: String,
    },
    /// A malformed NHS business function (activity) code.
    #[error("must be B followed by 4 digits (e.g. B0264), got {got:?}")]
    BusinessFunctionCode {
        /// The value given.
        got: String,
    },
    /// A malformed ODS organisation code.
    #[error("must be an ODS code of 1 to 9 uppercase letters or digits (e.g. RX1), got {got:?}")]
    OdsCode {
        /// The value given.
        got: String,
    },
    /// A `--role` flag that is not `CODE:NAME:B1,B2:ODS`.
    #[error(
        "must be CODE:NAME:BUSINESS_FUNCTIONS:ODS, e.g. R8000:Clinical Practitioner Access Role:B0264:RX1"
    )]
    RoleFlag,
    /// A profile without any role.
    #[error("must list at least one role profile, got none")]
    NoRoles,
    /// A malformed environment name.
    #[error(
        "must be sandbox, integration or a custom name of 1 to 32 lowercase letters, \
         digits and dashes starting with a letter, got {got:?}"
    )]
    EnvironmentName {
        /// The value given.
        got: String,
    },
    /// A Windows logon UPN that is not `user@domain`.
    #[error("must be a User Principal Name user@domain (one @, no spaces), got {got:?}")]
    Upn {
        /// The value given.
        got: String,
    },
    /// A slot algorithm the profile's card model does not have.
    #[error("{algorithm} needs model yubikey-5.7, the profile's model is {model}")]
    ModelAlgorithm {
        /// The algorithm's name (`Ed25519`).
        algorithm: &'static str,
        /// The profile's model.
        model: vscard_applet::Model,
    },
    /// An X25519 key outside slot 9D: it cannot sign.
    #[error("X25519 only agrees keys: only 9d (Key Management) can hold it")]
    KeyAgreementOnly,
    /// A number outside its bounds.
    #[error("must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// Smallest value allowed.
        min: u32,
        /// Largest value allowed.
        max: u32,
        /// The value given.
        got: u32,
    },
}

/// A card whose PIV state does not have the shape issuance gives it, or a
/// personalisation step the applet refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardError {
    /// A slot without a PIV key reference or certificate object (issuance
    /// only names the four key slots, so this means a programming error).
    #[error("{slot} is not a PIV key slot")]
    NotAKeySlot {
        /// Slot named.
        slot: Slot,
    },
    /// The profile's user ID is not the 12 digits the serial and the CHUID
    /// GUID are made from.
    #[error("uuid: must be exactly 12 digits")]
    UserId,
    /// The applet refused the PIV configuration made from the profile.
    #[error("{0}")]
    Config(#[source] vscard_applet::ConfigError),
    /// The applet refused a key for a slot.
    #[error("slot {slot}: {source}")]
    KeyInstall {
        /// Slot being personalised.
        slot: Slot,
        /// What the applet reported.
        #[source]
        source: vscard_applet::KeyError,
    },
    /// The attestation key generated is not a P-256 key (a programming
    /// error).
    #[error("the attestation key is not a P-256 key")]
    AttestationKey,
    /// The applet refused the attestation key or its certificate.
    #[error("attestation key: {source}")]
    AttestationInstall {
        /// What the applet reported.
        #[source]
        source: vscard_applet::KeyError,
    },
    /// The key custody could not make a slot's key.
    #[error("slot {slot}: {source}")]
    Custody {
        /// Slot being personalised.
        slot: Slot,
        /// What the custody reported.
        #[source]
        source: vscard_applet::CustodyError,
    },
    /// A certificate did not encode to DER.
    #[error("slot {slot}: certificate does not encode: {source}")]
    CertificateEncoding {
        /// Slot being personalised.
        slot: Slot,
        /// What the encoder reported.
        #[source]
        source: der::Error,
    },
    /// A slot's certificate object holds no certificate.
    #[error("{slot}: certificate object without a certificate")]
    CertificateMissing {
        /// Slot read.
        slot: Slot,
    },
    /// A slot's certificate is not DER.
    #[error("{slot}: certificate is not DER: {source}")]
    CertificateNotDer {
        /// Slot read.
        slot: Slot,
        /// What the decoder reported.
        #[source]
        source: der::Error,
    },
    /// The card has no 9A certificate to tell its environment.
    #[error("the card has no 9A certificate")]
    NoAuthenticationCertificate,
    /// The 9A certificate's subject has no `OU`.
    #[error("the 9A certificate has no OU")]
    NoOrganizationalUnit,
    /// The card has no CHUID with a GUID.
    #[error("the card has no CHUID GUID")]
    NoGuid,
    /// What issuance writes does not fit the profile's card capacity.
    #[error("capacity: the issued card needs {used} bytes but holds {capacity}")]
    OverCapacity {
        /// Bytes the issued objects and keys take.
        used: usize,
        /// The card's capacity in bytes.
        capacity: usize,
    },
    /// The card expiry cannot be written as a civil date.
    #[error("card expiry out of range: {0}")]
    ExpiryOutOfRange(#[source] der::Error),
    /// The expiry year does not fit the CHUID's `YYYYMMDD`.
    #[error("card expiry year out of range")]
    ExpiryYear,
    /// The expiry month is not 1 to 12.
    #[error("card expiry month out of range")]
    ExpiryMonth,
    /// The role profiles object is not the TLV issuance writes.
    #[error("role profiles object: {0}")]
    RolesObject(#[source] vscard_applet::tlv::TlvError),
    /// A role profiles field is not UTF-8.
    #[error("role profiles object: not UTF-8")]
    RolesNotUtf8,
    /// The Printed Information object is not TLV.
    #[error("Printed Information: {0}")]
    PrintedInformation(#[source] vscard_applet::tlv::TlvError),
}

/// Failures while generating keys or building certificates.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IssuanceError {
    /// The profile does not validate.
    #[error("invalid card profile: {0}")]
    Profile(#[from] ProfileError),
    /// A card image whose PIV state does not have the shape issuance gives
    /// it, or that the applet refused.
    #[error("card: {0}")]
    Card(#[from] CardError),
    /// The key generator failed.
    #[error("{} key generation failed: {source}", algorithm_name(*.algorithm))]
    KeyGeneration {
        /// Algorithm being generated.
        algorithm: Algorithm,
        /// What the generator reported.
        #[source]
        source: vscard_applet::KeyError,
    },
    /// A key could not be encoded or decoded.
    #[error("{} key encoding failed: {source}", algorithm_name(*.algorithm))]
    KeyEncoding {
        /// Algorithm of the key.
        algorithm: Algorithm,
        /// What the encoder reported.
        #[source]
        source: KeyEncodingError,
    },
    /// A subject public key of an algorithm the test PKI does not certify.
    #[error("unsupported subject public key: {0}")]
    UnsupportedPublicKey(#[from] UnsupportedKey),
    /// The public key does not have the algorithm the profile gives its slot.
    #[error(
        "slot {slot}: the profile asks for {} but the public key is {}",
        algorithm_name(*.expected),
        algorithm_name(*.found)
    )]
    KeyAlgorithmMismatch {
        /// Slot being certified.
        slot: Slot,
        /// Algorithm from the profile.
        expected: Algorithm,
        /// Algorithm of the key presented.
        found: Algorithm,
    },
    /// A validity window that ends before it starts.
    #[error("validity: not_after ({not_after}) must be later than not_before ({not_before})")]
    EmptyValidity {
        /// Start of the window.
        not_before: der::DateTime,
        /// End of the window.
        not_after: der::DateTime,
    },
    /// A time that X.509 cannot carry (before 1970 or after 9999).
    #[error("time out of range for a certificate: {0}")]
    TimeOutOfRange(#[source] der::Error),
    /// DER encoding or decoding failed.
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    /// The certificate builder refused the certificate.
    #[error("certificate building failed: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// A CA private key that does not belong to its certificate.
    #[error("the {0} private key does not match its certificate")]
    KeyDoesNotMatchCertificate(&'static str),
}

/// Why a key did not encode or decode.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyEncodingError {
    /// The public key did not encode as a `SubjectPublicKeyInfo`.
    #[error(transparent)]
    PublicKey(#[from] spki::Error),
    /// A CA key did not encode as PKCS #8.
    #[error(transparent)]
    PrivateKey(#[from] pkcs8::Error),
    /// The applet refused to encode or decode a slot key's PKCS #8.
    #[error(transparent)]
    Card(#[from] vscard_applet::KeyError),
}

/// A subject public key the card cannot hold.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UnsupportedKey {
    /// An RSA key whose `RSAPublicKey` does not decode.
    #[error("RSA key does not decode: {0}")]
    Rsa(#[source] spki::Error),
    /// An RSA key of a size the card does not hold.
    #[error("RSA-{bits} (RSA-1024, 2048, 3072 and 4096 are supported)")]
    RsaSize {
        /// Modulus size in bits.
        bits: usize,
    },
    /// A key algorithm that is not RSA, elliptic-curve, Ed25519 or X25519.
    #[error("algorithm {oid}")]
    Algorithm {
        /// The key's algorithm identifier.
        oid: ObjectIdentifier,
    },
    /// An elliptic curve other than P-256 and P-384.
    #[error("elliptic curve {oid}")]
    Curve {
        /// The curve's identifier.
        oid: ObjectIdentifier,
    },
    /// An elliptic-curve key whose parameters name no curve.
    #[error("elliptic-curve key without a named curve")]
    NoNamedCurve,
}
