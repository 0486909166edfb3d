//! Card profiles: good ones from TOML and JSON, and one bad profile per rule
//! with the exact message fragment that names the field and the rule.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vscard_applet::{Algorithm, PinRules, Slot};
use vscard_issuance::{
    CardProfile, Environment, ProfileError, ProfileRule, SecretString, SlotAlgorithms,
};

const MINIMAL: &str = include_str!("data/issuance/minimal.toml");
const FULL_TOML: &str = include_str!("data/issuance/full.toml");
const FULL_JSON: &str = include_str!("data/issuance/full.json");

/// The minimal profile with one piece of text replaced.
fn minimal_with(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "fixture lacks {from:?}");
    MINIMAL.replacen(from, to, 1)
}

fn toml_error(text: &str) -> String {
    match CardProfile::from_toml(text) {
        Ok(_) => panic!("profile was accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

fn json_error(text: &str) -> String {
    match CardProfile::from_json(text) {
        Ok(_) => panic!("profile was accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

fn assert_contains(message: &str, fragment: &str) {
    assert!(
        message.contains(fragment),
        "message {message:?} lacks {fragment:?}"
    );
}

#[test]
fn minimal_toml_takes_the_defaults() {
    let profile = CardProfile::from_toml(MINIMAL).unwrap();
    assert_eq!(profile.name, "Sample Specimen");
    assert_eq!(profile.uuid, "000123456789");
    assert_eq!(profile.pin.expose(), "123456");
    assert_eq!(profile.unlock_code.expose(), "654321");
    assert_eq!(profile.environment, Environment::Sandbox);
    assert_eq!(profile.certificate_validity_years, 2);
    assert_eq!(profile.pin_policy, PinRules::default());
    assert_eq!(profile.pin_policy.pin_tries, 3);
    assert_eq!(profile.pin_policy.puk_tries, 3);
    assert!(profile.seed.is_none());
    let slots = profile.slots;
    assert_eq!(
        slots.algorithm(Slot::AUTHENTICATION),
        Some(Algorithm::Rsa2048)
    );
    assert_eq!(slots.algorithm(Slot::SIGNATURE), Some(Algorithm::EccP256));
    assert_eq!(
        slots.algorithm(Slot::KEY_MANAGEMENT),
        Some(Algorithm::Rsa2048)
    );
    assert_eq!(
        slots.algorithm(Slot::CARD_AUTHENTICATION),
        Some(Algorithm::EccP256)
    );
}

fn assert_full_profile(profile: &CardProfile) {
    assert_eq!(profile.name, "Alex O'Neill-Smith");
    assert_eq!(profile.uuid, "555000111222");
    assert_eq!(profile.pin.expose(), "24681357");
    assert_eq!(profile.unlock_code.expose(), "97531864");
    assert_eq!(
        profile.environment,
        Environment::Custom("dev-ptl-2".to_owned())
    );
    assert_eq!(profile.certificate_validity_years, 3);
    assert_eq!(
        profile.seed.as_ref().map(SecretString::expose),
        Some("full-profile-seed")
    );
    assert_eq!(
        profile.slots,
        SlotAlgorithms {
            piv_authentication: Algorithm::EccP256,
            digital_signature: Algorithm::EccP384,
            key_management: Algorithm::Rsa2048,
            card_authentication: Algorithm::EccP256,
        }
    );
    assert_eq!(
        profile.pin_policy,
        PinRules {
            min_length: 8,
            max_length: 8,
            digits_only: true,
            pin_tries: 5,
            puk_tries: 10
        }
    );
    assert_eq!(profile.roles.len(), 2);
    assert_eq!(profile.roles[0].business_functions, ["B0264", "B0360"]);
    assert_eq!(profile.roles[1].code, "R8008");
    assert_eq!(profile.roles[1].ods_code, "A81001");
}

#[test]
fn full_profile_reads_the_same_from_toml_and_json() {
    assert_full_profile(&CardProfile::from_toml(FULL_TOML).unwrap());
    assert_full_profile(&CardProfile::from_json(FULL_JSON).unwrap());
}

#[test]
fn demo_profile_is_the_sample_specimen_and_round_trips() {
    let demo = CardProfile::demo();
    demo.validate().unwrap();
    assert_eq!(demo.name, "Sample Specimen");
    assert_eq!(demo.uuid, "000123456789");
    assert_eq!(demo.pin.expose(), "123456");
    assert_eq!(demo.unlock_code.expose(), "654321");
    assert_eq!(demo.roles.len(), 1);
    assert_eq!(demo.roles[0].code, "R8000");
    assert_eq!(demo.environment, Environment::Sandbox);

    let again = CardProfile::from_toml(&demo.to_toml().unwrap()).unwrap();
    assert_eq!(again.uuid, demo.uuid);
    assert_eq!(again.roles, demo.roles);
    assert_eq!(again.pin.expose(), demo.pin.expose());
    let json = serde_json::to_string(&demo).unwrap();
    assert_eq!(CardProfile::from_json(&json).unwrap().roles, demo.roles);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let profile = CardProfile::from_toml(FULL_TOML).unwrap();
    let debug = format!("{profile:?}");
    for secret in ["24681357", "97531864", "full-profile-seed"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert_contains(&debug, "<redacted>");
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let message = toml_error(&format!("colour = \"blue\"\n{MINIMAL}"));
    assert_contains(&message, "unknown field `colour`");
    let message = toml_error(&minimal_with(
        "ods_code = \"RX1\"",
        "ods_code = \"RX1\"\nsite = \"A\"",
    ));
    assert_contains(&message, "roles[0]");
    assert_contains(&message, "unknown field `site`");
    let message = toml_error(&format!("{MINIMAL}\n[pin_policy]\nmax_tries = 3\n"));
    assert_contains(&message, "unknown field `max_tries`");
    let message = json_error(r#"{"name": "A", "nickname": "B"}"#);
    assert_contains(&message, "unknown field `nickname`");
}

#[test]
fn uuid_must_be_exactly_twelve_digits() {
    let message = toml_error(&minimal_with("000123456789", "00012345678"));
    assert_eq!(message, "uuid: must be exactly 12 digits, got 11");
    let message = toml_error(&minimal_with("000123456789", "0001234567890"));
    assert_eq!(message, "uuid: must be exactly 12 digits, got 13");
    let message = toml_error(&minimal_with("000123456789", "00012345678X"));
    assert_eq!(message, "uuid: must contain only the digits 0-9");
    let json = serde_json::to_string(&CardProfile::demo())
        .unwrap()
        .replace("000123456789", "12345678901");
    assert_eq!(json_error(&json), "uuid: must be exactly 12 digits, got 11");
}

#[test]
fn pin_and_unlock_code_lengths_and_digits() {
    let message = toml_error(&minimal_with("pin = \"123456\"", "pin = \"12345\""));
    assert_eq!(message, "pin: must be 6 to 8 digits, got 5");
    assert!(!message.contains("12345\""));
    let message = toml_error(&minimal_with("pin = \"123456\"", "pin = \"123456789\""));
    assert_eq!(message, "pin: must be 6 to 8 digits, got 9");
    let message = toml_error(&minimal_with("pin = \"123456\"", "pin = \"12345a\""));
    assert_eq!(message, "pin: must contain only the digits 0-9");
    let message = toml_error(&minimal_with(
        "unlock_code = \"654321\"",
        "unlock_code = \"65432\"",
    ));
    assert_eq!(message, "unlock_code: must be 6 to 8 digits, got 5");
    let message = toml_error(&minimal_with(
        "unlock_code = \"654321\"",
        "unlock_code = \"6543 1\"",
    ));
    assert_eq!(message, "unlock_code: must contain only the digits 0-9");
}

#[test]
fn pin_follows_the_policy_bounds() {
    let strict = format!("{MINIMAL}\n[pin_policy]\nmin_length = 8\n");
    assert_eq!(toml_error(&strict), "pin: must be 8 to 8 digits, got 6");
    let too_short = format!("{MINIMAL}\n[pin_policy]\nmin_length = 3\n");
    assert_eq!(
        toml_error(&too_short),
        "pin_policy.min_length: must be between 4 and 8, got 3"
    );
    let inverted = format!("{MINIMAL}\n[pin_policy]\nmin_length = 7\nmax_length = 6\n");
    assert_eq!(
        toml_error(&inverted),
        "pin_policy.max_length: must be between 7 and 8, got 6"
    );
    let tries = format!("{MINIMAL}\n[pin_policy]\npin_tries = 16\n");
    assert_eq!(
        toml_error(&tries),
        "pin_policy.pin_tries: must be between 1 and 15, got 16"
    );
    let puk = format!("{MINIMAL}\n[pin_policy]\npuk_tries = 0\n");
    assert_eq!(
        toml_error(&puk),
        "pin_policy.puk_tries: must be between 1 and 15, got 0"
    );
}

#[test]
fn roles_are_required_and_checked() {
    let without_roles = MINIMAL.split("[[roles]]").next().unwrap().to_owned();
    assert_contains(&toml_error(&without_roles), "missing field `roles`");
    let empty = format!("roles = []\n{without_roles}");
    assert_eq!(
        toml_error(&empty),
        "roles: must list at least one role profile, got none"
    );
    let message = toml_error(&minimal_with("code = \"R8000\"", "code = \"X8000\""));
    assert_eq!(
        message,
        "roles[0].code: must be R followed by 1 to 8 digits (e.g. R8000), got \"X8000\""
    );
    let message = toml_error(&minimal_with("[\"B0264\"]", "[\"B0264\", \"B26\"]"));
    assert_eq!(
        message,
        "roles[0].business_functions[1]: must be B followed by 4 digits (e.g. B0264), got \"B26\""
    );
    let message = toml_error(&minimal_with("ods_code = \"RX1\"", "ods_code = \"rx1\""));
    assert_contains(&message, "roles[0].ods_code: must be an ODS code");
    let message = toml_error(&minimal_with(
        "ods_code = \"RX1\"",
        "ods_code = \"RX1234567X\"",
    ));
    assert_contains(&message, "roles[0].ods_code: must be an ODS code of 1 to 9");
    let message = toml_error(&minimal_with(
        "name = \"Clinical",
        "name = \"  \"\nx = \"Clinical",
    ));
    assert_contains(&message, "roles[0]");
}

#[test]
fn unknown_algorithm_names_the_slot() {
    let text = format!("{MINIMAL}\n[slots]\n9a = \"ed448\"\n");
    let message = toml_error(&text);
    assert_contains(&message, "slots.9a");
    assert_contains(&message, "unknown variant `ed448`");
    let json = serde_json::to_string(&CardProfile::demo())
        .unwrap()
        .replace(r#""9c":"p256""#, r#""9c":"rsa8192""#);
    let message = json_error(&json);
    assert_contains(&message, "slots.9c");
    assert_contains(&message, "unknown variant `rsa8192`");
}

#[test]
fn environment_names() {
    let integration = minimal_with("unlock_code", "environment = \"integration\"\nunlock_code");
    assert_eq!(
        CardProfile::from_toml(&integration).unwrap().environment,
        Environment::Integration
    );
    let custom = minimal_with("unlock_code", "environment = \"ptl-int-2\"\nunlock_code");
    assert_eq!(
        CardProfile::from_toml(&custom).unwrap().environment.name(),
        "ptl-int-2"
    );
    let bad = minimal_with("unlock_code", "environment = \"../Prod\"\nunlock_code");
    assert_contains(
        &toml_error(&bad),
        "environment: must be sandbox, integration or a custom name",
    );
    assert!(Environment::parse("2fast").is_err());
    assert!(Environment::parse("").is_err());
    assert_eq!(Environment::parse("sandbox").unwrap(), Environment::Sandbox);
}

#[test]
fn other_fields() {
    let message = toml_error(&minimal_with("name = \"Sample Specimen\"", "name = \"\""));
    assert_eq!(message, "name: must not be empty");
    let long = "x".repeat(65);
    let message = toml_error(&minimal_with("Sample Specimen", &long));
    assert_eq!(message, "name: must be at most 64 characters, got 65");
    let message = toml_error(&minimal_with("Sample Specimen", "Sample\\u0007Specimen"));
    assert_eq!(message, "name: must not contain control characters");
    let years = minimal_with("unlock_code", "certificate_validity_years = 0\nunlock_code");
    assert_eq!(
        toml_error(&years),
        "certificate_validity_years: must be between 1 and 20, got 0"
    );
    let seed = minimal_with("unlock_code", "seed = \"\"\nunlock_code");
    assert_eq!(toml_error(&seed), "seed: must not be empty");
}

#[test]
fn wrong_types_and_syntax_are_parse_errors() {
    let message = toml_error(&minimal_with(
        "uuid = \"000123456789\"",
        "uuid = 123456789012",
    ));
    assert_contains(&message, "uuid");
    assert_contains(&message, "TOML");
    let message = toml_error("name = ");
    assert_contains(&message, "TOML");
    let message = json_error("{\"name\": ");
    assert_contains(&message, "JSON");
    let json = serde_json::to_string(&CardProfile::demo()).unwrap();
    assert_contains(&json_error(&format!("{json} trailing")), "JSON");
}

#[test]
fn errors_are_typed() {
    let error = CardProfile::from_toml(&minimal_with("000123456789", "00012345678")).unwrap_err();
    assert_eq!(
        error,
        ProfileError::Invalid {
            field: "uuid".to_owned(),
            rule: ProfileRule::ExactDigits {
                expected: 12,
                got: 11
            }
        }
    );
}

#[test]
fn profiles_built_in_code_are_validated_too() {
    let mut profile = CardProfile::demo();
    profile.roles.clear();
    assert_eq!(
        profile.validate().unwrap_err().to_string(),
        "roles: must list at least one role profile, got none"
    );
    let mut profile = CardProfile::demo();
    profile.pin = SecretString::new("1234");
    assert_eq!(
        profile.validate().unwrap_err().to_string(),
        "pin: must be 6 to 8 digits, got 4"
    );
}

#[test]
fn seed_gives_a_reproducible_generator() {
    use rand_core::Rng;
    let mut profile = CardProfile::demo();
    assert!(profile.seeded_rng().is_none());
    profile.seed = Some(SecretString::new("alpha"));
    let mut first = profile.seeded_rng().unwrap();
    let mut second = profile.seeded_rng().unwrap();
    assert_eq!(first.next_u64(), second.next_u64());
    profile.seed = Some(SecretString::new("beta"));
    let mut other = profile.seeded_rng().unwrap();
    assert_ne!(first.next_u64(), other.next_u64());
}

#[test]
fn roles_from_command_line_flags() {
    use vscard_issuance::RoleProfile;
    let role: RoleProfile = "R8000:Clinical Practitioner Access Role:B0264:RX1"
        .parse()
        .unwrap();
    assert_eq!(role, CardProfile::demo().roles[0]);
    let role = RoleProfile::parse_flag("R8008:Admin: Support:B0069,B0082:A81001").unwrap();
    assert_eq!(role.name, "Admin: Support");
    assert_eq!(role.business_functions, ["B0069", "B0082"]);
    let role = RoleProfile::parse_flag("R8000:Name::RX1").unwrap();
    assert!(role.business_functions.is_empty());
    let message = RoleProfile::parse_flag("R8000:RX1")
        .unwrap_err()
        .to_string();
    assert_contains(&message, "--role: must be CODE:NAME:BUSINESS_FUNCTIONS:ODS");
    let message = RoleProfile::parse_flag("R8000:Name:B1:RX1")
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "--role.business_functions[0]: must be B followed by 4 digits (e.g. B0264), got \"B1\""
    );
    let environment: Environment = "integration".parse().unwrap();
    assert_eq!(environment, Environment::Integration);
    assert!("Not Valid".parse::<Environment>().is_err());
}

#[test]
fn capacity_defaults_to_256_kib_and_is_bounded() {
    let profile = CardProfile::from_toml(MINIMAL).unwrap();
    assert_eq!(profile.capacity, 256 * 1024);
    assert_eq!(profile.capacity, vscard_applet::DEFAULT_CAPACITY);
    assert!(!profile.to_toml().unwrap().contains("capacity"));
    let set = format!("capacity = 65536\n{MINIMAL}");
    let profile = CardProfile::from_toml(&set).unwrap();
    assert_eq!(profile.capacity, 65536);
    let again = CardProfile::from_toml(&profile.to_toml().unwrap()).unwrap();
    assert_eq!(again.capacity, 65536);
    assert_eq!(
        toml_error(&format!("capacity = 1024\n{MINIMAL}")),
        "capacity: must be between 16384 and 16777216, got 1024"
    );
    assert_contains(
        &toml_error(&format!("capacity = -1\n{MINIMAL}")),
        "capacity: ",
    );
}
