//! Key custody for `issue`, `inspect` and `serve`: the PKCS#11 custody
//! opened once per module per process, and where each key of a card lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vscard_applet::{KeyCustody, PivState};
use vscard_issuance::cards::CardFileError;
use vscard_pkcs11::{Pkcs11Custody, TokenPin};

/// The PKCS#11 modules this process opened, by path: each is opened once
/// and shared by every card that uses it.
///
/// Only the modules the operator named (`serve --pkcs11-module`, `issue
/// --pkcs11-module`) are ever loaded: a card image names its module, but
/// that name is only compared with the operator's list, never loaded.
#[derive(Debug, Default)]
pub struct Custodies {
    /// `--pkcs11-pin-file` (else `VSCARD_PKCS11_PIN`).
    pin_file: Option<PathBuf>,
    /// The operator's modules, canonical.
    allowed: Vec<PathBuf>,
    opened: Mutex<BTreeMap<PathBuf, Arc<Pkcs11Custody>>>,
}

fn bad(option: &'static str, reason: impl Into<String>) -> CardFileError {
    CardFileError::BadValue {
        option,
        reason: reason.into(),
    }
}

impl Custodies {
    /// Custodies whose token PIN comes from `pin_file` or the environment,
    /// which may load the PKCS#11 `modules` (the operator's; each made
    /// canonical here, so a missing one is an error now).
    pub fn new(pin_file: Option<PathBuf>, modules: &[PathBuf]) -> Result<Custodies, CardFileError> {
        let allowed = modules
            .iter()
            .map(|module| {
                std::fs::canonicalize(module).map_err(|error| {
                    bad("--pkcs11-module", format!("{}: {error}", module.display()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Custodies {
            pin_file,
            allowed,
            opened: Mutex::new(BTreeMap::new()),
        })
    }

    /// The operator's module a card image's `module` names: the same
    /// canonical path, else none.
    fn allowed_module(&self, module: &str) -> Option<&PathBuf> {
        let named = Path::new(module);
        let canonical = std::fs::canonicalize(named).ok();
        self.allowed
            .iter()
            .find(|allowed| allowed.as_path() == named || canonical.as_ref() == Some(*allowed))
    }

    /// The custody of `module` (one of the operator's), opened on first use.
    pub fn pkcs11(&self, module: &Path) -> Result<Arc<Pkcs11Custody>, CardFileError> {
        if !self.allowed.iter().any(|allowed| allowed == module) {
            return Err(bad(
                "--pkcs11-module",
                format!("{} is not a module given to this command", module.display()),
            ));
        }
        let mut opened = self
            .opened
            .lock()
            .map_err(|_| bad("--pkcs11-module", "the module table is poisoned"))?;
        if let Some(custody) = opened.get(module) {
            return Ok(Arc::clone(custody));
        }
        let pin = TokenPin::from_file_or_env(self.pin_file.as_deref())
            .map_err(|error| bad("--pkcs11-pin-file", error.to_string()))?;
        let custody = Arc::new(
            Pkcs11Custody::open(module, pin)
                .map_err(|error| bad("--pkcs11-module", error.to_string()))?,
        );
        opened.insert(module.to_owned(), Arc::clone(&custody));
        Ok(custody)
    }

    /// The custody a card image's keys need, if any: the module its
    /// custody target (or its first key reference) names.
    pub fn for_state(
        &self,
        state: &PivState,
    ) -> Result<Option<Arc<dyn KeyCustody>>, CardFileError> {
        let location = state
            .custody()
            .filter(|target| target.custody == vscard_pkcs11::KIND)
            .map(|target| target.location.clone())
            .or_else(|| {
                state
                    .custody_references()
                    .into_iter()
                    .find(|reference| reference.custody == vscard_pkcs11::KIND)
                    .map(|reference| reference.location)
            });
        let Some(location) = location else {
            return Ok(None);
        };
        let module = location
            .get(vscard_pkcs11::MODULE)
            .ok_or_else(|| bad("CARD.json", "the card's PKCS#11 custody names no module"))?;
        let Some(allowed) = self.allowed_module(module) else {
            return Err(bad(
                "--pkcs11-module",
                format!(
                    "the card's keys are in the PKCS#11 module {module}, which was not given \
                     with --pkcs11-module: not loaded"
                ),
            ));
        };
        let pkcs11 = self.pkcs11(&allowed.clone())?;
        // The login tried once now, and said loudly when refused: a
        // refused PIN is never tried again by this process (the token's
        // retry counter is shared by every card in it).
        if let Some(token) = location.get(vscard_pkcs11::TOKEN)
            && let Err(error) = pkcs11.check_login(token)
        {
            if pkcs11.login_refused(token) {
                return Err(bad("--pkcs11-pin-file", error.to_string()));
            }
            tracing::warn!(target: "vscard::pkcs11", token, %error,
                "the card's PKCS#11 token cannot be used now; key operations answer 6F00 until it can");
        }
        let custody: Arc<dyn KeyCustody> = pkcs11;
        Ok(Some(custody))
    }
}

/// Where each key of `state` lives, by slot: `software`, or the
/// custody with its location and key ID.
pub fn key_locations(state: &PivState) -> BTreeMap<String, serde_json::Value> {
    state
        .key_slots()
        .into_iter()
        .map(|slot| {
            let value = match state.key_reference(slot) {
                None => serde_json::json!({ "custody": "software" }),
                Some(reference) => {
                    let mut fields = serde_json::Map::new();
                    fields.insert("custody".to_owned(), reference.custody.clone().into());
                    for (name, value) in &reference.location {
                        fields.insert(name.clone(), value.clone().into());
                    }
                    fields.insert("id".to_owned(), reference.id.clone().into());
                    serde_json::Value::Object(fields)
                }
            };
            (slot.to_string(), value)
        })
        .collect()
}

/// The text lines of [`key_locations`]: `key 9A: software (in the card
/// image)`, `key 9C: pkcs11 token cards id vscard/CARD/9C/NONCE`.
pub fn key_lines(state: &PivState) -> String {
    let mut text = String::new();
    for slot in state.key_slots() {
        match state.key_reference(slot) {
            None => text.push_str(&format!("key {slot}: software (in the card image)\n")),
            Some(reference) => {
                let token = reference
                    .location
                    .get(vscard_pkcs11::TOKEN)
                    .map(|token| format!(" token {token}"))
                    .unwrap_or_default();
                // A PKCS#11 ID vscard made is ASCII (`vscard/CARD/SLOT/N`):
                // shown as such, other IDs in hex.
                let id = hex::decode(&reference.id)
                    .ok()
                    .filter(|bytes| bytes.iter().all(|b| b.is_ascii_graphic()))
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .unwrap_or_else(|| reference.id.clone());
                text.push_str(&format!(
                    "key {slot}: {}{token} id {id}\n",
                    reference.custody
                ));
            }
        }
    }
    text
}
