//! Both ends of the two handshakes.
//!
//! Pairing (`Noise_XXpsk3`): card -> relay `e`; relay -> card `e, ee, s,
//! es` (the card checks the relay's key against the URI's fingerprint
//! before it says anything about itself); card -> relay `s, se, psk` with
//! the card's label (the relay fails to decrypt it unless the card knows
//! the one-time secret); then the relay uses the pairing up (removes its
//! file: a second use finds nothing), pins the card and sends
//! [`Frame::Paired`].
//!
//! Pinned (`Noise_IK`): card -> relay `e, es, s, ss` with the card's label;
//! the relay looks the card's key up among the pinned cards (re-read at
//! each connection, so `relay forget` takes effect) and answers `e, ee,
//! se` only for a pinned key. A stranger is refused before any frame.
//! IK's first message can be replayed by whoever recorded it, so the
//! relay also waits for the card's first transport frame (a keep-alive,
//! under keys that depend on the relay's fresh ephemeral key) before it
//! treats the card as connected.

use tokio::net::TcpStream;

use crate::error::LinkError;
use crate::frame::Frame;
use crate::noise::{self, Hello, Link, Wire, read_hs, remote_static, write_hs};
use crate::state::{
    Identity, LinkState, PairingUri, PinnedRelay, PublicKey, fingerprint, now_unix,
};

/// How the card reaches its relay.
#[derive(Clone, Debug)]
pub enum Target {
    /// A first connection: prove the URI's secret, pin both keys.
    Pair(PairingUri),
    /// A pinned relay.
    Pinned(PinnedRelay),
}

impl Target {
    /// The relay's address.
    pub fn address(&self) -> &str {
        match self {
            Target::Pair(uri) => &uri.address,
            Target::Pinned(relay) => &relay.address,
        }
    }

    /// `--link TARGET`: a pairing URI, or a pinned relay's name or address.
    pub fn resolve(text: &str, state: &LinkState) -> Result<Target, LinkError> {
        let text = text.trim();
        if text.starts_with(crate::state::PAIR_SCHEME) {
            return Ok(Target::Pair(PairingUri::parse(text)?));
        }
        state
            .relay(text)?
            .map(Target::Pinned)
            .ok_or_else(|| LinkError::NotPaired(text.to_owned()))
    }
}

/// The card side: connects and authenticates. After a pairing the relay
/// is pinned in `state`, and the caller should use [`Target::Pinned`] from
/// then on (the secret works once).
pub async fn connect(
    target: &Target,
    identity: &Identity,
    label: &str,
    state: &LinkState,
) -> Result<(Link, Option<PinnedRelay>), LinkError> {
    let stream = TcpStream::connect(target.address()).await?;
    tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, async {
        let mut wire = Wire::new(stream);
        match target {
            Target::Pinned(relay) => {
                let key = relay.public_key()?;
                let hello = Hello::Pinned.encode();
                wire.send(&hello).await?;
                let mut hs = noise::builder(noise::PINNED)?
                    .local_private_key(identity.private())?
                    .remote_public_key(&key)?
                    .prologue(&hello)?
                    .build_initiator()?;
                write_hs(&mut wire, &mut hs, label.as_bytes()).await?;
                read_hs(&mut wire, &mut hs).await.map_err(|e| {
                    match e {
                    LinkError::Closed(_) => LinkError::Refused(
                        "the relay closed the handshake (this card is not pinned there: pair again)"
                            .to_owned(),
                    ),
                    other => other,
                }
                })?;
                let mut link = Link::new(wire, hs)?;
                // Key confirmation: IK's first message can be replayed by
                // whoever recorded it; only the card itself can send a
                // transport message under this handshake's keys.
                link.send(&Frame::KeepAlive).await?;
                Ok((link, None))
            }
            Target::Pair(uri) => {
                let hello = Hello::Pair(uri.id).encode();
                wire.send(&hello).await?;
                let mut hs = noise::builder(noise::PAIRING)?
                    .local_private_key(identity.private())?
                    .psk(3, &uri.secret)?
                    .prologue(&hello)?
                    .build_initiator()?;
                write_hs(&mut wire, &mut hs, &[]).await?;
                read_hs(&mut wire, &mut hs).await.map_err(|e| match e {
                    LinkError::Closed(_) => LinkError::Refused(
                        "the relay closed the pairing (no such pairing, used or expired)"
                            .to_owned(),
                    ),
                    other => other,
                })?;
                let relay_key = remote_static(&hs)?;
                if fingerprint(&relay_key) != uri.fingerprint {
                    return Err(LinkError::Refused(
                        "the relay's key is not the one in the pairing URI".to_owned(),
                    ));
                }
                write_hs(&mut wire, &mut hs, label.as_bytes()).await?;
                let mut link = Link::new(wire, hs)?;
                match link.recv().await {
                    Ok(Frame::Paired(_name)) => {}
                    Ok(Frame::Close(reason)) => return Err(LinkError::Refused(reason)),
                    Ok(other) => {
                        return Err(LinkError::Protocol(format!(
                            "expected Paired, got {other:?}"
                        )));
                    }
                    Err(LinkError::Closed(_)) | Err(LinkError::Noise(_)) => {
                        return Err(LinkError::Refused(
                            "the relay refused the pairing secret (wrong, used or expired)"
                                .to_owned(),
                        ));
                    }
                    Err(e) => return Err(e),
                }
                let pinned = PinnedRelay {
                    name: uri.name.clone(),
                    address: uri.address.clone(),
                    key: hex::encode(relay_key),
                    paired: now_unix(),
                };
                state.pin_relay(pinned.clone())?;
                Ok((link, Some(pinned)))
            }
        }
    })
    .await
    .map_err(|_| LinkError::Refused("handshake timed out".to_owned()))?
}

/// Who connected, as the relay sees it after a handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The pinned card's name.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
    /// True when this connection paired it.
    pub paired_now: bool,
}

/// The relay side: authenticates one connection. Every refusal is an
/// error; nothing reaches a card before this returns `Ok`.
pub async fn accept(
    stream: TcpStream,
    identity: &Identity,
    state: &LinkState,
) -> Result<(Link, Peer), LinkError> {
    tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, async {
        let mut wire = Wire::new(stream);
        let hello_bytes = wire.recv().await?;
        let hello = Hello::decode(&hello_bytes)?;
        match hello {
            Hello::Pinned => {
                let mut hs = noise::builder(noise::PINNED)?
                    .local_private_key(identity.private())?
                    .prologue(&hello_bytes)?
                    .build_responder()?;
                let _label = read_hs(&mut wire, &mut hs).await?;
                let key = remote_static(&hs)?;
                let Some(card) = state.card_by_key(&key)? else {
                    return Err(LinkError::Refused(format!(
                        "unknown card key {} (not paired, or forgotten)",
                        &fingerprint(&key)[..16]
                    )));
                };
                write_hs(&mut wire, &mut hs, &[]).await?;
                let mut link = Link::new(wire, hs)?;
                // A recorded first message replayed gets this far; the
                // card's first transport frame is what proves it is there.
                match link.recv().await {
                    Ok(Frame::KeepAlive) => {}
                    Ok(other) => {
                        return Err(LinkError::Protocol(format!(
                            "expected a key confirmation, got {other:?}"
                        )));
                    }
                    Err(_) => {
                        return Err(LinkError::Refused(
                            "no key confirmation after the handshake (a replayed first message?)"
                                .to_owned(),
                        ));
                    }
                }
                Ok((
                    link,
                    Peer {
                        name: card.name,
                        key,
                        paired_now: false,
                    },
                ))
            }
            Hello::Pair(id) => {
                let Some(pending) = state.pairing(&id)? else {
                    return Err(LinkError::Refused(
                        "no such pending pairing (used, expired or never made)".to_owned(),
                    ));
                };
                let mut hs = noise::builder(noise::PAIRING)?
                    .local_private_key(identity.private())?
                    .psk(3, &pending.secret)?
                    .prologue(&hello_bytes)?
                    .build_responder()?;
                read_hs(&mut wire, &mut hs).await?;
                write_hs(&mut wire, &mut hs, &[]).await?;
                let label = read_hs(&mut wire, &mut hs)
                    .await
                    .map_err(|_| LinkError::Refused("wrong pairing secret".to_owned()))?;
                let key = remote_static(&hs)?;
                if !state.consume(&pending)? {
                    return Err(LinkError::Refused("pairing secret already used".to_owned()));
                }
                let label = String::from_utf8_lossy(&label).into_owned();
                let name = state.pin_card(&label, &key)?;
                let mut link = Link::new(wire, hs)?;
                link.send(&Frame::Paired(name.clone())).await?;
                Ok((
                    link,
                    Peer {
                        name,
                        key,
                        paired_now: true,
                    },
                ))
            }
        }
    })
    .await
    .map_err(|_| LinkError::Refused("handshake timed out".to_owned()))?
}
