//! The issuer side of vscard: from a card profile to keys and certificates
//! of a per-environment test PKI, and the card image files built from them.
//!
//! The card side ([`vscard_applet`]) knows nothing of profiles, files or
//! certificate builders; this crate personalises its [`PivApplet`](vscard_applet::PivApplet)
//! with the applet's own [`Slot`](vscard_applet::Slot), [`Algorithm`](vscard_applet::Algorithm)
//! and PIN rules.
//!
//! A Registration Authority records a healthcare worker's [`CardProfile`]
//! (name, 12-digit user ID, PIN, unlock code, role profiles, environment);
//! the environment's [`Pki`] (a Root CA and a Sub CA, created on first use)
//! certifies one key per PIV slot with [`issue_card_certificate`].
//!
//! Everything here is pure (time and randomness are parameters) except
//! [`pki_store`], which owns the PKI files, reads the clock when it creates
//! a PKI and reads the environment variables of [`default_state_dir`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::SystemTime;
//! use vscard_issuance::{
//!     CardProfile, CertificateValidity, Pki, default_state_dir, generate_key,
//!     issue_card_certificate,
//! };
//! use vscard_applet::{Algorithm, Slot};
//!
//! let profile = CardProfile::demo();
//! let mut rng = vscard_emulator::CardRng::from_os()?;
//! let pki = Pki::open_or_create(&default_state_dir()?, &profile.environment, &mut rng)?;
//! let slot = Slot::CARD_AUTHENTICATION;
//! let algorithm = profile.slots.algorithm(slot).unwrap_or(Algorithm::EccP256);
//! let key = generate_key(algorithm, &mut rng)?;
//! let validity = CertificateValidity::for_profile(&profile, SystemTime::now())?;
//! let certificate =
//!     issue_card_certificate(pki.sub(), &key.public_key, &profile, slot, validity, &mut rng)?;
//! # let _ = certificate;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod applet_format;
mod attestation;
mod authority;
mod card;
mod card_certificate;
pub mod cards;
mod chain;
mod error;
mod extensions;
mod keys;
mod names;
pub mod pki_store;
mod profile;
mod renewal;
pub mod revocation;
mod secret;
mod summary;
mod validation;
mod validity;

pub use applet_format::algorithm_name;
pub use attestation::personalise_attestation;
pub use authority::{
    Authorities, CertificateAuthority, Naming, ROOT_CA_YEARS, SERIAL_BYTES, SUB_CA_YEARS,
    create_attestation_ca, create_authorities, create_authorities_named, create_root_ca,
    create_sub_ca, random_serial,
};
pub use card::{
    CardSummary, CounterSummary, IssueCustody, ROLES_OBJECT, SlotSummary, certificate,
    decode_roles, encode_roles, environment_of, issue_applet, issue_applet_in_custody, piv_config,
    renew_applet, summarize, summarize_at,
};
pub use card_certificate::{IssuedSlot, issue_card, issue_card_certificate, renew_certificate};
pub use chain::{ChainError, ECDSA_WITH_SHA256, verify_chain, verify_issued_by, verify_valid_at};
pub use error::{
    CardError, IssuanceError, KeyEncodingError, ProfileError, ProfileFormat, ProfileRule,
    UnsupportedKey,
};
pub use extensions::{
    CLIENT_AUTH, DOCUMENT_SIGNING, EMAIL_PROTECTION, PIV_CARD_AUTH, SMARTCARD_LOGON,
    YUBICO_FIRMWARE_VERSION, YUBICO_SERIAL_NUMBER, card_extended_key_usage, card_key_usage,
};
pub use keys::{
    CARD_SLOTS, GeneratedKey, algorithm_of_public_key, generate_key, private_key_from_pkcs8,
    private_key_to_pkcs8, public_key_info, public_key_info_of,
};
pub use names::{
    CaNaming, PKI_ID_HEX_DIGITS, attestation_ca_name, card_subject, device_attestation_name,
    pki_id, root_ca_name, sub_ca_name,
};
pub use pki_store::{
    Pki, PkiError, SEEDED_PKI_NOT_BEFORE, default_state_dir, seeded_pki_rng, state_dir_from,
};
pub use profile::{CardProfile, Environment, RoleProfile, SlotAlgorithms, WindowsLogon};
pub use renewal::{DEFAULT_RENEWAL_WINDOW_DAYS, RenewalDue, days_left, renewal_due};
pub use secret::SecretString;
pub use summary::{CertificateStatus, CertificateSummary, certificate_der, certificate_pem};
pub use validation::{CAPACITY_LIMITS, UNLOCK_CODE_DIGITS, UUID_DIGITS};
pub use validity::{CertificateValidity, add_years};
