//! The PIV application's persistent state and its stored format.
//!
//! Contract: [`PivState`] is everything that survives a power cut: card
//! configuration, PIN and PUK with their counters, the management key,
//! the slot keys and the data objects. It is persisted as named parts of
//! the applet's [`AppletState`] so that a PIN try commits only the small
//! `pin` record:
//!
//! | part | content |
//! |---|---|
//! | `config` | format version, serial, version, PIN rules, capacity (if not the default) |
//! | `pin`, `puk` | [`OwnerPin`]: padded value (hex), try limit, tries left |
//! | `management` | management key algorithm and value (hex) |
//! | `keys` | slot (`"9A"`) -> algorithm, PIN policy, origin, PKCS#8 (hex) |
//! | `objects` | tag (`"5FC105"`) -> value (hex) |
//!
//! The format is versioned by `config.format` ([`STATE_FORMAT`]); a newer
//! format is refused rather than misread. Golden images of every released
//! format live in `tests/data/` and must keep loading.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vscard_emulator::{AppletState, Context, OwnerPin, StateError, Status};

use crate::config::{ConfigError, PivConfig};
use crate::keys::{KeyError, PrivateKey, PublicKey};
use crate::management::ManagementKey;
use crate::objects::{self, DataObjectTag};
use crate::pin::{self, PinRules};
use crate::reference::{PinPolicy, Slot};
use crate::stored_key::{Origin, StoredKey};

/// The state format this build writes and the newest it reads.
pub const STATE_FORMAT: u32 = 1;

const CONFIG: &str = "config";
const PIN: &str = "pin";
const PUK: &str = "puk";
const MANAGEMENT: &str = "management";
const KEYS: &str = "keys";
const OBJECTS: &str = "objects";
const DEFAULTS: &str = "defaults";

/// Whether the PIN and PUK still hold the well-known default values (GET
/// METADATA tag `05`). Kept beside the counters because [`OwnerPin`] never
/// compares without counting a try.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultFlags {
    /// The PIN is `123456`.
    pub pin: bool,
    /// The PUK is `12345678`.
    pub puk: bool,
}

/// Card-wide settings fixed at personalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSettings {
    /// The state format version.
    pub format: u32,
    /// The serial number (GET SERIAL).
    pub serial: u32,
    /// The firmware version reported by GET VERSION.
    pub version: [u8; 3],
    /// PIN and PUK rules.
    pub rules: PinRules,
    /// Storage for objects and keys in bytes ([`crate::capacity`]). Absent
    /// in images written before it existed, and not written when it is the
    /// default: those images keep loading, byte for byte unchanged.
    #[serde(
        default = "crate::capacity::default_capacity",
        skip_serializing_if = "crate::capacity::is_default_capacity"
    )]
    pub capacity: u32,
}

/// Everything the PIV application keeps across power cuts.
#[derive(Clone, Debug)]
pub struct PivState {
    pub(crate) settings: CardSettings,
    pub(crate) pin: OwnerPin,
    pub(crate) puk: OwnerPin,
    pub(crate) management: ManagementKey,
    pub(crate) keys: BTreeMap<Slot, StoredKey>,
    pub(crate) objects: BTreeMap<DataObjectTag, Vec<u8>>,
    pub(crate) defaults: DefaultFlags,
}

impl PivState {
    /// A freshly personalised state: the configured secrets, no keys, and
    /// the card's own objects (CCC, Discovery, Key History).
    pub fn new(config: &PivConfig) -> Result<PivState, ConfigError> {
        let rules = config.rules;
        rules.check()?;
        let pin = rules.pad(&config.pin).map_err(|_| ConfigError::Pin)?;
        let puk = rules.pad(&config.puk).map_err(|_| ConfigError::Puk)?;
        let settings = CardSettings {
            format: STATE_FORMAT,
            serial: config.serial,
            version: config.version,
            rules,
            capacity: config.capacity,
        };
        Ok(PivState {
            settings,
            pin: OwnerPin::new(&pin, rules.pin_tries).map_err(|_| ConfigError::Pin)?,
            puk: OwnerPin::new(&puk, rules.puk_tries).map_err(|_| ConfigError::Puk)?,
            management: config.management_key.clone(),
            keys: BTreeMap::new(),
            objects: default_objects(config.serial),
            defaults: DefaultFlags {
                pin: is_default(&pin, crate::config::DEFAULT_PIN),
                puk: is_default(&puk, crate::config::DEFAULT_PUK),
            },
        })
    }

    /// The card-wide settings.
    pub fn settings(&self) -> &CardSettings {
        &self.settings
    }

    /// Installs `key` in `slot` (replacing any key there) with the slot's
    /// default PIN policy; returns its public key.
    pub fn install_key(
        &mut self,
        slot: Slot,
        key: impl Into<PrivateKey>,
    ) -> Result<PublicKey, KeyError> {
        self.install_key_with_policy(slot, key, slot.default_pin_policy())
    }

    /// Installs `key` in `slot` with an explicit PIN policy.
    pub fn install_key_with_policy(
        &mut self,
        slot: Slot,
        key: impl Into<PrivateKey>,
        pin_policy: PinPolicy,
    ) -> Result<PublicKey, KeyError> {
        let key = key.into();
        let public = key.public_key();
        self.install_key_with_public(slot, key, public, pin_policy)
    }

    /// Installs `key`, whose public key `public` the caller derived from
    /// it already (issuance certifies it), with an explicit PIN policy.
    pub fn install_key_with_public(
        &mut self,
        slot: Slot,
        key: PrivateKey,
        public: PublicKey,
        pin_policy: PinPolicy,
    ) -> Result<PublicKey, KeyError> {
        let stored = StoredKey::with_public(key, &public, pin_policy, Origin::Imported)?;
        self.keys.insert(slot, stored);
        Ok(public)
    }

    /// The public key in `slot`, if any.
    pub fn public_key(&self, slot: Slot) -> Option<PublicKey> {
        self.keys.get(&slot).map(|k| k.key().public_key())
    }

    /// Sets a data object's value (what GET DATA returns inside `53`);
    /// an empty value deletes it.
    pub fn put_object(&mut self, tag: DataObjectTag, value: Vec<u8>) {
        if value.is_empty() {
            self.objects.remove(&tag);
        } else {
            self.objects.insert(tag, value);
        }
    }

    /// Stores a DER certificate for `slot` in its certificate container.
    pub fn put_certificate(&mut self, slot: Slot, der: &[u8]) {
        if let Some(tag) = DataObjectTag::new(slot.certificate_tag()) {
            self.put_object(tag, objects::certificate(der));
        }
    }

    /// A data object's value, if present.
    pub fn object(&self, tag: DataObjectTag) -> Option<&[u8]> {
        self.objects.get(&tag).map(Vec::as_slice)
    }

    /// PIN tries left.
    pub fn pin_tries_left(&self) -> u8 {
        self.pin.tries_left()
    }

    /// PUK tries left.
    pub fn puk_tries_left(&self) -> u8 {
        self.puk.tries_left()
    }

    /// The state as the runtime persists it.
    pub fn save(&self) -> Result<AppletState, StateError> {
        AppletState::new()
            .with(CONFIG, &self.settings)?
            .with(PIN, &self.pin)?
            .with(PUK, &self.puk)?
            .with(MANAGEMENT, &self.management)?
            .with(KEYS, &self.keys_repr())?
            .with(OBJECTS, &self.objects_repr())?
            .with(DEFAULTS, &self.defaults)
    }

    /// Replaces this state with a persisted one, reusing already decoded
    /// keys whose material did not change.
    pub fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        let settings: CardSettings = state.get(CONFIG)?;
        if settings.format > STATE_FORMAT {
            return Err(StateError::invalid(
                CONFIG,
                format!(
                    "PIV state format {} is newer than this build reads ({STATE_FORMAT})",
                    settings.format
                ),
            ));
        }
        let encoded: BTreeMap<String, serde_json::Value> = state.get(KEYS)?;
        let mut keys = BTreeMap::new();
        for (name, value) in &encoded {
            let slot = parse_slot(name)?;
            let key = StoredKey::decode(value, self.keys.get(&slot))
                .map_err(|e| StateError::invalid(KEYS, format!("key {name}: {e}")))?;
            keys.insert(slot, key);
        }
        let encoded: BTreeMap<DataObjectTag, String> = state.get(OBJECTS)?;
        let mut objects = BTreeMap::new();
        for (tag, value) in encoded {
            let bytes = hex::decode(value).map_err(|e| {
                StateError::invalid_because(OBJECTS, format!("object {tag} is not hex"), e)
            })?;
            objects.insert(tag, bytes);
        }
        *self = PivState {
            settings,
            pin: state.get(PIN)?,
            puk: state.get(PUK)?,
            management: state.get(MANAGEMENT)?,
            keys,
            objects,
            defaults: state.get(DEFAULTS)?,
        };
        Ok(())
    }

    fn keys_repr(&self) -> BTreeMap<String, &StoredKey> {
        self.keys.iter().map(|(s, k)| (s.to_string(), k)).collect()
    }

    fn objects_repr(&self) -> BTreeMap<DataObjectTag, String> {
        self.objects
            .iter()
            .map(|(t, v)| (*t, hex::encode_upper(v)))
            .collect()
    }

    /// Stages the PIN record.
    pub(crate) fn stage_pin(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(PIN, &self.pin)
    }

    /// Stages the PUK record.
    pub(crate) fn stage_puk(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(PUK, &self.puk)
    }

    /// Stages the default flags.
    pub(crate) fn stage_defaults(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(DEFAULTS, &self.defaults)
    }

    /// Stages the management key.
    pub(crate) fn stage_management(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(MANAGEMENT, &self.management)
    }

    /// Stages the slot keys.
    pub(crate) fn stage_keys(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(KEYS, &self.keys_repr())
    }

    /// Stages the data objects.
    pub(crate) fn stage_objects(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(OBJECTS, &self.objects_repr())
    }

    /// The PIN record's part name.
    pub(crate) const PIN_PART: &'static str = PIN;
    /// The PUK record's part name.
    pub(crate) const PUK_PART: &'static str = PUK;

    /// Returns the card to its factory state (Yubico RESET): default PIN,
    /// PUK and management key, no keys, only the card's own objects. The
    /// settings (serial, version, rules) stay.
    pub(crate) fn factory_reset(&mut self) -> Result<(), Status> {
        self.default_secrets()?;
        self.management = ManagementKey::default_tdes();
        self.keys.clear();
        self.objects = default_objects(self.settings.serial);
        Ok(())
    }

    /// Sets the PIN and PUK try limits (Yubico SET PIN RETRIES), which
    /// also puts both back to their default values.
    pub(crate) fn set_try_limits(&mut self, pin_tries: u8, puk_tries: u8) -> Result<(), Status> {
        self.settings.rules.pin_tries = pin_tries;
        self.settings.rules.puk_tries = puk_tries;
        self.default_secrets()
    }

    /// The default PIN and PUK with full counters of the current limits.
    fn default_secrets(&mut self) -> Result<(), Status> {
        let rules = self.settings.rules;
        let defaults = PivConfig::default();
        let pin = pin::pad(&defaults.pin);
        let puk = pin::pad(&defaults.puk);
        self.pin = OwnerPin::new(&pin, rules.pin_tries).map_err(|_| Status::UnknownError)?;
        self.puk = OwnerPin::new(&puk, rules.puk_tries).map_err(|_| Status::UnknownError)?;
        self.defaults = DefaultFlags {
            pin: true,
            puk: true,
        };
        Ok(())
    }

    /// Stages the settings.
    pub(crate) fn stage_settings(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(CONFIG, &self.settings)
    }

    /// Stages every part.
    pub(crate) fn stage_all(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(CONFIG, &self.settings)?;
        self.stage_pin(ctx)?;
        self.stage_puk(ctx)?;
        self.stage_management(ctx)?;
        self.stage_keys(ctx)?;
        self.stage_objects(ctx)?;
        self.stage_defaults(ctx)
    }
}

/// True when padded reference data equals the padded `default` (not
/// secret-dependent timing: the flag itself is public metadata).
pub(crate) fn is_default(padded: &[u8], default: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(padded.ct_eq(&pin::pad(default)))
}

fn parse_slot(name: &str) -> Result<Slot, StateError> {
    u8::from_str_radix(name, 16)
        .ok()
        .and_then(Slot::new)
        .ok_or_else(|| StateError::invalid(KEYS, format!("{name} is not a key slot")))
}

fn default_objects(serial: u32) -> BTreeMap<DataObjectTag, Vec<u8>> {
    BTreeMap::from([
        (DataObjectTag::CCC, objects::ccc(serial)),
        (DataObjectTag::DISCOVERY, objects::discovery()),
        (DataObjectTag::KEY_HISTORY, objects::key_history()),
    ])
}
