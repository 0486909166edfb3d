//! Status words (ISO 7816-4 5.6, with the Java Card and PIV usages).
//!
//! One [`Status`] value is the card's answer to a command. It converts both
//! ways with the raw `u16` for every possible value: named variants cover the
//! status words this runtime and its applets use, [`Status::Other`] carries
//! the rest, and `Status::from_u16(sw).to_u16() == sw` holds for all `sw`.

use std::fmt;

/// A status word, SW1-SW2.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// `9000`: normal processing.
    #[default]
    Success,
    /// `61xx`: `xx` more response bytes are available through GET RESPONSE
    /// (`00` means 256 or more).
    BytesRemaining(u8),
    /// `6200`: warning, no information given, state unchanged.
    WarningUnchanged,
    /// `6281`: part of the returned data may be corrupted.
    DataMayBeCorrupted,
    /// `6282`: end of file or record reached before reading Ne bytes.
    EndOfData,
    /// `6283`: the selected file or application is deactivated.
    SelectedFileDeactivated,
    /// `6300`: warning, state changed, no information given.
    WarningChanged,
    /// `63Cx`: verification failed, `x` tries left (0..=15).
    RemainingRetries(u8),
    /// `6400`: execution error, state unchanged.
    ExecutionError,
    /// `6581`: memory failure (a persistent write did not complete).
    MemoryFailure,
    /// `6700`: wrong length (Lc or the APDU's structure).
    WrongLength,
    /// `6881`: logical channel not supported or not open.
    LogicalChannelNotSupported,
    /// `6882`: secure messaging not supported.
    SecureMessagingNotSupported,
    /// `6883`: the last command of a chain was expected.
    LastCommandOfChainExpected,
    /// `6884`: command chaining not supported.
    ChainingNotSupported,
    /// `6900`: command not allowed, no information given.
    CommandNotAllowed,
    /// `6981`: command incompatible with the file structure.
    CommandIncompatible,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: reference data not usable.
    ReferenceDataNotUsable,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6986`: command not allowed (no current EF).
    CommandNotAllowedNoCurrentEf,
    /// `6999`: applet selection failed (Java Card).
    AppletSelectFailed,
    /// `6A80`: incorrect parameters in the command data field.
    IncorrectData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    NotFound,
    /// `6A84`: not enough memory space in the file.
    NotEnoughMemory,
    /// `6A86`: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6A88`: referenced data or reference data not found.
    ReferenceNotFound,
    /// `6B00`: wrong parameters P1-P2.
    WrongP1P2,
    /// `6Cxx`: wrong Le field; `xx` is the exact number of available bytes.
    WrongLe(u8),
    /// `6D00`: instruction code not supported or invalid.
    InstructionNotSupported,
    /// `6E00`: class not supported.
    ClassNotSupported,
    /// `6F00`: no precise diagnosis.
    UnknownError,
    /// Any other status word, carried as is.
    Other(u16),
}

impl Status {
    /// The status word as a `u16` (SW1 in the high byte).
    pub const fn to_u16(self) -> u16 {
        match self {
            Status::Success => 0x9000,
            Status::BytesRemaining(n) => 0x6100 | n as u16,
            Status::WarningUnchanged => 0x6200,
            Status::DataMayBeCorrupted => 0x6281,
            Status::EndOfData => 0x6282,
            Status::SelectedFileDeactivated => 0x6283,
            Status::WarningChanged => 0x6300,
            Status::RemainingRetries(n) => 0x63C0 | (n & 0x0F) as u16,
            Status::ExecutionError => 0x6400,
            Status::MemoryFailure => 0x6581,
            Status::WrongLength => 0x6700,
            Status::LogicalChannelNotSupported => 0x6881,
            Status::SecureMessagingNotSupported => 0x6882,
            Status::LastCommandOfChainExpected => 0x6883,
            Status::ChainingNotSupported => 0x6884,
            Status::CommandNotAllowed => 0x6900,
            Status::CommandIncompatible => 0x6981,
            Status::SecurityStatusNotSatisfied => 0x6982,
            Status::AuthenticationMethodBlocked => 0x6983,
            Status::ReferenceDataNotUsable => 0x6984,
            Status::ConditionsNotSatisfied => 0x6985,
            Status::CommandNotAllowedNoCurrentEf => 0x6986,
            Status::AppletSelectFailed => 0x6999,
            Status::IncorrectData => 0x6A80,
            Status::FunctionNotSupported => 0x6A81,
            Status::NotFound => 0x6A82,
            Status::NotEnoughMemory => 0x6A84,
            Status::IncorrectP1P2 => 0x6A86,
            Status::ReferenceNotFound => 0x6A88,
            Status::WrongP1P2 => 0x6B00,
            Status::WrongLe(n) => 0x6C00 | n as u16,
            Status::InstructionNotSupported => 0x6D00,
            Status::ClassNotSupported => 0x6E00,
            Status::UnknownError => 0x6F00,
            Status::Other(sw) => sw,
        }
    }

    /// The status for a raw status word; total over `u16`.
    pub const fn from_u16(sw: u16) -> Status {
        let [sw1, sw2] = sw.to_be_bytes();
        match sw1 {
            0x61 => return Status::BytesRemaining(sw2),
            0x6C => return Status::WrongLe(sw2),
            0x63 if sw2 & 0xF0 == 0xC0 => return Status::RemainingRetries(sw2 & 0x0F),
            _ => {}
        }
        match sw {
            0x9000 => Status::Success,
            0x6200 => Status::WarningUnchanged,
            0x6281 => Status::DataMayBeCorrupted,
            0x6282 => Status::EndOfData,
            0x6283 => Status::SelectedFileDeactivated,
            0x6300 => Status::WarningChanged,
            0x6400 => Status::ExecutionError,
            0x6581 => Status::MemoryFailure,
            0x6700 => Status::WrongLength,
            0x6881 => Status::LogicalChannelNotSupported,
            0x6882 => Status::SecureMessagingNotSupported,
            0x6883 => Status::LastCommandOfChainExpected,
            0x6884 => Status::ChainingNotSupported,
            0x6900 => Status::CommandNotAllowed,
            0x6981 => Status::CommandIncompatible,
            0x6982 => Status::SecurityStatusNotSatisfied,
            0x6983 => Status::AuthenticationMethodBlocked,
            0x6984 => Status::ReferenceDataNotUsable,
            0x6985 => Status::ConditionsNotSatisfied,
            0x6986 => Status::CommandNotAllowedNoCurrentEf,
            0x6999 => Status::AppletSelectFailed,
            0x6A80 => Status::IncorrectData,
            0x6A81 => Status::FunctionNotSupported,
            0x6A82 => Status::NotFound,
            0x6A84 => Status::NotEnoughMemory,
            0x6A86 => Status::IncorrectP1P2,
            0x6A88 => Status::ReferenceNotFound,
            0x6B00 => Status::WrongP1P2,
            0x6D00 => Status::InstructionNotSupported,
            0x6E00 => Status::ClassNotSupported,
            0x6F00 => Status::UnknownError,
            other => Status::Other(other),
        }
    }

    /// SW1 and SW2 as bytes, in wire order.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// `RemainingRetries` for a try counter, saturating at 15 as the encoding
    /// requires.
    pub const fn retries(tries_left: u8) -> Status {
        Status::RemainingRetries(if tries_left > 15 { 15 } else { tries_left })
    }

    /// `BytesRemaining` for `n` pending bytes (`00` stands for 256 or more).
    pub const fn bytes_remaining(n: usize) -> Status {
        Status::BytesRemaining(if n >= 256 { 0 } else { n as u8 })
    }

    /// True for `9000` and `61xx`, the statuses that carry a normal answer.
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Success | Status::BytesRemaining(_))
    }

    /// A short English description, for traces and error messages.
    pub fn description(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::BytesRemaining(_) => "more data available",
            Status::WarningUnchanged => "warning, state unchanged",
            Status::DataMayBeCorrupted => "data may be corrupted",
            Status::EndOfData => "end of data reached",
            Status::SelectedFileDeactivated => "selected file deactivated",
            Status::WarningChanged => "warning, state changed",
            Status::RemainingRetries(_) => "verification failed",
            Status::ExecutionError => "execution error",
            Status::MemoryFailure => "memory failure",
            Status::WrongLength => "wrong length",
            Status::LogicalChannelNotSupported => "logical channel not supported",
            Status::SecureMessagingNotSupported => "secure messaging not supported",
            Status::LastCommandOfChainExpected => "last command of chain expected",
            Status::ChainingNotSupported => "command chaining not supported",
            Status::CommandNotAllowed => "command not allowed",
            Status::CommandIncompatible => "command incompatible with file structure",
            Status::SecurityStatusNotSatisfied => "security status not satisfied",
            Status::AuthenticationMethodBlocked => "authentication method blocked",
            Status::ReferenceDataNotUsable => "reference data not usable",
            Status::ConditionsNotSatisfied => "conditions of use not satisfied",
            Status::CommandNotAllowedNoCurrentEf => "command not allowed, no current EF",
            Status::AppletSelectFailed => "applet selection failed",
            Status::IncorrectData => "incorrect data",
            Status::FunctionNotSupported => "function not supported",
            Status::NotFound => "not found",
            Status::NotEnoughMemory => "not enough memory",
            Status::IncorrectP1P2 => "incorrect P1-P2",
            Status::ReferenceNotFound => "reference data not found",
            Status::WrongP1P2 => "wrong P1-P2",
            Status::WrongLe(_) => "wrong Le",
            Status::InstructionNotSupported => "instruction not supported",
            Status::ClassNotSupported => "class not supported",
            Status::UnknownError => "unknown error",
            Status::Other(_) => "unrecognised status",
        }
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Self {
        Status::from_u16(sw)
    }
}

impl From<Status> for u16 {
    fn from(status: Status) -> Self {
        status.to_u16()
    }
}

/// `9000`, `63C2 (2 tries left)`, `61 00 (256+ bytes remaining)`,
/// `6982 (security status not satisfied)`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.to_u16())?;
        match *self {
            Status::Success => Ok(()),
            Status::RemainingRetries(1) => f.write_str(" (1 try left)"),
            Status::RemainingRetries(n) => write!(f, " ({n} tries left)"),
            Status::BytesRemaining(0) => f.write_str(" (256+ bytes remaining)"),
            Status::BytesRemaining(n) => write!(f, " ({n} bytes remaining)"),
            Status::WrongLe(n) => write!(f, " (wrong Le, {n} bytes available)"),
            other => write!(f, " ({})", other.description()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(Status::from_u16(sw).to_u16(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn value_carrying_variants_decode() {
        assert_eq!(Status::from_u16(0x63C2), Status::RemainingRetries(2));
        assert_eq!(Status::from_u16(0x6110), Status::BytesRemaining(0x10));
        assert_eq!(Status::from_u16(0x6C05), Status::WrongLe(5));
        assert_eq!(Status::from_u16(0x6A82), Status::NotFound);
        assert_eq!(Status::from_u16(0x6A83), Status::Other(0x6A83));
        assert_eq!(Status::retries(20), Status::RemainingRetries(15));
        assert_eq!(Status::bytes_remaining(300), Status::BytesRemaining(0));
    }

    #[test]
    fn display_explains_counters() {
        assert_eq!(
            Status::RemainingRetries(2).to_string(),
            "63C2 (2 tries left)"
        );
        assert_eq!(Status::Success.to_string(), "9000");
        assert_eq!(
            Status::SecurityStatusNotSatisfied.to_string(),
            "6982 (security status not satisfied)"
        );
    }
}
