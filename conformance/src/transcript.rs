//! Golden transcripts: a card's power events and exchanges as text, one
//! per line (`power-on`, `power-off`, `> C-APDU hex`, `< R-APDU hex`), and
//! their replay against a card.

use vscard_emulator::{Card, TranscriptEvent};

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
pub fn from_text(text: &str) -> Result<Vec<TranscriptEvent>, String> {
    let mut events = Vec::new();
    let mut command: Option<Vec<u8>> = None;
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        let hex = |h: &str| hex::decode(h.trim()).map_err(|e| format!("line {number}: {e}"));
        match line {
            "" => {}
            l if l.starts_with('#') => {}
            "power-on" => events.push(TranscriptEvent::PowerOn),
            "power-off" => events.push(TranscriptEvent::PowerOff),
            l if l.starts_with("> ") => command = Some(hex(&l[2..])?),
            l if l.starts_with("< ") => {
                let command = command
                    .take()
                    .ok_or(format!("line {number}: a response without a command"))?;
                events.push(TranscriptEvent::Exchange {
                    command,
                    response: hex(&l[2..])?,
                });
            }
            other => return Err(format!("line {number}: cannot read {other:?}")),
        }
    }
    Ok(events)
}

/// Replays `events` against `card`; the first response that differs by a
/// byte is an error naming the exchange.
pub fn replay(card: &mut Card, events: &[TranscriptEvent]) -> Result<usize, String> {
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
                    .map_err(|e| format!("exchange {exchanges}: {e}"))?;
                if &got != response {
                    return Err(format!(
                        "exchange {exchanges}: > {}\n  expected < {}\n  got      < {}",
                        hex::encode_upper(command),
                        hex::encode_upper(response),
                        hex::encode_upper(&got)
                    ));
                }
            }
        }
    }
    Ok(exchanges)
}
