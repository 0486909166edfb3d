//! Card image files holding a PIV application: read, create, renew, and
//! open for serving.
//!
//! Every file goes through the emulator's `FileStore`: images are replaced
//! whole (temporary file, fsync, rename), and whoever changes one (issue,
//! renew, serve) holds its `<image>.lock` first, so a card that is being
//! served is never replaced or renewed under the server's feet. Issue and
//! renew hold it only while they write, and remove the lock file they
//! made when done (`FileStore::open_briefly`): nothing but the card file
//! is left in the folder. Serving keeps it while the card is served.
//! Reading (`inspect`) takes no lock.

use std::path::{Path, PathBuf};

use std::time::SystemTime;

use crate::revocation::{CertificateStatus, RevocationReason, serial_hex};
use crate::{
    CARD_SLOTS, CardSummary, CertificateValidity, Pki, certificate, renew_applet, summarize,
    verify_issued_by,
};
use vscard_applet::{ManagementApplet, PIV_AID, PivApplet, PivState, atr_for};
use vscard_emulator::rand_core::CryptoRng;
use vscard_emulator::seal::SealKey;
use vscard_emulator::{Applet, Card, CardImage, FileStore, Store};

use super::error::{CardFileError, io_error};
use super::revoke::{card_certificates, pki_of_card};

/// The key of the PIV application's state in a card image.
fn piv_key() -> String {
    PIV_AID.to_hex()
}

/// The PIV application of the card image at `path`, read without taking
/// the lock (the image is only ever replaced whole).
pub fn read_applet(path: &Path) -> Result<PivApplet, CardFileError> {
    read_applet_with(path, None)
}

/// As [`read_applet`], for an image sealed under `key` (`None`: plain).
pub fn read_applet_with(path: &Path, key: Option<&SealKey>) -> Result<PivApplet, CardFileError> {
    let image = FileStore::read_with(path, key)?.ok_or_else(|| CardFileError::Missing {
        path: path.to_owned(),
    })?;
    applet_from_image(path, &image)
}

fn applet_from_image(path: &Path, image: &CardImage) -> Result<PivApplet, CardFileError> {
    let state = image
        .applet(&piv_key())
        .ok_or_else(|| CardFileError::NotPiv {
            path: path.to_owned(),
        })?;
    PivApplet::from_saved(state).map_err(|source| CardFileError::State {
        path: path.to_owned(),
        source,
    })
}

/// A card image about to be written: its lock is held, and it either does
/// not exist or may be replaced.
#[derive(Debug)]
pub struct NewCardFile {
    store: FileStore,
}

impl NewCardFile {
    /// Claims `path` for a new card: creates its folder, takes its lock
    /// (refused while the card is served) and, unless `force`, refuses an
    /// existing image. Call it before the slow key generation.
    pub fn claim(path: &Path, force: bool) -> Result<NewCardFile, CardFileError> {
        NewCardFile::claim_with(path, force, None)
    }

    /// As [`NewCardFile::claim`], the image to be sealed under `key`
    /// (`None`: plain), with the holder's user ID as its card identity.
    pub fn claim_with(
        path: &Path,
        force: bool,
        key: Option<&SealKey>,
    ) -> Result<NewCardFile, CardFileError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let store = FileStore::open_briefly(path)?.with_key(key.cloned());
        let exists = path.try_exists().map_err(io_error(path))?;
        if exists && !force {
            return Err(CardFileError::Exists {
                path: path.to_owned(),
            });
        }
        Ok(NewCardFile { store })
    }

    /// Writes the image: `applet` as the card's only application. An image
    /// that was there is replaced whole, never merged, and its journal
    /// removed (its old state must not leak into the new card); the same
    /// card gives the same bytes (seeded cards are reproducible).
    pub fn write(mut self, applet: &PivApplet) -> Result<PathBuf, CardFileError> {
        let mut image = CardImage::new();
        image.set_applet(
            &piv_key(),
            applet.save().map_err(|source| self.state(source))?,
        );
        if self.store.is_sealed()
            && let Ok(summary) = summarize(applet.state())
        {
            self.store.set_identity(summary.uuid.into_bytes());
        }
        self.store.replace(&image)?;
        Ok(self.store.path().to_owned())
    }

    fn state(&self, source: vscard_emulator::StateError) -> CardFileError {
        CardFileError::State {
            path: self.store.path().to_owned(),
            source,
        }
    }
}

/// Renews the certificates of the card at `path` for `validity` (with
/// `new_keys`, new keys too) from its environment's PKI under `state_dir`,
/// keeping the PIN and unlock-code counters; returns the new summary.
/// Unless `new_ca`, every certificate on the card must have been signed by
/// that PKI's Sub CA ([`CardFileError::DifferentCa`]): a state directory
/// with another PKI of the same environment name must not silently move
/// the card to a CA its relying parties do not trust.
///
/// The environment's certificate index records the new certificates;
/// with `revoke_old`, the ones they replace are revoked as `superseded`
/// (and a new CRL made), unless `new_ca` (they are another CA's). A card
/// with a revoked certificate is refused ([`CardFileError::Revoked`]),
/// except one revoked as superseded, and one revoked for keyCompromise
/// when `new_keys` replaces the key.
#[allow(clippy::too_many_arguments)]
pub fn renew_card_file<R: CryptoRng + ?Sized>(
    path: &Path,
    state_dir: &Path,
    validity: CertificateValidity,
    new_keys: bool,
    new_ca: bool,
    revoke_old: bool,
    rng: &mut R,
) -> Result<CardSummary, CardFileError> {
    renew_card_file_with(
        path, state_dir, validity, new_keys, new_ca, revoke_old, rng, None,
    )
}

/// As [`renew_card_file`], for an image sealed under `key` (`None`:
/// plain); the renewed image is sealed under the same key.
#[allow(clippy::too_many_arguments)]
pub fn renew_card_file_with<R: CryptoRng + ?Sized>(
    path: &Path,
    state_dir: &Path,
    validity: CertificateValidity,
    new_keys: bool,
    new_ca: bool,
    revoke_old: bool,
    rng: &mut R,
    key: Option<&SealKey>,
) -> Result<CardSummary, CardFileError> {
    let mut store = lock_existing(path, Hold::WhileWriting)?.with_key(key.cloned());
    let mut image = store.load()?.ok_or_else(|| CardFileError::Missing {
        path: path.to_owned(),
    })?;
    let mut applet = applet_from_image(path, &image)?;
    let pki = pki_of_card(applet.state(), state_dir)?;
    let old = card_certificates(applet.state(), None)?;
    if !new_ca {
        check_issued_by(path, applet.state(), &pki, state_dir)?;
        refuse_revoked(path, &pki, &old, new_keys)?;
    }
    renew_applet(&mut applet, pki.sub(), validity, new_keys, rng)?;
    let state = applet.save().map_err(|source| CardFileError::State {
        path: path.to_owned(),
        source,
    })?;
    image.set_applet(&piv_key(), state);
    store.commit(&image)?;
    let new = card_certificates(applet.state(), None)?;
    let card = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let now = SystemTime::now();
    let revoke_old = revoke_old && !new_ca;
    pki.update_index(|index| {
        for (slot, certificate) in old.iter().filter(|_| !new_ca).chain(&new) {
            index.record(certificate, *slot, &card)?;
        }
        if revoke_old {
            for (_, certificate) in &old {
                index.revoke(&serial_hex(certificate), now, RevocationReason::Superseded)?;
            }
        }
        Ok(())
    })?;
    if revoke_old {
        pki.make_crl(now)?;
    }
    Ok(summarize(applet.state())?)
}

/// [`CardFileError::Revoked`] for the first certificate of `old` that is
/// revoked for a reason renewal cannot mend.
fn refuse_revoked(
    path: &Path,
    pki: &Pki,
    old: &[(vscard_applet::Slot, x509_cert::Certificate)],
    new_keys: bool,
) -> Result<(), CardFileError> {
    let index = pki.index()?;
    for (slot, certificate) in old {
        let Some(entry) = index.find(&serial_hex(certificate)) else {
            continue;
        };
        if let CertificateStatus::Revoked { revoked_at, reason } = &entry.status {
            let mended = *reason == RevocationReason::Superseded
                || (*reason == RevocationReason::KeyCompromise && new_keys);
            if !mended {
                return Err(CardFileError::Revoked {
                    path: path.to_owned(),
                    slot: slot.to_string(),
                    reason: *reason,
                    revoked_at: revoked_at.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Checks that `pki`'s Sub CA signed each certificate on the card (the
/// signature, not only the issuer name: CAs made before issue 18 have the
/// same name in every install). Validity is not checked: renewing an
/// expired card is the point.
fn check_issued_by(
    path: &Path,
    state: &PivState,
    pki: &Pki,
    state_dir: &Path,
) -> Result<(), CardFileError> {
    for slot in CARD_SLOTS {
        let Some(previous) = certificate(state, slot)? else {
            continue;
        };
        if verify_issued_by(&previous, pki.sub().certificate()).is_err() {
            return Err(CardFileError::DifferentCa {
                path: path.to_owned(),
                pki: pki.id()?,
                state_dir: state_dir.to_owned(),
            });
        }
    }
    Ok(())
}

/// The card at `path`, ready to serve, with its summary when it has one
/// (any PIV image is served, issued by vscard or not): its lock held for
/// the card's lifetime, so a second server of the same image is refused.
/// A missing file is an error: serving never creates a card.
pub fn open_card(path: &Path) -> Result<(Card, Option<CardSummary>), CardFileError> {
    open_card_with(path, None, None)
}

/// As [`open_card`], for an image sealed under `key` (`None`: plain;
/// every commit while served is sealed under the same key), with
/// `custody` attached to the applet (for keys the image keeps in an
/// external custody). Before the card starts, the keys the custody holds
/// for this card that the image does not refer to (a GENERATE cut short)
/// are reported ([`PivApplet::reconcile_custody`]); a custody that cannot
/// be reached is logged, and the card served.
pub fn open_card_with(
    path: &Path,
    key: Option<&SealKey>,
    custody: Option<std::sync::Arc<dyn vscard_applet::KeyCustody>>,
) -> Result<(Card, Option<CardSummary>), CardFileError> {
    let store = lock_existing(path, Hold::WhileServed)?.with_key(key.cloned());
    let image = FileStore::read_with(path, key)?.ok_or_else(|| CardFileError::Missing {
        path: path.to_owned(),
    })?;
    // Load once here for a clear error and the summary; the card loads the
    // same image again from the store it now owns.
    let mut saved = applet_from_image(path, &image)?;
    let summary = summarize(saved.state()).ok();
    let mut applet = PivApplet::with_defaults();
    if let Some(custody) = custody {
        saved = saved.with_custody(std::sync::Arc::clone(&custody));
        if let Err(error) = saved.reconcile_custody() {
            tracing::warn!(target: "vscard::piv", card = %path.display(), %error,
                "cannot check the key custody for keys the card does not use");
        }
        applet = applet.with_custody(custody);
    }
    let mut builder = Card::builder()
        .atr(atr_for(saved.state().settings().model))
        .store(store)
        .install_default(applet);
    // The YubiKey models have the Management application beside PIV; it
    // keeps no state, so the image stays as it is.
    if let Some(management) = ManagementApplet::for_card(saved.state()) {
        builder = builder.install(management);
    }
    let card = builder.build()?;
    Ok((card, summary))
}

/// How long a card's lock file stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Renewing: removed once the image is written.
    WhileWriting,
    /// Serving: kept while the card is served (its removal stops the card).
    WhileServed,
}

/// The store of an image that must exist, its lock taken. Checked first
/// so that a mistyped path leaves no lock file behind.
fn lock_existing(path: &Path, hold: Hold) -> Result<FileStore, CardFileError> {
    if !path.try_exists().map_err(io_error(path))? {
        return Err(CardFileError::Missing {
            path: path.to_owned(),
        });
    }
    Ok(match hold {
        Hold::WhileWriting => FileStore::open_briefly(path)?,
        Hold::WhileServed => FileStore::open(path)?,
    })
}
