//! Where `vscard serve` gets its cards: the [`CardSource`] hook.
//!
//! The bridge is generic over any [`Card`]; what a card *is* (the PIV
//! applet, its image file, the default demo card issued on first use) is
//! decided by a [`CardSource`]. The product source is [`PivCardSource`];
//! the bridge's own tests use [`EchoFixtureSource`] through a hidden
//! switch.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use vscard_emulator::Card;

use crate::fixture;

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
}

/// Builds the cards `vscard serve` serves.
pub trait CardSource {
    /// Opens the cards named by the `CARD.json` arguments, in order; with
    /// no argument, the default card.
    fn open(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<ServedCard>>;
}

/// The product's cards: PIV card images, and the default demo card.
///
/// Not wired yet: the PIV applet and issuance are being written. The lead
/// replaces the body of [`CardSource::open`] with "load (or issue on first
/// use) a PIV card image through the `FileStore`".
#[derive(Debug, Default)]
pub struct PivCardSource;

impl CardSource for PivCardSource {
    fn open(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<ServedCard>> {
        let _ = paths;
        bail!(
            "serving PIV cards is not available yet: the PIV applet is not wired into `vscard serve`"
        )
    }
}

/// `count` echo cards ([`crate::fixture::EchoApplet`]), in memory: a test
/// fixture for the bridge's own tests, never a product default.
#[derive(Debug)]
pub struct EchoFixtureSource {
    /// How many cards.
    pub count: usize,
}

impl CardSource for EchoFixtureSource {
    fn open(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<ServedCard>> {
        if !paths.is_empty() {
            bail!("the echo fixture takes no card file");
        }
        (0..self.count)
            .map(|index| {
                Ok(ServedCard {
                    card: fixture::echo_card().context("cannot build the echo fixture card")?,
                    name: format!("echo fixture card {index}"),
                    notices: vec![format!(
                        "card {index} is the echo test fixture, not a PIV card"
                    )],
                    hint: None,
                })
            })
            .collect()
    }
}
