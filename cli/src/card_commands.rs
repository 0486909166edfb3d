//! `vscard issue`, `inspect`, `export-ca` and `renew`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use std::sync::Arc;
use vscard_applet::Slot;
use vscard_emulator::seal::{SealKey, read_key_file};
use vscard_emulator::{CardRng, files};

use vscard_applet::CustodyTarget;
use vscard_issuance::IssueCustody;
use vscard_issuance::cards::{
    CardFileError, issue_card_file_with, read_applet_with, renew_card_file_with,
};
use vscard_pkcs11::Pkcs11Custody;

use crate::args::CustodyKind;
use crate::custody::{Custodies, key_lines, key_locations};
use vscard_issuance::{
    CARD_SLOTS, CardProfile, CertificateValidity, Environment, Pki, SEEDED_PKI_NOT_BEFORE,
    certificate, certificate_der, certificate_pem, default_state_dir, summarize_at,
};

use crate::args::{
    ExportCaArgs, ExportCertArgs, InspectArgs, IssueArgs, PkiImportArgs, PkiInitArgs, RenewArgs,
};
use crate::issue_request::{IssueRequest, SecretFiles, parse_time, terminal_progress};

/// Years a renewal adds, from now (NHS smartcard certificates are renewed
/// every two years).
const RENEWAL_YEARS: u32 = 2;

/// The key of `--encrypt-key-file`, if given (bad input when the file is
/// unreadable, not private, or not 64 hex digits).
pub fn encrypt_key(path: Option<&Path>) -> Result<Option<SealKey>, CardFileError> {
    path.map(|path| {
        read_key_file(path).map_err(|error| CardFileError::BadValue {
            option: "--encrypt-key-file",
            reason: error.to_string(),
        })
    })
    .transpose()
}

/// `--state-dir`, else the environment's default.
pub fn state_dir(flag: Option<PathBuf>) -> Result<PathBuf, CardFileError> {
    match flag {
        Some(path) => Ok(path),
        None => Ok(default_state_dir()?),
    }
}

fn system_rng() -> Result<CardRng, CardFileError> {
    CardRng::from_os().map_err(CardFileError::Rng)
}

/// `issue --out DIR/card.json` writes into a folder that exists: creating
/// `/nonexistent/dir` on a typo would hide the typo (bad input, exit code 2).
fn refuse_missing_folder(out: &Path) -> Result<(), CardFileError> {
    let folder = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(CardFileError::BadValue {
        option: "--out",
        reason: format!(
            "the folder {} does not exist (vscard does not create it)",
            folder.display()
        ),
    })
}

pub fn issue(args: IssueArgs, state_dir: &Path) -> Result<(), CardFileError> {
    if args.print_profile {
        return print_profile();
    }
    let Some(out) = args.out else {
        return Err(CardFileError::BadValue {
            option: "--out",
            reason: "the card image's path is missing".to_owned(),
        });
    };
    refuse_missing_folder(&out)?;
    let mut secrets = SecretFiles::for_options(&[
        ("--pin-file", args.pin_file.as_deref()),
        ("--unlock-code-file", args.unlock_code_file.as_deref()),
        ("--seed-file", args.seed_file.as_deref()),
    ])?;
    let request = IssueRequest {
        profile: args.profile,
        name: args.name,
        uuid: args.uuid,
        pin: secrets.flag_or_file("--pin-file", args.pin, args.pin_file.as_deref())?,
        unlock_code: secrets.flag_or_file(
            "--unlock-code-file",
            args.unlock_code,
            args.unlock_code_file.as_deref(),
        )?,
        roles: args.role,
        environment: args.environment,
        seed: secrets.flag_or_file("--seed-file", args.seed, args.seed_file.as_deref())?,
        not_before: args.not_before,
        not_after: args.not_after,
        states: args.state,
        model: args.model,
    };
    let profile = request.profile()?;
    let validity = request.validity(&profile, SystemTime::now())?;
    let custody = match args.custody {
        CustodyKind::Software => {
            for (option, given) in [
                ("--pkcs11-module", args.pkcs11_module.is_some()),
                ("--pkcs11-token", args.pkcs11_token.is_some()),
                ("--pkcs11-pin-file", args.pkcs11_pin_file.is_some()),
            ] {
                if given {
                    return Err(CardFileError::BadValue {
                        option,
                        reason: "only with --custody pkcs11".to_owned(),
                    });
                }
            }
            None
        }
        CustodyKind::Pkcs11 => Some(pkcs11_custody(
            args.pkcs11_module.as_deref(),
            args.pkcs11_token.as_deref(),
            args.pkcs11_pin_file.clone(),
            &profile,
        )?),
    };
    let key = encrypt_key(args.encrypt_key_file.as_deref())?;
    let summary = issue_card_file_with(
        &out,
        &profile,
        validity,
        &request.states,
        state_dir,
        args.force,
        terminal_progress(),
        custody.as_ref().map(|(custody, target)| IssueCustody {
            custody: &**custody,
            target,
        }),
        key.as_ref(),
    )?;
    print_out(&format!(
        "issued {}: {}, user {}, environment {}\n",
        out.display(),
        summary.holder,
        summary.uuid,
        summary.environment
    ))
}

/// The PKCS#11 custody and the card's target in it, for `issue --custody
/// pkcs11`. The card's name in the token is its user ID and 8 random hex
/// digits: two cards of one user do not share keys.
fn pkcs11_custody(
    module: Option<&Path>,
    token: Option<&str>,
    pin_file: Option<PathBuf>,
    profile: &CardProfile,
) -> Result<(Arc<Pkcs11Custody>, CustodyTarget), CardFileError> {
    use vscard_emulator::rand_core::Rng as _;
    let missing = |option: &'static str| CardFileError::BadValue {
        option,
        reason: "needed with --custody pkcs11".to_owned(),
    };
    let module = module.ok_or(missing("--pkcs11-module"))?;
    let token = token.ok_or(missing("--pkcs11-token"))?;
    // The full path: `serve` opens it from the image, from any directory.
    let module = std::fs::canonicalize(module).map_err(|error| CardFileError::BadValue {
        option: "--pkcs11-module",
        reason: format!("{}: {error}", module.display()),
    })?;
    let custody = Custodies::new(pin_file, std::slice::from_ref(&module))?.pkcs11(&module)?;
    let mut nonce = [0u8; 4];
    system_rng()?.fill_bytes(&mut nonce);
    let card = format!("{}-{}", profile.uuid, hex::encode(nonce));
    let target = custody.target(token, &card);
    Ok((custody, target))
}

pub fn inspect(args: InspectArgs) -> Result<(), CardFileError> {
    let key = encrypt_key(args.encrypt_key_file.as_deref())?;
    let applet = read_applet_with(&args.card, key.as_ref())?;
    let summary = summarize_at(applet.state(), SystemTime::now())?;
    let due = crate::renewal_window::due(applet.state(), args.renewal_window)?;
    let mut text = if args.json {
        let mut value = serde_json::to_value(&summary).map_err(|e| CardFileError::Io {
            path: args.card.clone(),
            source: e.into(),
        })?;
        if let Some(fields) = value.as_object_mut() {
            let renewal = crate::renewal_window::json(&due, args.renewal_window);
            fields.insert("renewal".to_owned(), renewal);
            let keys = key_locations(applet.state()).into_iter().collect();
            fields.insert("key_custody".to_owned(), serde_json::Value::Object(keys));
        }
        serde_json::to_string_pretty(&value).map_err(|e| CardFileError::Io {
            path: args.card.clone(),
            source: e.into(),
        })?
    } else {
        summary.to_string()
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if !args.json {
        text.push_str(&key_lines(applet.state()));
        text.push_str(&crate::renewal_window::line(&due, args.renewal_window));
    }
    print_out(&text)
}

/// The header of `issue --print-profile`: what the file is and where its
/// keys are documented.
const PROFILE_HEADER: &str = "\
# A vscard card profile: the demo card's (vscard issue --print-profile).
# Edit it, then: vscard issue --profile THIS.toml --out card.json
# Every key is described in the README (\"Card profiles\"). It holds the
# PIN and unlock code: keep your own profiles private.
";

/// `vscard issue --print-profile`: the demo profile in TOML.
fn print_profile() -> Result<(), CardFileError> {
    let toml = CardProfile::demo()
        .to_toml()
        .map_err(|error| CardFileError::Io {
            path: PathBuf::from("<stdout>"),
            source: std::io::Error::other(format!(
                "cannot write the demo profile as TOML: {error}"
            )),
        })?;
    print_out(&format!("{PROFILE_HEADER}\n{toml}"))
}

/// `9a`, `9A`: one of the card's key slots (bad input otherwise).
fn parse_slot(text: &str) -> Result<Slot, CardFileError> {
    CARD_SLOTS
        .into_iter()
        .find(|slot| slot.to_string().eq_ignore_ascii_case(text))
        .ok_or_else(|| CardFileError::BadValue {
            option: "--slot",
            reason: format!("unknown slot {text:?}; the card's key slots are 9a, 9c, 9d and 9e"),
        })
}

/// `vscard export-cert CARD --slot S [--out FILE] [--der]`.
pub fn export_cert(args: ExportCertArgs) -> Result<(), CardFileError> {
    let slot = parse_slot(&args.slot)?;
    let key = encrypt_key(args.encrypt_key_file.as_deref())?;
    let applet = read_applet_with(&args.card, key.as_ref())?;
    let found = certificate(applet.state(), slot)?.ok_or_else(|| CardFileError::BadValue {
        option: "--slot",
        reason: format!("{} has no certificate in slot {slot}", args.card.display()),
    })?;
    let bytes = if args.der {
        certificate_der(&found)?
    } else {
        certificate_pem(&found)?.into_bytes()
    };
    match &args.out {
        Some(path) => {
            // A certificate is public (as export-ca's files are).
            files::write_atomically(path, &bytes, 0o644).map_err(|error| CardFileError::Io {
                path: path.clone(),
                source: error.source,
            })?;
            print_out(&format!("{}\n", path.display()))
        }
        None => print_bytes(&bytes),
    }
}

pub fn export_ca(args: ExportCaArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let environment = Environment::parse(&args.environment)?;
    // A mistyped environment would otherwise get a new Root CA, and the
    // relying party a chain no card verifies against.
    let directory = vscard_issuance::pki_store::pki_directory(state_dir, &environment);
    if !args.create && !directory.try_exists().unwrap_or(true) {
        return Err(CardFileError::BadValue {
            option: "--environment",
            reason: format!(
                "no environment {} in {} (issue a card in it first, or pass --create)",
                environment.name(),
                state_dir.display()
            ),
        });
    }
    let pki = Pki::open_or_create(state_dir, &environment, &mut system_rng()?)?;
    let paths = pki.export(&args.out)?;
    print_out(
        &paths
            .iter()
            .map(|path| format!("{}\n", path.display()))
            .collect::<String>(),
    )
}

pub fn renew(args: RenewArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let validity = CertificateValidity::years_from(SystemTime::now(), RENEWAL_YEARS)?;
    let key = encrypt_key(args.encrypt_key_file.as_deref())?;
    let summary = renew_card_file_with(
        &args.card,
        state_dir,
        validity,
        args.new_keys,
        args.new_ca,
        args.revoke_old,
        &mut system_rng()?,
        key.as_ref(),
    )?;
    let until = summary
        .slots
        .iter()
        .filter_map(|slot| slot.certificate.as_ref())
        .map(|certificate| certificate.not_after.as_str())
        .max()
        .unwrap_or("-");
    let keys = if args.new_keys { " and keys" } else { "" };
    let superseded = if args.revoke_old && !args.new_ca {
        "; the old certificates are revoked as superseded"
    } else {
        ""
    };
    print_out(&format!(
        "renewed the certificates{keys} of {}: valid until {until}; PIN tries left {}{superseded}\n",
        args.card.display(),
        summary.pin.tries_left
    ))
}

/// `vscard pki init`: the seeded, reproducible PKI.
pub fn pki_init(args: PkiInitArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let environment = Environment::parse(&args.environment)?;
    let mut secrets = SecretFiles::for_options(&[("--seed-file", args.seed_file.as_deref())])?;
    let seed = secrets
        .flag_or_file("--seed-file", args.seed, args.seed_file.as_deref())?
        .filter(|seed| seed.char_count() > 0)
        .ok_or(CardFileError::BadValue {
            option: "--seed",
            reason: "the seed is empty".to_owned(),
        })?;
    let not_before = match &args.not_before {
        Some(text) => parse_time("--not-before", text)?,
        None => SystemTime::UNIX_EPOCH + Duration::from_secs(SEEDED_PKI_NOT_BEFORE),
    };
    let pki = Pki::init_seeded(state_dir, &environment, &seed, not_before)?;
    print_pki(&pki)
}

/// `vscard pki import`: an existing CA as the Root CA.
pub fn pki_import(args: PkiImportArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let environment = Environment::parse(&args.environment)?;
    let cert = std::fs::read_to_string(&args.cert).map_err(unreadable("--cert", &args.cert))?;
    // The key is a secret: zeroized after use, and only its path is ever
    // shown (the store writes it 0600).
    let key =
        Zeroizing::new(std::fs::read_to_string(&args.key).map_err(unreadable("--key", &args.key))?);
    let pki = Pki::import(
        state_dir,
        &environment,
        (&args.cert, &cert),
        (&args.key, &key),
    )?;
    print_pki(&pki)
}

/// An input file that cannot be read is bad input (exit 2), as a missing
/// profile file is.
fn unreadable<'a>(
    option: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CardFileError + 'a {
    move |error| CardFileError::BadValue {
        option,
        reason: format!("{}: {error}", path.display()),
    }
}

fn print_pki(pki: &Pki) -> Result<(), CardFileError> {
    print_out(&format!(
        "test PKI {} of environment {} in {}: {}\n",
        pki.id()?,
        pki.environment(),
        pki.directory().display(),
        summarize_subject(pki)
    ))
}

fn summarize_subject(pki: &Pki) -> String {
    pki.root()
        .certificate()
        .tbs_certificate()
        .subject()
        .to_string()
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn print_out(text: &str) -> Result<(), CardFileError> {
    print_bytes(text.as_bytes())
}

/// [`print_out`] for bytes (a DER certificate).
fn print_bytes(bytes: &[u8]) -> Result<(), CardFileError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(CardFileError::Io {
            path: PathBuf::from("<stdout>"),
            source: error,
        }),
        _ => Ok(()),
    }
}
