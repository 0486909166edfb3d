//! The device key file `vscard host enrol --out DEVICE.key` writes: the
//! device's private link key, the hosts' key to pin, and the card it may
//! open. Mode 0600, replaced atomically; the private key is never shown.

use std::path::Path;

use serde_json::json;
use vscard_emulator::files;
use vscard_link::Identity;
use zeroize::Zeroizing;

use crate::error::HostError;

/// The `format` field of a device key file.
pub const DEVICE_KEY_FORMAT: &str = "vscard-device-key";

/// A device's credential for one hosted card.
#[derive(Debug)]
pub struct DeviceKey {
    /// The card it opens.
    pub card: String,
    /// The device's link identity.
    pub identity: Identity,
    /// The hosts' public key, pinned.
    pub host_key: [u8; 32],
}

/// Why a device key file cannot be used.
fn bad(path: &Path, reason: &str) -> HostError {
    HostError::BadDeviceKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn key(path: &Path, value: &serde_json::Value, field: &str) -> Result<Zeroizing<[u8; 32]>, HostError> {
    let text = value
        .get(field)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad(path, &format!("no {field:?}")))?;
    let bytes = Zeroizing::new(hex::decode(text).map_err(|_| bad(path, &format!("{field:?} is not hex")))?);
    let array = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad(path, &format!("{field:?} is not 32 bytes")))?;
    Ok(Zeroizing::new(array))
}

impl DeviceKey {
    /// Writes the file (mode 0600, atomically).
    pub fn write(&self, path: &Path) -> Result<(), HostError> {
        let private = self.identity.private_key();
        let document = Zeroizing::new(json!({
            "format": DEVICE_KEY_FORMAT,
            "version": 1,
            "card": self.card,
            "private": hex::encode(private.as_slice()),
            "public": hex::encode(self.identity.public()),
            "host_key": hex::encode(self.host_key),
        }));
        let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&*document)?);
        bytes.push(b'\n');
        files::write_private_atomically(path, &bytes).map_err(|e| HostError::BadDeviceKey {
            path: e.path,
            reason: e.source.to_string(),
        })
    }

    /// Reads a file `write` made.
    pub fn read(path: &Path) -> Result<DeviceKey, HostError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| bad(path, &e.to_string()))?);
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(path, &format!("not JSON ({e})")))?;
        if value.get("format").and_then(serde_json::Value::as_str) != Some(DEVICE_KEY_FORMAT) {
            return Err(bad(path, "not a vscard device key"));
        }
        if value.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(bad(path, "a version this vscard does not read"));
        }
        let card = value
            .get("card")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad(path, "no \"card\""))?
            .to_owned();
        let private = key(path, &value, "private")?;
        let public = key(path, &value, "public")?;
        let host_key = key(path, &value, "host_key")?;
        Ok(DeviceKey {
            card,
            identity: Identity::from_keys(&private, *public),
            host_key: *host_key,
        })
    }
}
