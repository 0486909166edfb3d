//! Yubico ATTEST (`00 F9 slot 00`, firmware 4.3 and later): an X.509
//! certificate for a key generated on the card, signed by the card's
//! attestation key (slot `F9`), whose own certificate is the object
//! `5FFF01`.
//!
//! Contract: only a key GENERATEd on the card is attested (`6A80` for an
//! imported key, `6A88` for an empty slot or a card without an attestation
//! key and certificate). The certificate carries the extensions yubikit and
//! piv-go read (`1.3.6.1.4.1.41482.3`): `.3` firmware version (3 bytes),
//! `.7` serial number (a DER INTEGER), `.8` PIN and touch policy (2 bytes),
//! `.9` form factor (1 byte). Its issuer is the attestation certificate's
//! subject, its validity that certificate's, its subject
//! `CN=YubiKey PIV Attestation <slot>` as a YubiKey names it. The
//! attestation key is a P-256 key, installed at personalisation; it never
//! leaves the card and RESET keeps it and its certificate.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode as _, Encode as _};
use vscard_emulator::rand_core::Rng as _;
use vscard_emulator::{Context, Response, Status};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoRef;
use x509_cert::{Certificate, TbsCertificate};

use crate::PivApplet;
use crate::keys::PrivateKey;
use crate::objects::{self, DataObjectTag};
use crate::reference::Slot;
use crate::stored_key::Origin;

/// The attestation certificate's object (`5FFF01`).
pub const ATTESTATION_CERTIFICATE: DataObjectTag = DataObjectTag::ATTESTATION_CERTIFICATE;

/// Yubico's firmware version extension.
pub const FIRMWARE_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
/// Yubico's serial number extension.
pub const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// Yubico's PIN and touch policy extension.
pub const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
/// Yubico's form factor extension.
pub const FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// The form factor byte: `01`, USB-A keychain.
const USB_A_KEYCHAIN: u8 = 0x01;

/// Issuer, subject and the Yubico extensions of one attestation.
struct AttestationProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for AttestationProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn extension(oid: ObjectIdentifier, value: Vec<u8>) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(value)?,
    })
}

fn failed(what: &'static str) -> impl Fn(der::Error) -> Status {
    move |error| {
        tracing::error!(target: "vscard::piv", %error, "attestation: cannot encode the {what}");
        Status::UnknownError
    }
}

impl PivApplet {
    /// ATTEST: the DER certificate for the key in `slot`.
    pub(crate) fn attest(&mut self, ctx: &mut Context<'_>, slot: Slot) -> Result<Response, Status> {
        let stored = self
            .state
            .keys
            .get(&slot)
            .ok_or(Status::ReferenceNotFound)?;
        if stored.origin != Origin::Generated {
            return Err(Status::IncorrectData);
        }
        let (Some(attestation), Some(container)) = (
            self.state.attestation.as_ref(),
            self.state.objects.get(&ATTESTATION_CERTIFICATE),
        ) else {
            return Err(Status::ReferenceNotFound);
        };
        let Some(PrivateKey::P256(secret)) = attestation.software_key() else {
            return Err(Status::ReferenceNotFound);
        };
        let issuer = objects::certificate_der(container)
            .and_then(|der| Certificate::from_der(der).ok())
            .ok_or(Status::ReferenceNotFound)?;
        let issuer = issuer.tbs_certificate();
        let settings = &self.state.settings;
        let extensions = vec![
            extension(FIRMWARE_VERSION, settings.version.to_vec()),
            extension(
                SERIAL_NUMBER,
                settings.serial.to_der().map_err(failed("serial"))?,
            ),
            extension(
                POLICY,
                vec![stored.pin_policy.byte(), stored.touch_policy.byte()],
            ),
            extension(FORM_FACTOR, vec![USB_A_KEYCHAIN]),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("extensions"))?;
        let subject: Name = format!(
            "CN=YubiKey PIV Attestation {}",
            slot.to_string().to_lowercase()
        )
        .parse()
        .map_err(failed("subject"))?;
        let profile = AttestationProfile {
            issuer: issuer.subject().clone(),
            subject,
            extensions,
        };
        let mut serial = [0u8; 16];
        ctx.rng().fill_bytes(&mut serial);
        // Positive and of full length (RFC 5280 4.1.2.2).
        serial[0] = (serial[0] & 0x7F) | 0x40;
        let serial = SerialNumber::new(&serial).map_err(failed("serial number"))?;
        let spki = stored
            .public_key()
            .subject_public_key_info()
            .map_err(|_| Status::UnknownError)?;
        let signer = p256::ecdsa::SigningKey::from(secret);
        let certificate = CertificateBuilder::new(profile, serial, *issuer.validity(), spki)
            .and_then(|builder| builder.build::<_, p256::ecdsa::DerSignature>(&signer))
            .map_err(|error| {
                tracing::error!(target: "vscard::piv", %error, "attestation: cannot sign");
                Status::UnknownError
            })?;
        Ok(Response::ok(
            certificate.to_der().map_err(failed("certificate"))?,
        ))
    }
}
