//! `vscard issue`'s request: a card profile (a file, or the demo profile)
//! with the command line's overrides, and its key-generation progress.

use std::io::{IsTerminal, Read as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use vscard_applet::{Algorithm, Slot};
use vscard_issuance::cards::{CardFileError, KnownState, read_profile};
use vscard_issuance::{
    CardProfile, CertificateValidity, Environment, RoleProfile, SecretString, algorithm_name,
};
use zeroize::Zeroizing;

/// What `vscard issue` was asked for: a profile, and flags that override
/// its fields. `None` (or no roles) keeps the profile's value.
#[derive(Clone, Debug, Default)]
pub struct IssueRequest {
    /// A profile in TOML, or JSON when the name ends in `.json`; none: the
    /// demo profile ([`CardProfile::demo`]).
    pub profile: Option<PathBuf>,
    /// The holder's name.
    pub name: Option<String>,
    /// The 12-digit user ID.
    pub uuid: Option<String>,
    /// The PIN.
    pub pin: Option<SecretString>,
    /// The unlock code (PUK).
    pub unlock_code: Option<SecretString>,
    /// Role profiles as `CODE:NAME:B1,B2:ODS`; any replaces the profile's.
    pub roles: Vec<String>,
    /// The environment.
    pub environment: Option<String>,
    /// A seed for reproducible keys.
    pub seed: Option<SecretString>,
    /// Start of the certificates' validity, RFC 3339 (default: now).
    pub not_before: Option<String>,
    /// End of the certificates' validity, RFC 3339 (default: the profile's
    /// years after the start).
    pub not_after: Option<String>,
    /// The states to issue the card in (`--state`).
    pub states: Vec<KnownState>,
    /// The card model (`--model`).
    pub model: Option<vscard_applet::Model>,
}

impl IssueRequest {
    /// The profile with the overrides applied, validated: errors name the
    /// field and the rule.
    pub fn profile(&self) -> Result<CardProfile, CardFileError> {
        let mut profile = match &self.profile {
            Some(path) => read_profile(path)?,
            None => CardProfile::demo(),
        };
        if let Some(name) = &self.name {
            profile.name.clone_from(name);
        }
        if let Some(uuid) = &self.uuid {
            profile.uuid.clone_from(uuid);
        }
        if let Some(pin) = &self.pin {
            profile.pin = pin.clone();
        }
        if let Some(code) = &self.unlock_code {
            profile.unlock_code = code.clone();
        }
        if !self.roles.is_empty() {
            profile.roles = self
                .roles
                .iter()
                .map(|role| RoleProfile::parse_flag(role))
                .collect::<Result<_, _>>()?;
        }
        if let Some(environment) = &self.environment {
            profile.environment = Environment::parse(environment)?;
        }
        if let Some(seed) = &self.seed {
            profile.seed = Some(seed.clone());
        }
        if let Some(model) = self.model {
            profile.model = model;
        }
        profile.validate()?;
        Ok(profile)
    }

    /// The certificates' validity: the window of an `expired` or
    /// `not-yet-valid` state, else `--not-before` (default `now`) to
    /// `--not-after` (default the profile's years later).
    pub fn validity(
        &self,
        profile: &CardProfile,
        now: SystemTime,
    ) -> Result<CertificateValidity, CardFileError> {
        let explicit = self.not_before.is_some() || self.not_after.is_some();
        if let Some(window) = KnownState::validity(&self.states, profile, now, explicit)? {
            return Ok(window);
        }
        let not_before = match &self.not_before {
            Some(text) => parse_time("--not-before", text)?,
            None => now,
        };
        Ok(match &self.not_after {
            Some(text) => CertificateValidity::new(not_before, parse_time("--not-after", text)?)?,
            None => CertificateValidity::for_profile(profile, not_before)?,
        })
    }
}

/// An RFC 3339 time (`2024-01-01T00:00:00Z`, offsets and fractions
/// allowed).
pub fn parse_time(option: &'static str, text: &str) -> Result<SystemTime, CardFileError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|error| CardFileError::BadValue {
            option,
            reason: format!("{error} in {text:?}; expected RFC 3339, e.g. 2024-01-01T00:00:00Z"),
        })
}

/// A key-generation progress reporter for [`issue_card_file`]: one line
/// per key on stderr when stderr is a terminal (RSA keys take seconds),
/// silent otherwise.
pub fn terminal_progress() -> impl FnMut(Slot, Algorithm) {
    let show = std::io::stderr().is_terminal();
    move |slot, algorithm| {
        if show {
            eprintln!(
                "generating the {} key for slot {slot}...",
                algorithm_name(algorithm)
            );
        }
    }
}

/// Reads secrets given as files (`--pin-file`, ...), standard input at
/// most once.
#[derive(Debug, Default)]
pub struct SecretFiles {
    stdin_taken: Option<&'static str>,
}

impl SecretFiles {
    /// Checked before anything is read: standard input (`-`) can serve
    /// one of these options only.
    pub fn for_options(
        options: &[(&'static str, Option<&Path>)],
    ) -> Result<SecretFiles, CardFileError> {
        let mut stdin = options
            .iter()
            .filter(|(_, path)| *path == Some(Path::new("-")))
            .map(|(option, _)| *option);
        match (stdin.next(), stdin.next()) {
            (Some(first), Some(second)) => Err(CardFileError::BadValue {
                option: second,
                reason: format!("standard input is already read by {first}"),
            }),
            _ => Ok(SecretFiles::default()),
        }
    }

    /// The secret of a plain flag, else of its file option, else none.
    pub fn flag_or_file(
        &mut self,
        option: &'static str,
        flag: Option<SecretString>,
        file: Option<&Path>,
    ) -> Result<Option<SecretString>, CardFileError> {
        match (flag, file) {
            (Some(secret), _) => Ok(Some(secret)),
            (None, Some(path)) => self.read(option, path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The first line of `path` (`-`: standard input), without its line
    /// ending. The buffers holding it are wiped.
    fn read(&mut self, option: &'static str, path: &Path) -> Result<SecretString, CardFileError> {
        let mut text = Zeroizing::new(String::new());
        if path == Path::new("-") {
            if let Some(first) = self.stdin_taken.replace(option) {
                return Err(CardFileError::BadValue {
                    option,
                    reason: format!("standard input is already read by {first}"),
                });
            }
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| CardFileError::BadValue {
                    option,
                    reason: format!("cannot read standard input: {error}"),
                })?;
        } else {
            *text = std::fs::read_to_string(path).map_err(|error| CardFileError::BadValue {
                option,
                reason: format!("cannot read {}: {error}", path.display()),
            })?;
        }
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(CardFileError::BadValue {
                option,
                reason: format!("{} is empty", path.display()),
            });
        }
        Ok(SecretString::new(line))
    }
}
