//! The image file's format (see the parent module): its JSON envelope,
//! the era that identifies one write of it, and its checksum.

use std::path::Path;

use rand_core::TryRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{IMAGE_FORMAT, IMAGE_VERSION};
use crate::store::{CardImage, DamageKind, StoreError};

#[derive(Serialize)]
pub(super) struct ImageFileOut<'a> {
    format: &'static str,
    version: u32,
    era: String,
    checksum: String,
    applets: &'a CardImage,
}

#[derive(Deserialize)]
pub(super) struct ImageFileIn {
    checksum: String,
    #[serde(default)]
    era: Option<String>,
    applets: CardImage,
}

/// Identifies one write of an image; journal slots carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Era(pub(super) [u8; 16]);

impl Era {
    pub(super) fn random(path: &Path) -> Result<Era, StoreError> {
        let mut bytes = [0u8; 16];
        rand::rngs::SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(format!("no randomness for the image era: {e}")),
            })?;
        Ok(Era(bytes))
    }

    /// For new cards written by tools: derived from the contents and the
    /// era of the image replaced, if any (so a fresh path gives the same
    /// bytes every time, and an era never comes back at one path). A
    /// store's own image writes draw random eras.
    pub(super) fn of_contents(image: &CardImage, previous: Option<Era>) -> Result<Era, StoreError> {
        let mut hasher = Sha256::new();
        hasher.update(b"vscard image era\n");
        if let Some(previous) = previous {
            hasher.update(previous.0);
        }
        hasher.update(serde_json::to_vec(image)?);
        let mut era = [0u8; 16];
        era.copy_from_slice(&hasher.finalize()[..16]);
        Ok(Era(era))
    }

    pub(super) fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub(super) fn from_hex(text: &str) -> Option<Era> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Era(bytes))
    }
}

/// Version 1: over the applets; version 2: over the era and the applets.
pub(super) fn checksum(image: &CardImage, era: Option<&str>) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    if let Some(era) = era {
        hasher.update(era.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(serde_json::to_vec(image)?);
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

pub(super) fn encode_image(image: &CardImage, era: Era) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let era = era.to_hex();
    let file = ImageFileOut {
        format: IMAGE_FORMAT,
        version: IMAGE_VERSION,
        checksum: checksum(image, Some(&era))?,
        era,
        applets: image,
    };
    let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
    bytes.push(b'\n');
    Ok(bytes)
}

pub(super) fn decode_image(
    path: &Path,
    bytes: &[u8],
) -> Result<(CardImage, Option<Era>), StoreError> {
    let damaged = |problem: DamageKind| StoreError::Damaged {
        path: path.to_owned(),
        problem,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            damaged(DamageKind::Truncated { len: bytes.len() })
        } else {
            damaged(DamageKind::NotJson(e))
        }
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(IMAGE_FORMAT) {
        return Err(damaged(DamageKind::NotAnImage));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| damaged(DamageKind::BadVersion))?;
    if version > u64::from(IMAGE_VERSION) {
        return Err(StoreError::FutureVersion {
            path: path.to_owned(),
            found: version,
            supported: IMAGE_VERSION,
        });
    }
    if version == 0 {
        return Err(damaged(DamageKind::VersionZero));
    }
    let file: ImageFileIn =
        serde_json::from_value(value).map_err(|e| damaged(DamageKind::Structure(e)))?;
    let era = match (version, &file.era) {
        (1, _) => None,
        (_, Some(text)) => {
            Some(Era::from_hex(text).ok_or_else(|| damaged(DamageKind::BadEra(text.clone())))?)
        }
        (_, None) => return Err(damaged(DamageKind::MissingEra)),
    };
    let era_text = if era.is_some() {
        file.era.as_deref()
    } else {
        None
    };
    let expected = checksum(&file.applets, era_text)?;
    if file.checksum != expected {
        return Err(damaged(DamageKind::ChecksumMismatch));
    }
    Ok((file.applets, era))
}
