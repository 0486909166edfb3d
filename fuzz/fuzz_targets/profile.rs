//! The issuance profile parser (`CardProfile::from_toml`, `from_json`) on
//! arbitrary text.
//!
//! Input: byte 0 picks the format (even: TOML, odd: JSON), the rest is the
//! text (inputs that are not UTF-8 are skipped: the CLI reads text).
//!
//! Invariants: no panic; a refused profile's error message (`Display` and
//! `Debug`) never contains a secret of the input. A secret here is the value
//! of a top-level `pin`, `unlock_code` or `seed` field, a string or an
//! integer (as written in decimal), as the format's own parser reads it,
//! or, for TOML, as a `key = value` line gives it (quotes stripped) when the
//! text as a whole does not parse. Only distinctive values are checked: at
//! least 6 characters, appearing exactly once in the input; a shorter or
//! repeated value could legitimately be in a message for another reason
//! (a line number, a length, the same text in another field). A value that
//! is in the message whatever it is (the secret `profil` in "TOML
//! profile") is the message's own text: a secret counts as shown only when
//! the same input with that value changed (each letter and digit replaced,
//! the length kept) gives a message without it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vscard_fuzz::Input;
use vscard_issuance::CardProfile;

const SECRET_FIELDS: [&str; 3] = ["pin", "unlock_code", "seed"];

fn toml_secrets(text: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        for field in SECRET_FIELDS {
            match table.get(field) {
                Some(toml::Value::String(s)) => secrets.push(s.clone()),
                Some(toml::Value::Integer(i)) => secrets.push(i.to_string()),
                _ => {}
            }
        }
    }
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if SECRET_FIELDS.contains(&key) {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            secrets.push(value.to_owned());
        }
    }
    secrets
}

fn json_secrets(text: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) {
        for field in SECRET_FIELDS {
            match object.get(field) {
                Some(serde_json::Value::String(s)) => secrets.push(s.clone()),
                Some(serde_json::Value::Number(n)) => secrets.push(n.to_string()),
                _ => {}
            }
        }
    }
    secrets
}

/// The error message (`Display` and `Debug`) for `text`, if refused.
fn refusal(text: &str, json: bool) -> Option<String> {
    let result = if json {
        CardProfile::from_json(text)
    } else {
        CardProfile::from_toml(text)
    };
    result.err().map(|error| format!("{error}\n{error:?}"))
}

/// `secret` with each letter and digit replaced by another of its kind.
fn changed(secret: &str) -> String {
    secret
        .chars()
        .map(|c| match c {
            'x' => 'y',
            c if c.is_ascii_alphabetic() => 'x',
            '7' => '8',
            c if c.is_ascii_digit() => '7',
            c => c,
        })
        .collect()
}

fuzz_target!(|bytes: &[u8]| {
    let mut input = Input::new(bytes);
    let json = input.byte() & 1 == 1;
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };
    let secrets = if json {
        json_secrets(text)
    } else {
        toml_secrets(text)
    };
    let Some(shown) = refusal(text, json) else {
        return;
    };
    for secret in secrets {
        if secret.chars().count() >= 6
            && text.matches(secret.as_str()).count() == 1
            && shown.contains(&secret)
        {
            let other = changed(&secret);
            let from_the_input = other != secret
                && !refusal(&text.replacen(&secret, &other, 1), json)
                    .is_some_and(|again| again.contains(&secret));
            assert!(
                !from_the_input,
                "the error shows the secret {secret:?}: {shown}"
            );
        }
    }
});
