//! Golden transcripts: a card's power events and exchanges as text, one
//! per line (`power-on`, `power-off`, `> C-APDU hex`, `< R-APDU hex`), and
//! their replay against a card.

use vscard_emulator::{Card, CardError, TranscriptEvent};

/// A transcript text that does not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptError {
    /// An APDU line that is not hex.
    #[error("line {line}: {source}")]
    Hex {
        /// 1-based line number.
        line: usize,
        /// What the hex decoder reported.
        #[source]
        source: hex::FromHexError,
    },
    /// A `<` line with no `>` line before it.
    #[error("line {line}: a response without a command")]
    ResponseWithoutCommand {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is none of the transcript's forms.
    #[error("line {line}: cannot read {text:?}")]
    Unreadable {
        /// 1-based line number.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
}

/// A replay that did not go as recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The card refused the command outright (no response at all).
    #[error("exchange {exchange}: {source}")]
    Transmit {
        /// 1-based exchange number.
        exchange: usize,
        /// What the card reported.
        #[source]
        source: CardError,
    },
    /// The card answered, but not byte for byte as recorded.
    #[error(
        "exchange {exchange}: > {}\n  expected < {}\n  got      < {}",
        hex::encode_upper(.command),
        hex::encode_upper(.expected),
        hex::encode_upper(.got)
    )]
    Mismatch {
        /// 1-based exchange number.
        exchange: usize,
        /// The command sent.
        command: Vec<u8>,
        /// The recorded response.
        expected: Vec<u8>,
        /// The card's response.
        got: Vec<u8>,
    },
}

/// Writes a transcript as text.
pub fn to_text(events: &[TranscriptEvent]) -> String {
    let mut out = String::new();
    for event in events {
        match event {
            TranscriptEvent::PowerOn => out.push_str("power-on\n"),
            TranscriptEvent::PowerOff => out.push_str("power-off\n"),
            TranscriptEvent::Exchange { command, response } => {
                out.push_str(&format!(
                    "> {}\n< {}\n",
                    hex::encode_upper(command),
                    hex::encode_upper(response)
                ));
            }
        }
    }
    out
}

/// Reads a transcript; `#` lines are comments.
pub fn from_text(text: &str) -> Result<Vec<TranscriptEvent>, TranscriptError> {
    let mut events = Vec::new();
    let mut command: Option<Vec<u8>> = None;
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        let hex = |h: &str| {
            hex::decode(h.trim()).map_err(|source| TranscriptError::Hex {
                line: number,
                source,
            })
        };
        match line {
            "" => {}
            l if l.starts_with('#') => {}
            "power-on" => events.push(TranscriptEvent::PowerOn),
            "power-off" => events.push(TranscriptEvent::PowerOff),
            l if l.starts_with("> ") => command = Some(hex(&l[2..])?),
            l if l.starts_with("< ") => {
                let command = command
                    .take()
                    .ok_or(TranscriptError::ResponseWithoutCommand { line: number })?;
                events.push(TranscriptEvent::Exchange {
                    command,
                    response: hex(&l[2..])?,
                });
            }
            other => {
                return Err(TranscriptError::Unreadable {
                    line: number,
                    text: other.to_owned(),
                });
            }
        }
    }
    Ok(events)
}

/// Replays `events` against `card`; the first response that differs by a
/// byte is an error naming the exchange.
pub fn replay(card: &mut Card, events: &[TranscriptEvent]) -> Result<usize, ReplayError> {
    let mut exchanges = 0;
    for event in events {
        match event {
            TranscriptEvent::PowerOn => {
                card.power_on();
            }
            TranscriptEvent::PowerOff => card.power_off(),
            TranscriptEvent::Exchange { command, response } => {
                exchanges += 1;
                let got = card
                    .transmit(command)
                    .map_err(|source| ReplayError::Transmit {
                        exchange: exchanges,
                        source,
                    })?;
                if &got != response {
                    return Err(ReplayError::Mismatch {
                        exchange: exchanges,
                        command: command.clone(),
                        expected: response.clone(),
                        got,
                    });
                }
            }
        }
    }
    Ok(exchanges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_lines_are_typed_errors() {
        assert!(matches!(
            from_text("power-on\n< 9000\n"),
            Err(TranscriptError::ResponseWithoutCommand { line: 2 })
        ));
        assert!(matches!(
            from_text("> 00A4 zz\n"),
            Err(TranscriptError::Hex { line: 1, .. })
        ));
        assert!(matches!(
            from_text("# comment\nreset\n"),
            Err(TranscriptError::Unreadable { line: 2, ref text }) if text == "reset"
        ));
    }
}
