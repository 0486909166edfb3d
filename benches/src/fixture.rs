//! The card every harness measures: the demo profile (RSA-2048 in 9A and
//! 9D, P-256 in 9C and 9E, four certificates from a test PKI), issued once
//! per run from a seed, and cards built from its image.

use std::time::SystemTime;

use vscard_applet::{PivApplet, piv_atr};
use vscard_emulator::{Applet, AppletState, Card, CardImage, CardRng, MemoryStore, Store};
use vscard_issuance::{
    CardProfile, CertificateValidity, Pki, SecretString, SlotAlgorithms, issue_applet,
};

use crate::BenchError;

fn issuance(error: impl std::fmt::Display) -> BenchError {
    BenchError::Issuance(error.to_string())
}

/// A test PKI in a temporary directory.
pub struct Issuer {
    _dir: tempfile::TempDir,
    pki: Pki,
}

impl Issuer {
    /// Creates the sandbox Root CA and Sub CA in a fresh directory.
    pub fn new() -> Result<Issuer, BenchError> {
        let dir = tempfile::tempdir().map_err(crate::io_error("temporary PKI directory"))?;
        let profile = CardProfile::demo();
        let mut rng = CardRng::from_u64(0x5EED);
        let pki =
            Pki::open_or_create(dir.path(), &profile.environment, &mut rng).map_err(issuance)?;
        Ok(Issuer { _dir: dir, pki })
    }

    /// Issues the demo profile with `slots`, keys drawn from `seed`.
    pub fn issue(&self, slots: SlotAlgorithms, seed: &str) -> Result<PivApplet, BenchError> {
        let profile = profile(slots, seed);
        let mut rng = profile
            .seeded_rng()
            .ok_or_else(|| issuance("the profile has no seed"))?;
        let validity =
            CertificateValidity::for_profile(&profile, SystemTime::now()).map_err(issuance)?;
        issue_applet(self.pki.sub(), &profile, validity, &mut rng, |_, _| {}).map_err(issuance)
    }
}

/// The demo profile with these slot algorithms and seed.
pub fn profile(slots: SlotAlgorithms, seed: &str) -> CardProfile {
    let mut profile = CardProfile::demo();
    profile.slots = slots;
    profile.seed = Some(SecretString::new(seed));
    profile
}

/// The demo card (2 RSA-2048 + 2 P-256 keys, 4 certificates), issued
/// with a fixed seed; its applet state is what every harness loads.
pub fn demo_state() -> Result<AppletState, BenchError> {
    let applet = Issuer::new()?.issue(SlotAlgorithms::default(), "vscard-benches")?;
    Ok(applet.save()?)
}

/// The card image holding `state` as the PIV applet's state.
pub fn image(state: &AppletState) -> CardImage {
    let mut image = CardImage::new();
    image.set_applet(&PivApplet::with_defaults().aid().to_hex(), state.clone());
    image
}

/// A powered card on `store`, which already holds [`image`]`(state)`
/// (so the card's committed image shares the parts of the one issued
/// image, as cards cloned from a file do).
pub fn card_on(store: impl Store + 'static) -> Result<Card, BenchError> {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(7))
        .install_default(PivApplet::with_defaults())
        .store(store)
        .build()?;
    card.power_on();
    Ok(card)
}

/// A powered in-memory card cloned from `image`.
pub fn card_from(image: &CardImage) -> Result<Card, BenchError> {
    let mut store = MemoryStore::new();
    store.commit(image)?;
    card_on(store)
}
