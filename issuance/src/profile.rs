//! The card profile: who the card belongs to, what it holds and how it is
//! protected, as a Registration Authority would record it.
//!
//! A profile is read from TOML or JSON ([`CardProfile::from_toml`],
//! [`CardProfile::from_json`]) or built in code and checked with
//! [`CardProfile::validate`]. Unknown fields are refused; every error names
//! the field (`roles[0].code`) and the rule it breaks.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vscard_emulator::CardRng;

use super::applet_format;
use super::error::{ProfileError, ProfileFormat, ProfileRule};
use super::secret::SecretString;
use vscard_applet::{Algorithm, PinRules, Slot};

/// Everything needed to issue one card.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardProfile {
    /// The holder's name as printed on the card (certificate CN).
    pub name: String,
    /// The 12-digit unique user ID printed on the card (e.g. `000123456789`).
    pub uuid: String,
    /// The PIN (digits; length bounded by `pin_policy`, 6 to 8 by default).
    pub pin: SecretString,
    /// The unlock code the RA sends to the holder: the PIV PUK (6 to 8 digits).
    pub unlock_code: SecretString,
    /// The holder's role profiles; at least one.
    pub roles: Vec<RoleProfile>,
    /// The environment whose test PKI issues the certificates.
    #[serde(default)]
    pub environment: Environment,
    /// Key algorithm per slot.
    #[serde(default)]
    pub slots: SlotAlgorithms,
    /// Certificate validity in years (default 2, as NHS smartcard
    /// certificates are renewed every two years).
    #[serde(default = "default_validity_years")]
    pub certificate_validity_years: u32,
    /// PIN and unlock-code policy, written in profiles as the table
    /// `min_length`, `max_length` (defaults 6 and 8; 4 to 8), `pin_tries`
    /// and `puk_tries` (defaults 3; 1 to 15). `digits_only` is not in the
    /// format: a profile's PIN and unlock code are always digits.
    #[serde(default, with = "applet_format::pin_policy")]
    pub pin_policy: PinRules,
    /// Bytes of card storage for data objects and keys (default 262144,
    /// 256 KiB, about a real PIV card's; 16384 to 16777216). Past it PUT
    /// DATA, key generation and key import answer `6A84`. Not written by
    /// [`CardProfile::to_toml`] when it is the default.
    #[serde(
        default = "default_capacity",
        skip_serializing_if = "is_default_capacity"
    )]
    pub capacity: u32,
    /// What card this is (`yubikey-5.7`, the default; `yubikey-5.4`, whose
    /// 3DES default management key older middleware needs; or `piv`, a
    /// plain SP 800-73-4 card without the Yubico extensions). Not written
    /// by [`CardProfile::to_toml`] when it is the default.
    #[serde(default, skip_serializing_if = "vscard_applet::Model::is_default")]
    pub model: vscard_applet::Model,
    /// A seed that makes key generation (and the certificate serials)
    /// reproducible. Anyone holding it can recreate the private keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<SecretString>,
    /// Windows smart card logon, written `windows_logon = { upn =
    /// "user@example.nhs.uk" }`: the 9A certificate then carries the
    /// holder's User Principal Name as a subject alternative name (the
    /// otherName Windows maps to the account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_logon: Option<WindowsLogon>,
}

/// What Windows smart card logon needs of the 9A certificate beyond its
/// usual extensions (extended key usages smartcardLogon and clientAuth,
/// key usage digitalSignature, a CRL distribution point).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsLogon {
    /// The account's User Principal Name, `user@domain`.
    pub upn: String,
}

/// One NHS role profile: a job role at an organisation, with the business
/// functions (activities) it grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleProfile {
    /// Job role code: `R` and digits, e.g. `R8000`.
    pub code: String,
    /// Job role name, e.g. `Clinical Practitioner Access Role`.
    pub name: String,
    /// Business function (activity) codes: `B` and 4 digits, e.g. `B0264`.
    #[serde(default)]
    pub business_functions: Vec<String>,
    /// ODS code of the organisation the role is held at, e.g. `RX1`.
    pub ods_code: String,
}

impl RoleProfile {
    /// A role from the command-line form `CODE:NAME:B1,B2:ODS`, e.g.
    /// `R8000:Clinical Practitioner Access Role:B0264:RX1`. The name may
    /// itself contain colons; the business functions may be empty
    /// (`R8000:Name::RX1`). The role is checked like a profile's roles.
    pub fn parse_flag(text: &str) -> Result<RoleProfile, ProfileError> {
        let parts: Vec<&str> = text.split(':').collect();
        let [code, name @ .., functions, ods_code] = parts.as_slice() else {
            return Err(ProfileError::invalid("--role", ProfileRule::RoleFlag));
        };
        if name.is_empty() {
            return Err(ProfileError::invalid("--role", ProfileRule::RoleFlag));
        }
        let business_functions = functions
            .split(',')
            .filter(|code| !code.is_empty())
            .map(str::to_owned)
            .collect();
        let role = RoleProfile {
            code: (*code).to_owned(),
            name: name.join(":"),
            business_functions,
            ods_code: (*ods_code).to_owned(),
        };
        role.check("--role")?;
        Ok(role)
    }
}

impl std::str::FromStr for RoleProfile {
    type Err = ProfileError;

    fn from_str(text: &str) -> Result<RoleProfile, ProfileError> {
        RoleProfile::parse_flag(text)
    }
}

impl std::str::FromStr for Environment {
    type Err = ProfileError;

    fn from_str(name: &str) -> Result<Environment, ProfileError> {
        Environment::parse(name)
    }
}

/// The test environment a card belongs to; each has its own CA chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Environment {
    /// The sandbox environment.
    #[default]
    Sandbox,
    /// The integration environment.
    Integration,
    /// Any other environment: lowercase letters, digits and dashes,
    /// starting with a letter, at most 32 characters (checked by
    /// [`Environment::check`]).
    Custom(String),
}

impl Environment {
    /// The environment's name as written in profiles and directory names.
    pub fn name(&self) -> &str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Integration => "integration",
            Environment::Custom(name) => name,
        }
    }

    /// An environment from its name, checked.
    pub fn parse(name: &str) -> Result<Environment, ProfileError> {
        let environment = Environment::from(name.to_owned());
        environment.check("environment")?;
        Ok(environment)
    }
}

impl From<String> for Environment {
    fn from(name: String) -> Environment {
        match name.as_str() {
            "sandbox" => Environment::Sandbox,
            "integration" => Environment::Integration,
            _ => Environment::Custom(name),
        }
    }
}

impl From<Environment> for String {
    fn from(environment: Environment) -> String {
        environment.name().to_owned()
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Key algorithm per PIV slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlotAlgorithms {
    /// 9A, PIV Authentication (default RSA-2048).
    #[serde(rename = "9a", with = "applet_format::slot_algorithm")]
    pub piv_authentication: Algorithm,
    /// 9C, Digital Signature (default P-256).
    #[serde(rename = "9c", with = "applet_format::slot_algorithm")]
    pub digital_signature: Algorithm,
    /// 9D, Key Management (default RSA-2048).
    #[serde(rename = "9d", with = "applet_format::slot_algorithm")]
    pub key_management: Algorithm,
    /// 9E, Card Authentication (default P-256).
    #[serde(rename = "9e", with = "applet_format::slot_algorithm")]
    pub card_authentication: Algorithm,
}

impl SlotAlgorithms {
    /// Every slot with P-256: fast to generate, handy in tests.
    pub const ALL_P256: SlotAlgorithms = SlotAlgorithms {
        piv_authentication: Algorithm::EccP256,
        digital_signature: Algorithm::EccP256,
        key_management: Algorithm::EccP256,
        card_authentication: Algorithm::EccP256,
    };

    /// The algorithm of `slot`; `None` for the retired key-management
    /// slots, which issuance leaves empty.
    pub const fn algorithm(&self, slot: Slot) -> Option<Algorithm> {
        match slot {
            Slot::AUTHENTICATION => Some(self.piv_authentication),
            Slot::SIGNATURE => Some(self.digital_signature),
            Slot::KEY_MANAGEMENT => Some(self.key_management),
            Slot::CARD_AUTHENTICATION => Some(self.card_authentication),
            _ => None,
        }
    }
}

impl Default for SlotAlgorithms {
    fn default() -> SlotAlgorithms {
        SlotAlgorithms {
            piv_authentication: Algorithm::Rsa2048,
            digital_signature: Algorithm::EccP256,
            key_management: Algorithm::Rsa2048,
            card_authentication: Algorithm::EccP256,
        }
    }
}

fn default_validity_years() -> u32 {
    2
}

fn default_capacity() -> u32 {
    vscard_applet::DEFAULT_CAPACITY
}

fn is_default_capacity(capacity: &u32) -> bool {
    *capacity == vscard_applet::DEFAULT_CAPACITY
}

impl CardProfile {
    /// The demo card: "Sample Specimen", user 000123456789, PIN 123456,
    /// unlock code 654321, one clinical role at RX1, sandbox.
    pub fn demo() -> CardProfile {
        CardProfile {
            name: "Sample Specimen".to_owned(),
            uuid: "000123456789".to_owned(),
            pin: SecretString::new("123456"),
            unlock_code: SecretString::new("654321"),
            roles: vec![RoleProfile {
                code: "R8000".to_owned(),
                name: "Clinical Practitioner Access Role".to_owned(),
                business_functions: vec!["B0264".to_owned()],
                ods_code: "RX1".to_owned(),
            }],
            environment: Environment::Sandbox,
            slots: SlotAlgorithms::default(),
            certificate_validity_years: default_validity_years(),
            pin_policy: PinRules::default(),
            capacity: default_capacity(),
            model: vscard_applet::Model::default(),
            seed: None,
            windows_logon: None,
        }
    }

    /// Reads and validates a profile in TOML.
    pub fn from_toml(text: &str) -> Result<CardProfile, ProfileError> {
        let toml_message = |error: &toml::de::Error| match error.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                format!("{} at line {line}", error.message())
            }
            None => error.message().to_owned(),
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|error| ProfileError::Parse {
                format: ProfileFormat::Toml,
                field: "profile".to_owned(),
                message: toml_message(&error),
            })?;
        let profile: CardProfile = serde_path_to_error::deserialize(deserializer)
            .map_err(|error| path_error(ProfileFormat::Toml, error, toml_message))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Reads and validates a profile in JSON.
    pub fn from_json(text: &str) -> Result<CardProfile, ProfileError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let profile: CardProfile = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| path_error(ProfileFormat::Json, error, |inner| inner.to_string()))?;
        deserializer.end().map_err(|error| ProfileError::Parse {
            format: ProfileFormat::Json,
            field: "profile".to_owned(),
            message: error.to_string(),
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// The profile as TOML (secrets included: it is the RA's record).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// A generator for reproducible issuance when the profile has a seed:
    /// ChaCha20 keyed with SHA-256 of a domain label and the seed.
    pub fn seeded_rng(&self) -> Option<CardRng> {
        let seed = self.seed.as_ref()?;
        let mut hasher = Sha256::new();
        hasher.update(b"vscard issuance seed v1\0");
        hasher.update(seed.expose().as_bytes());
        let mut key: [u8; 32] = hasher.finalize().into();
        let rng = CardRng::seeded(key);
        zeroize::Zeroize::zeroize(&mut key);
        Some(rng)
    }

    /// The first role, whose organisation names the certificate subject.
    pub fn primary_role(&self) -> Option<&RoleProfile> {
        self.roles.first()
    }
}

/// A parse error with the path of the field that failed.
fn path_error<E>(
    format: ProfileFormat,
    error: serde_path_to_error::Error<E>,
    message: impl Fn(&E) -> String,
) -> ProfileError {
    let path = error.path().to_string();
    let field = if path == "." || path.is_empty() {
        "profile".to_owned()
    } else {
        path
    };
    // A parser's message may quote the value it could not read: for a
    // secret, say only what was expected.
    let message = if SECRET_FIELDS.contains(&field.as_str()) {
        "must be a string (a quoted value); the value is not shown".to_owned()
    } else {
        message(error.inner())
    };
    ProfileError::Parse {
        format,
        field,
        message,
    }
}

/// Profile fields whose values are never shown in an error.
const SECRET_FIELDS: [&str; 3] = ["pin", "unlock_code", "seed"];
