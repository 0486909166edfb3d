//! The revocation files of an environment's PKI folder:
//!
//! ```text
//! <state_dir>/pki/<environment>/
//!     index.json          every certificate issued, and its status (0600)
//!     index.lock          taken (flock) by whoever changes index.json
//!     revocation.json     the CRL and OCSP URLs, when not the defaults
//!     crl.pem             the last CRL made
//!     ocsp.key.pem        the delegated OCSP responder's key (0600)
//!     ocsp.cert.pem       its certificate, from the Sub CA
//! ```
//!
//! `index.json` is replaced whole (temporary file, fsync, rename), so a
//! reader (the OCSP responder) needs no lock; writers serialise on
//! `index.lock`, so two `vscard issue` runs never lose each other's
//! certificates and CRL numbers never repeat.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use der::{DecodePem, EncodePem};
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

use super::crl::build_crl;
use super::index::{CertificateIndex, INDEX_FORMAT, INDEX_VERSION};
use super::ocsp::OcspResponder;
use super::settings::{RevocationUrls, check_url};
use crate::extensions::{CertificateKind, IssuanceProfile};
use crate::pki_store::{read_text, write_atomically};
use crate::{CertificateValidity, IssuanceError, KeyEncodingError, Pki, PkiError, random_serial};
use vscard_applet::Slot;

/// The certificate index.
pub const INDEX_FILE: &str = "index.json";
/// The lock writers of the index take.
pub const INDEX_LOCK_FILE: &str = "index.lock";
/// The environment's revocation URLs.
pub const URLS_FILE: &str = "revocation.json";
/// The last CRL, in the PKI folder and in `export-ca`'s.
pub const CRL_FILE: &str = "crl.pem";
/// The OCSP responder's key.
pub const RESPONDER_KEY_FILE: &str = "ocsp.key.pem";
/// The OCSP responder's certificate.
pub const RESPONDER_CERT_FILE: &str = "ocsp.cert.pem";

/// How long a responder certificate lasts (at most until the Sub CA
/// ends); a new one is made when less than a day is left.
const RESPONDER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn damaged(path: &Path, reason: String) -> PkiError {
    PkiError::Damaged {
        path: path.to_owned(),
        reason,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The URLs in `<directory>/revocation.json`, or the defaults.
pub(crate) fn load_urls(directory: &Path) -> Result<RevocationUrls, PkiError> {
    let path = directory.join(URLS_FILE);
    if !path.try_exists().map_err(io(&path))? {
        return Ok(RevocationUrls::default());
    }
    let urls: RevocationUrls = serde_json::from_str(&read_text(&path)?)
        .map_err(|error| damaged(&path, format!("does not parse: {error}")))?;
    for url in [&urls.crl_url, &urls.ocsp_url] {
        check_url(url).map_err(|reason| damaged(&path, reason))?;
    }
    Ok(urls)
}

impl Pki {
    /// The CRL and OCSP URLs the environment's card certificates carry.
    pub fn revocation_urls(&self) -> Result<RevocationUrls, PkiError> {
        load_urls(self.directory())
    }

    /// Sets the URLs for certificates issued from now on (those issued
    /// before keep theirs). Each must pass [`check_url`].
    pub fn set_revocation_urls(&self, urls: &RevocationUrls) -> Result<(), PkiError> {
        let path = self.directory().join(URLS_FILE);
        for url in [&urls.crl_url, &urls.ocsp_url] {
            check_url(url).map_err(|reason| PkiError::Import {
                path: path.clone(),
                reason,
            })?;
        }
        let text = serde_json::to_string_pretty(urls)
            .map_err(|error| damaged(&path, error.to_string()))?;
        write_atomically(&path, format!("{text}\n").as_bytes(), 0o600)
    }

    /// The certificate index (empty before the first certificate).
    pub fn index(&self) -> Result<CertificateIndex, PkiError> {
        read_index(&self.directory().join(INDEX_FILE))
    }

    /// Changes the index under its lock: reads it, lets `change` edit it,
    /// and writes it back (only when `change` succeeds).
    pub fn update_index<T>(
        &self,
        change: impl FnOnce(&mut CertificateIndex) -> Result<T, PkiError>,
    ) -> Result<T, PkiError> {
        let _lock = lock(&self.directory().join(INDEX_LOCK_FILE))?;
        let path = self.directory().join(INDEX_FILE);
        let mut index = read_index(&path)?;
        let result = change(&mut index)?;
        let text = serde_json::to_string_pretty(&index)
            .map_err(|error| damaged(&path, error.to_string()))?;
        write_atomically(&path, format!("{text}\n").as_bytes(), 0o600)?;
        Ok(result)
    }

    /// Records certificates issued into the card image `card`.
    pub fn record_issued<'a>(
        &self,
        card: &Path,
        certificates: impl IntoIterator<Item = (Slot, &'a Certificate)>,
    ) -> Result<(), PkiError> {
        let card = std::path::absolute(card).unwrap_or_else(|_| card.to_owned());
        self.update_index(|index| {
            for (slot, certificate) in certificates {
                index.record(certificate, slot, &card)?;
            }
            Ok(())
        })
    }

    /// Makes the next CRL (a new number, current from `now`) and writes
    /// it to `<pki>/crl.pem`.
    pub fn make_crl(&self, now: SystemTime) -> Result<CertificateList, PkiError> {
        let crl = self.update_index(|index| {
            index.crl_number = index.crl_number.saturating_add(1);
            Ok(build_crl(self.sub(), index, index.crl_number, now)?)
        })?;
        self.write_crl(&self.directory().join(CRL_FILE), &crl, 0o600)?;
        Ok(crl)
    }

    /// Writes `crl` as PEM to `path` with `mode`.
    pub fn write_crl(&self, path: &Path, crl: &CertificateList, mode: u32) -> Result<(), PkiError> {
        let pem = crl
            .to_pem(LineEnding::LF)
            .map_err(|error| PkiError::Issuance(error.into()))?;
        write_atomically(path, pem.as_bytes(), mode)
    }

    /// The last CRL made, if any.
    pub fn last_crl(&self) -> Result<Option<CertificateList>, PkiError> {
        let path = self.directory().join(CRL_FILE);
        if !path.try_exists().map_err(io(&path))? {
            return Ok(None);
        }
        CertificateList::from_pem(read_text(&path)?.as_bytes())
            .map(Some)
            .map_err(|error| damaged(&path, format!("CRL does not parse: {error}")))
    }

    /// The environment's delegated OCSP responder, its certificate made
    /// (or made again) when missing or ending within a day of `now`.
    pub fn ocsp_responder(&self, now: SystemTime) -> Result<OcspResponder, PkiError> {
        let _lock = lock(&self.directory().join(INDEX_LOCK_FILE))?;
        let key_path = self.directory().join(RESPONDER_KEY_FILE);
        let cert_path = self.directory().join(RESPONDER_CERT_FILE);
        if let Some((certificate, key)) = self.load_responder(&cert_path, &key_path)? {
            let ends = certificate
                .tbs_certificate()
                .validity()
                .not_after
                .to_system_time();
            if ends > now + DAY {
                return Ok(OcspResponder::new(
                    self.sub().certificate(),
                    certificate,
                    key,
                )?);
            }
        }
        let mut rng = vscard_emulator::CardRng::from_os().map_err(|source| PkiError::Io {
            path: key_path.clone(),
            source: std::io::Error::other(source.to_string()),
        })?;
        let key = SigningKey::generate_from_rng(&mut rng);
        let sub_end = self
            .sub()
            .certificate()
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time();
        let validity = CertificateValidity::new(now, (now + RESPONDER_LIFETIME).min(sub_end))?;
        let subject = Name::from_str(&format!(
            "CN=vscard TEST OCSP Responder ({}),OU={},O=vscard test PKI",
            self.environment(),
            self.environment()
        ))
        .map_err(IssuanceError::from)?;
        let profile = IssuanceProfile {
            kind: CertificateKind::OcspResponder,
            subject,
            issuer: self.sub().certificate().tbs_certificate().subject().clone(),
            revocation: None,
            windows_logon_upn: None,
        };
        let public_key = crate::authority::public_key_info(&key)?;
        let certificate =
            self.sub()
                .sign(profile, random_serial(&mut rng)?, validity, public_key)?;
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|source| {
            PkiError::Issuance(IssuanceError::KeyEncoding {
                algorithm: vscard_applet::Algorithm::EccP256,
                source: KeyEncodingError::PrivateKey(source),
            })
        })?;
        write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
        let cert_pem = certificate
            .to_pem(LineEnding::LF)
            .map_err(IssuanceError::from)?;
        write_atomically(&cert_path, cert_pem.as_bytes(), 0o600)?;
        Ok(OcspResponder::new(
            self.sub().certificate(),
            certificate,
            key,
        )?)
    }

    fn load_responder(
        &self,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Option<(Certificate, SigningKey)>, PkiError> {
        if !cert_path.try_exists().map_err(io(cert_path))?
            || !key_path.try_exists().map_err(io(key_path))?
        {
            return Ok(None);
        }
        let certificate = Certificate::from_pem(read_text(cert_path)?.as_bytes())
            .map_err(|error| damaged(cert_path, format!("certificate does not parse: {error}")))?;
        let key_text = zeroize::Zeroizing::new(read_text(key_path)?);
        let key = SigningKey::from_pkcs8_pem(&key_text)
            .map_err(|error| damaged(key_path, format!("key does not parse: {error}")))?;
        Ok(Some((certificate, key)))
    }
}

fn read_index(path: &Path) -> Result<CertificateIndex, PkiError> {
    if !path.try_exists().map_err(io(path))? {
        return Ok(CertificateIndex::default());
    }
    let index: CertificateIndex = serde_json::from_str(&read_text(path)?)
        .map_err(|error| damaged(path, format!("certificate index does not parse: {error}")))?;
    if index.format != INDEX_FORMAT || index.version != INDEX_VERSION {
        return Err(damaged(
            path,
            format!(
                "not a version {INDEX_VERSION} certificate index (format {:?}, version {})",
                index.format, index.version
            ),
        ));
    }
    Ok(index)
}

/// An exclusive lock on `path` (created 0600), released on drop.
fn lock(path: &Path) -> Result<File, PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(io(path))?;
    file.lock().map_err(io(path))?;
    Ok(file)
}
