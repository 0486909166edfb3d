//! Cards issued in known states (`vscard issue --state`), so that a test
//! of "the user's card is blocked" starts from one command.
//!
//! Contract: the PIN and unlock-code states are reached through the card's
//! own commands, as a user would reach them: wrong VERIFYs (SP 800-73-4
//! Part 2 3.2.1) spend PIN tries and wrong RESET RETRY COUNTERs (3.2.3)
//! spend unlock-code tries, so the counters, their stored form and the
//! card's answers afterwards (`63Cx`, `6983`) are the card's and not a
//! copy of them. The certificate states (`expired`, `not-yet-valid`) are
//! validity windows, applied when the certificates are made
//! ([`KnownState::validity`]). `management-key-locked` gives the card a
//! random AES-256 management key that is never written anywhere but the
//! card (PIV has no management-key try counter, SP 800-73-4 Part 2
//! 3.2.4: "locked" means nobody can authenticate as the issuer, so PUT
//! DATA, GENERATE ASYMMETRIC KEY PAIR and the other administrative
//! commands answer `6982`). With `--seed` the key comes from the seeded
//! generator, like every other key, so the card is reproducible.

use std::time::{Duration, SystemTime};

use rand_core::CryptoRng;
use vscard_applet::{Algorithm, ManagementKey, PIV_AID, PivApplet, piv_atr};
use vscard_emulator::{Card, CardRng};

use super::error::CardFileError;
use crate::{CardProfile, CertificateValidity};

/// The option the states come from, in error messages.
const OPTION: &str = "--state";

/// One day, the margin that keeps an `expired` or `not-yet-valid` card in
/// that state for a whole day after issuance.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Days an `expiring-soon` card's certificates have left at issuance:
/// half the default renewal window, so the card is due for renewal and
/// stays so for a month.
pub const EXPIRING_SOON_DAYS: u32 = crate::DEFAULT_RENEWAL_WINDOW_DAYS / 2;

/// A state a card is issued in (`vscard issue --state NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownState {
    /// `pin-blocked`: no PIN tries left (VERIFY answers `6983`).
    PinBlocked,
    /// `puk-blocked`: no unlock-code tries left (RESET RETRY COUNTER
    /// answers `6983`).
    PukBlocked,
    /// `pin-tries=N`: N PIN tries left (VERIFY answers `63CN`).
    PinTries(u8),
    /// `expired`: every certificate ended a day before issuance.
    Expired,
    /// `not-yet-valid`: every certificate starts a day after issuance.
    NotYetValid,
    /// `expiring-soon`: every certificate ends [`EXPIRING_SOON_DAYS`]
    /// days after issuance, inside the default renewal window.
    ExpiringSoon,
    /// `management-key-locked`: a random management key nobody knows.
    ManagementKeyLocked,
}

impl KnownState {
    /// Parses a `--state` value: the names exactly as the CLI documents
    /// them.
    pub fn parse(text: &str) -> Result<KnownState, CardFileError> {
        Ok(match text {
            "pin-blocked" => KnownState::PinBlocked,
            "puk-blocked" => KnownState::PukBlocked,
            "expired" => KnownState::Expired,
            "not-yet-valid" => KnownState::NotYetValid,
            "expiring-soon" => KnownState::ExpiringSoon,
            "management-key-locked" => KnownState::ManagementKeyLocked,
            _ => match text.strip_prefix("pin-tries=") {
                Some(count) => KnownState::PinTries(count.parse().map_err(|_| {
                    bad(format!("pin-tries wants a number of tries, got {count:?}"))
                })?),
                None => {
                    return Err(bad(format!(
                        "unknown state {text:?}; expected pin-blocked, puk-blocked, pin-tries=N, \
                         expired, not-yet-valid, expiring-soon or management-key-locked"
                    )));
                }
            },
        })
    }

    /// The certificates' validity the states ask for, if any: `expired`
    /// ends a day before `now` (starting the profile's years before
    /// that), `expiring-soon` ends [`EXPIRING_SOON_DAYS`] after `now`
    /// (starting the profile's years before that), `not-yet-valid` starts
    /// a day after `now`. Two at once, or any with an explicit window
    /// (`explicit`), is refused.
    pub fn validity(
        states: &[KnownState],
        profile: &CardProfile,
        now: SystemTime,
        explicit: bool,
    ) -> Result<Option<CertificateValidity>, CardFileError> {
        let expired = states.contains(&KnownState::Expired);
        let not_yet = states.contains(&KnownState::NotYetValid);
        let soon = states.contains(&KnownState::ExpiringSoon);
        let count = [expired, not_yet, soon].iter().filter(|set| **set).count();
        if count == 0 {
            return Ok(None);
        }
        if count > 1 {
            return Err(bad(
                "expired, not-yet-valid and expiring-soon exclude each other".into(),
            ));
        }
        if explicit {
            return Err(bad(
                "expired, not-yet-valid and expiring-soon set the validity; drop --not-before and --not-after"
                    .into(),
            ));
        }
        let window = if expired || soon {
            let end = if soon {
                now.checked_add(DAY * EXPIRING_SOON_DAYS)
                    .ok_or_else(too_early)?
            } else {
                now.checked_sub(DAY).ok_or_else(too_early)?
            };
            let years = u64::from(profile.certificate_validity_years.max(1));
            let start = end
                .checked_sub(Duration::from_secs(years * 365 * DAY.as_secs()))
                .ok_or_else(too_early)?;
            CertificateValidity::new(start, end)?
        } else {
            let start = now.checked_add(DAY).ok_or_else(too_early)?;
            CertificateValidity::for_profile(profile, start)?
        };
        Ok(Some(window))
    }
}

/// Puts `applet` in the PIN, unlock-code and management-key states of
/// `states` (see the module doc); the certificate states are not its
/// business. `rng` draws a locked card's management key.
pub fn apply_states<R: CryptoRng + ?Sized>(
    applet: PivApplet,
    states: &[KnownState],
    rng: &mut R,
) -> Result<PivApplet, CardFileError> {
    let pin_states: Vec<&KnownState> = states
        .iter()
        .filter(|s| matches!(s, KnownState::PinBlocked | KnownState::PinTries(_)))
        .collect();
    let pin_tries = match pin_states.as_slice() {
        [] => None,
        [KnownState::PinTries(tries)] => Some(*tries),
        [_] => Some(0),
        _ => return Err(bad("give one PIN state: pin-blocked or pin-tries=N".into())),
    };
    let rules = applet.state().settings().rules;
    if let Some(tries) = pin_tries
        && tries > rules.pin_tries
    {
        return Err(bad(format!(
            "pin-tries={tries}: the card allows at most {} PIN tries",
            rules.pin_tries
        )));
    }
    let puk_blocked = states.contains(&KnownState::PukBlocked);
    let mut applet = if pin_tries.is_some() || puk_blocked {
        let wrong_pins = pin_tries.map_or(0, |tries| rules.pin_tries - tries);
        let wrong_puks = if puk_blocked { rules.puk_tries } else { 0 };
        spend_tries(applet, wrong_pins, wrong_puks)?
    } else {
        applet
    };
    if states.contains(&KnownState::ManagementKeyLocked) {
        let mut value = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(value.as_mut_slice());
        let key = ManagementKey::new(Algorithm::Aes256, value.as_slice())
            .map_err(|error| bad(format!("cannot make a management key: {error}")))?;
        applet.state_mut().set_management_key(key);
    }
    Ok(applet)
}

/// `applet` after `wrong_pins` wrong VERIFYs and `wrong_puks` wrong
/// RESET RETRY COUNTERs on a card of its own, checking each answer.
fn spend_tries(
    applet: PivApplet,
    wrong_pins: u8,
    wrong_puks: u8,
) -> Result<PivApplet, CardFileError> {
    // The commands use no randomness; a fixed generator keeps issuance
    // free of the system's.
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(0))
        .install_default(applet)
        .build()?;
    card.power_on();
    // All FF is never a PIN or PUK: PIN rules refuse FF in a value
    // (the padding byte, SP 800-73-4 Part 2 2.4.3) and a value has at
    // least one byte, so every try is a wrong one.
    let wrong = [0xFF; 8];
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(&wrong);
    // RESET RETRY COUNTER: PUK then new PIN (3.2.3); the new PIN is not
    // looked at when the PUK is wrong.
    let mut reset = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    reset.extend_from_slice(&wrong);
    reset.extend_from_slice(&wrong);
    for (command, count, what) in [
        (&verify, wrong_pins, "VERIFY"),
        (&reset, wrong_puks, "RESET RETRY COUNTER"),
    ] {
        for _ in 0..count {
            let answer = card.transmit(command)?;
            let status = answer
                .get(answer.len().saturating_sub(2)..)
                .unwrap_or_default();
            let spent =
                matches!(status, [0x63, sw2] if sw2 & 0xF0 == 0xC0) || status == [0x69, 0x83];
            if !spent {
                return Err(bad(format!(
                    "{what} answered {status:02X?} instead of spending a try"
                )));
            }
        }
    }
    let state = card
        .image()
        .applet(&PIV_AID.to_hex())
        .ok_or_else(|| bad("the card lost its PIV application".into()))?;
    PivApplet::from_saved(state)
        .map_err(|error| bad(format!("the card's state does not load back: {error}")))
}

fn bad(reason: String) -> CardFileError {
    CardFileError::BadValue {
        option: OPTION,
        reason,
    }
}

fn too_early() -> CardFileError {
    bad("the clock is too close to 1970 for this state".into())
}
