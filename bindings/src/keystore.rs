//! Keys held by the app: the platform keystore (Android Keystore, the
//! Secure Enclave) as the applet's key custody, through a foreign trait.

use std::collections::BTreeMap;
use std::sync::Arc;

use vscard_applet::{
    Algorithm, CustodyError, CustodyTarget, KeyCustody, KeyReference, Origin, PIV_AID, PivState,
    PublicKey, Slot,
};
use vscard_emulator::{CardImage, ImageCodec};
use zeroize::Zeroizing;

use crate::{VscardError, piv, store_error};

/// The custody kind of keys held by the app (in the card image's key
/// references).
pub const KEYSTORE_CUSTODY: &str = "callback";

/// Why the app's keystore could not do an operation; each is one status
/// word on the card.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KeystoreError {
    /// The keystore cannot be used now (locked, key gone): `6F00`.
    #[error("keystore unavailable: {reason}")]
    Unavailable {
        /// Why (no secrets).
        reason: String,
    },
    /// The keystore or its user refused (a cancelled biometric prompt):
    /// `6985`.
    #[error("the keystore refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// Not an operation or algorithm the keystore does: `6A81`.
    #[error("the keystore does not support {what}")]
    Unsupported {
        /// The operation or algorithm.
        what: String,
    },
    /// The keystore rejected the input: `6A80`.
    #[error("the keystore rejected the input: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeystoreError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> KeystoreError {
        KeystoreError::Unavailable {
            reason: error.reason,
        }
    }
}

/// The app's keystore. The card checks the PIN (and PIN-always for 9C)
/// before it asks; the keystore only does the private-key operation.
#[uniffi::export(with_foreign)]
pub trait Keystore: Send + Sync {
    /// Signs with the key `key_id`. `algorithm` is named as `vscard
    /// inspect` names it (`P-256`, `P-384`, `RSA-2048`, `Ed25519`, ...):
    /// for ECDSA `input` is the digest (answer: DER
    /// `SEQUENCE { r, s }`), for RSA the padded block (answer: the raw
    /// private-key operation, as long as the modulus), for Ed25519 the
    /// message.
    fn sign(
        &self,
        key_id: String,
        algorithm: String,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, KeystoreError>;
    /// The ECDH shared secret of the key `key_id` with `peer` (an
    /// uncompressed point, or 32 X25519 bytes).
    fn ecdh(
        &self,
        key_id: String,
        algorithm: String,
        peer: Vec<u8>,
    ) -> Result<Vec<u8>, KeystoreError>;
    /// Deletes the key `key_id` (the card no longer references it).
    fn delete(&self, key_id: String) -> Result<(), KeystoreError>;
}

/// The app's keystore as the applet's key custody.
pub(crate) struct CallbackCustody {
    app: Arc<dyn Keystore>,
}

impl CallbackCustody {
    pub(crate) fn new(app: Arc<dyn Keystore>) -> CallbackCustody {
        CallbackCustody { app }
    }
}

impl std::fmt::Debug for CallbackCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackCustody")
    }
}

fn custody_error(error: KeystoreError) -> CustodyError {
    match error {
        KeystoreError::Unavailable { reason } => CustodyError::Unavailable { reason },
        KeystoreError::Refused { reason } => CustodyError::Refused { reason },
        KeystoreError::Unsupported { what } => CustodyError::Unsupported { what },
        KeystoreError::InvalidInput { reason } => CustodyError::InvalidInput { reason },
    }
}

impl KeyCustody for CallbackCustody {
    fn kind(&self) -> &str {
        KEYSTORE_CUSTODY
    }

    fn generate(
        &self,
        _target: &CustodyTarget,
        _slot: Slot,
        _algorithm: Algorithm,
    ) -> Result<(KeyReference, PublicKey), CustodyError> {
        Err(CustodyError::unsupported(
            "key generation on the card (the app makes the key and installs it with install_keystore_key)",
        ))
    }

    fn sign(
        &self,
        _target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        self.app
            .sign(
                reference.id.clone(),
                vscard_issuance::algorithm_name(algorithm).to_owned(),
                input.to_vec(),
            )
            .map(Zeroizing::new)
            .map_err(custody_error)
    }

    fn ecdh(
        &self,
        _target: &CustodyTarget,
        reference: &KeyReference,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        self.app
            .ecdh(
                reference.id.clone(),
                vscard_issuance::algorithm_name(algorithm).to_owned(),
                peer.to_vec(),
            )
            .map(Zeroizing::new)
            .map_err(custody_error)
    }

    fn delete(
        &self,
        _target: &CustodyTarget,
        reference: &KeyReference,
    ) -> Result<(), CustodyError> {
        self.app.delete(reference.id.clone()).map_err(custody_error)
    }
}

/// The image with the key in `slot` replaced by the app's keystore key
/// `key_id`, whose public key is `public_key` (SubjectPublicKeyInfo DER).
/// The private key never enters the image; open the card with
/// `Card.from_image(image, keystore=...)` so the card can use it. The
/// slot's certificate is left as it is (re-certify the new key to use it
/// for logon).
#[uniffi::export]
pub fn install_keystore_key(
    image: Vec<u8>,
    slot: String,
    key_id: String,
    public_key: Vec<u8>,
) -> Result<Vec<u8>, VscardError> {
    let slot = piv::slot(&slot)?;
    let public = PublicKey::from_spki_der(&public_key).ok_or_else(|| {
        VscardError::argument("public_key is not a SubjectPublicKeyInfo of a supported key")
    })?;
    let mut codec = ImageCodec::plain();
    let mut image: CardImage = codec.decode(&image).map_err(|e| store_error(&e))?;
    let key = PIV_AID.to_hex();
    let saved = image.applet(&key).ok_or_else(|| VscardError::Image {
        message: "the image holds no PIV application".to_owned(),
    })?;
    let image_error = |message: String| VscardError::Image { message };
    let mut state = PivState::from_saved(saved).map_err(|e| image_error(e.to_string()))?;
    let reference = KeyReference {
        custody: KEYSTORE_CUSTODY.to_owned(),
        location: BTreeMap::new(),
        id: key_id,
    };
    // The card's custody target names the keystore (GENERATE on the card
    // then asks it, and is refused: the app makes its keys).
    if state.custody().is_none() {
        state.set_custody(Some(CustodyTarget {
            custody: KEYSTORE_CUSTODY.to_owned(),
            location: BTreeMap::new(),
            card: "app".to_owned(),
        }));
    }
    state
        .install_external_key(
            slot,
            reference,
            public,
            slot.default_pin_policy(),
            Origin::Imported,
        )
        .map_err(|e| VscardError::argument(e.to_string()))?;
    image.set_applet(&key, state.save().map_err(|e| image_error(e.to_string()))?);
    let bytes = codec.encode(&image).map_err(|e| store_error(&e))?;
    Ok(bytes.to_vec())
}
