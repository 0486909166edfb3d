//! Where `vscard serve` gets its cards: the [`CardSource`] hook.
//!
//! The bridge is generic over any [`Card`]; what a card *is* (the PIV
//! applet, its image file, the default demo card issued on first use) is
//! decided by a [`CardSource`]. The product source is [`PivCardSource`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use vscard_emulator::Card;
use vscard_issuance::{CardProfile, CertificateValidity, default_state_dir};
use vscard_vpcd::control::{CardLabel, CardOpener};

use vscard_emulator::seal::SealKey;
use vscard_issuance::cards::{
    CardFileError, issue_card_file_with, open_card_with, read_applet_with,
};

use crate::custody::Custodies;

use crate::issue_request::terminal_progress;

/// A card ready to serve, with what to tell the person who started it.
#[derive(Debug)]
pub struct ServedCard {
    /// The card.
    pub card: Card,
    /// A short name for messages ("demo card 000123456789").
    pub name: String,
    /// Lines printed when serving starts (for example "issued the default
    /// demo card: PIN 123456, unlock code 654321").
    pub notices: Vec<String>,
    /// A command to try once the card is in the reader, printed after its
    /// location (for example `pkcs11-tool -L`).
    pub hint: Option<String>,
    /// What `vscard ctl --card` may call it: its file and user ID.
    pub label: CardLabel,
}

/// Builds the cards `vscard serve` serves.
pub trait CardSource {
    /// Opens the cards named by the `CARD.json` arguments, in order; with
    /// no argument, the default card.
    fn open(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<ServedCard>>;

    /// What opens the image of `vscard ctl PATH insert --card N
    /// OTHER.json` while serving; `None` (the default): swaps are refused.
    fn opener(&self) -> Option<CardOpener> {
        None
    }
}

/// The product's cards: PIV card images, and the default demo card.
///
/// Each image is served through the emulator's `FileStore`, so its state
/// (PIN counters above all) persists across restarts and crashes, and its
/// lock refuses a second server of the same image.
#[derive(Clone, Debug, Default)]
pub struct PivCardSource {
    /// The state directory (the demo card, the test PKI); `None`:
    /// `$VSCARD_HOME`, else the XDG data directory.
    pub state_dir: Option<PathBuf>,
    /// The key custodies (PKCS#11 modules) the served cards use, each
    /// opened once.
    pub custodies: Arc<Custodies>,
    /// The key of encrypted card images (`--encrypt-key-file`); the demo
    /// card is issued encrypted under it too.
    pub key: Option<SealKey>,
}

/// The demo card's image, under the state directory.
pub const DEMO_CARD_FILE: &str = "cards/demo.json";

/// What `vscard serve` suggests trying once a PIV card is in the reader.
pub const PIV_HINT: &str = "pkcs11-tool -L   or   yubico-piv-tool -r 'Virtual PCD' -a status";

impl PivCardSource {
    /// A source with the token PIN of PKCS#11 cards from `pkcs11_pin_file`
    /// (else `VSCARD_PKCS11_PIN`), whose cards may use the PKCS#11
    /// `pkcs11_modules` (the operator's; an image naming another module is
    /// served with its key operations answering 6F00); sealed images open
    /// under `key`.
    pub fn new(
        state_dir: Option<PathBuf>,
        pkcs11_pin_file: Option<PathBuf>,
        pkcs11_modules: &[PathBuf],
        key: Option<SealKey>,
    ) -> Result<PivCardSource, CardFileError> {
        Ok(PivCardSource {
            state_dir,
            custodies: Arc::new(Custodies::new(pkcs11_pin_file, pkcs11_modules)?),
            key,
        })
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> Result<PathBuf, CardFileError> {
        match &self.state_dir {
            Some(path) => Ok(path.clone()),
            None => Ok(default_state_dir()?),
        }
    }

    /// The demo card, issued into `<state dir>/cards/demo.json` on first
    /// use (PIN 123456, unlock code 654321, user 000123456789).
    fn demo_card(&self) -> Result<ServedCard, CardFileError> {
        let state_dir = self.state_dir()?;
        let path = state_dir.join(DEMO_CARD_FILE);
        let mut notices = Vec::new();
        if !path.try_exists().unwrap_or(true) {
            let profile = CardProfile::demo();
            let validity = CertificateValidity::for_profile(&profile, SystemTime::now())?;
            match issue_card_file_with(
                &path,
                &profile,
                validity,
                &[],
                &state_dir,
                false,
                terminal_progress(),
                None,
                self.key.as_ref(),
            ) {
                Ok(_) => notices.push(format!(
                    "issued the default demo card {}: {}, user {}, PIN {}, unlock code {}",
                    path.display(),
                    profile.name,
                    profile.uuid,
                    profile.pin.expose(),
                    profile.unlock_code.expose(),
                )),
                // Another `vscard serve` issued it first: serve theirs.
                Err(CardFileError::Exists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let mut card = serve_file(&path, notices, &self.custodies, self.key.as_ref())?;
        card.name = format!("demo {}", card.name);
        Ok(card)
    }
}

impl CardSource for PivCardSource {
    fn open(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<ServedCard>> {
        if paths.is_empty() {
            return Ok(vec![self.demo_card()?]);
        }
        paths
            .iter()
            .map(|path| {
                Ok(serve_file(
                    path,
                    Vec::new(),
                    &self.custodies,
                    self.key.as_ref(),
                )?)
            })
            .collect()
    }

    /// Opens the image as `serve` does: locked for as long as it is in a
    /// reader, so it cannot be served twice.
    fn opener(&self) -> Option<CardOpener> {
        let custodies = Arc::clone(&self.custodies);
        let key = self.key.clone();
        Some(Arc::new(move |path: &Path| {
            serve_file(path, Vec::new(), &custodies, key.as_ref())
                .map(|served| {
                    // No terminal to print to here: what serve would say
                    // (an unusable custody) goes to the log.
                    for notice in &served.notices {
                        tracing::warn!(target: "vscard::serve", "{notice}");
                    }
                    (served.card, served.label)
                })
                .map_err(|error| error.to_string())
        }))
    }
}

/// The card image at `path`, locked and ready to serve.
/// A card whose keys are in a PKCS#11 token gets that module's custody
/// (opened once per process); a sealed image is opened under `key`.
fn serve_file(
    path: &Path,
    notices: Vec<String>,
    custodies: &Custodies,
    key: Option<&SealKey>,
) -> Result<ServedCard, CardFileError> {
    let mut notices = notices;
    // A custody that cannot be opened (no PIN, module gone) leaves the
    // card served: its key operations answer 6F00 (logged), the rest works.
    let custody = match custodies.for_state(read_applet_with(path, key)?.state()) {
        Ok(custody) => custody,
        Err(CardFileError::BadValue { option, reason }) => {
            notices.push(format!(
                "{}: the keys in its PKCS#11 token are unusable ({option}: {reason}); \
                 key operations answer 6F00",
                path.display()
            ));
            None
        }
        Err(other) => return Err(other),
    };
    let (card, summary) = open_card_with(path, key, custody)?;
    let user_id = summary
        .as_ref()
        .map(|summary| summary.uuid.clone())
        .filter(|uuid| !uuid.is_empty());
    let name = match (&user_id, &summary) {
        (Some(uuid), Some(summary)) => format!("card {uuid} ({})", summary.holder),
        _ => format!("card {}", path.display()),
    };
    // `ctl` runs in another directory: the file by its full name.
    let file = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .ok();
    Ok(ServedCard {
        card,
        name,
        notices,
        hint: Some(PIV_HINT.to_owned()),
        label: CardLabel { file, user_id },
    })
}
