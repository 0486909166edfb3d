//! What a card in a reader is called besides its index, for `vscard ctl
//! PATH ... --card NAME`: the image file it was served from and the user
//! ID on it. The bridge knows cards only as values; whoever opens them
//! (the command line) gives each its [`CardLabel`], and a swap replaces
//! the label with the new card's.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// The names of one card: the file it was served from and the user ID it
/// carries, each when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardLabel {
    /// The card image, as an absolute path.
    pub file: Option<PathBuf>,
    /// The 12-digit user ID on the card.
    pub user_id: Option<String>,
}

impl CardLabel {
    /// The label as a JSON object: `card`, `file` and `user_id` (null when
    /// not known).
    pub fn to_json(&self, card: usize) -> serde_json::Value {
        serde_json::json!({
            "card": card,
            "file": self.file.as_ref().map(|file| file.display().to_string()),
            "user_id": self.user_id,
        })
    }
}

/// Every card's label, by index, shared by the control socket's clients.
#[derive(Debug, Default)]
pub(crate) struct CardLabels(Mutex<Vec<CardLabel>>);

impl CardLabels {
    pub(crate) fn new(labels: Vec<CardLabel>) -> CardLabels {
        CardLabels(Mutex::new(labels))
    }

    /// Card `index` now carries `label` (after a swap).
    pub(crate) fn set(&self, index: usize, label: CardLabel) {
        let mut labels = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if labels.len() <= index {
            labels.resize(index + 1, CardLabel::default());
        }
        if let Some(slot) = labels.get_mut(index) {
            *slot = label;
        }
    }

    /// The labels of cards `0..count` as one JSON array (an unlabelled
    /// card has nulls).
    pub(crate) fn to_json(&self, count: usize) -> serde_json::Value {
        let labels = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::Value::Array(
            (0..count)
                .map(|index| {
                    labels
                        .get(index)
                        .cloned()
                        .unwrap_or_default()
                        .to_json(index)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_list_every_card_and_a_swap_replaces_one() {
        let labels = CardLabels::new(vec![CardLabel {
            file: Some(PathBuf::from("/cards/a.json")),
            user_id: Some("000123456789".to_owned()),
        }]);
        assert_eq!(
            labels.to_json(2).to_string(),
            r#"[{"card":0,"file":"/cards/a.json","user_id":"000123456789"},{"card":1,"file":null,"user_id":null}]"#
        );
        labels.set(
            1,
            CardLabel {
                file: Some(PathBuf::from("/cards/b.json")),
                user_id: None,
            },
        );
        assert_eq!(
            labels.to_json(2)[1].to_string(),
            r#"{"card":1,"file":"/cards/b.json","user_id":null}"#
        );
    }
}
