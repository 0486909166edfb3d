//! Card certificates: one per slot, issued by the environment's Sub CA.
//!
//! Subject `CN=<holder>, serialNumber=<12-digit UUID>, OU=<environment>,
//! O=<first role's ODS code>`; key usage and extended key usage fit the
//! slot (see [`super::extensions`]); a random positive 16-byte serial; a
//! validity window of the profile's length (two years by default) or an
//! explicit one for expired and not-yet-valid scenarios.

use rand_core::CryptoRng;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::authority::{CertificateAuthority, random_serial};
use super::error::{CardError, IssuanceError};
use super::extensions::{CertificateKind, IssuanceProfile};
use super::keys::{CARD_SLOTS, GeneratedKey, algorithm_of_public_key, generate_key};
use super::names;
use super::profile::CardProfile;
use super::validity::CertificateValidity;
use vscard_applet::{Algorithm, Slot};

/// Issues the certificate of `slot` for `subject_public_key` (an RSA-2048,
/// P-256 or P-384 key of the algorithm the profile gives that slot).
///
/// `rng` draws the serial number only; the signature is deterministic. Use
/// [`CertificateValidity::for_profile`] for the default window.
pub fn issue_card_certificate<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    subject_public_key: &SubjectPublicKeyInfoOwned,
    profile: &CardProfile,
    slot: Slot,
    validity: CertificateValidity,
    rng: &mut R,
) -> Result<Certificate, IssuanceError> {
    profile.validate()?;
    let found = algorithm_of_public_key(subject_public_key)?;
    let expected = profile
        .slots
        .algorithm(slot)
        .ok_or(CardError::NotAKeySlot { slot })?;
    if found != expected {
        return Err(IssuanceError::KeyAlgorithmMismatch {
            slot,
            expected,
            found,
        });
    }
    let subject = names::card_subject(profile)?;
    let upn = profile
        .windows_logon
        .as_ref()
        .filter(|_| slot == Slot::AUTHENTICATION)
        .map(|logon| logon.upn.clone());
    certify(
        sub_ca,
        subject_public_key,
        subject,
        slot,
        upn,
        validity,
        rng,
    )
}

/// Certifies `subject_public_key` for `slot` under `subject`, with the
/// Windows logon `upn` if any (renewal keeps the subject and UPN of the
/// certificate it replaces).
pub(crate) fn certify<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    subject_public_key: &SubjectPublicKeyInfoOwned,
    subject: x509_cert::name::Name,
    slot: Slot,
    upn: Option<String>,
    validity: CertificateValidity,
    rng: &mut R,
) -> Result<Certificate, IssuanceError> {
    let algorithm = algorithm_of_public_key(subject_public_key)?;
    let issuance = IssuanceProfile {
        kind: CertificateKind::Card(slot, algorithm),
        subject,
        issuer: sub_ca.certificate().tbs_certificate().subject().clone(),
        revocation: sub_ca.revocation().cloned(),
        windows_logon_upn: upn,
    };
    sub_ca.sign(
        issuance,
        random_serial(rng)?,
        validity,
        subject_public_key.clone(),
    )
}

/// One slot of a freshly issued card: its key pair and certificate.
#[derive(Clone, Debug)]
pub struct IssuedSlot {
    /// The slot.
    pub slot: Slot,
    /// The key pair (the private key goes onto the card only).
    pub key: GeneratedKey,
    /// The certificate issued by the Sub CA.
    pub certificate: Certificate,
}

/// Generates a key for every slot (9A, 9C, 9D, 9E, in that order, with the
/// profile's algorithms) and certifies each with `sub_ca`.
///
/// `before_key` is called before each key generation, so a terminal can
/// show progress while RSA keys are made. With `profile.seeded_rng()` as
/// `rng` and a fixed `validity`, the result is the same on every run.
pub fn issue_card<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    profile: &CardProfile,
    validity: CertificateValidity,
    rng: &mut R,
    mut before_key: impl FnMut(Slot, Algorithm),
) -> Result<Vec<IssuedSlot>, IssuanceError> {
    profile.validate()?;
    let mut issued = Vec::with_capacity(CARD_SLOTS.len());
    for slot in CARD_SLOTS {
        let algorithm = profile
            .slots
            .algorithm(slot)
            .ok_or(CardError::NotAKeySlot { slot })?;
        before_key(slot, algorithm);
        let key = generate_key(algorithm, rng)?;
        let certificate =
            issue_card_certificate(sub_ca, &key.public_key, profile, slot, validity, rng)?;
        issued.push(IssuedSlot {
            slot,
            key,
            certificate,
        });
    }
    Ok(issued)
}

/// Re-issues `previous` (the certificate of `slot`) for the same public key
/// with a new window, e.g. [`CertificateValidity::for_profile`] from now:
/// the two-yearly renewal without new keys. The subject is taken from the
/// profile, so a changed name or first role shows in the new certificate.
pub fn renew_certificate<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    previous: &Certificate,
    profile: &CardProfile,
    slot: Slot,
    validity: CertificateValidity,
    rng: &mut R,
) -> Result<Certificate, IssuanceError> {
    let public_key = previous.tbs_certificate().subject_public_key_info();
    issue_card_certificate(sub_ca, public_key, profile, slot, validity, rng)
}
