//! The cards the suite runs against when it makes its own: an NHS-style
//! card with two roles, issued from vscard's test PKI.

use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use vscard_applet::{ManagementApplet, PivApplet, atr_for};
use vscard_emulator::rand_core::Rng as _;
use vscard_emulator::{Applet, AppletState, Card, CardError, CardRng, StateError};
use vscard_issuance::{
    CardProfile, CertificateValidity, IssuanceError, Naming, Pki, PkiError, RoleProfile,
    SecretString, create_authorities_named, issue_applet, personalise_attestation,
};

use crate::facts::CardFacts;

/// The demo holder with a second role, so the journey can choose one; a
/// fixed seed makes the keys the same on every run.
pub fn journey_profile() -> CardProfile {
    let mut profile = CardProfile::demo();
    profile.seed = Some(SecretString::new("vscard-conformance"));
    profile.roles.push(RoleProfile {
        code: "R8001".into(),
        name: "Nurse Access Role".into(),
        business_functions: vec!["B0360".into()],
        ods_code: "K81003001".into(),
    });
    profile
}

/// What the scenarios may assume about a card issued from `profile`.
pub fn facts_for(profile: &CardProfile) -> CardFacts {
    CardFacts {
        pin: profile.pin.expose().as_bytes().to_vec(),
        puk: profile.unlock_code.expose().as_bytes().to_vec(),
        pin_tries: profile.pin_policy.pin_tries,
        uuid: Some(profile.uuid.clone()),
        // The model's default management key: AES-192 on a YubiKey 5.7.
        management_algorithm: profile.model.management_algorithm().byte(),
        ..CardFacts::default()
    }
}

/// Why a test card could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The system's random generator failed.
    #[error("no system randomness: {0}")]
    Rng(#[source] rand::rngs::SysError),
    /// The environment's PKI could not be opened or created.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Issuing the card failed.
    #[error(transparent)]
    Issuance(#[from] IssuanceError),
}

/// Why one of the suite's own test cards (journey, golden) could not be
/// made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestCardError {
    /// No temporary directory for the card's PKI.
    #[error("no temporary state directory: {0}")]
    StateDir(#[source] std::io::Error),
    /// Issuing the card failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// The issued applet's state did not save.
    #[error("the issued card's state does not save: {0}")]
    Save(#[source] StateError),
    /// The card could not be built around the state.
    #[error(transparent)]
    Card(#[from] CardError),
}

/// Issues `profile` with the PKI in `state_dir`, valid from `not_before`.
pub fn issue(
    profile: &CardProfile,
    state_dir: &Path,
    not_before: SystemTime,
) -> Result<PivApplet, IssueError> {
    let mut rng = match profile.seeded_rng() {
        Some(rng) => rng,
        None => CardRng::from_os().map_err(IssueError::Rng)?,
    };
    // The pre-issue-18 CA names: the golden transcript records the card's
    // certificates, whose issuer is the Sub CA's name. The same draws from
    // `rng` as `Pki::open_or_create` (CAs, then the staging nonce), so the
    // card keys stay the recorded ones too.
    let authorities = create_authorities_named(
        &profile.environment,
        SystemTime::now(),
        Naming::Legacy,
        &mut rng,
    )?;
    let nonce = rng.next_u64();
    let pki = Pki::install(state_dir, &profile.environment, authorities, nonce)?;
    let validity = CertificateValidity::for_profile(profile, not_before)?;
    // Nor the revocation URLs of issue 19 (CRL distribution point, OCSP),
    // which would change the recorded certificates' bytes.
    let sub = pki.sub().clone().without_revocation();
    let mut applet = issue_applet(&sub, profile, validity, &mut rng, |_, _| {})?;
    // As `vscard issue` does, last (the other keys stay the recorded ones).
    let attestation = pki.attestation_ca()?;
    personalise_attestation(&mut applet, &attestation, &profile.environment, &mut rng)?;
    Ok(applet)
}

/// The journey card's applet state, issued once per process (RSA keys take
/// a while) in a temporary state directory; a failure is kept too, so
/// every caller sees the same one.
pub fn journey_state() -> Result<&'static AppletState, &'static TestCardError> {
    static STATE: OnceLock<Result<AppletState, TestCardError>> = OnceLock::new();
    STATE
        .get_or_init(|| issued_state(SystemTime::now()))
        .as_ref()
}

/// The journey card issued from `not_before` in a temporary PKI, saved.
fn issued_state(not_before: SystemTime) -> Result<AppletState, TestCardError> {
    let dir = tempfile::tempdir().map_err(TestCardError::StateDir)?;
    let applet = issue(&journey_profile(), dir.path(), not_before)?;
    applet.save().map_err(TestCardError::Save)
}

/// A fresh card (new memory store) holding `state`, powered off.
pub fn card_with(state: &AppletState) -> Result<Card, CardError> {
    card_with_rng(state, CardRng::from_os().map_err(CardError::Rng)?)
}

/// As [`card_with`], with a given random generator.
pub fn card_with_rng(state: &AppletState, rng: CardRng) -> Result<Card, CardError> {
    let applet = PivApplet::from_saved(state).map_err(|source| CardError::State {
        aid: vscard_applet::PIV_AID,
        source,
    })?;
    let mut builder = Card::builder()
        .atr(atr_for(applet.state().settings().model))
        .rng(rng);
    // As `vscard serve` builds it: the Management application beside PIV
    // on the YubiKey models.
    if let Some(management) = ManagementApplet::for_card(applet.state()) {
        builder = builder.install(management);
    }
    builder.install_default(applet).build()
}

/// 2026-01-01T00:00:00Z.
const GOLDEN_EPOCH: u64 = 1_767_225_600;

/// The journey card as issued on 2026-01-01 00:00:00 UTC: byte for byte the
/// same on every run (seeded keys and serials, deterministic signatures),
/// for golden transcripts.
pub fn golden_state() -> Result<AppletState, TestCardError> {
    issued_state(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(GOLDEN_EPOCH))
}

/// The golden card with its fixed random generator.
pub fn golden_card() -> Result<Card, TestCardError> {
    Ok(card_with_rng(&golden_state()?, CardRng::from_u64(0x601D))?)
}
