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
use super::error::IssuanceError;
use super::extensions::{CertificateKind, IssuanceProfile};
use super::keys::{KeyAlgorithm, Slot};
use super::names;
use super::profile::CardProfile;
use super::validity::CertificateValidity;

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
    let found = KeyAlgorithm::of_public_key(subject_public_key)?;
    let expected = profile.slots.algorithm(slot);
    if found != expected {
        return Err(IssuanceError::KeyAlgorithmMismatch {
            slot,
            expected,
            found,
        });
    }
    let issuance = IssuanceProfile {
        kind: CertificateKind::Card(slot, found),
        subject: names::card_subject(profile)?,
        issuer: sub_ca.certificate().tbs_certificate().subject().clone(),
    };
    sub_ca.sign(
        issuance,
        random_serial(rng)?,
        validity,
        subject_public_key.clone(),
    )
}
