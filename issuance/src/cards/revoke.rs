//! `vscard revoke`: a card's certificates marked revoked in its
//! environment's index, and the CRL made again.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use x509_cert::Certificate;

use super::error::CardFileError;
use super::image::read_applet_with;
use crate::revocation::{Revocation, RevocationReason, serial_hex};
use crate::{
    CARD_SLOTS, Pki, certificate, environment_of, pki_store::pki_directory, verify_issued_by,
};
use vscard_applet::{PivState, Slot};

/// One certificate `revoke` looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// The slot.
    pub slot: Slot,
    /// Its serial, upper-case hex.
    pub serial: String,
    /// Newly revoked, or revoked before (then that reason stands).
    pub outcome: Revocation,
}

/// The certificates on the card, with their slots (all of them, or the
/// one of `only`).
pub(crate) fn card_certificates(
    state: &PivState,
    only: Option<Slot>,
) -> Result<Vec<(Slot, Certificate)>, CardFileError> {
    let mut found = Vec::new();
    for slot in CARD_SLOTS {
        if only.is_some_and(|wanted| wanted != slot) {
            continue;
        }
        if let Some(certificate) = certificate(state, slot)? {
            found.push((slot, certificate));
        }
    }
    Ok(found)
}

/// The environment's PKI of the card at `path`, which must exist under
/// `state_dir`.
pub(crate) fn pki_of_card(state: &PivState, state_dir: &Path) -> Result<Pki, CardFileError> {
    let environment = environment_of(state)?;
    if !pki_directory(state_dir, &environment).exists() {
        return Err(CardFileError::NoPki {
            environment: environment.name().to_owned(),
            state_dir: state_dir.to_owned(),
        });
    }
    Ok(Pki::open(state_dir, &environment)?)
}

/// Revokes the certificates of the card at `path` (or only its `slot`'s)
/// at `now` for `reason`, in the index of its environment's PKI under
/// `state_dir`, and writes a new CRL there (`<pki>/crl.pem`). Certificates
/// issued before the index existed are recorded first. Every certificate
/// must have been signed by that PKI's Sub CA; a slot without a
/// certificate is bad input. Returns the PKI and what was done per slot.
pub fn revoke_card_file(
    path: &Path,
    state_dir: &Path,
    slot: Option<Slot>,
    reason: RevocationReason,
    now: SystemTime,
) -> Result<(Pki, Vec<RevokedCertificate>), CardFileError> {
    revoke_card_file_with(path, state_dir, slot, reason, now, None)
}

/// As [`revoke_card_file`], for a card image sealed under `key` (`None`:
/// plain).
pub fn revoke_card_file_with(
    path: &Path,
    state_dir: &Path,
    slot: Option<Slot>,
    reason: RevocationReason,
    now: SystemTime,
    key: Option<&vscard_emulator::seal::SealKey>,
) -> Result<(Pki, Vec<RevokedCertificate>), CardFileError> {
    let applet = read_applet_with(path, key)?;
    let certificates = card_certificates(applet.state(), slot)?;
    if certificates.is_empty() {
        return Err(CardFileError::BadValue {
            option: "--slot",
            reason: match slot {
                Some(slot) => format!("the card has no certificate in slot {slot}"),
                None => "the card has no certificates".to_owned(),
            },
        });
    }
    let pki = pki_of_card(applet.state(), state_dir)?;
    for (_, certificate) in &certificates {
        if verify_issued_by(certificate, pki.sub().certificate()).is_err() {
            return Err(CardFileError::RevokeOtherCa {
                path: path.to_owned(),
                pki: pki.id()?,
                state_dir: state_dir.to_owned(),
            });
        }
    }
    let card: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let done = pki.update_index(|index| {
        let mut done = Vec::with_capacity(certificates.len());
        for (slot, certificate) in &certificates {
            index.record(certificate, *slot, &card)?;
            let serial = serial_hex(certificate);
            let outcome = index
                .revoke(&serial, now, reason)?
                .unwrap_or(Revocation::Revoked);
            done.push(RevokedCertificate {
                slot: *slot,
                serial,
                outcome,
            });
        }
        Ok(done)
    })?;
    pki.make_crl(now)?;
    Ok((pki, done))
}
