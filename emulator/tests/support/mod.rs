//! A test applet that exercises every runtime service, and a tiny client.
// Test-only helpers: a failed unwrap here is a failed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde::{Deserialize, Serialize};
use vscard_emulator::{
    Aid, Applet, AppletState, Card, CardError, CardRng, ClearOn, CommandApdu, Context, FileStore,
    OwnerPin, Part, PinCheck, Response, StateError, Status, Transient,
};
use vscard_testkit::{Client, ClientError, TransportError};

/// AID prefix shared by the test applets (partial-selection tests).
pub const PREFIX: [u8; 5] = [0xF0, 0x00, 0x00, 0x00, 0x01];
pub const AID_A: [u8; 6] = [0xF0, 0x00, 0x00, 0x00, 0x01, 0x0A];
pub const AID_B: [u8; 6] = [0xF0, 0x00, 0x00, 0x00, 0x01, 0x0B];

pub mod ins {
    /// Case 4: returns the command data.
    pub const ECHO: u8 = 0x01;
    /// Returns P1P2 bytes of a counting pattern.
    pub const BIG: u8 = 0x02;
    /// Returns the two counters (4 bytes each).
    pub const READ: u8 = 0x10;
    /// Increments both counters in one atomic commit (two staged parts).
    pub const INCREMENT: u8 = 0x11;
    /// Increments the counters with one explicit commit per counter: a cut
    /// between them leaves them different, which the test must see as a
    /// commit boundary, not a torn write.
    pub const INCREMENT_IN_TWO_COMMITS: u8 = 0x12;
    /// Checks the PIN through OwnerPin.
    pub const VERIFY: u8 = 0x20;
    /// Sets the transient flags to P1 (reset) and P2 (deselect).
    pub const SET_FLAGS: u8 = 0x21;
    /// Returns the transient flags (reset, deselect); 00 when cleared.
    pub const GET_FLAGS: u8 = 0x22;
    /// Stages an increment and then fails: must roll back.
    pub const STAGE_THEN_FAIL: u8 = 0x30;
    /// Returns data with the warning 6282.
    pub const WARN: u8 = 0x31;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter(pub u32);

pub struct TestApplet {
    aid: Aid,
    name: &'static str,
    multi: bool,
    pub refuse_select: bool,
    /// What [`Applet::min_select_len`] answers.
    pub min_select_len: usize,
    a: Counter,
    b: Counter,
    pin: OwnerPin,
    reset_flag: Transient<u8>,
    deselect_flag: Transient<u8>,
}

impl TestApplet {
    pub fn new(aid: &[u8], name: &'static str, multi: bool) -> TestApplet {
        TestApplet {
            aid: Aid::new(aid).unwrap(),
            name,
            multi,
            refuse_select: false,
            min_select_len: Aid::MIN_LEN,
            a: Counter(0),
            b: Counter(0),
            pin: OwnerPin::new(b"1234", 3).unwrap(),
            reset_flag: Transient::new(ClearOn::Reset),
            deselect_flag: Transient::new(ClearOn::Deselect),
        }
    }

    pub fn a() -> TestApplet {
        TestApplet::new(&AID_A, "test-a", true)
    }

    pub fn b() -> TestApplet {
        TestApplet::new(&AID_B, "test-b", false)
    }
}

impl Applet for TestApplet {
    fn aid(&self) -> Aid {
        self.aid
    }

    fn name(&self) -> &str {
        self.name
    }

    fn select(
        &mut self,
        _ctx: &mut Context<'_>,
        _command: Option<&CommandApdu<'_>>,
    ) -> Result<Response, Status> {
        if self.refuse_select {
            return Err(Status::AppletSelectFailed);
        }
        // A small FCI: 6F { 84 AID }.
        let aid = self.aid.as_bytes();
        let mut fci = vec![0x6F, aid.len() as u8 + 2, 0x84, aid.len() as u8];
        fci.extend_from_slice(aid);
        Ok(Response::ok(fci))
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandApdu<'_>,
    ) -> Result<Response, Status> {
        match command.ins {
            ins::ECHO => Ok(Response::ok(command.data.to_vec())),
            ins::BIG => {
                let n = usize::from(u16::from_be_bytes([command.p1, command.p2]));
                Ok(Response::ok((0..n).map(|i| i as u8).collect()))
            }
            ins::READ => {
                let mut out = self.a.0.to_be_bytes().to_vec();
                out.extend_from_slice(&self.b.0.to_be_bytes());
                Ok(Response::ok(out))
            }
            ins::INCREMENT => {
                self.a.0 += 1;
                self.b.0 += 1;
                ctx.stage(Part::new("a"), &self.a)?;
                ctx.stage(Part::new("b"), &self.b)?;
                Ok(Response::empty())
            }
            ins::INCREMENT_IN_TWO_COMMITS => {
                self.a.0 += 1;
                ctx.commit_part(Part::new("a"), &self.a)?;
                self.b.0 += 1;
                ctx.commit_part(Part::new("b"), &self.b)?;
                Ok(Response::empty())
            }
            ins::VERIFY => match self.pin.check(ctx, Part::new("pin"), command.data)? {
                PinCheck::Verified => Ok(Response::empty()),
                PinCheck::Wrong { tries_left } => Err(Status::retries(tries_left)),
                PinCheck::Blocked => Err(Status::AuthenticationMethodBlocked),
            },
            ins::SET_FLAGS => {
                self.reset_flag.set(ctx, command.p1);
                self.deselect_flag.set(ctx, command.p2);
                Ok(Response::empty())
            }
            ins::GET_FLAGS => Ok(Response::ok(vec![
                self.reset_flag.get(ctx).copied().unwrap_or(0),
                self.deselect_flag.get(ctx).copied().unwrap_or(0),
            ])),
            ins::STAGE_THEN_FAIL => {
                self.a.0 += 100;
                ctx.stage(Part::new("a"), &self.a)?;
                Err(Status::ConditionsNotSatisfied)
            }
            ins::WARN => Ok(Response::with_status(vec![1, 2, 3], Status::EndOfData)),
            _ => Err(Status::InstructionNotSupported),
        }
    }

    fn multi_selectable(&self) -> bool {
        self.multi
    }

    fn min_select_len(&self) -> usize {
        self.min_select_len
    }

    fn describe(&self, command: &CommandApdu<'_>) -> Option<String> {
        Some(match command.ins {
            ins::ECHO => "ECHO".into(),
            ins::VERIFY => "VERIFY".into(),
            ins::INCREMENT => "INCREMENT".into(),
            _ => return None,
        })
    }

    fn save(&self) -> Result<AppletState, StateError> {
        AppletState::new()
            .with(Part::new("a"), &self.a)?
            .with(Part::new("b"), &self.b)?
            .with(Part::new("pin"), &self.pin)
    }

    fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        self.a = state.get(Part::new("a"))?;
        self.b = state.get(Part::new("b"))?;
        self.pin = state.get(Part::new("pin"))?;
        Ok(())
    }
}

/// A powered card with [`TestApplet::a`] as the default applet, on a
/// [`FileStore`] at `path` (a fixed RNG seed).
pub fn file_card(path: &std::path::Path) -> Result<Card, CardError> {
    let mut card = Card::builder()
        .rng(CardRng::from_u64(2))
        .store(FileStore::open(path)?)
        .install_default(TestApplet::a())
        .build()?;
    card.power_on();
    Ok(card)
}

/// Sends `apdu` as is (no GET RESPONSE: the runtime tests check `61xx`
/// themselves), returns (data, SW).
pub fn send(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    try_send(card, apdu).unwrap()
}

/// [`send`], with the card's error (not powered, power lost) as an error.
pub fn try_send(card: &mut Card, apdu: &[u8]) -> Result<(Vec<u8>, u16), CardError> {
    match Client::new(card).transmit(apdu) {
        Ok(reply) => {
            let sw = reply.sw();
            Ok((reply.data, sw))
        }
        Err(ClientError::Transport(TransportError::Card(error))) => Err(error),
        Err(other) => panic!("{}: {other}", hex::encode_upper(apdu)),
    }
}

/// Reads the two counters.
pub fn counters(card: &mut Card) -> (u32, u32) {
    let (data, sw) = send(card, &[0x00, ins::READ, 0, 0, 0x08]);
    assert_eq!(sw, 0x9000);
    let a = u32::from_be_bytes(data[..4].try_into().unwrap());
    let b = u32::from_be_bytes(data[4..].try_into().unwrap());
    (a, b)
}

/// A SELECT by DF name.
pub fn select(aid: &[u8], p2: u8) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, p2, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    apdu
}
