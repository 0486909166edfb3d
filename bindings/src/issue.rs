//! Issuing a card into image bytes, and sealing image bytes.

use std::time::{Duration, SystemTime};

use vscard_applet::PIV_AID;
use vscard_emulator::Applet as _;
use vscard_emulator::seal::SealKey;
use vscard_emulator::{CardImage, ImageCodec};
use vscard_issuance::{
    CardProfile, CertificateValidity, SEEDED_PKI_NOT_BEFORE, SecretString, create_authorities,
    issue_applet, seeded_pki_rng,
};

use crate::{VscardError, store_error};

/// Issues a card from `profile` (JSON when it starts with `{`, else TOML:
/// the format of `vscard issue --profile`) with keys and serials drawn
/// from `seed`, and returns its image (the JSON card image format that
/// `vscard serve` reads). The certificates come from the environment's
/// seeded test PKI, the one `vscard pki init --seed SEED` makes, kept in
/// memory only; they are valid from now for the profile's years.
#[uniffi::export]
pub fn issue_image(profile: String, seed: String) -> Result<Vec<u8>, VscardError> {
    let text = profile.trim_start();
    let parsed = if text.starts_with('{') {
        CardProfile::from_json(text)
    } else {
        CardProfile::from_toml(text)
    };
    let mut profile = parsed.map_err(|error| VscardError::Profile {
        message: error.to_string(),
    })?;
    if seed.is_empty() {
        return Err(VscardError::argument("the seed is empty"));
    }
    let seed = SecretString::new(seed);
    profile.seed = Some(seed.clone());
    let issuance = |error: vscard_issuance::IssuanceError| VscardError::Issuance {
        message: error.to_string(),
    };
    let mut pki_rng = seeded_pki_rng(&profile.environment, &seed);
    let pki_start = SystemTime::UNIX_EPOCH + Duration::from_secs(SEEDED_PKI_NOT_BEFORE);
    let authorities =
        create_authorities(&profile.environment, pki_start, &mut pki_rng).map_err(issuance)?;
    let validity =
        CertificateValidity::for_profile(&profile, SystemTime::now()).map_err(issuance)?;
    let mut rng = profile
        .seeded_rng()
        .ok_or_else(|| VscardError::argument("the seed is empty"))?;
    let applet = issue_applet(&authorities.sub, &profile, validity, &mut rng, |_, _| {})
        .map_err(issuance)?;
    let state = applet.save().map_err(|error| VscardError::Issuance {
        message: error.to_string(),
    })?;
    let mut image = CardImage::new();
    image.set_applet(&PIV_AID.to_hex(), state);
    let bytes = ImageCodec::plain()
        .encode(&image)
        .map_err(|error| store_error(&error))?;
    Ok(bytes.to_vec())
}

/// The image sealed with AES-256-GCM under `key` (32 bytes, from the
/// platform keystore), for the card `identity` (authenticated with it;
/// may be empty). Open it with `Card.from_image(sealed, key=key)`.
#[uniffi::export]
pub fn seal_image(image: Vec<u8>, key: Vec<u8>, identity: String) -> Result<Vec<u8>, VscardError> {
    let image = ImageCodec::plain()
        .decode(&image)
        .map_err(|error| store_error(&error))?;
    let key = zeroize::Zeroizing::new(key);
    let codec = ImageCodec::sealed(seal_key(&key)?).with_identity(identity.into_bytes());
    let sealed = codec.encode(&image).map_err(|error| store_error(&error))?;
    Ok(sealed.to_vec())
}

/// The generation of a sealed image (from `seal_image` or a sealed
/// store's commit): it grows by one at every commit of the card. An app
/// that keeps the last one it committed in its keystore gives it to
/// `Card.from_image(..., min_generation=...)`, which then refuses an older
/// copy. Read from the header without the key: opening checks it.
#[uniffi::export]
pub fn sealed_generation(image: Vec<u8>) -> Result<u64, VscardError> {
    vscard_emulator::seal::generation_of(&image).map_err(|error| VscardError::Encryption {
        message: error.to_string(),
    })
}

/// A key from the app: 32 bytes.
pub(crate) fn seal_key(key: &[u8]) -> Result<SealKey, VscardError> {
    SealKey::from_slice(key).map_err(|error| VscardError::Encryption {
        message: error.to_string(),
    })
}
