//! Properties of profile parsing and validation: no input makes them panic,
//! and the UUID, PIN and unlock-code rules hold for arbitrary values.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::DateTime;
use proptest::prelude::*;
use vscard_issuance::{CardProfile, SecretString, add_years};

proptest! {
    #[test]
    fn parsing_never_panics(text in ".{0,400}") {
        let _ = CardProfile::from_toml(&text);
        let _ = CardProfile::from_json(&text);
    }

    #[test]
    fn uuid_is_valid_exactly_when_twelve_ascii_digits(uuid in "[0-9a-z٣ ]{0,14}") {
        let profile = CardProfile { uuid: uuid.clone(), ..CardProfile::demo() };
        let expected = uuid.len() == 12 && uuid.bytes().all(|byte| byte.is_ascii_digit());
        prop_assert_eq!(profile.validate().is_ok(), expected);
    }

    #[test]
    fn pin_and_unlock_code_need_six_to_eight_digits(pin in "[0-9]{0,10}", code in "[0-9]{0,10}") {
        let profile = CardProfile {
            pin: SecretString::new(pin.clone()),
            unlock_code: SecretString::new(code.clone()),
            ..CardProfile::demo()
        };
        let expected = (6..=8).contains(&pin.len()) && (6..=8).contains(&code.len());
        let result = profile.validate();
        prop_assert_eq!(result.is_ok(), expected);
        if let Err(error) = result {
            // The message gives the length, never the value.
            let message = error.to_string();
            prop_assert!(pin.len() < 4 || !message.contains(&pin));
        }
    }

    #[test]
    fn adding_years_keeps_month_and_time(
        year in 1970u16..2200,
        month in 1u8..=12,
        day in 1u8..=28,
        hour in 0u8..24,
        years in 1u32..=20,
    ) {
        let start = DateTime::new(year, month, day, hour, 15, 30).unwrap();
        let end = add_years(start, years).unwrap();
        prop_assert_eq!(u32::from(end.year()), u32::from(year) + years);
        prop_assert_eq!((end.month(), end.day(), end.hour()), (month, day, hour));
        prop_assert!(end > start);
    }
}
