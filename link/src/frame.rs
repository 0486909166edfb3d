//! The frames a link carries, one per Noise transport message.
//!
//! A frame is a tag byte and its body. What vpcd carries (power, reset,
//! the ATR, command and response APDUs) plus what the link needs (a
//! keep-alive, a close reason). Decoding never panics: an unknown tag or a
//! body where none belongs is a [`FrameError`] (which drops the link).
//!
//! A frame longer than one Noise message carries ([`MAX_PLAINTEXT`]: an
//! extended APDU or response of up to vpcd's 65,535 bytes, and a
//! response's status word past that) crosses as fragments: messages
//! `FRAGMENT piece` then one `LAST_FRAGMENT piece`, whose pieces joined
//! are the frame's plaintext ([`crate::Link`] splits and joins them, up
//! to [`MAX_FRAME`] bytes). A frame that fits is one message, as before.

use thiserror::Error;
use zeroize::Zeroizing;

/// The largest plaintext a Noise transport message carries: 65535 bytes
/// less the 16-byte authentication tag.
pub const MAX_PLAINTEXT: usize = 65535 - 16;

/// The largest body of a frame that fits one Noise message (the tag
/// takes one byte); a longer one is fragmented.
pub const MAX_BODY: usize = MAX_PLAINTEXT - 1;

/// The largest frame plaintext (tag and body), fragmented or not: a tag
/// and a response of vpcd's largest payload (65,535 bytes) with room to
/// spare; a peer sending more is dropped.
pub const MAX_FRAME: usize = 1 + 65_536 + 2;

/// The tag of a fragment that more fragments follow.
pub(crate) const FRAGMENT: u8 = 0x0B;
/// The tag of a frame's last fragment.
pub(crate) const LAST_FRAGMENT: u8 = 0x0C;

mod tag {
    pub const POWER_ON: u8 = 0x01;
    pub const POWER_OFF: u8 = 0x02;
    pub const RESET: u8 = 0x03;
    pub const GET_ATR: u8 = 0x04;
    pub const ATR: u8 = 0x05;
    pub const APDU: u8 = 0x06;
    pub const RESPONSE: u8 = 0x07;
    pub const KEEP_ALIVE: u8 = 0x08;
    pub const CLOSE: u8 = 0x09;
    pub const PAIRED: u8 = 0x0A;
}

/// One frame. APDUs and responses are zeroized when dropped (a VERIFY
/// carries the PIN); `Debug` never shows their bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// Relay to card: apply power.
    PowerOn,
    /// Relay to card: remove power.
    PowerOff,
    /// Relay to card: warm reset.
    Reset,
    /// Relay to card: send the ATR.
    GetAtr,
    /// Card to relay: the ATR.
    Atr(Vec<u8>),
    /// Relay to card: a command APDU.
    Apdu(Zeroizing<Vec<u8>>),
    /// Card to relay: the response APDU.
    Response(Zeroizing<Vec<u8>>),
    /// Either way: nothing to say, the link is alive.
    KeepAlive,
    /// Either way: the sender closes the link, and why.
    Close(String),
    /// Relay to card, first frame after a pairing handshake: the relay
    /// pinned the card under this name.
    Paired(String),
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frame::PowerOn => f.write_str("PowerOn"),
            Frame::PowerOff => f.write_str("PowerOff"),
            Frame::Reset => f.write_str("Reset"),
            Frame::GetAtr => f.write_str("GetAtr"),
            Frame::Atr(atr) => write!(f, "Atr({})", hex::encode_upper(atr)),
            Frame::Apdu(apdu) => write!(f, "Apdu({} bytes)", apdu.len()),
            Frame::Response(response) => write!(f, "Response({} bytes)", response.len()),
            Frame::KeepAlive => f.write_str("KeepAlive"),
            Frame::Close(reason) => write!(f, "Close({reason:?})"),
            Frame::Paired(name) => write!(f, "Paired({name:?})"),
        }
    }
}

/// A frame that cannot be decoded or encoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// No bytes at all.
    #[error("empty frame")]
    Empty,
    /// A tag this version does not know.
    #[error("unknown frame tag {0:#04x}")]
    UnknownTag(u8),
    /// A frame that has no body came with one, or one that needs a body
    /// came without.
    #[error("frame {0:#04x} has a malformed body")]
    BadBody(u8),
    /// The body is longer than the link carries, fragmented.
    #[error("frame body of {0} bytes is longer than the link carries ({max} bytes)", max = MAX_FRAME - 1)]
    TooLong(usize),
}

impl Frame {
    /// The frame's plaintext: tag and body (zeroized when dropped).
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, FrameError> {
        let (code, body): (u8, &[u8]) = match self {
            Frame::PowerOn => (tag::POWER_ON, &[]),
            Frame::PowerOff => (tag::POWER_OFF, &[]),
            Frame::Reset => (tag::RESET, &[]),
            Frame::GetAtr => (tag::GET_ATR, &[]),
            Frame::Atr(atr) => (tag::ATR, atr),
            Frame::Apdu(apdu) => (tag::APDU, apdu),
            Frame::Response(response) => (tag::RESPONSE, response),
            Frame::KeepAlive => (tag::KEEP_ALIVE, &[]),
            Frame::Close(reason) => (tag::CLOSE, reason.as_bytes()),
            Frame::Paired(name) => (tag::PAIRED, name.as_bytes()),
        };
        if body.len() > MAX_FRAME - 1 {
            return Err(FrameError::TooLong(body.len()));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(1 + body.len()));
        out.push(code);
        out.extend_from_slice(body);
        Ok(out)
    }

    /// Decodes one frame's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (&code, body) = bytes.split_first().ok_or(FrameError::Empty)?;
        let empty = |frame: Frame| {
            if body.is_empty() {
                Ok(frame)
            } else {
                Err(FrameError::BadBody(code))
            }
        };
        let text = || String::from_utf8(body.to_vec()).map_err(|_| FrameError::BadBody(code));
        match code {
            tag::POWER_ON => empty(Frame::PowerOn),
            tag::POWER_OFF => empty(Frame::PowerOff),
            tag::RESET => empty(Frame::Reset),
            tag::GET_ATR => empty(Frame::GetAtr),
            tag::KEEP_ALIVE => empty(Frame::KeepAlive),
            tag::ATR if !body.is_empty() => Ok(Frame::Atr(body.to_vec())),
            // A command APDU has at least CLA INS P1 P2.
            tag::APDU if body.len() >= 4 => Ok(Frame::Apdu(Zeroizing::new(body.to_vec()))),
            // A response has at least SW1 SW2.
            tag::RESPONSE if body.len() >= 2 => Ok(Frame::Response(Zeroizing::new(body.to_vec()))),
            tag::CLOSE => Ok(Frame::Close(text()?)),
            tag::PAIRED => Ok(Frame::Paired(text()?)),
            tag::ATR | tag::APDU | tag::RESPONSE => Err(FrameError::BadBody(code)),
            other => Err(FrameError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::PowerOn,
            Frame::PowerOff,
            Frame::Reset,
            Frame::GetAtr,
            Frame::Atr(vec![0x3B, 0x80]),
            Frame::Apdu(Zeroizing::new(vec![0x00, 0x20, 0x00, 0x80])),
            Frame::Response(Zeroizing::new(vec![0x90, 0x00])),
            Frame::KeepAlive,
            Frame::Close("bye".to_owned()),
            Frame::Paired("card".to_owned()),
        ];
        for frame in frames {
            let bytes = frame.encode().unwrap();
            assert_eq!(Frame::decode(&bytes).unwrap(), frame);
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(Frame::decode(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::decode(&[0x77]), Err(FrameError::UnknownTag(0x77)));
        assert_eq!(Frame::decode(&[0x01, 0x00]), Err(FrameError::BadBody(0x01)));
        assert_eq!(
            Frame::decode(&[0x06, 0x00, 0x20]),
            Err(FrameError::BadBody(0x06))
        );
        assert_eq!(Frame::decode(&[0x07, 0x90]), Err(FrameError::BadBody(0x07)));
        assert_eq!(Frame::decode(&[0x09, 0xFF]), Err(FrameError::BadBody(0x09)));
        let long = Frame::Apdu(Zeroizing::new(vec![0; MAX_FRAME]));
        assert_eq!(long.encode(), Err(FrameError::TooLong(MAX_FRAME)));
        // Fragments are the link's, never a frame of their own.
        assert_eq!(
            Frame::decode(&[FRAGMENT, 0x00]),
            Err(FrameError::UnknownTag(FRAGMENT))
        );
        assert_eq!(
            Frame::decode(&[LAST_FRAGMENT, 0x00]),
            Err(FrameError::UnknownTag(LAST_FRAGMENT))
        );
    }

    proptest::proptest! {
        /// Any bytes: an error or a frame that encodes back to exactly
        /// those bytes (one encoding per frame), never a panic.
        #[test]
        fn decoding_any_bytes_is_total_and_exact(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(frame) = Frame::decode(&bytes) {
                let encoded = frame.encode().unwrap();
                proptest::prop_assert_eq!(encoded.as_slice(), bytes.as_slice());
            }
        }
    }

    #[test]
    fn debug_never_shows_apdu_bytes() {
        let pin = Frame::Apdu(Zeroizing::new(vec![0x00, 0x20, 0x00, 0x80, 0x31, 0x32]));
        assert_eq!(format!("{pin:?}"), "Apdu(6 bytes)");
    }
}
