//! The rules of a card profile ([`CardProfile::validate`]).
//!
//! Each check reports the first broken rule with the field's path. Secrets
//! are described by their length only.

use super::error::{ProfileError, ProfileRule};
use super::profile::{CardProfile, Environment, RoleProfile, SlotAlgorithms};
use super::secret::SecretString;
use vscard_applet::{Algorithm, PinRules, Slot};

/// Digits in the NHS unique user ID.
pub const UUID_DIGITS: usize = 12;
/// Bounds of the unlock code (PIV PUK) length.
pub const UNLOCK_CODE_DIGITS: (usize, usize) = (6, 8);
/// Longest holder name: X.520 `ub-common-name`.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest role name.
pub const MAX_ROLE_NAME_CHARS: usize = 128;
/// Longest seed.
pub const MAX_SEED_CHARS: usize = 256;
/// Bounds of the certificate validity in years.
pub const VALIDITY_YEARS: (u32, u32) = (1, 20);
/// Bounds of the PIN length any policy may set (PIV reference data is 8
/// bytes; fewer than 4 digits is no PIN).
pub const PIN_LENGTH_LIMITS: (u8, u8) = (4, 8);
/// Bounds of the card storage in bytes: room for what issuance writes
/// (four keys and certificates, the identity objects) up to far more than
/// a real card has.
pub const CAPACITY_LIMITS: (u32, u32) = (16 * 1024, 16 * 1024 * 1024);
/// Bounds of a retry counter: the `63Cx` status word carries 4 bits.
pub const TRIES_LIMITS: (u8, u8) = (1, 15);

impl CardProfile {
    /// Checks every rule; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<(), ProfileError> {
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        check_exact_digits("uuid", &self.uuid, UUID_DIGITS)?;
        check_pin_policy(&self.pin_policy)?;
        let (min, max) = (
            usize::from(self.pin_policy.min_length),
            usize::from(self.pin_policy.max_length),
        );
        check_secret_digits("pin", &self.pin, min, max)?;
        let (min, max) = UNLOCK_CODE_DIGITS;
        check_secret_digits("unlock_code", &self.unlock_code, min, max)?;
        // The card holds the unlock code (its PUK) to the same length rules
        // as the PIN: a code the card would refuse is refused here, by name.
        let (min, max) = (
            usize::from(self.pin_policy.min_length),
            usize::from(self.pin_policy.max_length),
        );
        check_secret_digits("unlock_code", &self.unlock_code, min, max)?;
        if self.roles.is_empty() {
            return Err(ProfileError::invalid("roles", ProfileRule::NoRoles));
        }
        for (index, role) in self.roles.iter().enumerate() {
            role.check(&format!("roles[{index}]"))?;
        }
        self.environment.check("environment")?;
        check_range(
            "certificate_validity_years",
            self.certificate_validity_years,
            VALIDITY_YEARS,
        )?;
        check_range("capacity", self.capacity, CAPACITY_LIMITS)?;
        check_slots(&self.slots, self.model)?;
        if let Some(seed) = &self.seed {
            check_seed(seed)?;
        }
        if let Some(logon) = &self.windows_logon {
            check_upn("windows_logon.upn", &logon.upn)?;
        }
        Ok(())
    }
}

/// Each slot's algorithm exists on the card model, and X25519 (which
/// cannot sign a certificate request or a login) is only in 9D.
fn check_slots(slots: &SlotAlgorithms, model: vscard_applet::Model) -> Result<(), ProfileError> {
    for slot in crate::keys::CARD_SLOTS {
        let Some(algorithm) = slots.algorithm(slot) else {
            continue;
        };
        let field = format!("slots.{}", slot.to_string().to_lowercase());
        if !model.supports(algorithm) {
            return Err(ProfileError::invalid(
                field,
                ProfileRule::ModelAlgorithm {
                    algorithm: crate::applet_format::algorithm_name(algorithm),
                    model,
                },
            ));
        }
        if algorithm == Algorithm::X25519 && slot != Slot::KEY_MANAGEMENT {
            return Err(ProfileError::invalid(field, ProfileRule::KeyAgreementOnly));
        }
    }
    Ok(())
}

impl RoleProfile {
    /// Checks the role; `field` is its path, e.g. `roles[0]`.
    pub fn check(&self, field: &str) -> Result<(), ProfileError> {
        if !is_letter_and_digits(&self.code, 'R', 1..=8) {
            return Err(ProfileError::invalid(
                format!("{field}.code"),
                ProfileRule::RoleCode {
                    got: self.code.clone(),
                },
            ));
        }
        check_text(&format!("{field}.name"), &self.name, MAX_ROLE_NAME_CHARS)?;
        for (index, code) in self.business_functions.iter().enumerate() {
            if !is_letter_and_digits(code, 'B', 4..=4) {
                return Err(ProfileError::invalid(
                    format!("{field}.business_functions[{index}]"),
                    ProfileRule::BusinessFunctionCode { got: code.clone() },
                ));
            }
        }
        // ODS codes are 1 to 9 alphanumeric characters (NHS Digital,
        // "Organisations and services": e.g. RX1, FVR79, K81003001).
        let ods = &self.ods_code;
        let ods_ok = (1..=9).contains(&ods.len())
            && ods
                .bytes()
                .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
        if !ods_ok {
            return Err(ProfileError::invalid(
                format!("{field}.ods_code"),
                ProfileRule::OdsCode { got: ods.clone() },
            ));
        }
        Ok(())
    }
}

impl Environment {
    /// Checks a custom name: 1 to 32 lowercase letters, digits and dashes,
    /// starting with a letter (it becomes a directory name).
    pub fn check(&self, field: &str) -> Result<(), ProfileError> {
        let Environment::Custom(name) = self else {
            return Ok(());
        };
        let starts_with_letter = name
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_lowercase());
        let charset_ok = name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if starts_with_letter && charset_ok && name.len() <= 32 {
            Ok(())
        } else {
            Err(ProfileError::invalid(
                field,
                ProfileRule::EnvironmentName { got: name.clone() },
            ))
        }
    }
}

/// Checks a profile's PIN policy: 4 <= min_length <= max_length <= 8,
/// tries 1 to 15 (the applet's own [`PinRules::check`] allows shorter
/// PINs than a profile may ask for).
fn check_pin_policy(rules: &PinRules) -> Result<(), ProfileError> {
    let (lowest, highest) = PIN_LENGTH_LIMITS;
    check_range(
        "pin_policy.min_length",
        u32::from(rules.min_length),
        (u32::from(lowest), u32::from(highest)),
    )?;
    check_range(
        "pin_policy.max_length",
        u32::from(rules.max_length),
        (u32::from(rules.min_length), u32::from(highest)),
    )?;
    let tries = (u32::from(TRIES_LIMITS.0), u32::from(TRIES_LIMITS.1));
    check_range("pin_policy.pin_tries", u32::from(rules.pin_tries), tries)?;
    check_range("pin_policy.puk_tries", u32::from(rules.puk_tries), tries)
}

/// Longest Windows logon UPN (Active Directory's userPrincipalName is at
/// most 1024 characters; a certificate needs far fewer).
pub const MAX_UPN_CHARS: usize = 256;

fn check_upn(field: &str, upn: &str) -> Result<(), ProfileError> {
    check_text(field, upn, MAX_UPN_CHARS)?;
    let well_formed = match upn.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !upn.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !well_formed {
        return Err(ProfileError::invalid(
            field,
            ProfileRule::Upn {
                got: upn.to_owned(),
            },
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ProfileError> {
    let count = value.chars().count();
    if value.trim().is_empty() {
        return Err(ProfileError::invalid(field, ProfileRule::Empty));
    }
    if count > max {
        return Err(ProfileError::invalid(
            field,
            ProfileRule::TooLong { max, got: count },
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ProfileError::invalid(field, ProfileRule::ControlCharacter));
    }
    Ok(())
}

fn check_exact_digits(field: &str, value: &str, expected: usize) -> Result<(), ProfileError> {
    let got = value.chars().count();
    if got != expected {
        return Err(ProfileError::invalid(
            field,
            ProfileRule::ExactDigits { expected, got },
        ));
    }
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ProfileError::invalid(field, ProfileRule::NotDigits));
    }
    Ok(())
}

fn check_secret_digits(
    field: &str,
    value: &SecretString,
    min: usize,
    max: usize,
) -> Result<(), ProfileError> {
    let got = value.char_count();
    if !(min..=max).contains(&got) {
        return Err(ProfileError::invalid(
            field,
            ProfileRule::DigitCount { min, max, got },
        ));
    }
    if !value.expose().bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ProfileError::invalid(field, ProfileRule::NotDigits));
    }
    Ok(())
}

fn check_range(field: &str, value: u32, (min, max): (u32, u32)) -> Result<(), ProfileError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ProfileError::invalid(
            field,
            ProfileRule::OutOfRange {
                min,
                max,
                got: value,
            },
        ))
    }
}

fn check_seed(seed: &SecretString) -> Result<(), ProfileError> {
    let count = seed.char_count();
    if count == 0 {
        return Err(ProfileError::invalid("seed", ProfileRule::Empty));
    }
    if count > MAX_SEED_CHARS {
        return Err(ProfileError::invalid(
            "seed",
            ProfileRule::TooLong {
                max: MAX_SEED_CHARS,
                got: count,
            },
        ));
    }
    Ok(())
}

/// `letter` followed by a number of ASCII digits within `digits`.
fn is_letter_and_digits(
    value: &str,
    letter: char,
    digits: std::ops::RangeInclusive<usize>,
) -> bool {
    value.strip_prefix(letter).is_some_and(|rest| {
        digits.contains(&rest.len()) && rest.bytes().all(|byte| byte.is_ascii_digit())
    })
}
