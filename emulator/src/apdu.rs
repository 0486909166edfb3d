//! Command and response APDUs (ISO 7816-4 5.1 and 5.4).
//!
//! [`CommandApdu::parse`] accepts the seven cases (1, 2S, 3S, 4S, 2E, 3E,
//! 4E) and answers anything else with the status word a card would give:
//! `6700` for a structure that does not add up, `6E00` for a class byte the
//! runtime does not support. It never panics. [`CommandApdu::to_bytes`]
//! encodes the shortest form that carries the same command, so encode ->
//! parse round-trips.

use crate::Status;

/// Secure messaging indication of the class byte (ISO 7816-4 5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureMessaging {
    /// No secure messaging.
    None,
    /// Proprietary secure messaging (first interindustry `b4 b3 = 01`).
    Proprietary,
    /// ISO secure messaging, header not processed (`10`), or authenticated
    /// (`11`); further interindustry classes only say "SM".
    Iso,
}

/// The decoded class byte (ISO 7816-4 5.4.1, tables 2 and 3).
///
/// Proprietary classes (`b8 = 1`, except `FF`) use the same bit layout as
/// the interindustry class with `b8` cleared, as GlobalPlatform cards do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    raw: u8,
    channel: u8,
    chained: bool,
    secure_messaging: SecureMessaging,
}

impl Class {
    /// Decodes a class byte; `6E00` for `FF` (reserved for PPS) and for the
    /// RFU range `20..=3F`.
    pub const fn parse(raw: u8) -> Result<Class, Status> {
        if raw == 0xFF {
            return Err(Status::ClassNotSupported);
        }
        let bits = raw & 0x7F;
        if bits & 0x60 == 0x20 {
            return Err(Status::ClassNotSupported);
        }
        let chained = bits & 0x10 != 0;
        let (channel, secure_messaging) = if bits & 0x40 == 0 {
            let sm = match (bits >> 2) & 0x03 {
                0 => SecureMessaging::None,
                1 => SecureMessaging::Proprietary,
                _ => SecureMessaging::Iso,
            };
            (bits & 0x03, sm)
        } else {
            let sm = if bits & 0x20 != 0 {
                SecureMessaging::Iso
            } else {
                SecureMessaging::None
            };
            (4 + (bits & 0x0F), sm)
        };
        Ok(Class {
            raw,
            channel,
            chained,
            secure_messaging,
        })
    }

    /// The interindustry class for a logical channel (0..=19), without
    /// secure messaging; first interindustry encoding for 0..=3, further for
    /// 4..=19. `None` for a channel above 19.
    pub const fn interindustry(channel: u8, chained: bool) -> Option<Class> {
        let chain_bit = if chained { 0x10 } else { 0 };
        let raw = match channel {
            0..=3 => channel | chain_bit,
            4..=19 => 0x40 | (channel - 4) | chain_bit,
            _ => return None,
        };
        match Class::parse(raw) {
            Ok(class) => Some(class),
            Err(_) => None,
        }
    }

    /// The class byte as sent.
    pub const fn raw(self) -> u8 {
        self.raw
    }

    /// The logical channel number, 0..=19.
    pub const fn channel(self) -> u8 {
        self.channel
    }

    /// True when the command-chaining bit (`b5`) is set: more commands of
    /// the same chain follow.
    pub const fn is_chained(self) -> bool {
        self.chained
    }

    /// The secure messaging indication.
    pub const fn secure_messaging(self) -> SecureMessaging {
        self.secure_messaging
    }

    /// True for a proprietary class (`b8 = 1`).
    pub const fn is_proprietary(self) -> bool {
        self.raw & 0x80 != 0
    }

    /// The same class with the chaining bit cleared.
    pub const fn without_chaining(self) -> Class {
        Class {
            raw: self.raw & !0x10,
            chained: false,
            ..self
        }
    }
}

/// A parsed command APDU; borrows its data from the bytes it was parsed
/// from (or from the runtime's chaining buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandApdu<'a> {
    /// The class byte, decoded.
    pub class: Class,
    /// The instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// The command data field (empty when Lc is absent).
    pub data: &'a [u8],
    /// Ne, the maximum number of response bytes expected: 0 when Le is
    /// absent, 256 for a short Le of `00`, 65536 for an extended Le of `0000`.
    pub ne: usize,
    /// True when the command used extended length fields.
    pub extended: bool,
}

/// The largest Ne a short Le can carry.
pub const SHORT_NE_MAX: usize = 256;
/// The largest Ne an extended Le can carry.
pub const EXTENDED_NE_MAX: usize = 65536;

impl<'a> CommandApdu<'a> {
    /// A command with the given header, data and Ne; the length encoding is
    /// chosen when it is encoded.
    pub fn new(class: Class, ins: u8, p1: u8, p2: u8, data: &'a [u8], ne: usize) -> Self {
        let extended = data.len() > 255 || ne > SHORT_NE_MAX;
        CommandApdu {
            class,
            ins,
            p1,
            p2,
            data,
            ne,
            extended,
        }
    }

    /// Parses one command APDU (ISO 7816-4 5.1, table 1 and the case rules
    /// of 5.1.2-5.1.3).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Status> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(Status::WrongLength);
        };
        let class = Class::parse(*cla)?;
        let (data, ne, extended) = parse_body(body)?;
        Ok(CommandApdu {
            class,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            ne,
            extended,
        })
    }

    /// The ISO case of this command: 1 (no data, no Le), 2 (Le only),
    /// 3 (data only) or 4 (both).
    pub fn case(&self) -> u8 {
        match (self.data.is_empty(), self.ne == 0) {
            (true, true) => 1,
            (true, false) => 2,
            (false, true) => 3,
            (false, false) => 4,
        }
    }

    /// Encodes the command. Extended fields are used when the command was
    /// built or parsed with them, or when the data or Ne do not fit the
    /// short form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&[self.class.raw(), self.ins, self.p1, self.p2]);
        let extended = self.extended || self.data.len() > 255 || self.ne > SHORT_NE_MAX;
        if extended {
            let mut marker_written = false;
            if !self.data.is_empty() {
                out.push(0);
                marker_written = true;
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(self.data);
            }
            if self.ne > 0 {
                if !marker_written {
                    out.push(0);
                }
                let le = if self.ne >= EXTENDED_NE_MAX {
                    0
                } else {
                    self.ne as u16
                };
                out.extend_from_slice(&le.to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(self.data);
            }
            if self.ne > 0 {
                out.push(if self.ne >= SHORT_NE_MAX {
                    0
                } else {
                    self.ne as u8
                });
            }
        }
        out
    }
}

/// Splits the body after the header into (data, Ne, extended).
fn parse_body(body: &[u8]) -> Result<(&[u8], usize, bool), Status> {
    match body {
        // Case 1.
        [] => Ok((&[], 0, false)),
        // Case 2S.
        [le] => Ok((&[], short_ne(*le), false)),
        // Extended forms start with a 00 byte followed by two length bytes.
        [0, hi, lo, rest @ ..] => {
            let first = usize::from(u16::from_be_bytes([*hi, *lo]));
            match rest {
                // Case 2E: 00 Le1 Le2.
                [] => Ok((&[], extended_ne(first), true)),
                // Case 3E / 4E: 00 Lc1 Lc2 data [Le1 Le2]; Lc is never 0000.
                _ if first == 0 => Err(Status::WrongLength),
                _ if rest.len() == first => Ok((rest, 0, true)),
                _ if rest.len() == first + 2 => {
                    let (data, le) = rest.split_at(first);
                    let ne = match le {
                        [h, l] => extended_ne(usize::from(u16::from_be_bytes([*h, *l]))),
                        _ => return Err(Status::WrongLength),
                    };
                    Ok((data, ne, true))
                }
                _ => Err(Status::WrongLength),
            }
        }
        // Case 3S / 4S: Lc data [Le].
        [lc, rest @ ..] if *lc != 0 => {
            let lc = usize::from(*lc);
            if rest.len() == lc {
                Ok((rest, 0, false))
            } else if rest.len() == lc + 1 {
                let (data, le) = rest.split_at(lc);
                match le {
                    [le] => Ok((data, short_ne(*le), false)),
                    _ => Err(Status::WrongLength),
                }
            } else {
                Err(Status::WrongLength)
            }
        }
        // A 00 byte followed by fewer than two bytes: neither short nor
        // extended.
        _ => Err(Status::WrongLength),
    }
}

const fn short_ne(le: u8) -> usize {
    if le == 0 { SHORT_NE_MAX } else { le as usize }
}

const fn extended_ne(le: usize) -> usize {
    if le == 0 { EXTENDED_NE_MAX } else { le }
}

/// A response APDU: data and status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseApdu {
    /// The response data field.
    pub data: Vec<u8>,
    /// The trailer.
    pub status: Status,
}

impl ResponseApdu {
    /// Parses `data || SW1 SW2`; `None` when fewer than two bytes are given.
    pub fn parse(bytes: &[u8]) -> Option<ResponseApdu> {
        let split = bytes.len().checked_sub(2)?;
        let (data, sw) = bytes.split_at(split);
        let [sw1, sw2] = sw else { return None };
        Some(ResponseApdu {
            data: data.to_vec(),
            status: Status::from_u16(u16::from_be_bytes([*sw1, *sw2])),
        })
    }

    /// Encodes `data || SW1 SW2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<CommandApdu<'_>, Status> {
        CommandApdu::parse(bytes)
    }

    #[test]
    fn every_case_parses() {
        let c1 = parse(&[0x00, 0xA4, 0x04, 0x00]).unwrap();
        assert_eq!((c1.case(), c1.ne, c1.extended), (1, 0, false));

        let c2 = parse(&[0x00, 0xCA, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!((c2.case(), c2.ne), (2, 256));

        let c3 = parse(&[0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32]).unwrap();
        assert_eq!((c3.case(), c3.data, c3.ne), (3, &[0x31, 0x32][..], 0));

        let c4 = parse(&[0x00, 0xCB, 0x3F, 0xFF, 0x01, 0x7E, 0x10]).unwrap();
        assert_eq!((c4.case(), c4.data, c4.ne), (4, &[0x7E][..], 16));

        let c2e = parse(&[0x00, 0xCA, 0x00, 0x00, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!((c2e.case(), c2e.ne, c2e.extended), (2, 65536, true));

        let c3e = parse(&[0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x00, 0x02, 0xAA, 0xBB]).unwrap();
        assert_eq!(
            (c3e.case(), c3e.data, c3e.extended),
            (3, &[0xAA, 0xBB][..], true)
        );

        let c4e = parse(&[0x00, 0x87, 0x07, 0x9A, 0x00, 0x00, 0x01, 0x7C, 0x01, 0x00]).unwrap();
        assert_eq!((c4e.case(), c4e.data, c4e.ne), (4, &[0x7C][..], 256));
    }

    #[test]
    fn malformed_structures_answer_wrong_length() {
        for bad in [
            &[][..],
            &[0x00, 0xA4, 0x04],
            // Lc says 3, two bytes follow.
            &[0x00, 0x20, 0x00, 0x80, 0x03, 0x31, 0x32],
            // Lc says 1, three bytes follow.
            &[0x00, 0x20, 0x00, 0x80, 0x01, 0x31, 0x32, 0x33],
            // Extended Lc with a short Le.
            &[0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x00, 0x01, 0xAA, 0x00],
            // A lone 00 followed by one byte.
            &[0x00, 0xCA, 0x00, 0x00, 0x00, 0x01],
            // Extended Lc of 0000 with data.
            &[0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x00, 0x00, 0xAA],
        ] {
            assert_eq!(parse(bad), Err(Status::WrongLength), "{bad:02X?}");
        }
    }

    #[test]
    fn class_byte_decodes_channels_chaining_and_sm() {
        let c = Class::parse(0x13).unwrap();
        assert_eq!((c.channel(), c.is_chained()), (3, true));
        let c = Class::parse(0x4F).unwrap();
        assert_eq!(c.channel(), 19);
        let c = Class::parse(0x6C).unwrap();
        assert_eq!(
            (c.channel(), c.is_chained(), c.secure_messaging()),
            (16, false, SecureMessaging::Iso)
        );
        let c = Class::parse(0x0C).unwrap();
        assert_eq!(c.secure_messaging(), SecureMessaging::Iso);
        let c = Class::parse(0x81).unwrap();
        assert!(c.is_proprietary());
        assert_eq!(c.channel(), 1);
        assert_eq!(Class::parse(0xFF), Err(Status::ClassNotSupported));
        assert_eq!(Class::parse(0x20), Err(Status::ClassNotSupported));
        for channel in 0..20 {
            let class = Class::interindustry(channel, false).unwrap();
            assert_eq!(class.channel(), channel);
        }
        assert!(Class::interindustry(20, false).is_none());
    }

    #[test]
    fn response_round_trips() {
        let r = ResponseApdu::parse(&[0x01, 0x02, 0x90, 0x00]).unwrap();
        assert_eq!(r.data, vec![1, 2]);
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.to_bytes(), vec![0x01, 0x02, 0x90, 0x00]);
        assert!(ResponseApdu::parse(&[0x90]).is_none());
    }

    fn arb_class() -> impl Strategy<Value = Class> {
        any::<u8>().prop_filter_map("supported class", |b| Class::parse(b).ok())
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = CommandApdu::parse(&bytes);
        }

        #[test]
        fn encode_parse_round_trips(
            class in arb_class(),
            ins in any::<u8>(),
            p1 in any::<u8>(),
            p2 in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..700),
            ne in prop_oneof![Just(0usize), 1usize..=256, 257usize..=65536],
            extended in any::<bool>(),
        ) {
            let mut command = CommandApdu::new(class, ins, p1, p2, &data, ne);
            command.extended |= extended && !(data.is_empty() && ne == 0);
            let bytes = command.to_bytes();
            let parsed = CommandApdu::parse(&bytes).unwrap();
            prop_assert_eq!(parsed, command);
        }
    }
}
