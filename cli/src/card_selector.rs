//! `vscard ctl PATH ... --card CARD`: a card by its index, by its image's
//! file name or path (as served), or by the 12-digit user ID on it.
//!
//! A name is resolved against the running `serve`'s own list (the control
//! socket's `cards` answer) and must name exactly one card: an unknown or
//! ambiguous name is bad input (exit code 2) naming the cards there are.

use std::path::{Path, PathBuf};

use vscard_issuance::UUID_DIGITS;
use vscard_issuance::cards::CardFileError;

/// What `--card` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardSelector {
    /// The card's index (`0`, `1`, ...).
    Index(usize),
    /// A file name, a path or a user ID.
    Name(String),
}

impl CardSelector {
    /// Digits are an index, except 12 of them, which are a user ID;
    /// anything else is a file name or path (`./3` for a file named `3`).
    pub fn parse(text: &str) -> Result<CardSelector, String> {
        if text.is_empty() {
            return Err("wants a card index, file name, path or user ID".to_owned());
        }
        if text.len() != UUID_DIGITS && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text
                .parse()
                .map(CardSelector::Index)
                .map_err(|_| format!("no card has the index {text}"));
        }
        Ok(CardSelector::Name(text.to_owned()))
    }
}

/// One served card, as the control socket's `cards` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedLabel {
    /// Its index.
    pub index: usize,
    /// Its image, an absolute path.
    pub file: Option<PathBuf>,
    /// The user ID on it.
    pub user_id: Option<String>,
}

impl ServedLabel {
    /// The cards in a `cards` answer (a JSON array).
    pub fn parse_all(answer: &str) -> Result<Vec<ServedLabel>, String> {
        let value: serde_json::Value =
            serde_json::from_str(answer).map_err(|error| error.to_string())?;
        let items = value.as_array().ok_or("not a JSON array")?;
        items
            .iter()
            .map(|item| {
                let index = item["card"].as_u64().ok_or("a card without an index")?;
                Ok(ServedLabel {
                    index: usize::try_from(index).map_err(|error| error.to_string())?,
                    file: item["file"].as_str().map(PathBuf::from),
                    user_id: item["user_id"].as_str().map(str::to_owned),
                })
            })
            .collect()
    }

    /// True when `name` is this card's user ID, its file's name, or a
    /// path (from this directory) to its file.
    fn is_named(&self, name: &str) -> bool {
        if self.user_id.as_deref() == Some(name) {
            return true;
        }
        let Some(file) = &self.file else {
            return false;
        };
        if file.file_name().is_some_and(|file_name| file_name == name) {
            return true;
        }
        let path = Path::new(name);
        std::path::absolute(path).is_ok_and(|absolute| &absolute == file)
            || std::fs::canonicalize(path).is_ok_and(|canonical| &canonical == file)
    }

    /// `0: /tmp/a.json (user 000123456789)`.
    fn describe(&self) -> String {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "no file".to_owned(), |file| file.display().to_string());
        match &self.user_id {
            Some(user) => format!("{}: {file} (user {user})", self.index),
            None => format!("{}: {file}", self.index),
        }
    }
}

/// The index of the one card of `cards` that `name` names.
pub fn resolve(name: &str, cards: &[ServedLabel]) -> Result<usize, CardFileError> {
    let named: Vec<&ServedLabel> = cards.iter().filter(|card| card.is_named(name)).collect();
    let list = |cards: &[&ServedLabel]| {
        cards
            .iter()
            .map(|card| card.describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match named.as_slice() {
        [card] => Ok(card.index),
        [] => Err(CardFileError::BadValue {
            option: "--card",
            reason: format!(
                "no card is {name:?}; the cards are {}",
                list(&cards.iter().collect::<Vec<_>>())
            ),
        }),
        several => Err(CardFileError::BadValue {
            option: "--card",
            reason: format!(
                "{name:?} names more than one card ({}); give the index, the path or the user ID",
                list(several)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(index: usize, file: &str, user: &str) -> ServedLabel {
        ServedLabel {
            index,
            file: Some(PathBuf::from(file)),
            user_id: Some(user.to_owned()),
        }
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(CardSelector::parse("0"), Ok(CardSelector::Index(0)));
        assert_eq!(CardSelector::parse("17"), Ok(CardSelector::Index(17)));
        for name in ["000123456789", "a.json", "./3", "/x/y.json"] {
            assert_eq!(
                CardSelector::parse(name),
                Ok(CardSelector::Name(name.to_owned()))
            );
        }
        assert!(CardSelector::parse("").is_err());
        assert!(CardSelector::parse("99999999999999999999999").is_err());
    }

    #[test]
    fn names_resolve_to_one_card_or_say_which_there_are() {
        let cards = [
            card(0, "/cards/x/card.json", "000123456789"),
            card(1, "/cards/y/card.json", "555500001111"),
            card(2, "/cards/nurse.json", "555500001111"),
        ];
        assert_eq!(resolve("000123456789", &cards).unwrap(), 0);
        assert_eq!(resolve("nurse.json", &cards).unwrap(), 2);
        assert_eq!(resolve("/cards/y/card.json", &cards).unwrap(), 1);
        let unknown = resolve("other.json", &cards).unwrap_err().to_string();
        assert_eq!(
            unknown,
            "--card: no card is \"other.json\"; the cards are 0: /cards/x/card.json (user \
             000123456789), 1: /cards/y/card.json (user 555500001111), 2: /cards/nurse.json \
             (user 555500001111)"
        );
        let ambiguous = resolve("card.json", &cards).unwrap_err().to_string();
        assert_eq!(
            ambiguous,
            "--card: \"card.json\" names more than one card (0: /cards/x/card.json (user \
             000123456789), 1: /cards/y/card.json (user 555500001111)); give the index, the \
             path or the user ID"
        );
        assert!(resolve("555500001111", &cards).is_err());
    }

    #[test]
    fn the_cards_answer_parses() {
        let answer = r#"[{"card":0,"file":"/a.json","user_id":"000123456789"},{"card":1,"file":null,"user_id":null}]"#;
        let cards = ServedLabel::parse_all(answer).unwrap();
        assert_eq!(cards[0], card(0, "/a.json", "000123456789"));
        assert_eq!(
            cards[1],
            ServedLabel {
                index: 1,
                file: None,
                user_id: None
            }
        );
        assert!(ServedLabel::parse_all("error: x").is_err());
    }
}
