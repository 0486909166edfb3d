//! Issuing a card profile into a new card image file.

use std::path::Path;

use crate::{
    CardProfile, CardSummary, CertificateValidity, IssueCustody, Pki, issue_applet,
    issue_applet_in_custody, personalise_attestation, summarize,
};
use vscard_applet::{Algorithm, Slot};
use vscard_emulator::CardRng;

use super::error::CardFileError;
use super::image::NewCardFile;
use super::states::{KnownState, apply_states};

/// Reads a profile file: JSON when its name ends in `.json`, else TOML.
pub fn read_profile(path: &Path) -> Result<CardProfile, CardFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CardFileError::ProfileFile {
        path: path.to_owned(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("json"));
    let profile = if is_json {
        CardProfile::from_json(&text)
    } else {
        CardProfile::from_toml(&text)
    };
    Ok(profile?)
}

/// Issues `profile` into a new card image at `out` (replacing one only
/// with `force`), with certificates from the environment's PKI under
/// `state_dir` (created on first use). `progress` is called before each
/// key is generated. A profile seed makes keys and serials reproducible;
/// the PKI, when it has to be created, always draws from the system.
/// The card is then put in `states` (the PIN, unlock-code and
/// management-key ones; the caller applies the validity ones with
/// [`KnownState::validity`]).
pub fn issue_card_file(
    out: &Path,
    profile: &CardProfile,
    validity: CertificateValidity,
    states: &[KnownState],
    state_dir: &Path,
    force: bool,
    progress: impl FnMut(Slot, Algorithm),
) -> Result<CardSummary, CardFileError> {
    issue_card_file_with(
        out, profile, validity, states, state_dir, force, progress, None, None,
    )
}

/// As [`issue_card_file`], with the card's keys generated in an external
/// custody (`custody`: the image holds only their references and public
/// keys, and the custody target, so that GENERATE on the served card goes
/// there too), and the image sealed under `key` (`None`: plain).
#[allow(clippy::too_many_arguments)]
pub fn issue_card_file_with(
    out: &Path,
    profile: &CardProfile,
    validity: CertificateValidity,
    states: &[KnownState],
    state_dir: &Path,
    force: bool,
    progress: impl FnMut(Slot, Algorithm),
    custody: Option<IssueCustody<'_>>,
    key: Option<&vscard_emulator::seal::SealKey>,
) -> Result<CardSummary, CardFileError> {
    let file = NewCardFile::claim_with(out, force, key)?;
    let mut system = CardRng::from_os().map_err(CardFileError::Rng)?;
    let pki = Pki::open_or_create(state_dir, &profile.environment, &mut system)?;
    // The YubiKey models get their attestation key last, so a seeded
    // card's other keys and serials are the ones they were before it. A
    // card whose keys are in a custody gets none: the attestation key
    // would be the one private key left in its image (ATTEST answers
    // 6A88 there, as on a card without an attestation key).
    let attestation = pki.attestation_ca()?;
    let environment = &profile.environment;
    let issue = |rng: &mut CardRng, progress| match custody {
        Some(custody) => {
            issue_applet_in_custody(pki.sub(), profile, validity, rng, progress, custody)
        }
        None => issue_applet(pki.sub(), profile, validity, rng, progress),
    };
    // Keys made in the custody for a card that is never written would be
    // orphans there: a failure before the image is written destroys them.
    let made = |applet: &vscard_applet::PivApplet| applet.state().custody_references();
    let orphans = |references: &[vscard_applet::KeyReference]| {
        if let Some(custody) = custody {
            for reference in references {
                if let Err(error) = custody.custody.delete(custody.target, reference) {
                    tracing::warn!(target: "vscard::issue", key = %reference, %error,
                        "cannot destroy a key of a card that was not issued");
                }
            }
        }
    };
    let (applet, references) = match profile.seeded_rng() {
        Some(mut seeded) => {
            let applet = issue(&mut seeded, progress)?;
            let references = made(&applet);
            let mut applet =
                apply_states(applet, states, &mut seeded).inspect_err(|_| orphans(&references))?;
            if custody.is_none() {
                personalise_attestation(&mut applet, &attestation, environment, &mut seeded)
                    .inspect_err(|_| orphans(&references))?;
            }
            (applet, references)
        }
        None => {
            let applet = issue(&mut system, progress)?;
            let references = made(&applet);
            let mut applet =
                apply_states(applet, states, &mut system).inspect_err(|_| orphans(&references))?;
            if custody.is_none() {
                personalise_attestation(&mut applet, &attestation, environment, &mut system)
                    .inspect_err(|_| orphans(&references))?;
            }
            (applet, references)
        }
    };
    let written = file.write(&applet).inspect_err(|_| orphans(&references))?;
    let certificates = super::revoke::card_certificates(applet.state(), None)?;
    pki.record_issued(
        &written,
        certificates
            .iter()
            .map(|(slot, certificate)| (*slot, certificate)),
    )?;
    Ok(summarize(applet.state())?)
}
