//! How to write an applet for the vscard runtime, and how to test it.
//!
//! A PIN-protected counter: `VERIFY` (INS 20) with the PIN, then
//! `INCREMENT` (INS 30) adds one, `READ` (INS 32) returns the value. The
//! PIN's try counter and the value are persistent; "PIN verified" is
//! transient and disappears on reset or deselection.
//!
//! Run it with `cargo run -p vscard-emulator --example counter_applet`;
//! `cargo test` runs its tests.

use serde::{Deserialize, Serialize};
use vscard_emulator::{
    Aid, Applet, AppletState, Card, ClearOn, CommandApdu, Context, OwnerPin, Part, PinCheck,
    Response, StateError, Status, Transient,
};
use vscard_testkit::Client;

const AID: Aid = Aid::from_array([0xF0, 0x56, 0x53, 0x43, 0x41, 0x52, 0x44]);

/// The persistent parts, each with the type stored under its name.
const PIN: Part<OwnerPin> = Part::new("pin");
const VALUE: Part<Value> = Part::new("value");

/// 1. Parse first: the commands this applet understands, built from an
///    APDU; anything else is a status word.
enum Command<'a> {
    Verify(&'a [u8]),
    Increment,
    Read,
}

impl<'a> TryFrom<&CommandApdu<'a>> for Command<'a> {
    type Error = Status;
    fn try_from(apdu: &CommandApdu<'a>) -> Result<Self, Status> {
        match (apdu.ins, apdu.p1, apdu.p2) {
            (0x20, 0x00, 0x80) => Ok(Command::Verify(apdu.data)),
            (0x30, 0x00, 0x00) => Ok(Command::Increment),
            (0x32, 0x00, 0x00) => Ok(Command::Read),
            (0x20 | 0x30 | 0x32, _, _) => Err(Status::IncorrectP1P2),
            _ => Err(Status::InstructionNotSupported),
        }
    }
}

/// 2. Persistent state in serde types; transient state in `Transient`.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Value(u64);

struct CounterApplet {
    pin: OwnerPin,
    value: Value,
    verified: Transient<bool>,
}

impl CounterApplet {
    fn new(pin: &[u8]) -> Result<Self, vscard_emulator::PinError> {
        Ok(CounterApplet {
            pin: OwnerPin::new(pin, 3)?,
            value: Value(0),
            verified: Transient::new(ClearOn::Deselect),
        })
    }
}

/// 3. The applet: execute the parsed command; stage what changes.
impl Applet for CounterApplet {
    fn aid(&self) -> Aid {
        AID
    }

    fn name(&self) -> &str {
        "counter"
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        apdu: &CommandApdu<'_>,
    ) -> Result<Response, Status> {
        match Command::try_from(apdu)? {
            Command::Verify(pin) => {
                // The try is committed before the comparison, inside check().
                match self.pin.check(ctx, PIN, pin)? {
                    PinCheck::Verified => {
                        self.verified.set(ctx, true);
                        Ok(Response::empty())
                    }
                    PinCheck::Wrong { tries_left } => Err(Status::retries(tries_left)),
                    PinCheck::Blocked => Err(Status::AuthenticationMethodBlocked),
                }
            }
            Command::Increment => {
                if self.verified.get(ctx) != Some(&true) {
                    return Err(Status::SecurityStatusNotSatisfied);
                }
                self.value.0 += 1;
                // Committed atomically when the command succeeds.
                ctx.stage(VALUE, &self.value)?;
                Ok(Response::empty())
            }
            Command::Read => Ok(Response::ok(self.value.0.to_be_bytes().to_vec())),
        }
    }

    fn describe(&self, apdu: &CommandApdu<'_>) -> Option<String> {
        // Never put the PIN in a trace.
        Some(match apdu.ins {
            0x20 => "VERIFY".into(),
            0x30 => "INCREMENT".into(),
            0x32 => "READ".into(),
            _ => return None,
        })
    }

    fn save(&self) -> Result<AppletState, StateError> {
        AppletState::new()
            .with(PIN, &self.pin)?
            .with(VALUE, &self.value)
    }

    fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        self.pin = state.get(PIN)?;
        self.value = state.get(VALUE)?;
        Ok(())
    }
}

/// Sends one APDU with the test kit's host-side client: the status word
/// split off and typed.
fn send(card: &mut Card, apdu: &[u8]) -> Result<(Vec<u8>, Status), Box<dyn std::error::Error>> {
    let reply = Client::new(card).send(apdu)?;
    Ok((reply.data, reply.status))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut card = Card::builder()
        .install_default(CounterApplet::new(b"1234")?)
        .record_exchanges(true)
        .build()?;
    println!("ATR {}", hex::encode_upper(card.power_on()));
    for apdu in [
        &[0x00, 0x30, 0x00, 0x00][..],
        &[0x00, 0x20, 0x00, 0x80, 0x04, b'9', b'9', b'9', b'9'],
        &[0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'],
        &[0x00, 0x30, 0x00, 0x00],
        &[0x00, 0x32, 0x00, 0x00, 0x08],
    ] {
        let (data, _) = send(&mut card, apdu)?;
        if let Some(exchange) = card.last_exchange() {
            println!(
                "{:<10} -> {} {}",
                exchange.command,
                exchange.status,
                hex::encode_upper(&data)
            );
        }
    }
    Ok(())
}

/// 4. Test through the card, with bytes on the wire.
#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        let mut card = Card::builder()
            .rng(vscard_emulator::CardRng::from_u64(1))
            .install_default(CounterApplet::new(b"1234").unwrap())
            .build()
            .unwrap();
        card.power_on();
        card
    }

    #[test]
    fn increment_needs_the_pin_until_reset() {
        let mut card = card();
        let increment = [0x00, 0x30, 0x00, 0x00];
        assert_eq!(
            send(&mut card, &increment).unwrap().1,
            Status::SecurityStatusNotSatisfied
        );
        let verify = [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
        assert_eq!(send(&mut card, &verify).unwrap().1, Status::Success);
        assert_eq!(send(&mut card, &increment).unwrap().1, Status::Success);
        card.reset();
        assert_eq!(
            send(&mut card, &increment).unwrap().1,
            Status::SecurityStatusNotSatisfied
        );
        let read = send(&mut card, &[0x00, 0x32, 0x00, 0x00, 0x08]).unwrap();
        assert_eq!(read, (1u64.to_be_bytes().to_vec(), Status::Success));
    }

    #[test]
    fn wrong_pins_count_down_and_block() {
        let mut card = card();
        let wrong = [0x00, 0x20, 0x00, 0x80, 0x04, b'0', b'0', b'0', b'0'];
        assert_eq!(
            send(&mut card, &wrong).unwrap().1,
            Status::RemainingRetries(2)
        );
        assert_eq!(
            send(&mut card, &wrong).unwrap().1,
            Status::RemainingRetries(1)
        );
        assert_eq!(
            send(&mut card, &wrong).unwrap().1,
            Status::RemainingRetries(0)
        );
        assert_eq!(
            send(&mut card, &wrong).unwrap().1,
            Status::AuthenticationMethodBlocked
        );
    }
}
