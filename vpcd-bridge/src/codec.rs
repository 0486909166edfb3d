//! The vpcd wire format: frames and the requests they carry.
//!
//! vsmartcard's vpcd driver and a virtual card exchange frames over TCP: a
//! 16-bit big-endian length followed by that many payload bytes (so at most
//! 0xFFFF). A payload of one byte is a control code (`00` power off, `01`
//! power on, `02` reset, `04` get ATR); anything longer is a command APDU.
//! The card answers GET ATR with the ATR and an APDU with the response APDU
//! (data and SW1 SW2); power off, power on and reset get no answer.
//!
//! Contract: [`FrameDecoder`] turns any byte stream into a sequence of
//! [`VpcdRequest`]s and [`DecodeError`]s and never panics; a bad frame is
//! an error for that frame only, the stream stays in step (the length
//! prefix says where the next frame starts). [`encode_frame`] builds one
//! buffer, length and payload together, so a reply leaves in one write.

use thiserror::Error;

/// The largest payload a frame can carry (the length prefix is 16 bits).
pub const MAX_PAYLOAD: usize = 0xFFFF;

/// Control codes (one-byte payloads), as vsmartcard's `vpcd.h` numbers
/// them.
mod control {
    pub const POWER_OFF: u8 = 0x00;
    pub const POWER_ON: u8 = 0x01;
    pub const RESET: u8 = 0x02;
    pub const GET_ATR: u8 = 0x04;
}

/// One request from vpcd to the card. `Debug` shows an APDU's header and
/// length, never its data (a VERIFY carries the PIN).
#[derive(Clone, PartialEq, Eq)]
pub enum VpcdRequest {
    /// `00`: remove power (no reply).
    PowerOff,
    /// `01`: apply power (no reply; vpcd asks for the ATR next).
    PowerOn,
    /// `02`: warm reset (no reply).
    Reset,
    /// `04`: send the ATR (vpcd's presence poll, about every 400 ms).
    GetAtr,
    /// A command APDU (two bytes or more); the reply is the response APDU.
    Apdu(Vec<u8>),
}

impl VpcdRequest {
    /// Decodes one frame's payload.
    pub fn from_payload(payload: &[u8]) -> Result<VpcdRequest, DecodeError> {
        match payload {
            [] => Err(DecodeError::EmptyFrame),
            [control::POWER_OFF] => Ok(VpcdRequest::PowerOff),
            [control::POWER_ON] => Ok(VpcdRequest::PowerOn),
            [control::RESET] => Ok(VpcdRequest::Reset),
            [control::GET_ATR] => Ok(VpcdRequest::GetAtr),
            [code] => Err(DecodeError::UnknownControl(*code)),
            apdu => Ok(VpcdRequest::Apdu(apdu.to_vec())),
        }
    }

    /// The payload vpcd sends for this request (used by test peers that
    /// play vpcd).
    pub fn to_payload(&self) -> Vec<u8> {
        match self {
            VpcdRequest::PowerOff => vec![control::POWER_OFF],
            VpcdRequest::PowerOn => vec![control::POWER_ON],
            VpcdRequest::Reset => vec![control::RESET],
            VpcdRequest::GetAtr => vec![control::GET_ATR],
            VpcdRequest::Apdu(apdu) => apdu.clone(),
        }
    }

    /// True when the card must answer this request.
    pub fn expects_reply(&self) -> bool {
        matches!(self, VpcdRequest::GetAtr | VpcdRequest::Apdu(_))
    }
}

impl std::fmt::Debug for VpcdRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VpcdRequest::PowerOff => f.write_str("PowerOff"),
            VpcdRequest::PowerOn => f.write_str("PowerOn"),
            VpcdRequest::Reset => f.write_str("Reset"),
            VpcdRequest::GetAtr => f.write_str("GetAtr"),
            VpcdRequest::Apdu(apdu) => {
                let header: Vec<u8> = apdu.iter().take(4).copied().collect();
                write!(
                    f,
                    "Apdu({} bytes, header {})",
                    apdu.len(),
                    hex::encode_upper(header)
                )
            }
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame with length 0: vpcd never sends one. Ignored.
    #[error("empty frame (length 0)")]
    EmptyFrame,
    /// A one-byte frame whose code is not a known control code. Ignored,
    /// as the reference card (`vicc`) does: vpcd expects no answer.
    #[error("unknown control code {0:#04x}")]
    UnknownControl(u8),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {got} of {expected} bytes")]
    Truncated {
        /// Bytes the frame needed (prefix and payload).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
}

/// A payload too long for a frame.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("payload of {0} bytes does not fit a vpcd frame (at most 65535)")]
pub struct FrameTooLong(pub usize);

/// Builds one frame (length prefix and payload) in a single buffer.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameTooLong> {
    let length = u16::try_from(payload.len()).map_err(|_| FrameTooLong(payload.len()))?;
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// A read position in a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes, or `None` when fewer remain (nothing consumed).
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    /// A big-endian u16, or `None` when fewer than two bytes remain.
    fn u16_be(&mut self) -> Option<u16> {
        match self.take(2)? {
            [high, low] => Some(u16::from_be_bytes([*high, *low])),
            _ => None,
        }
    }
}

/// Splits a byte stream, fed in pieces as it arrives, into frames.
/// `Debug` shows how many bytes are held, not the bytes.
#[derive(Default)]
pub struct FrameDecoder {
    /// Bytes received and not yet framed (APDUs, PINs included: zeroized
    /// when the decoder is dropped).
    buffer: zeroize::Zeroizing<Vec<u8>>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, decoded; `None` until a whole frame has
    /// arrived.
    pub fn next_request(&mut self) -> Option<Result<VpcdRequest, DecodeError>> {
        let mut cursor = Cursor {
            bytes: &self.buffer,
        };
        let length = usize::from(cursor.u16_be()?);
        let payload = cursor.take(length)?;
        let request = VpcdRequest::from_payload(payload);
        self.buffer.drain(..2 + length);
        Some(request)
    }

    /// Call at end of stream: an error when a frame was cut short.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut cursor = Cursor {
            bytes: &self.buffer,
        };
        let expected = cursor.u16_be().map_or(2, |length| 2 + usize::from(length));
        Err(DecodeError::Truncated {
            expected,
            got: self.buffer.len(),
        })
    }

    /// Bytes held that do not yet form a frame.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameDecoder({} bytes held)", self.pending())
    }
}

/// Decodes a whole stream at once: every frame's result, then the
/// truncation error if the stream ends inside a frame.
pub fn decode_stream(bytes: &[u8]) -> Vec<Result<VpcdRequest, DecodeError>> {
    let mut decoder = FrameDecoder::new();
    decoder.extend(bytes);
    let mut out = Vec::new();
    while let Some(request) = decoder.next_request() {
        out.push(request);
    }
    if let Err(e) = decoder.finish() {
        out.push(Err(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_codes_decode() {
        let stream = [0, 1, 0, 0, 1, 1, 0, 1, 2, 0, 1, 4];
        assert_eq!(
            decode_stream(&stream),
            vec![
                Ok(VpcdRequest::PowerOff),
                Ok(VpcdRequest::PowerOn),
                Ok(VpcdRequest::Reset),
                Ok(VpcdRequest::GetAtr)
            ]
        );
    }

    #[test]
    fn bad_frames_are_errors_and_the_stream_stays_in_step() {
        let stream = [0, 0, 0, 1, 3, 0, 4, 0, 0xA4, 4, 0, 0, 9, 1];
        assert_eq!(
            decode_stream(&stream),
            vec![
                Err(DecodeError::EmptyFrame),
                Err(DecodeError::UnknownControl(3)),
                Ok(VpcdRequest::Apdu(vec![0, 0xA4, 4, 0])),
                Err(DecodeError::Truncated {
                    expected: 11,
                    got: 3
                }),
            ]
        );
    }

    #[test]
    fn a_lone_length_byte_is_truncated() {
        assert_eq!(
            decode_stream(&[0]),
            vec![Err(DecodeError::Truncated {
                expected: 2,
                got: 1
            })]
        );
    }

    #[test]
    fn frames_arrive_in_pieces() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0]);
        assert_eq!(decoder.next_request(), None);
        decoder.extend(&[2, 0x00]);
        assert_eq!(decoder.next_request(), None);
        decoder.extend(&[0xB0, 0, 1, 4]);
        assert_eq!(
            decoder.next_request(),
            Some(Ok(VpcdRequest::Apdu(vec![0x00, 0xB0])))
        );
        assert_eq!(decoder.next_request(), Some(Ok(VpcdRequest::GetAtr)));
        assert_eq!(decoder.next_request(), None);
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn encode_refuses_oversized_payloads() {
        assert_eq!(encode_frame(&vec![0; 65536]), Err(FrameTooLong(65536)));
        assert_eq!(encode_frame(&vec![0; 65535]).map(|f| f.len()), Ok(65537));
        assert_eq!(encode_frame(&[0x90, 0x00]), Ok(vec![0, 2, 0x90, 0x00]));
    }
}
