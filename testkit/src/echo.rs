//! A test fixture: a tiny applet for exercising the bridge without PIV.
//!
//! This is not a product card: it lives in the test kit so the bridge's
//! tests and the benches have a card that answers instantly, keeps one
//! persistent counter and can be told to be slow.
//!
//! Commands (CLA 00 or 80, any channel):
//!
//! | INS | meaning | response |
//! |-----|---------|----------|
//! | `01` | echo | the command data |
//! | `02` | increment the persistent counter | the new value, u32 big-endian |
//! | `03` | read the persistent counter | the value, u32 big-endian |
//! | `04` | sleep `P1 * 10` ms, then answer | nothing |
//! | `05` | answer `P1 P2` bytes (`P1 P2` big-endian) | that many bytes |

use std::time::Duration;

use vscard_emulator::{
    Aid, Applet, AppletState, Card, CardError, CommandApdu, Context, Part, Response, StateError,
    Status,
};

/// The fixture's AID (`F0` proprietary RID, then "vscard", then `01`).
pub const ECHO_AID: [u8; 8] = [0xF0, 0x76, 0x73, 0x63, 0x61, 0x72, 0x64, 0x01];

/// The echo / counter / slow test applet.
#[derive(Debug, Default)]
pub struct EchoApplet {
    counter: u32,
}

/// The name of the persistent counter in the card image.
const COUNTER: Part<u32> = Part::new("counter");

impl EchoApplet {
    /// A fresh applet (counter 0).
    pub fn new() -> EchoApplet {
        EchoApplet::default()
    }
}

impl Applet for EchoApplet {
    fn aid(&self) -> Aid {
        // The constant is 8 bytes, within the 5..=16 an AID allows.
        Aid::new(&ECHO_AID).unwrap_or_else(|_| unreachable!("ECHO_AID is a valid AID"))
    }

    fn name(&self) -> &str {
        "ECHO"
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandApdu<'_>,
    ) -> Result<Response, Status> {
        match command.ins {
            0x01 => Ok(Response::ok(command.data.to_vec())),
            0x02 => {
                let next = self.counter.wrapping_add(1);
                ctx.stage(COUNTER, &next)?;
                self.counter = next;
                Ok(Response::ok(next.to_be_bytes().to_vec()))
            }
            0x03 => Ok(Response::ok(self.counter.to_be_bytes().to_vec())),
            0x04 => {
                std::thread::sleep(Duration::from_millis(u64::from(command.p1) * 10));
                Ok(Response::empty())
            }
            0x05 => {
                let length = usize::from(u16::from_be_bytes([command.p1, command.p2]));
                Ok(Response::ok((0..length).map(|i| i as u8).collect()))
            }
            _ => Err(Status::InstructionNotSupported),
        }
    }

    fn describe(&self, command: &CommandApdu<'_>) -> Option<String> {
        let name = match command.ins {
            0x01 => "ECHO",
            0x02 => "INCREMENT",
            0x03 => "READ COUNTER",
            0x04 => "SLOW",
            0x05 => "BIG",
            _ => return None,
        };
        Some(name.to_owned())
    }

    fn save(&self) -> Result<AppletState, StateError> {
        AppletState::new().with(COUNTER, &self.counter)
    }

    fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        self.counter = state.get_optional(COUNTER)?.unwrap_or(0);
        Ok(())
    }
}

/// A card with the echo applet as its default applet and an in-memory
/// store.
pub fn echo_card() -> Result<Card, CardError> {
    Card::builder().install_default(EchoApplet::new()).build()
}
