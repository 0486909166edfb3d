//! The test PKI on disk: the only module of issuance that touches files or
//! reads the clock and the process environment.
//!
//! Layout under the state directory:
//!
//! ```text
//! <state_dir>/pki/<environment>/      mode 0700
//!     root-ca.key.pem                 PKCS #8 PEM, P-256, mode 0600
//!     root-ca.cert.pem                PEM certificate, mode 0600
//!     sub-ca.key.pem                  PKCS #8 PEM, P-256, mode 0600
//!     sub-ca.cert.pem                 PEM certificate, mode 0600
//!     attestation-ca.key.pem          PKCS #8 PEM, P-256, mode 0600
//!     attestation-ca.cert.pem         PEM certificate, mode 0600
//!     index.json, crl.pem, ...        revocation (see crate::revocation::store)
//! ```
//!
//! The attestation CA is made at first use ([`Pki::attestation_ca`]) from
//! the Root CA key alone (see [`attestation_rng`]): every PKI, seeded,
//! imported or created before attestation existed, has the same one on
//! every machine, and two processes making it at once write the same
//! bytes.
//!
//! A new environment is written into a private staging folder (each file
//! created exclusively, written and fsynced), which is then renamed into
//! place and its parent fsynced: another process sees either no PKI or a
//! complete one. When two processes race, the first rename wins and the
//! loser opens the winner's PKI. A folder that exists but is incomplete or
//! does not parse is reported as damaged and never overwritten.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use der::{DecodePem, EncodePem};
use p256::ecdsa::SigningKey;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::CryptoRng;
use thiserror::Error;
use x509_cert::Certificate;

use sha2::{Digest, Sha256};
use vscard_emulator::CardRng;
use zeroize::Zeroize;

use super::authority::{
    Authorities, CertificateAuthority, Naming, SUB_CA_YEARS, create_attestation_ca,
    create_authorities, create_sub_ca,
};
use super::chain::verify_issued_by;
use super::error::{IssuanceError, KeyEncodingError};
use super::profile::Environment;
use super::revocation::store::{CRL_FILE, load_urls};
use super::secret::SecretString;
use super::validity::CertificateValidity;

/// File name of the Root CA key.
pub const ROOT_KEY_FILE: &str = "root-ca.key.pem";
/// File name of the Root CA certificate.
pub const ROOT_CERT_FILE: &str = "root-ca.cert.pem";
/// File name of the Sub CA key.
pub const SUB_KEY_FILE: &str = "sub-ca.key.pem";
/// File name of the Sub CA certificate.
pub const SUB_CERT_FILE: &str = "sub-ca.cert.pem";
/// File name of the attestation CA key.
pub const ATTESTATION_KEY_FILE: &str = "attestation-ca.key.pem";
/// File name of the attestation CA certificate.
pub const ATTESTATION_CERT_FILE: &str = "attestation-ca.cert.pem";
/// Exported attestation CA certificate.
pub const EXPORT_ATTESTATION_FILE: &str = "attestation-ca.pem";
/// Exported Root CA certificate.
pub const EXPORT_ROOT_FILE: &str = "root.pem";
/// Exported Sub CA certificate.
pub const EXPORT_SUB_FILE: &str = "sub.pem";

/// Failures of the PKI store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system reported.
        source: io::Error,
    },
    /// The PKI folder exists but cannot be used; it is left untouched.
    #[error("{}: damaged test PKI ({reason}); it was left untouched: repair or remove it", path.display())]
    Damaged {
        /// The file or folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `pki import` was given a CA it cannot use (nothing was written).
    #[error("{}: {reason}", path.display())]
    Import {
        /// The certificate or key file at fault.
        path: PathBuf,
        /// What is wrong with it (never the key's content).
        reason: String,
    },
    /// The environment already has a PKI, and it is not the one asked for;
    /// it is left untouched.
    #[error("{}: the environment already has the test PKI {existing}, not {wanted}; it was left untouched: remove it (cards issued under it stop verifying) or use another environment or --state-dir", path.display())]
    Different {
        /// The PKI folder.
        path: PathBuf,
        /// The id of the PKI there.
        existing: String,
        /// The id of the PKI asked for.
        wanted: String,
    },
    /// Creating the CAs failed.
    #[error("creating the test PKI failed: {0}")]
    Issuance(#[from] IssuanceError),
    /// None of `VSCARD_HOME`, `XDG_DATA_HOME`, `HOME` gives a state folder.
    #[error("no state directory: set VSCARD_HOME (or XDG_DATA_HOME or HOME)")]
    NoStateDirectory,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The state directory from the process environment: `$VSCARD_HOME`, else
/// `$XDG_DATA_HOME/vscard`, else `~/.local/share/vscard`.
pub fn default_state_dir() -> Result<PathBuf, PkiError> {
    state_dir_from(
        std::env::var_os("VSCARD_HOME"),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
    .ok_or(PkiError::NoStateDirectory)
}

/// The state-directory rule on given variable values. Empty values count
/// as unset; a relative `XDG_DATA_HOME` is ignored, as the XDG Base
/// Directory specification requires.
pub fn state_dir_from(
    vscard_home: Option<OsString>,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |value: Option<OsString>| value.filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(path) = set(vscard_home) {
        return Some(path);
    }
    if let Some(path) = set(xdg_data_home).filter(|path| path.is_absolute()) {
        return Some(path.join("vscard"));
    }
    set(home).map(|home| home.join(".local").join("share").join("vscard"))
}

/// The test PKI of one environment, loaded from its folder.
#[derive(Clone, Debug)]
pub struct Pki {
    environment: Environment,
    directory: PathBuf,
    authorities: Authorities,
}

impl Pki {
    /// Opens the environment's PKI under `state_dir`, creating it (with
    /// keys drawn from `rng` and valid from now) on first use.
    pub fn open_or_create<R: CryptoRng + ?Sized>(
        state_dir: &Path,
        environment: &Environment,
        rng: &mut R,
    ) -> Result<Pki, PkiError> {
        environment
            .check("environment")
            .map_err(IssuanceError::from)?;
        let directory = pki_directory(state_dir, environment);
        if directory.exists() {
            return Pki::open(state_dir, environment);
        }
        let authorities = create_authorities(environment, SystemTime::now(), rng)?;
        Pki::create(state_dir, environment, authorities, rng.next_u64())
    }

    /// Writes `authorities` as the environment's PKI, unless it has one:
    /// then that one is opened, and it must be the same (Root and Sub CA
    /// certificates equal), else [`PkiError::Different`]. `nonce` makes the
    /// staging folder's name unique among racing processes.
    pub fn install(
        state_dir: &Path,
        environment: &Environment,
        authorities: Authorities,
        nonce: u64,
    ) -> Result<Pki, PkiError> {
        environment
            .check("environment")
            .map_err(IssuanceError::from)?;
        let directory = pki_directory(state_dir, environment);
        if directory.exists() {
            return Pki::open(state_dir, environment)?.same_as(&authorities);
        }
        // A racing process may have created another PKI first: compare
        // with what was asked for, not with what was opened.
        let wanted = authorities.clone();
        Pki::create(state_dir, environment, authorities, nonce)?.same_as(&wanted)
    }

    /// Creates the reproducible PKI of `seed` (see [`seeded_pki_rng`]),
    /// valid from `not_before` (see [`SEEDED_PKI_NOT_BEFORE`]): the same
    /// keys and certificates, byte for byte, in every state directory on
    /// every machine. Idempotent: a second run with the same seed and time
    /// opens it; another seed is refused ([`PkiError::Different`]).
    pub fn init_seeded(
        state_dir: &Path,
        environment: &Environment,
        seed: &SecretString,
        not_before: SystemTime,
    ) -> Result<Pki, PkiError> {
        let mut rng = seeded_pki_rng(environment, seed);
        let authorities = create_authorities(environment, not_before, &mut rng)?;
        Pki::install(state_dir, environment, authorities, staging_nonce())
    }

    /// Takes an existing CA (PEM certificate, PKCS #8 PEM P-256 key; e.g. a
    /// team's committed test CA) as the environment's Root CA, and makes a
    /// Sub CA under it. The Sub CA's key and serial are derived from the
    /// Root key ([`import_rng`]) and its validity from the Root's, so every
    /// runner importing the same CA gets the same PKI byte for byte. The
    /// CA must be self-signed (RFC 5280 6.1: a trust anchor) with
    /// ECDSA-with-SHA256, a CA with keyCertSign, and match the key. The
    /// paths only name the inputs in errors; the key text is never logged.
    pub fn import(
        state_dir: &Path,
        environment: &Environment,
        cert: (&Path, &str),
        key: (&Path, &str),
    ) -> Result<Pki, PkiError> {
        let (cert_path, cert_text) = cert;
        let (key_path, key_text) = key;
        let refuse = |path: &Path, reason: String| PkiError::Import {
            path: path.to_owned(),
            reason,
        };
        let certificate = Certificate::from_pem(cert_text.as_bytes())
            .map_err(|error| refuse(cert_path, format!("not a PEM X.509 certificate: {error}")))?;
        // The parser's message names the structure, never key bytes.
        let signing_key = SigningKey::from_pkcs8_pem(key_text).map_err(|error| {
            refuse(
                key_path,
                format!("not a PKCS #8 PEM P-256 private key (openssl pkcs8 -topk8 -nocrypt converts one): {error}"),
            )
        })?;
        verify_issued_by(&certificate, &certificate).map_err(|error| {
            refuse(
                cert_path,
                format!("not a self-signed P-256 CA certificate: {error}"),
            )
        })?;
        let root = CertificateAuthority::from_parts(certificate, signing_key, "Root CA")
            .map_err(|error| refuse(key_path, error.to_string()))?;
        let validity = root.certificate().tbs_certificate().validity();
        let not_before = validity.not_before.to_system_time();
        let root_end = validity.not_after.to_system_time();
        let sub_years = CertificateValidity::years_from(not_before, SUB_CA_YEARS)
            .map_err(|error| refuse(cert_path, error.to_string()))?;
        // A Sub CA outliving its Root would not verify after the Root's end
        // (RFC 5280 6.1.3 (a)(2)): end with the Root when it ends first.
        let sub_validity = if sub_years.not_after() > root_end {
            CertificateValidity::new(not_before, root_end)
                .map_err(|error| refuse(cert_path, error.to_string()))?
        } else {
            sub_years
        };
        let mut rng = import_rng(environment, &root)?;
        let sub = create_sub_ca(
            &root,
            environment,
            sub_validity,
            Naming::Identified,
            &mut rng,
        )?;
        Pki::install(
            state_dir,
            environment,
            Authorities { root, sub },
            staging_nonce(),
        )
    }

    /// Creates the environment's folder from `authorities`; when another
    /// process created it first, opens theirs.
    fn create(
        state_dir: &Path,
        environment: &Environment,
        authorities: Authorities,
        nonce: u64,
    ) -> Result<Pki, PkiError> {
        let directory = pki_directory(state_dir, environment);
        let parent = state_dir.join("pki");
        create_private_dir_all(&parent)?;
        let staging = parent.join(format!(
            ".{}.staging-{}-{:016x}",
            environment.name(),
            std::process::id(),
            nonce
        ));
        write_staging(&staging, &authorities)?;
        match fs::rename(&staging, &directory) {
            Ok(()) => {
                sync_dir(&parent)?;
                let Authorities { root, sub } = authorities;
                let sub = sub.with_revocation(load_urls(&directory)?);
                Ok(Pki {
                    environment: environment.clone(),
                    directory,
                    authorities: Authorities { root, sub },
                })
            }
            Err(_) if directory.exists() => {
                // Another process created it first: use theirs.
                let _ignored = fs::remove_dir_all(&staging);
                Pki::open(state_dir, environment)
            }
            Err(source) => {
                let _ignored = fs::remove_dir_all(&staging);
                Err(PkiError::Io {
                    path: directory,
                    source,
                })
            }
        }
    }

    fn same_as(self, wanted: &Authorities) -> Result<Pki, PkiError> {
        let same = self.authorities.root.certificate() == wanted.root.certificate()
            && self.authorities.sub.certificate() == wanted.sub.certificate();
        if same {
            return Ok(self);
        }
        Err(PkiError::Different {
            path: self.directory.clone(),
            existing: self.id()?,
            wanted: wanted.root.pki_id()?,
        })
    }

    /// The PKI's id ([`crate::pki_id`] of the Root CA key), which the CA
    /// names of a PKI created since issue 18 carry.
    pub fn id(&self) -> Result<String, PkiError> {
        Ok(self.authorities.root.pki_id()?)
    }

    /// Opens an existing PKI; never creates one.
    pub fn open(state_dir: &Path, environment: &Environment) -> Result<Pki, PkiError> {
        let directory = pki_directory(state_dir, environment);
        let root = load_authority(&directory, ROOT_CERT_FILE, ROOT_KEY_FILE, "Root CA")?;
        let sub = load_authority(&directory, SUB_CERT_FILE, SUB_KEY_FILE, "Sub CA")?;
        let sub_issuer = sub.certificate().tbs_certificate().issuer();
        if sub_issuer != root.certificate().tbs_certificate().subject() {
            return Err(PkiError::Damaged {
                path: directory.join(SUB_CERT_FILE),
                reason: "the Sub CA was not issued by this Root CA".to_owned(),
            });
        }
        let sub = sub.with_revocation(load_urls(&directory)?);
        Ok(Pki {
            environment: environment.clone(),
            directory,
            authorities: Authorities { root, sub },
        })
    }

    /// The environment.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The folder holding the keys and certificates.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The Root CA.
    pub fn root(&self) -> &CertificateAuthority {
        &self.authorities.root
    }

    /// The Sub CA, which issues card certificates.
    pub fn sub(&self) -> &CertificateAuthority {
        &self.authorities.sub
    }

    /// The attestation CA, which certifies the attestation key of every
    /// YubiKey-model card: loaded from the PKI folder, or made there from
    /// the Root CA key on first use ([`attestation_rng`]; reproducible, so
    /// a racing process writes the same files).
    pub fn attestation_ca(&self) -> Result<CertificateAuthority, PkiError> {
        let key = self.directory.join(ATTESTATION_KEY_FILE);
        let cert = self.directory.join(ATTESTATION_CERT_FILE);
        let present = |path: &Path| path.try_exists().map_err(io_error(path));
        if !(present(&key)? && present(&cert)?) {
            let mut rng = attestation_rng(&self.environment, self.root())?;
            let made = create_attestation_ca(self.root(), &self.environment, &mut rng)?;
            // The key first: a certificate is never there without its key.
            write_atomically(&key, key_pem(made.signing_key())?.as_bytes(), 0o600)?;
            write_atomically(
                &cert,
                certificate_pem(made.certificate())?.as_bytes(),
                0o600,
            )?;
        }
        let authority = load_authority(
            &self.directory,
            ATTESTATION_CERT_FILE,
            ATTESTATION_KEY_FILE,
            "Attestation CA",
        )?;
        verify_issued_by(authority.certificate(), authority.certificate()).map_err(|error| {
            PkiError::Damaged {
                path: cert.clone(),
                reason: format!("the attestation CA is not self-signed: {error}"),
            }
        })?;
        Ok(authority)
    }

    /// Writes `root.pem`, `sub.pem` (certificates only), `crl.pem` (a new
    /// CRL, current from now) and `attestation-ca.pem` (the attestation
    /// CA, made on first use), mode 0644, into `out_dir`, creating it if
    /// needed; returns their paths.
    pub fn export(&self, out_dir: &Path) -> Result<[PathBuf; 4], PkiError> {
        fs::create_dir_all(out_dir).map_err(io_error(out_dir))?;
        let root = out_dir.join(EXPORT_ROOT_FILE);
        let sub = out_dir.join(EXPORT_SUB_FILE);
        write_atomically(
            &root,
            certificate_pem(self.root().certificate())?.as_bytes(),
            0o644,
        )?;
        write_atomically(
            &sub,
            certificate_pem(self.sub().certificate())?.as_bytes(),
            0o644,
        )?;
        let crl = out_dir.join(CRL_FILE);
        self.write_crl(&crl, &self.make_crl(SystemTime::now())?, 0o644)?;
        let attestation = out_dir.join(EXPORT_ATTESTATION_FILE);
        write_atomically(
            &attestation,
            certificate_pem(self.attestation_ca()?.certificate())?.as_bytes(),
            0o644,
        )?;
        sync_dir(out_dir)?;
        Ok([root, sub, crl, attestation])
    }
}

/// The default start of a seeded PKI's validity, 2026-01-01T00:00:00Z: a
/// fixed epoch (not the clock) so that two runners seeding the same PKI on
/// different days write the same bytes. The Root CA is then valid until
/// 2046 and the Sub CA until 2036.
pub const SEEDED_PKI_NOT_BEFORE: u64 = 1_767_225_600;

/// The generator of a seeded PKI: ChaCha20 keyed with SHA-256 of a domain
/// label, the environment and the seed. The environment is in the key, so
/// one seed gives different CAs in sandbox and integration; the label
/// differs from the card seed's, so a card seeded with the same string
/// shares no key with the PKI.
pub fn seeded_pki_rng(environment: &Environment, seed: &SecretString) -> CardRng {
    let mut hasher = Sha256::new();
    hasher.update(b"vscard pki seed v1\0");
    hasher.update(environment.name().as_bytes());
    hasher.update(b"\0");
    hasher.update(seed.expose().as_bytes());
    let mut key: [u8; 32] = hasher.finalize().into();
    let rng = CardRng::seeded(key);
    key.zeroize();
    rng
}

/// The generator of an imported PKI's Sub CA: ChaCha20 keyed with SHA-256
/// of a domain label, the environment and the Root key's PKCS #8 DER (a
/// secret only the Root's holders know, as the Sub key must be).
fn import_rng(environment: &Environment, root: &CertificateAuthority) -> Result<CardRng, PkiError> {
    derived_rng(b"vscard pki import v1\0", environment, root)
}

/// ChaCha20 keyed with SHA-256 of `label`, the environment and the Root
/// key's PKCS #8 DER.
fn derived_rng(
    label: &[u8],
    environment: &Environment,
    root: &CertificateAuthority,
) -> Result<CardRng, PkiError> {
    let root_key = root.signing_key().to_pkcs8_der().map_err(|source| {
        PkiError::Issuance(IssuanceError::KeyEncoding {
            algorithm: vscard_applet::Algorithm::EccP256,
            source: KeyEncodingError::PrivateKey(source),
        })
    })?;
    let mut hasher = Sha256::new();
    hasher.update(label);
    hasher.update(environment.name().as_bytes());
    hasher.update(b"\0");
    hasher.update(root_key.as_bytes());
    let mut key: [u8; 32] = hasher.finalize().into();
    let rng = CardRng::seeded(key);
    key.zeroize();
    Ok(rng)
}

/// The generator of a PKI's attestation CA: ChaCha20 keyed with SHA-256 of
/// a domain label, the environment and the Root key's PKCS #8 DER (as
/// [`import_rng`], with its own label: the attestation key shares nothing
/// with the Sub CA's).
fn attestation_rng(
    environment: &Environment,
    root: &CertificateAuthority,
) -> Result<CardRng, PkiError> {
    derived_rng(b"vscard pki attestation v1\0", environment, root)
}

/// A staging folder suffix for a PKI made from a seeded generator (whose
/// draws must all go into the PKI): it need not be secret or
/// reproducible, only unlikely to repeat between two racing processes.
fn staging_nonce() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::from(elapsed.subsec_nanos()) ^ (elapsed.as_secs() << 30)
        })
}

/// `<state_dir>/pki/<environment>`.
pub fn pki_directory(state_dir: &Path, environment: &Environment) -> PathBuf {
    state_dir.join("pki").join(environment.name())
}

fn certificate_pem(certificate: &Certificate) -> Result<String, PkiError> {
    Ok(certificate
        .to_pem(LineEnding::LF)
        .map_err(IssuanceError::from)?)
}

fn key_pem(key: &SigningKey) -> Result<zeroize::Zeroizing<String>, PkiError> {
    key.to_pkcs8_pem(LineEnding::LF).map_err(|source| {
        PkiError::Issuance(IssuanceError::KeyEncoding {
            algorithm: vscard_applet::Algorithm::EccP256,
            source: KeyEncodingError::PrivateKey(source),
        })
    })
}

fn write_staging(staging: &Path, authorities: &Authorities) -> Result<(), PkiError> {
    create_private_dir(staging)?;
    let files = [
        (ROOT_KEY_FILE, key_pem(authorities.root.signing_key())?),
        (
            ROOT_CERT_FILE,
            certificate_pem(authorities.root.certificate())?.into(),
        ),
        (SUB_KEY_FILE, key_pem(authorities.sub.signing_key())?),
        (
            SUB_CERT_FILE,
            certificate_pem(authorities.sub.certificate())?.into(),
        ),
    ];
    let result = files
        .iter()
        .try_for_each(|(name, text)| write_new_file(&staging.join(name), text.as_bytes(), 0o600))
        .and_then(|()| sync_dir(staging));
    if result.is_err() {
        let _ignored = fs::remove_dir_all(staging);
    }
    result
}

fn load_authority(
    directory: &Path,
    cert_file: &str,
    key_file: &str,
    role: &'static str,
) -> Result<CertificateAuthority, PkiError> {
    let cert_path = directory.join(cert_file);
    let key_path = directory.join(key_file);
    let damaged = |path: &Path, reason: String| PkiError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let cert_text = read_text(&cert_path)?;
    let certificate = Certificate::from_pem(cert_text.as_bytes())
        .map_err(|error| damaged(&cert_path, format!("certificate does not parse: {error}")))?;
    let key_text = zeroize::Zeroizing::new(read_text(&key_path)?);
    let signing_key = SigningKey::from_pkcs8_pem(&key_text).map_err(|error| {
        damaged(
            &key_path,
            format!("P-256 PKCS #8 key does not parse: {error}"),
        )
    })?;
    CertificateAuthority::from_parts(certificate, signing_key, role)
        .map_err(|error| damaged(&key_path, error.to_string()))
}

pub(crate) fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => PkiError::Damaged {
            path: path.to_owned(),
            reason: "file missing".to_owned(),
        },
        _ => PkiError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// Writes `bytes` to `path` atomically with `mode`, through the card
/// store's helper (unique temporary name, `O_EXCL | O_NOFOLLOW`, fsync,
/// rename, folder fsync, the temporary file removed on every error).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    vscard_emulator::files::write_atomically(path, bytes, mode).map_err(|error| PkiError::Io {
        path: error.path,
        source: error.source,
    })
}

/// Creates `path` exclusively with `mode`, writes `bytes` and fsyncs.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn create_private_dir(path: &Path) -> Result<(), PkiError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io_error(path))
}

fn create_private_dir_all(path: &Path) -> Result<(), PkiError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io_error(path))
}

/// Makes a rename or a new file in `directory` durable.
fn sync_dir(directory: &Path) -> Result<(), PkiError> {
    #[cfg(unix)]
    File::open(directory)
        .and_then(|folder| folder.sync_all())
        .map_err(io_error(directory))?;
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}
