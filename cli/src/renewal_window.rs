//! `vscard inspect --renewal-window DAYS`: the certificates due for
//! renewal, as one more line of text or a `renewal` field of the JSON.

use std::time::SystemTime;

use vscard_applet::PivState;
use vscard_issuance::cards::CardFileError;
use vscard_issuance::{RenewalDue, renewal_due};

/// The certificates of `state` due within `window_days` of now.
pub fn due(state: &PivState, window_days: u32) -> Result<Vec<RenewalDue>, CardFileError> {
    Ok(renewal_due(state, SystemTime::now(), window_days)?)
}

/// The text line: `renewal:      due (60-day window): 9A ends in 29 days, ...`.
pub fn line(due: &[RenewalDue], window_days: u32) -> String {
    if due.is_empty() {
        return format!("renewal:      not due ({window_days}-day window)\n");
    }
    let slots: Vec<String> = due
        .iter()
        .map(|slot| match slot.days_left {
            left if left < 0 => format!("{} ended {} ago", slot.slot, days(-left)),
            left => format!("{} ends in {}", slot.slot, days(left)),
        })
        .collect();
    format!(
        "renewal:      DUE ({window_days}-day window): {}\n",
        slots.join(", ")
    )
}

/// The JSON field: `{"window_days": 60, "due": [{"slot": "9A", "days_left": 29}]}`.
pub fn json(due: &[RenewalDue], window_days: u32) -> serde_json::Value {
    serde_json::json!({ "window_days": window_days, "due": due })
}

fn days(count: i64) -> String {
    if count == 1 {
        "1 day".to_owned()
    } else {
        format!("{count} days")
    }
}
