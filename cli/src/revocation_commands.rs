//! `vscard revoke`, `crl`, `ocsp` and `pki config`: the revocation side of
//! an environment's test PKI (issue 19).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use vscard_applet::Slot;
use vscard_issuance::cards::{CardFileError, revoke_card_file_with};
use vscard_issuance::revocation::{
    DEFAULT_RESPONDER_ADDRESS, Revocation, RevocationReason, RevocationUrls, check_url,
};
use vscard_issuance::{Environment, Pki, pki_store::pki_directory};

use crate::card_commands::print_out;

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The card image whose certificates are revoked.
    #[arg(value_name = "CARD.json")]
    pub card: PathBuf,
    /// The card image is encrypted (AES-256-GCM) under the key in FILE:
    /// 64 hexadecimal digits, mode 0600 (see "Encrypted card images").
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Only this slot's certificate (9A, 9C, 9D or 9E).
    #[arg(long, value_name = "S", value_parser = slot)]
    pub slot: Option<Slot>,
    /// Why (RFC 5280 names): unspecified, keyCompromise, cACompromise,
    /// affiliationChanged, superseded, cessationOfOperation (the card was
    /// cancelled), privilegeWithdrawn.
    #[arg(long, value_name = "REASON", value_parser = reason, default_value = "unspecified")]
    pub reason: RevocationReason,
}

#[derive(Debug, Args)]
pub struct CrlArgs {
    /// The environment.
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// Also write crl.pem into DIR (e.g. the folder export-ca wrote).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OcspArgs {
    /// The environment whose certificates are answered for.
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// Where to listen (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_RESPONDER_ADDRESS)]
    pub listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct PkiConfigArgs {
    /// The environment.
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// The CRL distribution point certificates issued from now on carry.
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,
    /// The OCSP responder URL (Authority Information Access) they carry.
    #[arg(long, value_name = "URL")]
    pub ocsp_url: Option<String>,
}

/// A `--slot` value: `9A`, `9c`, ...
fn slot(text: &str) -> Result<Slot, String> {
    u8::from_str_radix(text, 16)
        .ok()
        .and_then(Slot::new)
        .filter(|slot| vscard_issuance::CARD_SLOTS.contains(slot))
        .ok_or_else(|| format!("wants 9A, 9C, 9D or 9E, got {text:?}"))
}

/// A `--reason` value, spelled as RFC 5280 does.
fn reason(text: &str) -> Result<RevocationReason, String> {
    RevocationReason::parse(text).ok_or_else(|| {
        let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
        format!(
            "unknown reason {text:?}; expected one of {}",
            names.join(", ")
        )
    })
}

/// An environment that exists under `state_dir` (never created here: a
/// typo would otherwise make a new CA).
fn existing_pki(state_dir: &Path, name: &str) -> Result<Pki, CardFileError> {
    let environment = Environment::parse(name)?;
    if !pki_directory(state_dir, &environment).exists() {
        return Err(CardFileError::BadValue {
            option: "--environment",
            reason: format!(
                "no environment {} in {} (issue a card in it first)",
                environment.name(),
                state_dir.display()
            ),
        });
    }
    Ok(Pki::open(state_dir, &environment)?)
}

pub fn revoke(args: RevokeArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let key = crate::card_commands::encrypt_key(args.encrypt_key_file.as_deref())?;
    let (pki, done) = revoke_card_file_with(
        &args.card,
        state_dir,
        args.slot,
        args.reason,
        SystemTime::now(),
        key.as_ref(),
    )?;
    let mut text = String::new();
    for certificate in &done {
        match certificate.outcome {
            Revocation::Revoked => text.push_str(&format!(
                "revoked {} certificate {} ({})\n",
                certificate.slot, certificate.serial, args.reason
            )),
            Revocation::AlreadyRevoked(reason) => text.push_str(&format!(
                "{} certificate {} was already revoked ({reason})\n",
                certificate.slot, certificate.serial
            )),
        }
    }
    text.push_str(&format!(
        "CRL of environment {} written to {}\n",
        pki.environment(),
        pki.directory()
            .join(vscard_issuance::revocation::store::CRL_FILE)
            .display()
    ));
    print_out(&text)
}

pub fn crl(args: CrlArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let pki = existing_pki(state_dir, &args.environment)?;
    let crl = pki.make_crl(SystemTime::now())?;
    let mut text = format!(
        "{}\n",
        pki.directory()
            .join(vscard_issuance::revocation::store::CRL_FILE)
            .display()
    );
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|source| CardFileError::Io {
            path: out.clone(),
            source,
        })?;
        let path = out.join(vscard_issuance::revocation::store::CRL_FILE);
        pki.write_crl(&path, &crl, 0o644)?;
        text.push_str(&format!("{}\n", path.display()));
    }
    print_out(&text)
}

pub fn pki_config(args: PkiConfigArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let pki = existing_pki(state_dir, &args.environment)?;
    let mut urls = pki.revocation_urls()?;
    for (option, value, target) in [
        ("--crl-url", &args.crl_url, &mut urls.crl_url),
        ("--ocsp-url", &args.ocsp_url, &mut urls.ocsp_url),
    ] {
        if let Some(value) = value {
            check_url(value).map_err(|reason| CardFileError::BadValue { option, reason })?;
            value.clone_into(target);
        }
    }
    if args.crl_url.is_some() || args.ocsp_url.is_some() {
        pki.set_revocation_urls(&urls)?;
    }
    let RevocationUrls { crl_url, ocsp_url } = urls;
    print_out(&format!(
        "environment {}: CRL {crl_url}, OCSP {ocsp_url}\n",
        pki.environment()
    ))
}

pub fn ocsp(args: OcspArgs, state_dir: &Path) -> Result<(), CardFileError> {
    let pki = existing_pki(state_dir, &args.environment)?;
    crate::ocsp_server::run(&pki, args.listen)
}
