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
//! | `keys` | slot (`"9A"`) -> algorithm, PIN policy, origin, PKCS#8 (hex), or for a key in an external custody its reference and public key (SPKI, hex) |
//! | `custody` | where GENERATE and IMPORT put new keys ([`CustodyTarget`]); absent for software keys |
//! | `objects` | tag (`"5FC105"`) -> value (hex) |
//!
//! The format is versioned by `config.format` ([`STATE_FORMAT`]); a newer
//! format is refused rather than misread. Golden images of every released
//! format live in `tests/data/` and must keep loading.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vscard_emulator::{AppletState, Context, OwnerPin, Part, StateError, Status};

use crate::config::{ConfigError, PivConfig};
use crate::custody::{CustodyTarget, KeyReference};
use crate::keys::{KeyError, PrivateKey, PublicKey};
use crate::management::ManagementKey;
use crate::objects::{self, DataObjectTag};
use crate::pin::{self, PinRules};
use crate::reference::{PinPolicy, Slot};
use crate::stored_key::{Origin, StoredKey, StoredKeyRepr};

/// The state format this build writes and the newest it reads.
pub const STATE_FORMAT: u32 = 1;

// Each part's name with the type stored under it (the table above).
const CONFIG: Part<CardSettings> = Part::new("config");
const PIN: Part<OwnerPin> = Part::new("pin");
const PUK: Part<OwnerPin> = Part::new("puk");
const MANAGEMENT: Part<ManagementKey> = Part::new("management");
const KEYS: Part<KeysPart> = Part::new("keys");
const OBJECTS: Part<ObjectsPart> = Part::new("objects");
const DEFAULTS: Part<DefaultFlags> = Part::new("defaults");
/// The attestation key (slot F9); absent on cards without one, and in
/// images written before attestation existed.
const ATTESTATION: Part<StoredKeyRepr> = Part::new("attestation");
/// Where new keys go ([`crate::custody`]); absent on software cards, and in
/// images written before custody existed.
const CUSTODY: Part<CustodyTarget> = Part::new("custody");
/// Custody keys this card began to make or stopped using, recorded before
/// they exist (or in the commit that drops them): the only keys reconcile
/// destroys. Absent when empty.
const CUSTODY_PENDING: Part<Vec<KeyReference>> = Part::new("custody_pending");

/// The stored form of the slot keys: slot in hex (`"9A"`) -> key. Kept
/// undecoded so that [`PivState::load`] can reuse keys whose material did
/// not change.
type KeysPart = BTreeMap<String, StoredKeyRepr>;

/// The stored form of the data objects: tag -> value in hex.
type ObjectsPart = BTreeMap<DataObjectTag, String>;

/// What is wrong in a part that decodes but cannot be accepted
/// ([`StateError::Invalid`]'s source).
#[derive(Debug, thiserror::Error)]
pub enum StateProblem {
    /// The image was written in a newer state format.
    #[error("PIV state format {found} is newer than this build reads ({STATE_FORMAT})")]
    FutureFormat {
        /// The format found.
        found: u32,
    },
    /// A key is stored under a name that is not a key slot.
    #[error("{name} is not a key slot")]
    NotASlot {
        /// The name found.
        name: String,
    },
    /// A slot's key does not decode as a key of its algorithm.
    #[error("key {slot} is damaged")]
    Key {
        /// The slot.
        slot: Slot,
        /// Why the key was refused.
        #[source]
        source: KeyError,
    },
    /// A data object's value is not hex.
    #[error("object {tag} is not hex")]
    ObjectNotHex {
        /// The object's tag.
        tag: DataObjectTag,
        /// The decoder's error.
        #[source]
        source: hex::FromHexError,
    },
}

impl StateProblem {
    /// This problem as the [`StateError`] of `part`.
    fn of<T: ?Sized>(self, part: Part<T>) -> StateError {
        StateError::invalid_because(part.name(), self.to_string(), self)
    }
}

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
    /// The try limits the card was personalised with, recorded when SET PIN
    /// RETRIES first changes them, so that RESET restores them (a YubiKey's
    /// RESET goes back to its factory 3 / 3, whatever SET PIN RETRIES set).
    /// Absent until then: images of cards that never ran SET PIN RETRIES
    /// stay byte for byte unchanged, and older images load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory_tries: Option<TryLimits>,
    /// The card model. Absent (and not written) for the default, YubiKey
    /// 5.7: images written before models existed load unchanged.
    #[serde(default, skip_serializing_if = "crate::model::Model::is_default")]
    pub model: crate::model::Model,
}

/// PIN and PUK try limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TryLimits {
    /// PIN tries before it blocks.
    pub pin: u8,
    /// PUK tries before it blocks.
    pub puk: u8,
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
    /// The attestation key (slot F9), if the card has one.
    pub(crate) attestation: Option<StoredKey>,
    /// Where GENERATE and IMPORT put new keys: `None` for the image.
    pub(crate) custody: Option<CustodyTarget>,
    /// The write-ahead record of custody keys ([`CUSTODY_PENDING`]).
    pub(crate) pending: Vec<KeyReference>,
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
            factory_tries: None,
            model: config.model,
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
            attestation: None,
            custody: None,
            pending: Vec::new(),
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

    /// Installs a key an external custody holds (`reference`, with its
    /// public key) in `slot`, replacing any key there.
    pub fn install_external_key(
        &mut self,
        slot: Slot,
        reference: KeyReference,
        public: PublicKey,
        pin_policy: PinPolicy,
        origin: Origin,
    ) -> Result<(), KeyError> {
        let stored = StoredKey::external(reference, public, pin_policy, origin)?;
        self.keys.insert(slot, stored);
        Ok(())
    }

    /// The public key in `slot`, if any.
    pub fn public_key(&self, slot: Slot) -> Option<PublicKey> {
        self.keys.get(&slot).map(StoredKey::public_key)
    }

    /// The slots holding a key.
    pub fn key_slots(&self) -> Vec<Slot> {
        self.keys.keys().copied().collect()
    }

    /// Where the key of `slot` is: `None` for no key or a key in the
    /// image, the custody's reference otherwise.
    pub fn key_reference(&self, slot: Slot) -> Option<&KeyReference> {
        self.keys.get(&slot).and_then(StoredKey::custody_reference)
    }

    /// Every custody reference the card holds (slot keys and attestation
    /// key).
    pub fn custody_references(&self) -> Vec<KeyReference> {
        self.keys
            .values()
            .chain(self.attestation.as_ref())
            .filter_map(StoredKey::custody_reference)
            .cloned()
            .collect()
    }

    /// Where GENERATE and IMPORT put new keys (`None`: in the image).
    pub fn custody(&self) -> Option<&CustodyTarget> {
        self.custody.as_ref()
    }

    /// Sets where GENERATE and IMPORT put new keys, at personalisation.
    pub fn set_custody(&mut self, target: Option<CustodyTarget>) {
        self.custody = target;
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

    /// Replaces the management key at personalisation (an issuer that
    /// sets a key nobody else knows, SP 800-73-4 Part 2 3.2.7's
    /// "card management key" being the issuer's). On a live card the key
    /// changes only through SET MANAGEMENT KEY after authentication.
    pub fn set_management_key(&mut self, key: ManagementKey) {
        self.management = key;
    }

    /// True while the management key is the well-known default one.
    pub fn management_key_is_default(&self) -> bool {
        self.management.is_default()
    }

    /// The state as the runtime persists it.
    pub fn save(&self) -> Result<AppletState, StateError> {
        let state = AppletState::new()
            .with(CONFIG, &self.settings)?
            .with(PIN, &self.pin)?
            .with(PUK, &self.puk)?
            .with(MANAGEMENT, &self.management)?
            .with(KEYS, &self.keys_repr())?
            .with(OBJECTS, &self.objects_repr())?
            .with(DEFAULTS, &self.defaults)?;
        let state = match &self.attestation {
            Some(key) => state.with(ATTESTATION, &key.to_repr())?,
            None => state,
        };
        let state = if self.pending.is_empty() {
            state
        } else {
            state.with(CUSTODY_PENDING, &self.pending)?
        };
        match &self.custody {
            Some(target) => state.with(CUSTODY, target),
            None => Ok(state),
        }
    }

    /// The PIN and PUK tries left stored in `state` (a card image's PIV
    /// part), reading those two parts only (no key is decoded).
    pub fn tries_left_in(state: &AppletState) -> Result<(u8, u8), StateError> {
        Ok((state.get(PIN)?.tries_left(), state.get(PUK)?.tries_left()))
    }

    /// The state stored in `state` (a card image's PIV part), decoded
    /// and checked part by part; the error names the part at fault.
    pub fn from_saved(state: &AppletState) -> Result<PivState, StateError> {
        PivState::decode(state, &BTreeMap::new())
    }

    /// Replaces this state with a persisted one, reusing already decoded
    /// keys whose material did not change. On error `self` is unchanged.
    pub fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        *self = PivState::decode(state, &self.keys)?;
        Ok(())
    }

    /// Decodes `state`, reusing keys of `previous` whose material is
    /// unchanged.
    fn decode(
        state: &AppletState,
        previous: &BTreeMap<Slot, StoredKey>,
    ) -> Result<PivState, StateError> {
        let settings = state.get(CONFIG)?;
        if settings.format > STATE_FORMAT {
            return Err(StateProblem::FutureFormat {
                found: settings.format,
            }
            .of(CONFIG));
        }
        let mut keys = BTreeMap::new();
        for (name, repr) in &state.get(KEYS)? {
            let slot = parse_slot(name)?;
            let key = StoredKey::from_repr(repr, previous.get(&slot))
                .map_err(|source| StateProblem::Key { slot, source }.of(KEYS))?;
            keys.insert(slot, key);
        }
        let mut objects = BTreeMap::new();
        for (tag, value) in state.get(OBJECTS)? {
            let bytes = hex::decode(value)
                .map_err(|source| StateProblem::ObjectNotHex { tag, source }.of(OBJECTS))?;
            objects.insert(tag, bytes);
        }
        let attestation = match state.get_optional(ATTESTATION)? {
            Some(repr) => Some(StoredKey::from_repr(&repr, None).map_err(|source| {
                StateProblem::Key {
                    slot: Slot::AUTHENTICATION,
                    source,
                }
                .of(ATTESTATION)
            })?),
            None => None,
        };
        Ok(PivState {
            settings,
            pin: state.get(PIN)?,
            puk: state.get(PUK)?,
            management: state.get(MANAGEMENT)?,
            keys,
            objects,
            defaults: state.get(DEFAULTS)?,
            attestation,
            custody: state.get_optional(CUSTODY)?,
            pending: state.get_optional(CUSTODY_PENDING)?.unwrap_or_default(),
        })
    }

    fn keys_repr(&self) -> KeysPart {
        self.keys
            .iter()
            .map(|(s, k)| (s.to_string(), k.to_repr()))
            .collect()
    }

    fn objects_repr(&self) -> ObjectsPart {
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

    /// Stages the write-ahead record of custody keys (also when empty,
    /// once it has been used).
    pub(crate) fn stage_pending(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(CUSTODY_PENDING, &self.pending)
    }

    /// The custody keys this card recorded as begun or dropped.
    pub fn pending_custody_keys(&self) -> &[KeyReference] {
        &self.pending
    }

    /// Stages the data objects.
    pub(crate) fn stage_objects(&self, ctx: &mut Context<'_>) -> Result<(), Status> {
        ctx.stage(OBJECTS, &self.objects_repr())
    }

    /// The PIN record's part.
    pub(crate) const PIN_PART: Part<OwnerPin> = PIN;
    /// The PUK record's part.
    pub(crate) const PUK_PART: Part<OwnerPin> = PUK;

    /// Returns the card to its factory state (Yubico RESET): default PIN,
    /// PUK and management key, no keys, only the card's own objects, and
    /// the try limits of the personalisation. The other settings (serial,
    /// version, PIN rules) stay.
    pub(crate) fn factory_reset(&mut self) -> Result<(), Status> {
        if let Some(limits) = self.settings.factory_tries.take() {
            self.settings.rules.pin_tries = limits.pin;
            self.settings.rules.puk_tries = limits.puk;
        }
        self.default_secrets()?;
        self.management = self.settings.model.default_management_key();
        self.keys.clear();
        // The attestation key and its certificate stay, as on a YubiKey.
        let attestation = self
            .objects
            .remove(&crate::objects::DataObjectTag::ATTESTATION_CERTIFICATE);
        self.objects = default_objects(self.settings.serial);
        if let Some(certificate) = attestation {
            self.objects.insert(
                crate::objects::DataObjectTag::ATTESTATION_CERTIFICATE,
                certificate,
            );
        }
        Ok(())
    }

    /// Sets the PIN and PUK try limits (Yubico SET PIN RETRIES), which
    /// also puts both back to their default values.
    pub(crate) fn set_try_limits(&mut self, pin_tries: u8, puk_tries: u8) -> Result<(), Status> {
        let rules = self.settings.rules;
        // Only the first change records the factory limits; a later one
        // must not overwrite them with its predecessor's.
        self.settings.factory_tries.get_or_insert(TryLimits {
            pin: rules.pin_tries,
            puk: rules.puk_tries,
        });
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
        .ok_or_else(|| {
            StateProblem::NotASlot {
                name: name.to_owned(),
            }
            .of(KEYS)
        })
}

fn default_objects(serial: u32) -> BTreeMap<DataObjectTag, Vec<u8>> {
    BTreeMap::from([
        (DataObjectTag::CCC, objects::ccc(serial)),
        (DataObjectTag::DISCOVERY, objects::discovery()),
        (DataObjectTag::KEY_HISTORY, objects::key_history()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_with_key() -> AppletState {
        let mut state = PivState::new(&PivConfig::default()).unwrap();
        let scalar = [0x11u8; 32];
        let key = p256::SecretKey::from_slice(&scalar).unwrap();
        state.install_key(Slot::SIGNATURE, key).unwrap();
        state.save().unwrap()
    }

    #[test]
    fn a_saved_state_loads_back() {
        let saved = saved_with_key();
        let loaded = PivState::from_saved(&saved).unwrap();
        assert_eq!(loaded.save().unwrap(), saved);
    }

    #[test]
    fn a_replaced_management_key_is_saved_and_no_longer_default() {
        let mut state = PivState::new(&PivConfig::default()).unwrap();
        assert!(state.management_key_is_default());
        let key = ManagementKey::new(crate::reference::Algorithm::Aes256, &[0x5A; 32]).unwrap();
        state.set_management_key(key);
        assert!(!state.management_key_is_default());
        let loaded = PivState::from_saved(&state.save().unwrap()).unwrap();
        assert!(!loaded.management_key_is_default());
        assert_eq!(
            loaded.management.algorithm(),
            crate::reference::Algorithm::Aes256
        );
    }

    #[test]
    fn a_damaged_key_names_its_part_slot_and_cause() {
        use std::error::Error as _;
        let mut saved = saved_with_key();
        // The part as JSON: an empty SEQUENCE where the PKCS#8 key was.
        let raw = Part::<serde_json::Value>::new(KEYS.name());
        let mut keys = saved.get(raw).unwrap();
        keys["9C"]["pkcs8"] = serde_json::Value::from("3000");
        saved.put(raw, &keys).unwrap();
        let error = PivState::from_saved(&saved).unwrap_err();
        assert_eq!(
            error.to_string(),
            "state part `keys` is invalid: key 9C is damaged"
        );
        let problem = error
            .source()
            .and_then(|s| s.downcast_ref::<StateProblem>());
        assert!(
            matches!(
                problem,
                Some(StateProblem::Key {
                    slot: Slot::SIGNATURE,
                    source: KeyError::Decode {
                        algorithm: crate::reference::Algorithm::EccP256,
                        ..
                    },
                })
            ),
            "{problem:?}"
        );
    }

    #[test]
    fn a_key_under_a_name_that_is_no_slot_is_refused() {
        let mut saved = saved_with_key();
        let mut keys = saved.get(KEYS).unwrap();
        let repr = keys.remove("9C").unwrap();
        keys.insert("9Z".to_owned(), repr);
        saved.put(KEYS, &keys).unwrap();
        let error = PivState::from_saved(&saved).unwrap_err();
        assert_eq!(
            error.to_string(),
            "state part `keys` is invalid: 9Z is not a key slot"
        );
    }
}
