//! Renewal windows: which of a card's certificates are due for renewal.
//!
//! NHS smartcard certificates last two years and software warns before
//! they lapse; a certificate is *due* when it ends within the window
//! (default [`DEFAULT_RENEWAL_WINDOW_DAYS`]) or has ended already.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::{CARD_SLOTS, IssuanceError, certificate};
use vscard_applet::PivState;

/// The default renewal window, in days.
pub const DEFAULT_RENEWAL_WINDOW_DAYS: u32 = 60;

const DAY_SECONDS: u64 = 24 * 60 * 60;

/// One certificate inside the renewal window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RenewalDue {
    /// The slot, `9A` .. `9E`.
    pub slot: String,
    /// Whole days until it ends (negative once it has ended).
    pub days_left: i64,
}

/// Whole days from `now` to `end` (rounded down; negative after `end`).
pub fn days_left(end: SystemTime, now: SystemTime) -> i64 {
    let whole =
        |elapsed: Duration| i64::try_from(elapsed.as_secs() / DAY_SECONDS).unwrap_or(i64::MAX);
    match end.duration_since(now) {
        Ok(ahead) => whole(ahead),
        // Rounded down: one second past the end is day -1.
        Err(past) => -whole(past.duration() + Duration::from_secs(DAY_SECONDS - 1)),
    }
}

/// The certificates of `state` that end within `window_days` of `now`
/// (or have ended), in slot order.
pub fn renewal_due(
    state: &PivState,
    now: SystemTime,
    window_days: u32,
) -> Result<Vec<RenewalDue>, IssuanceError> {
    let mut due = Vec::new();
    for slot in CARD_SLOTS {
        let Some(certificate) = certificate(state, slot)? else {
            continue;
        };
        let end = certificate
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time();
        let left = days_left(end, now);
        if left < i64::from(window_days) {
            due.push(RenewalDue {
                slot: slot.to_string(),
                days_left: left,
            });
        }
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_down_and_go_negative() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 * DAY_SECONDS);
        let day = Duration::from_secs(DAY_SECONDS);
        assert_eq!(days_left(now + day * 60, now), 60);
        assert_eq!(days_left(now + day * 60 - Duration::from_secs(1), now), 59);
        assert_eq!(days_left(now, now), 0);
        assert_eq!(days_left(now - Duration::from_secs(1), now), -1);
        assert_eq!(days_left(now - day * 2, now), -2);
        assert_eq!(days_left(now - day * 2 - Duration::from_secs(1), now), -3);
    }
}
