//! The Noise handshakes and the encrypted, length-delimited transport.
//!
//! On the wire: a stream of messages, each a 2-byte big-endian length and
//! that many bytes (tokio-util's `LengthDelimitedCodec`). The first message
//! is the initiator's cleartext [`Hello`] (which handshake follows, and for
//! a pairing which pending pairing); both sides use it as the Noise
//! prologue, so a hello changed on the way fails the handshake. Then the
//! Noise handshake messages, then transport messages, each one [`Frame`]
//! or one fragment of a frame too long for a message (see
//! [`crate::frame`]).

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
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
pub(crate) struct Wire {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
}

impl Wire {
    pub(crate) fn new(stream: TcpStream) -> Wire {
        let _ = stream.set_nodelay(true);
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(2)
            .max_frame_length(MAX_MESSAGE)
            .new_codec();
        Wire {
            framed: Framed::new(stream, codec),
        }
    }

    pub(crate) async fn send(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.framed.send(Bytes::copy_from_slice(message)).await?;
        Ok(())
    }

    /// The next message (cancel-safe: a message is taken whole or not at
    /// all).
    pub(crate) async fn recv(&mut self) -> Result<Zeroizing<Vec<u8>>, LinkError> {
        match self.framed.next().await {
            Some(Ok(bytes)) => Ok(Zeroizing::new(bytes.to_vec())),
            Some(Err(e)) => Err(LinkError::Net(e)),
            None => Err(LinkError::Closed(None)),
        }
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

    /// Encrypts and sends one message of at most [`MAX_PLAINTEXT`] bytes.
    async fn seal(&mut self, plain: &[u8]) -> Result<(), LinkError> {
        let mut buf = vec![0u8; plain.len() + 16];
        let n = self.noise.write_message(plain, &mut buf)?;
        self.wire.send(&buf[..n]).await
    }

    /// Receives, authenticates and decodes one frame (cancel-safe). A
    /// message that fails authentication (tampered, replayed, out of
    /// order) is an error: the caller drops the link.
    pub async fn recv(&mut self) -> Result<Frame, LinkError> {
        loop {
            let message = self.wire.recv().await?;
            let mut plain = Zeroizing::new(vec![0u8; message.len()]);
            let n = self
                .noise
                .read_message(&message, &mut plain)
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
        let _ = futures_util::SinkExt::<Bytes>::close(&mut self.wire.framed).await;
    }
}
