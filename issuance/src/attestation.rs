//! A YubiKey-model card's attestation key, as a YubiKey leaves the factory
//! with one: a P-256 key in slot `F9` and its certificate (`5FFF01`),
//! issued by the environment's attestation CA
//! ([`crate::Pki::attestation_ca`]). The card's ATTEST answers are signed
//! by that key and name that certificate's subject as their issuer, so a
//! relying party checks ATTEST -> `5FFF01` -> attestation CA.
//!
//! The device certificate is a CA certificate (basicConstraints CA with
//! path length 0, keyCertSign), as the attestation answers it issues need
//! for a chain check (`openssl verify -untrusted`), and carries the Yubico
//! firmware version and serial number extensions (`1.3.6.1.4.1.41482.3.3`,
//! `.3.7`) as Yubico's do. It is valid for as long as the attestation CA.

use der::Encode as _;
use rand_core::CryptoRng;
use x509_cert::Certificate;

use super::authority::{CertificateAuthority, random_serial};
use super::error::{CardError, IssuanceError};
use super::extensions::{CertificateKind, IssuanceProfile};
use super::keys::generate_key;
use super::names;
use super::profile::Environment;
use super::validity::CertificateValidity;
use vscard_applet::keys::PrivateKey;
use vscard_applet::{Algorithm, PivApplet};

/// Gives `applet` an attestation key drawn from `rng` and its certificate
/// from `ca`; returns the certificate. A plain PIV card (no Yubico
/// extensions, hence no ATTEST) gets none: `Ok(None)`.
pub fn personalise_attestation<R: CryptoRng + ?Sized>(
    applet: &mut PivApplet,
    ca: &CertificateAuthority,
    environment: &Environment,
    rng: &mut R,
) -> Result<Option<Certificate>, IssuanceError> {
    let settings = applet.state().settings();
    if !settings.model.has_yubico_extensions() {
        return Ok(None);
    }
    let (serial, version) = (settings.serial, settings.version);
    let key = generate_key(Algorithm::EccP256, rng)?;
    let PrivateKey::P256(secret) = &key.private_key else {
        return Err(CardError::AttestationKey.into());
    };
    let ca_validity = ca.certificate().tbs_certificate().validity();
    let validity = CertificateValidity::new(
        ca_validity.not_before.to_system_time(),
        ca_validity.not_after.to_system_time(),
    )?;
    let profile = IssuanceProfile {
        kind: CertificateKind::DeviceAttestation { serial, version },
        subject: names::device_attestation_name(environment, serial)?,
        issuer: ca.certificate().tbs_certificate().subject().clone(),
        revocation: None,
        windows_logon_upn: None,
    };
    let certificate = ca.sign(profile, random_serial(rng)?, validity, key.public_key)?;
    let der = certificate.to_der()?;
    applet
        .install_attestation(secret.clone(), &der)
        .map_err(|source| CardError::AttestationInstall { source })?;
    Ok(Some(certificate))
}
