//! The Noise handshakes and the encrypted, length-delimited transport.
//!
//! On the wire: a stream of messages, each a 2-byte big-endian length and
//! that many bytes, written in one `write` ([`Wire`]). The first message
//! is the initiator's cleartext [`Hello`] (which handshake follows, and for
//! a pairing which pending pairing); both sides use it as the Noise
//! prologue, so a hello changed on the way fails the handshake. Then the
//! Noise handshake messages, then transport messages, each one [`Frame`]
//! or one fragment of a frame too long for a message (see
//! [`crate::frame`]).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::error::LinkError;
use crate::frame::{FRAGMENT, Frame, LAST_FRAGMENT, MAX_BODY, MAX_FRAME, MAX_PLAINTEXT};
use crate::state::PublicKey;

/// Once both keys are pinned: the card knows the relay's key, the relay
/// learns the card's in the first message and checks it is pinned.
pub(crate) const PINNED: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Pairing: keys exchanged in the handshake, the one-time secret mixed in
/// as a PSK in the last message (a wrong secret fails it).
pub(crate) const PAIRING: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";

/// How long a whole handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest Noise message.
const MAX_MESSAGE: usize = 65535;

/// The AEAD's authentication tag on every transport message.
const TAG: usize = 16;

pub(crate) fn builder(pattern: &str) -> Result<snow::Builder<'static>, LinkError> {
    let params: snow::params::NoiseParams = pattern.parse()?;
    Ok(snow::Builder::new(params))
}

/// The initiator's first, cleartext message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// IK with pinned keys.
    Pinned,
    /// XXpsk3 with the pending pairing `id`.
    Pair([u8; 16]),
}

const MAGIC: &[u8; 5] = b"VSCL1";

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        match self {
            Hello::Pinned => out.push(0),
            Hello::Pair(id) => {
                out.push(1);
                out.extend_from_slice(id);
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Hello, LinkError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| LinkError::Refused("not a vscard link (bad hello)".to_owned()))?;
        match rest {
            [0] => Ok(Hello::Pinned),
            [1, id @ ..] => <[u8; 16]>::try_from(id)
                .map(Hello::Pair)
                .map_err(|_| LinkError::Refused("malformed pairing hello".to_owned())),
            _ => Err(LinkError::Refused("unknown hello".to_owned())),
        }
    }
}

/// A TCP connection carrying length-delimited messages.
///
/// Each message leaves in one `write` (its length prefix and its bytes
/// together: one segment, not two), from a buffer kept for the
/// connection; messages in are cut out of a read buffer kept too, so
/// the wire allocates nothing per message. Both buffers hold only
/// what crosses the wire (cleartext hellos, handshake messages,
/// ciphertext), never a frame's plaintext.
pub(crate) struct Wire {
    stream: TcpStream,
    /// Bytes read and not yet consumed: whole messages, then at most one
    /// partial message.
    input: Vec<u8>,
    /// How many bytes at the front of `input` the last message returned
    /// by [`Wire::recv_in_place`] took (dropped at the next receive).
    taken: usize,
    /// The message being written: length prefix and bytes.
    output: Vec<u8>,
}

/// The length prefix: 2 bytes, big-endian.
const PREFIX: usize = 2;

/// What a read asks for at least (the buffer grows to the largest
/// message only when one arrives).
const READ_CHUNK: usize = 8 * 1024;

impl Wire {
    pub(crate) fn new(stream: TcpStream) -> Wire {
        // Each message is written whole: Nagle would only hold it back
        // for the ACK of the previous one.
        let _ = stream.set_nodelay(true);
        Wire {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            taken: 0,
            output: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.send_with(message.len(), |out| {
            out.copy_from_slice(message);
            Ok(message.len())
        })
        .await
    }

    /// Sends one message that `fill` writes into a buffer of `room`
    /// bytes (returning how many it wrote): the length prefix and the
    /// message go out in one write.
    pub(crate) async fn send_with(
        &mut self,
        room: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, LinkError>,
    ) -> Result<(), LinkError> {
        self.output.clear();
        self.output.resize(PREFIX + room, 0);
        let n = fill(self.output.get_mut(PREFIX..).unwrap_or_default())?;
        let length = u16::try_from(n)
            .ok()
            .filter(|&length| usize::from(length) <= MAX_MESSAGE)
            .ok_or_else(|| {
                LinkError::Protocol(format!(
                    "a message of {n} bytes is longer than the link carries"
                ))
            })?;
        self.output.truncate(PREFIX + n);
        if let Some(prefix) = self.output.get_mut(..PREFIX) {
            prefix.copy_from_slice(&length.to_be_bytes());
        }
        self.stream.write_all(&self.output).await?;
        Ok(())
    }

    /// The next message (cancel-safe: a message is taken whole or not at
    /// all).
    pub(crate) async fn recv(&mut self) -> Result<Zeroizing<Vec<u8>>, LinkError> {
        Ok(Zeroizing::new(self.recv_in_place().await?.to_vec()))
    }

    /// The next message, borrowed from the read buffer until the next
    /// receive (cancel-safe, as [`Wire::recv`]).
    pub(crate) async fn recv_in_place(&mut self) -> Result<&[u8], LinkError> {
        self.input.drain(..self.taken);
        self.taken = 0;
        loop {
            if let Some(&[high, low]) = self.input.get(..PREFIX) {
                let end = PREFIX + usize::from(u16::from_be_bytes([high, low]));
                if self.input.len() >= end {
                    self.taken = end;
                    return Ok(self.input.get(PREFIX..end).unwrap_or_default());
                }
                self.input.reserve(end - self.input.len());
            } else {
                self.input.reserve(READ_CHUNK);
            }
            // `read_buf` is cancel-safe: bytes read are in `input`.
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(if self.input.is_empty() {
                    LinkError::Closed(None)
                } else {
                    LinkError::Net(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the connection ended inside a message",
                    ))
                });
            }
        }
    }

    /// Shuts the sending half (best effort).
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// One Noise handshake message out.
pub(crate) async fn write_hs(
    wire: &mut Wire,
    hs: &mut snow::HandshakeState,
    payload: &[u8],
) -> Result<(), LinkError> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_MESSAGE]);
    let n = hs.write_message(payload, &mut buf)?;
    wire.send(&buf[..n]).await
}

/// One Noise handshake message in; its payload.
pub(crate) async fn read_hs(
    wire: &mut Wire,
    hs: &mut snow::HandshakeState,
) -> Result<Zeroizing<Vec<u8>>, LinkError> {
    let message = wire.recv().await?;
    let mut payload = Zeroizing::new(vec![0u8; MAX_MESSAGE]);
    let n = hs
        .read_message(&message, &mut payload)
        .map_err(|e| LinkError::Refused(format!("handshake failed ({e})")))?;
    payload.truncate(n);
    Ok(payload)
}

/// The remote static key a finished (or far enough) handshake learnt.
pub(crate) fn remote_static(hs: &snow::HandshakeState) -> Result<PublicKey, LinkError> {
    hs.get_remote_static()
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .ok_or_else(|| LinkError::Protocol("no remote static key".to_owned()))
}

/// An authenticated, encrypted link: frames in and out.
pub struct Link {
    wire: Wire,
    noise: snow::TransportState,
    peer: PublicKey,
    /// The fragments of a frame received so far (kept here, so `recv`
    /// stays cancel-safe).
    partial: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link(peer {})", crate::state::fingerprint(&self.peer))
    }
}

impl Link {
    pub(crate) fn new(wire: Wire, hs: snow::HandshakeState) -> Result<Link, LinkError> {
        let peer = remote_static(&hs)?;
        Ok(Link {
            wire,
            noise: hs.into_transport_mode()?,
            peer,
            partial: Zeroizing::new(Vec::new()),
        })
    }

    /// The peer's static public key.
    pub fn peer(&self) -> &PublicKey {
        &self.peer
    }

    /// Encrypts and sends one frame: one message, or fragments when it
    /// is longer than a message carries.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), LinkError> {
        let plain = frame.encode()?;
        if plain.len() <= MAX_PLAINTEXT {
            return self.seal(&plain).await;
        }
        let mut pieces = plain.chunks(MAX_BODY).peekable();
        while let Some(piece) = pieces.next() {
            let tag = if pieces.peek().is_some() {
                FRAGMENT
            } else {
                LAST_FRAGMENT
            };
            let mut message = Zeroizing::new(Vec::with_capacity(1 + piece.len()));
            message.push(tag);
            message.extend_from_slice(piece);
            self.seal(&message).await?;
        }
        Ok(())
    }

    /// Encrypts and sends one message of at most [`MAX_PLAINTEXT`] bytes
    /// (sealed straight into the wire's buffer).
    async fn seal(&mut self, plain: &[u8]) -> Result<(), LinkError> {
        let noise = &mut self.noise;
        self.wire
            .send_with(
                plain.len() + TAG,
                |out| Ok(noise.write_message(plain, out)?),
            )
            .await
    }

    /// Receives, authenticates and decodes one frame (cancel-safe). A
    /// message that fails authentication (tampered, replayed, out of
    /// order) is an error: the caller drops the link.
    pub async fn recv(&mut self) -> Result<Frame, LinkError> {
        loop {
            let message = self.wire.recv_in_place().await?;
            let mut plain = Zeroizing::new(vec![0u8; message.len()]);
            let n = self
                .noise
                .read_message(message, &mut plain)
                .map_err(|e| LinkError::Noise(format!("a message failed authentication ({e})")))?;
            plain.truncate(n);
            match plain.split_first() {
                Some((&FRAGMENT, piece)) => self.gather(piece)?,
                Some((&LAST_FRAGMENT, piece)) if !self.partial.is_empty() => {
                    self.gather(piece)?;
                    let whole = std::mem::take(&mut *self.partial);
                    let whole = Zeroizing::new(whole);
                    return Ok(Frame::decode(&whole)?);
                }
                _ if !self.partial.is_empty() => {
                    return Err(LinkError::Protocol(
                        "a frame's fragments ended without their last one".to_owned(),
                    ));
                }
                _ => return Ok(Frame::decode(&plain)?),
            }
        }
    }

    /// Adds a fragment to the frame being received; a frame that would
    /// grow past [`MAX_FRAME`] is a protocol error (the link drops).
    fn gather(&mut self, piece: &[u8]) -> Result<(), LinkError> {
        if self.partial.len() + piece.len() > MAX_FRAME {
            return Err(LinkError::Protocol(format!(
                "a fragmented frame longer than {MAX_FRAME} bytes"
            )));
        }
        // Room for the largest frame at once: growing would leave copies
        // of an APDU (a PIN, say) behind, unzeroized.
        if self.partial.capacity() < MAX_FRAME {
            self.partial.reserve_exact(MAX_FRAME);
        }
        self.partial.extend_from_slice(piece);
        Ok(())
    }

    /// Says why and closes (best effort).
    pub async fn close(mut self, reason: &str) {
        let _ = self.send(&Frame::Close(reason.to_owned())).await;
        self.wire.shutdown().await;
    }
}
