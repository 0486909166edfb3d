//! The one host-side APDU client every test, the conformance suite and the
//! benches share.
//!
//! Contract: a [`Transport`] moves one raw command APDU to a card and its
//! raw response back, nothing else (it never answers `61xx` by itself,
//! because the runtime tests check exactly that). A [`Client`] over a
//! transport does what middleware does on top: it splits off and types the
//! status word (ISO 7816-4 5.6), follows `61xx` with GET RESPONSE
//! (ISO 7816-4 7.6.1) and sends long command data as a command chain
//! (ISO 7816-4 5.3.3: CLA bit `10`, pieces of at most 255 bytes).
//!
//! Every call has a `Result` form for code that reports failures (the
//! conformance suite) and a panicking form with a clear message for tests
//! ([`Client::expect`], [`Client::expect_status`]).

use std::borrow::Borrow;

use vscard_emulator::{Card, CardError, Status};

/// Why a transport could not carry a command.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The in-process card gave no answer (unpowered, power lost, store
    /// failure); the card's own error is kept for tests that expect it.
    #[error("no answer from the card: {0}")]
    Card(#[from] CardError),
    /// The card or reader gave no answer (removed, unpowered, PC/SC error).
    #[error("no answer from the card: {0}")]
    NoAnswer(String),
    /// The transport cannot do this (a reader that cannot power-cycle).
    #[error("not supported by this transport: {0}")]
    Unsupported(&'static str),
    /// The middleware refused the command before the card saw it.
    #[error("refused by the middleware: {0}")]
    Refused(String),
}

impl From<pcsc::Error> for TransportError {
    fn from(error: pcsc::Error) -> TransportError {
        match error {
            // pcsc-lite checks the APDU's length against its buffers
            // before the card sees it.
            pcsc::Error::InvalidParameter | pcsc::Error::InsufficientBuffer => {
                TransportError::Refused(error.to_string())
            }
            other => TransportError::NoAnswer(other.to_string()),
        }
    }
}

/// A connection to one card that moves raw APDUs.
pub trait Transport {
    /// A human-readable name (`in-process`, `pcsc: Virtual PCD 00 00`).
    fn name(&self) -> String;

    /// Sends one command APDU and returns the response APDU (data and SW).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Warm reset, when the transport can.
    fn reset(&mut self) -> Result<(), TransportError> {
        Err(TransportError::Unsupported("reset"))
    }

    /// Power off and on again, when the transport can.
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        Err(TransportError::Unsupported("power cycle"))
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn name(&self) -> String {
        (**self).name()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        (**self).power_cycle()
    }
}

/// The card in this process, through [`Card::transmit`].
impl Transport for Card {
    fn name(&self) -> String {
        "in-process".into()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(Card::transmit(self, apdu)?)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        Card::reset(self);
        Ok(())
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.power_off();
        self.power_on();
        Ok(())
    }
}

/// A card reached through pcscd (a [`pcsc::Card`], owned or borrowed),
/// with a receive buffer reused across commands so the benches time the
/// exchange and not an allocation.
pub struct PcscCard<C> {
    card: C,
    buffer: Vec<u8>,
}

impl<C: Borrow<pcsc::Card>> PcscCard<C> {
    /// Wraps a connected card.
    pub fn new(card: C) -> PcscCard<C> {
        PcscCard {
            card,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        }
    }

    /// The wrapped card.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The wrapped card, mutably (to reconnect it).
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }
}

impl<C: Borrow<pcsc::Card>> Transport for PcscCard<C> {
    fn name(&self) -> String {
        "pcsc".into()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.card.borrow().transmit(apdu, &mut self.buffer)?;
        Ok(response.to_vec())
    }
}

/// A response APDU: the data and the typed status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The response data (GET RESPONSE pieces joined).
    pub data: Vec<u8>,
    /// SW1-SW2.
    pub status: Status,
}

impl Reply {
    /// A reply of `data` and `status`.
    pub fn new(data: Vec<u8>, status: Status) -> Reply {
        Reply { data, status }
    }

    /// Splits a raw response APDU; `None` when it has no status word.
    pub fn parse(mut response: Vec<u8>) -> Option<Reply> {
        let split = response.len().checked_sub(2)?;
        let sw = response.split_off(split);
        let sw = u16::from_be_bytes([*sw.first()?, *sw.get(1)?]);
        Some(Reply {
            data: response,
            status: Status::from_u16(sw),
        })
    }

    /// The status word as a number.
    pub fn sw(&self) -> u16 {
        self.status.to_u16()
    }

    /// SW1 alone.
    pub fn sw1(&self) -> u8 {
        self.sw().to_be_bytes()[0]
    }

    /// SW2 alone.
    pub fn sw2(&self) -> u8 {
        self.sw().to_be_bytes()[1]
    }
}

/// Why the client could not get an answer, or not the one required.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The response was shorter than a status word.
    #[error("response of {0} bytes has no status word")]
    NoStatusWord(usize),
    /// The card kept answering `61xx`.
    #[error("more than {0} GET RESPONSE rounds")]
    EndlessResponse(usize),
    /// The card answered with another status word than the one required.
    #[error("expected SW {:04X}, got {:04X} ({data_len} data bytes)", expected.to_u16(), got.to_u16())]
    Status {
        /// The status word required.
        expected: Status,
        /// The status word answered.
        got: Status,
        /// How many data bytes came with it.
        data_len: usize,
    },
    /// The response data is not what the command answers.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl ClientError {
    /// The in-process card's error, when that is what failed.
    pub fn card_error(&self) -> Option<&CardError> {
        match self {
            ClientError::Transport(TransportError::Card(error)) => Some(error),
            _ => None,
        }
    }
}

/// More GET RESPONSE rounds than any object needs (a 64 KiB object in
/// 256-byte pieces); past this the card is looping.
pub const MAX_RESPONSE_ROUNDS: usize = 300;

/// The class byte bit that says more of the command chain follows
/// (ISO 7816-4 5.4.1).
pub const CHAINING: u8 = 0x10;

/// The most command data one short APDU carries (ISO 7816-4 5.1).
pub const MAX_SHORT_DATA: usize = 255;

/// Encodes one short APDU: header, Lc and data when there are data, and
/// `Le = 00` (up to 256 bytes) when `le` is set.
pub fn short_apdu(header: [u8; 4], data: &[u8], le: bool) -> Vec<u8> {
    let mut apdu = header.to_vec();
    if !data.is_empty() {
        // Callers split data into pieces of at most 255 bytes.
        apdu.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        apdu.extend_from_slice(data);
    }
    if le {
        apdu.push(0x00);
    }
    apdu
}

/// The short APDUs that carry `header` and `data` (ISO 7816-4 5.3.3): one
/// APDU when the data fit in 255 bytes, else a chain of 255-byte pieces
/// with the chaining bit set on all but the last; the last ends with
/// `Le = 00`. Never empty.
pub fn chain(header: [u8; 4], data: &[u8]) -> Vec<Vec<u8>> {
    let mut pieces: Vec<&[u8]> = data.chunks(MAX_SHORT_DATA).collect();
    let last = pieces.pop().unwrap_or_default();
    let mut chained = header;
    chained[0] |= CHAINING;
    let mut apdus: Vec<Vec<u8>> = pieces
        .into_iter()
        .map(|piece| short_apdu(chained, piece, false))
        .collect();
    apdus.push(short_apdu(header, last, true));
    apdus
}

/// A host-side client over a [`Transport`].
pub struct Client<T> {
    transport: T,
    round_trips: usize,
}

impl<T: Transport> Client<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> Client<T> {
        Client {
            transport,
            round_trips: 0,
        }
    }

    /// The transport (the card, for checks that look inside it).
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport, read-only.
    pub fn transport_ref(&self) -> &T {
        &self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// How many APDUs were exchanged so far (GET RESPONSEs and chain
    /// pieces included).
    pub fn round_trips(&self) -> usize {
        self.round_trips
    }

    /// Sends one APDU as is: no GET RESPONSE, no chaining.
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Reply, ClientError> {
        let response = self.transport.transmit(apdu)?;
        self.round_trips += 1;
        let len = response.len();
        Reply::parse(response).ok_or(ClientError::NoStatusWord(len))
    }

    /// Follows `61xx` after `first` with GET RESPONSE (`00 C0 00 00 xx`)
    /// until another status word, joining the data.
    pub fn follow(&mut self, first: Reply) -> Result<Reply, ClientError> {
        let mut reply = first;
        let mut rounds = 0;
        while let Status::BytesRemaining(le) = reply.status {
            rounds += 1;
            if rounds > MAX_RESPONSE_ROUNDS {
                return Err(ClientError::EndlessResponse(MAX_RESPONSE_ROUNDS));
            }
            let next = self.transmit(&[0x00, 0xC0, 0x00, 0x00, le])?;
            reply.data.extend_from_slice(&next.data);
            reply.status = next.status;
        }
        Ok(reply)
    }

    /// Sends one APDU and follows `61xx` with GET RESPONSE.
    pub fn send(&mut self, apdu: &[u8]) -> Result<Reply, ClientError> {
        let first = self.transmit(apdu)?;
        self.follow(first)
    }

    /// Sends `header` and `data` as short APDUs with `Le = 00`, as a
    /// command chain when the data are longer than 255 bytes (as
    /// yubico-piv-tool and OpenSC do, see [`chain`]), and follows `61xx`.
    /// A chain piece answered with anything but `9000` ends the chain with
    /// that answer.
    pub fn command(&mut self, header: [u8; 4], data: &[u8]) -> Result<Reply, ClientError> {
        let apdus = chain(header, data);
        let Some((last, pieces)) = apdus.split_last() else {
            return Err(ClientError::Malformed("empty command chain".into()));
        };
        for piece in pieces {
            let reply = self.transmit(piece)?;
            if reply.status != Status::Success {
                return Ok(reply);
            }
        }
        self.send(last)
    }

    /// [`Client::send`] and require `status`; returns the data.
    pub fn send_expecting(&mut self, apdu: &[u8], status: Status) -> Result<Vec<u8>, ClientError> {
        let reply = self.send(apdu)?;
        require(&reply, status)?;
        Ok(reply.data)
    }

    /// [`Client::command`] and require `status`; returns the data.
    pub fn command_expecting(
        &mut self,
        header: [u8; 4],
        data: &[u8],
        status: Status,
    ) -> Result<Vec<u8>, ClientError> {
        let reply = self.command(header, data)?;
        require(&reply, status)?;
        Ok(reply.data)
    }

    /// For tests: sends `apdu` (following `61xx`), panics unless the card
    /// answers `status`, returns the data.
    #[track_caller]
    pub fn expect(&mut self, apdu: &[u8], status: Status) -> Vec<u8> {
        match self.send_expecting(apdu, status) {
            Ok(data) => data,
            Err(error) => panic!("{}: {error}", hex::encode_upper(apdu)),
        }
    }

    /// For tests: sends `apdu` (following `61xx`) and panics unless the
    /// exchange works; returns the reply whatever its status.
    #[track_caller]
    pub fn reply(&mut self, apdu: &[u8]) -> Reply {
        match self.send(apdu) {
            Ok(reply) => reply,
            Err(error) => panic!("{}: {error}", hex::encode_upper(apdu)),
        }
    }

    /// For tests: sends `apdu` (following `61xx`) and panics unless the
    /// card answers `status`.
    #[track_caller]
    pub fn expect_status(&mut self, apdu: &[u8], status: Status) {
        self.expect(apdu, status);
    }

    /// Warm reset through the transport.
    pub fn reset(&mut self) -> Result<(), ClientError> {
        Ok(self.transport.reset()?)
    }

    /// Power cycle through the transport.
    pub fn power_cycle(&mut self) -> Result<(), ClientError> {
        Ok(self.transport.power_cycle()?)
    }
}

/// Requires `reply` to carry `status`.
pub fn require(reply: &Reply, status: Status) -> Result<(), ClientError> {
    if reply.status == status {
        Ok(())
    } else {
        Err(ClientError::Status {
            expected: status,
            got: reply.status,
            data_len: reply.data.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::echo::echo_card;

    /// Records every APDU the client sends, to check the wire.
    struct Recording {
        card: Card,
        sent: Vec<Vec<u8>>,
    }

    impl Transport for Recording {
        fn name(&self) -> String {
            "recording".into()
        }

        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push(apdu.to_vec());
            Transport::transmit(&mut self.card, apdu)
        }
    }

    fn client() -> Client<Recording> {
        let mut card = echo_card().unwrap();
        card.power_on();
        Client::new(Recording {
            card,
            sent: Vec::new(),
        })
    }

    #[test]
    fn get_response_reassembles_long_answers() {
        let mut c = client();
        // `05`: answer P1P2 = 0x0300 = 768 bytes: three 256-byte pieces.
        let reply = c.send(&[0x00, 0x05, 0x03, 0x00, 0x00]).unwrap();
        assert_eq!(reply.status, Status::Success);
        assert_eq!(reply.data, (0..768).map(|i| i as u8).collect::<Vec<_>>());
        let sent = &c.transport().sent;
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[1], [0x00, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(c.round_trips(), 3);
    }

    #[test]
    fn transmit_does_not_follow_61xx() {
        let mut c = client();
        // 257 bytes: 256 now, one more through GET RESPONSE.
        let reply = c.transmit(&[0x00, 0x05, 0x01, 0x01, 0x00]).unwrap();
        assert_eq!(reply.status, Status::BytesRemaining(0x01));
        assert_eq!(reply.data.len(), 256);
        assert_eq!(reply.sw(), 0x6101);
        assert_eq!((reply.sw1(), reply.sw2()), (0x61, 0x01));
        let rest = c.follow(reply).unwrap();
        assert_eq!(rest.data.len(), 257);
        assert_eq!(c.round_trips(), 2);
    }

    #[test]
    fn long_data_goes_as_a_command_chain() {
        let mut c = client();
        let data: Vec<u8> = (0..600).map(|i| (i * 7) as u8).collect();
        let reply = c.command([0x00, 0x01, 0x00, 0x00], &data).unwrap();
        assert_eq!(reply.status, Status::Success);
        assert_eq!(reply.data, data);
        let sent = &c.transport().sent;
        // 255 + 255 chained, the last 90 with Le, then one GET RESPONSE
        // for the 600-byte echo.
        assert_eq!(sent[0][..5], [0x10, 0x01, 0x00, 0x00, 0xFF]);
        assert_eq!(sent[0].len(), 5 + 255);
        assert_eq!(sent[1][..5], [0x10, 0x01, 0x00, 0x00, 0xFF]);
        assert_eq!(sent[2][..5], [0x00, 0x01, 0x00, 0x00, 90]);
        assert_eq!(sent[2].len(), 5 + 90 + 1);
        assert_eq!(sent[2].last(), Some(&0x00));
    }

    #[test]
    fn a_command_without_data_is_header_and_le() {
        let mut c = client();
        let reply = c.command([0x00, 0x03, 0x00, 0x00], &[]).unwrap();
        assert_eq!(reply, Reply::new(vec![0, 0, 0, 0], Status::Success));
        assert_eq!(c.transport().sent, [vec![0x00, 0x03, 0x00, 0x00, 0x00]]);
    }

    #[test]
    fn status_words_are_typed_and_checked() {
        let mut c = client();
        let reply = c.send(&[0x00, 0x7F, 0x00, 0x00]).unwrap();
        assert_eq!(reply.status, Status::InstructionNotSupported);
        let error = c
            .send_expecting(&[0x00, 0x7F, 0x00, 0x00], Status::Success)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected SW 9000, got 6D00 (0 data bytes)"
        );
        assert_eq!(
            c.expect(&[0x00, 0x01, 0x00, 0x00, 0x01, 0xAB], Status::Success),
            [0xAB]
        );
    }

    #[test]
    #[should_panic(expected = "007F0000: expected SW 9000, got 6D00")]
    fn expect_panics_with_the_apdu_and_both_status_words() {
        client().expect(&[0x00, 0x7F, 0x00, 0x00], Status::Success);
    }

    #[test]
    fn short_responses_and_card_errors_are_errors() {
        assert_eq!(Reply::parse(vec![0x90]), None);
        let mut c = client();
        c.transport().card.power_off();
        let error = c.send(&[0x00, 0x03, 0x00, 0x00]).unwrap_err();
        assert!(matches!(error.card_error(), Some(CardError::NotPowered)));
    }
}
