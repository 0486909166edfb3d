//! The device key file `vscard host enrol --out DEVICE.key` writes: the
//! device's private link key, the hosts' key to pin, and the card it may
//! open. Mode 0600, replaced atomically; the private key is wiped from
//! memory after use and never shown.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vscard_emulator::files;
use vscard_link::Identity;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::database::{Database, DeviceRole};
use crate::error::HostError;

/// The `format` field of a device key file.
pub const DEVICE_KEY_FORMAT: &str = "vscard-device-key";

/// The file as stored (hex keys).
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct DeviceKeyFile {
    format: String,
    version: u32,
    card: String,
    private: String,
    public: String,
    host_key: String,
}

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

fn bad(path: &Path, reason: &str) -> HostError {
    HostError::BadDeviceKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn key(path: &Path, text: &str, field: &str) -> Result<Zeroizing<[u8; 32]>, HostError> {
    let bytes =
        Zeroizing::new(hex::decode(text).map_err(|_| bad(path, &format!("{field:?} is not hex")))?);
    let array = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad(path, &format!("{field:?} is not 32 bytes")))?;
    Ok(Zeroizing::new(array))
}

/// The largest device key file read (a real one is about 300 bytes).
const MAX_FILE: u64 = 64 * 1024;

fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, HostError> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};

    let mut options = std::fs::OpenOptions::new();
    options
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32);
    let file = options.open(path).map_err(|e| {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if link {
            bad(path, "a symbolic link: give the key file itself")
        } else {
            bad(path, &e.to_string())
        }
    })?;
    let metadata = file.metadata().map_err(|e| bad(path, &e.to_string()))?;
    if !metadata.is_file() {
        return Err(bad(path, "not a regular file"));
    }
    if metadata.uid() != rustix::process::geteuid().as_raw() {
        return Err(bad(path, "owned by another user"));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(bad(
            path,
            "others may read or write it (it holds a private key): chmod 600 it",
        ));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(path, &e.to_string()))?;
    Ok(bytes)
}

impl DeviceKey {
    /// Writes the file (mode 0600, atomically).
    pub fn write(&self, path: &Path) -> Result<(), HostError> {
        let private = self.identity.private_key();
        let file = DeviceKeyFile {
            format: DEVICE_KEY_FORMAT.to_owned(),
            version: 1,
            card: self.card.clone(),
            private: hex::encode(private.as_slice()),
            public: hex::encode(self.identity.public()),
            host_key: hex::encode(self.host_key),
        };
        let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
        bytes.push(b'\n');
        files::write_private_atomically(path, &bytes).map_err(|e| HostError::BadDeviceKey {
            path: e.path,
            reason: e.source.to_string(),
        })
    }

    /// Reads a file `write` made: opened without following a symbolic
    /// link, and refused unless it is a regular file of this user that
    /// nobody else may read or write (mode 0600 or stricter).
    pub fn read(path: &Path) -> Result<DeviceKey, HostError> {
        let bytes = read_private(path)?;
        let file: DeviceKeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| bad(path, &format!("not a vscard device key ({e})")))?;
        if file.format != DEVICE_KEY_FORMAT {
            return Err(bad(path, "not a vscard device key"));
        }
        if file.version != 1 {
            return Err(bad(path, "a version this vscard does not read"));
        }
        let private = key(path, &file.private, "private")?;
        let public = key(path, &file.public, "public")?;
        let host_key = key(path, &file.host_key, "host_key")?;
        Ok(DeviceKey {
            card: file.card.clone(),
            identity: Identity::from_keys(&private, *public),
            host_key: *host_key,
        })
    }
}

/// A device [`Database::revoke_device`] took out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedDevice {
    /// Its public link key.
    pub public_key: [u8; 32],
    /// The card it was enrolled for.
    pub card: String,
    /// Its role.
    pub role: DeviceRole,
}

impl Database {
    /// Revokes the one enrolled device whose key's fingerprint
    /// ([`vscard_link::fingerprint`], lower-case hex) starts with
    /// `fingerprint` (16 to 64 hex digits), without revoking its card:
    /// its row goes (every host refuses it from its next handshake), its
    /// open approval requests are closed, and the card's session in
    /// progress, if any, ends (its lease moves on; a host knows no
    /// session's device once it is open, so the session the revoked
    /// device holds cannot live on), to come back only for a device
    /// still enrolled.
    pub fn revoke_device(&self, fingerprint: &str) -> Result<RevokedDevice, HostError> {
        let well_formed = (16..=64).contains(&fingerprint.len())
            && fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(HostError::NoSuchDevice(format!(
                "{fingerprint:?} is not a device fingerprint (16 to 64 hex digits, as `host enrol` printed) or a key file"
            )));
        }
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let rows = tx.query(
            "SELECT public_key, card_id, role FROM devices FOR UPDATE",
            &[],
        )?;
        let mut found = Vec::new();
        for row in &rows {
            let key: &[u8] = row.get(0);
            let Ok(key) = <[u8; 32]>::try_from(key) else {
                continue;
            };
            if vscard_link::fingerprint(&key).starts_with(fingerprint) {
                found.push(RevokedDevice {
                    public_key: key,
                    card: row.get(1),
                    role: DeviceRole::parse(row.get(2))?,
                });
            }
        }
        let device = match found.len() {
            1 => found.remove(0),
            0 => {
                return Err(HostError::NoSuchDevice(format!(
                    "no enrolled device has fingerprint {fingerprint}"
                )));
            }
            _ => {
                return Err(HostError::NoSuchDevice(format!(
                    "{} devices have fingerprints starting {fingerprint}: give more digits",
                    found.len()
                )));
            }
        };
        let key = device.public_key.as_slice();
        tx.execute("DELETE FROM devices WHERE public_key = $1", &[&key])?;
        tx.execute(
            "UPDATE approvals SET decision = 'expired' WHERE requested_device = $1 AND decision IS NULL",
            &[&key],
        )?;
        tx.execute(
            "UPDATE leases SET fence = fence + 1, holder = NULL, expires_at = '-infinity'
             WHERE card_id = $1 AND expires_at > clock_timestamp()",
            &[&device.card],
        )?;
        tx.commit()?;
        Ok(device)
    }
}
