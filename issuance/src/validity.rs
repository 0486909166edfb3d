//! Certificate validity windows in calendar years.
//!
//! Times are whole seconds in UTC; X.509 encodes them as UTCTime up to 2049
//! and GeneralizedTime after (RFC 5280 4.1.2.5).

use std::time::SystemTime;

use der::DateTime;
use x509_cert::time::{Time, Validity};

use super::error::IssuanceError;
use super::profile::CardProfile;

/// A certificate's `notBefore` .. `notAfter`, with `notBefore < notAfter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateValidity {
    not_before: DateTime,
    not_after: DateTime,
}

impl CertificateValidity {
    /// An explicit window, e.g. an expired or a not-yet-valid one.
    pub fn new(not_before: SystemTime, not_after: SystemTime) -> Result<Self, IssuanceError> {
        CertificateValidity::from_date_times(to_date_time(not_before)?, to_date_time(not_after)?)
    }

    /// A window starting at `not_before` and lasting `years` calendar years
    /// (29 February moves to 28 February in a common year).
    pub fn years_from(not_before: SystemTime, years: u32) -> Result<Self, IssuanceError> {
        let start = to_date_time(not_before)?;
        CertificateValidity::from_date_times(start, add_years(start, years)?)
    }

    /// The profile's window (default two years) starting at `not_before`.
    pub fn for_profile(
        profile: &CardProfile,
        not_before: SystemTime,
    ) -> Result<Self, IssuanceError> {
        CertificateValidity::years_from(not_before, profile.certificate_validity_years)
    }

    fn from_date_times(not_before: DateTime, not_after: DateTime) -> Result<Self, IssuanceError> {
        if not_after <= not_before {
            return Err(IssuanceError::EmptyValidity {
                not_before,
                not_after,
            });
        }
        Ok(CertificateValidity {
            not_before,
            not_after,
        })
    }

    /// Start of the window.
    pub fn not_before(&self) -> SystemTime {
        self.not_before.to_system_time()
    }

    /// End of the window.
    pub fn not_after(&self) -> SystemTime {
        self.not_after.to_system_time()
    }

    /// The window as an X.509 `Validity`.
    pub(crate) fn to_x509(self) -> Validity {
        Validity::new(Time::from(self.not_before), Time::from(self.not_after))
    }
}

/// `time` plus `years` calendar years.
pub fn add_years(time: DateTime, years: u32) -> Result<DateTime, IssuanceError> {
    let year = u32::from(time.year())
        .checked_add(years)
        .and_then(|year| u16::try_from(year).ok())
        .ok_or(IssuanceError::TimeOutOfRange(
            der::ErrorKind::DateTime.into(),
        ))?;
    let is_leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let day = if time.month() == 2 && time.day() == 29 && !is_leap {
        28
    } else {
        time.day()
    };
    DateTime::new(
        year,
        time.month(),
        day,
        time.hour(),
        time.minutes(),
        time.seconds(),
    )
    .map_err(IssuanceError::TimeOutOfRange)
}

/// A system time as a whole-second UTC date.
pub(crate) fn to_date_time(time: SystemTime) -> Result<DateTime, IssuanceError> {
    DateTime::from_system_time(time).map_err(IssuanceError::TimeOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u16, month: u8, day: u8) -> DateTime {
        DateTime::new(year, month, day, 12, 30, 0).unwrap_or(DateTime::INFINITY)
    }

    #[test]
    fn two_years_later_is_the_same_day() {
        let later = add_years(date(2026, 11, 23), 2).ok();
        assert_eq!(later, Some(date(2028, 11, 23)));
    }

    #[test]
    fn leap_day_moves_to_the_28th() {
        assert_eq!(
            add_years(date(2028, 2, 29), 2).ok(),
            Some(date(2030, 2, 28))
        );
        assert_eq!(
            add_years(date(2028, 2, 29), 4).ok(),
            Some(date(2032, 2, 29))
        );
    }

    #[test]
    fn empty_window_is_refused() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let error = CertificateValidity::new(now, now)
            .err()
            .map(|error| error.to_string());
        assert!(error.is_some_and(|message| message.contains("must be later than")));
    }
}
