//! Personalisation: what a new card holds before its first APDU.
//!
//! Contract: [`PivConfig`] carries the secrets and settings; building a
//! [`crate::PivState`] from it checks them against the PIN rules, so a card
//! can never start with a PIN it would refuse in CHANGE REFERENCE DATA.

use std::fmt;

use zeroize::Zeroizing;

use crate::capacity::DEFAULT_CAPACITY;
use crate::management::{ManagementKey, ManagementKeyError};
use crate::model::Model;
use crate::pin::{PinRuleError, PinRules};

/// The default PIN of PIV cards and YubiKeys.
pub const DEFAULT_PIN: &[u8] = b"123456";
/// The default PUK of PIV cards and YubiKeys.
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// The firmware version GET VERSION reports by default: 5.7.1, so that
/// yubico-piv-tool and ykman enable metadata, AES management keys and
/// key import.
pub const DEFAULT_VERSION: [u8; 3] = [5, 7, 1];

/// Why a personalisation is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The PIN rules themselves are invalid.
    #[error(transparent)]
    Rules(#[from] PinRuleError),
    /// The PIN breaks the PIN rules.
    #[error("the PIN does not satisfy the PIN rules")]
    Pin,
    /// The PUK breaks the PIN rules.
    #[error("the PUK does not satisfy the PIN rules")]
    Puk,
    /// The management key is invalid.
    #[error(transparent)]
    ManagementKey(#[from] ManagementKeyError),
}

/// The personalisation of a new PIV application.
#[derive(Clone)]
pub struct PivConfig {
    /// The PIN, unpadded (`b"123456"`).
    pub pin: Zeroizing<Vec<u8>>,
    /// The PUK (NHS: the unlock code), unpadded.
    pub puk: Zeroizing<Vec<u8>>,
    /// The management key.
    pub management_key: ManagementKey,
    /// PIN and PUK rules and try limits.
    pub rules: PinRules,
    /// The serial number GET SERIAL reports.
    pub serial: u32,
    /// The version GET VERSION reports.
    pub version: [u8; 3],
    /// The card model (see [`Model`]); [`PivConfig::for_model`] sets the
    /// version and management key to match.
    pub model: Model,
    /// Bytes of storage for data objects and keys (see
    /// [`crate::capacity`]); past it the card answers `6A84`.
    pub capacity: u32,
}

impl Default for PivConfig {
    /// PIN `123456`, PUK `12345678`, the default 3DES management key, the
    /// default rules, serial 1, version 5.7.1, 256 KiB of storage.
    fn default() -> Self {
        PivConfig {
            pin: Zeroizing::new(DEFAULT_PIN.to_vec()),
            puk: Zeroizing::new(DEFAULT_PUK.to_vec()),
            management_key: ManagementKey::default_tdes(),
            rules: PinRules::default(),
            serial: 1,
            version: DEFAULT_VERSION,
            model: Model::YubiKey57,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl PivConfig {
    /// The defaults of `model`: its version and its default management
    /// key type (AES-192 on a YubiKey 5.7, 3DES otherwise), PIN `123456`,
    /// PUK `12345678`. ([`PivConfig::default`] keeps 3DES for the library's
    /// existing callers: a 5.7 whose management key was set to 3DES.)
    pub fn for_model(model: Model) -> Self {
        PivConfig {
            model,
            version: model.version().unwrap_or(DEFAULT_VERSION),
            management_key: model.default_management_key(),
            ..PivConfig::default()
        }
    }

    /// Sets the PIN.
    pub fn with_pin(mut self, pin: &[u8]) -> Self {
        self.pin = Zeroizing::new(pin.to_vec());
        self
    }

    /// Sets the PUK.
    pub fn with_puk(mut self, puk: &[u8]) -> Self {
        self.puk = Zeroizing::new(puk.to_vec());
        self
    }

    /// Sets the management key.
    pub fn with_management_key(mut self, key: ManagementKey) -> Self {
        self.management_key = key;
        self
    }

    /// Sets the PIN rules.
    pub fn with_rules(mut self, rules: PinRules) -> Self {
        self.rules = rules;
        self
    }

    /// Sets the serial number.
    pub fn with_serial(mut self, serial: u32) -> Self {
        self.serial = serial;
        self
    }

    /// Sets the storage capacity in bytes.
    pub fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the reported version.
    pub fn with_version(mut self, version: [u8; 3]) -> Self {
        self.version = version;
        self
    }
}

impl fmt::Debug for PivConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PivConfig")
            .field("pin", &"<redacted>")
            .field("puk", &"<redacted>")
            .field("management_key", &self.management_key)
            .field("rules", &self.rules)
            .field("serial", &self.serial)
            .field("version", &self.version)
            .field("model", &self.model)
            .field("capacity", &self.capacity)
            .finish()
    }
}
