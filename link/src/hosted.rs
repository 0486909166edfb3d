//! A card host's link: the computer dials a host that serves many cards.
//!
//! Roles turn around from the phone case: the card lives on the host, so
//! the host listens and the relay (the computer) connects, as the
//! initiator of `Noise_IK` with the host's key pinned (from the device key
//! made by `vscard host enrol`). The first handshake message carries the
//! card's ID as its payload (encrypted under the host's static key); the
//! host looks the device's key up among the enrolled devices and answers
//! only a device enrolled for that card. The relay's first transport frame
//! is the key confirmation (IK's first message can be replayed), as for a
//! pinned card.
//!
//! Then the host opens the card (lease, load, the holder's approval) and
//! says [`Frame::Paired`] with the card's ID: the card is ready, and only
//! then does the relay put it in the vpcd reader. A [`Frame::Close`]
//! instead is a refusal with its reason (no such card, refused or timed-out
//! approval); the card never reaches the reader.
//!
//! [`relay_to_hosts`] keeps one card in the reader across host failures:
//! when its link drops, the card leaves the reader and the relay dials the
//! next host of its list (each host serves every card of the database).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use vscard_vpcd::codec::{FrameDecoder, encode_frame};
use zeroize::Zeroizing;

use crate::error::LinkError;
use crate::frame::Frame;
use crate::noise::{self, Hello, Link, Wire, read_hs, remote_static, write_hs};
use crate::relay::{ack_partial, reach_vpcd, request_over_link};
use crate::state::{Identity, PublicKey};
use crate::{KeepAlive, RelayConfig};

const TARGET: &str = "vscard::hosted";

/// The longest card ID carried in the first message.
const MAX_CARD_ID: usize = 64;

/// The relay's side: dials `address`, authenticates against the pinned
/// host key, asks for `card`. Returns the link once the handshake is done
/// (the card is not open yet: see [`wait_ready`]).
pub async fn connect_host(
    address: &str,
    host_key: &PublicKey,
    identity: &Identity,
    card: &str,
) -> Result<Link, LinkError> {
    let stream = TcpStream::connect(address).await?;
    tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, async {
        let mut wire = Wire::new(stream);
        let hello = Hello::Pinned.encode();
        wire.send(&hello).await?;
        let mut hs = noise::builder(noise::PINNED)?
            .local_private_key(identity.private())?
            .remote_public_key(host_key)?
            .prologue(&hello)?
            .build_initiator()?;
        write_hs(&mut wire, &mut hs, card.as_bytes()).await?;
        read_hs(&mut wire, &mut hs).await.map_err(|e| match e {
            LinkError::Closed(_) => LinkError::Refused(
                "the host closed the handshake (this device is not enrolled for the card)"
                    .to_owned(),
            ),
            other => other,
        })?;
        let mut link = Link::new(wire, hs)?;
        link.send(&Frame::KeepAlive).await?;
        Ok(link)
    })
    .await
    .map_err(|_| LinkError::Refused("handshake timed out".to_owned()))?
}

/// The relay's side: waits (up to `timeout`) for the host to say the card
/// is open; a close is a refusal with the host's reason.
pub async fn wait_ready(link: &mut Link, card: &str, timeout: Duration) -> Result<(), LinkError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, link.recv())
            .await
            .map_err(|_| LinkError::Silent(timeout))??;
        match frame {
            Frame::KeepAlive => {}
            Frame::Paired(id) if id == card => return Ok(()),
            Frame::Close(reason) => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::Protocol(format!(
                    "expected the card to open, got {other:?}"
                )));
            }
        }
    }
}

/// The host's side of a handshake in progress: the device's key and the
/// card it asks for are known, nothing has been answered yet. The host
/// looks the key up (its database) and then [`DeviceHello::finish`]es or
/// drops it (a refusal: the device gets no answer).
pub struct DeviceHello {
    wire: Wire,
    hs: snow::HandshakeState,
    key: PublicKey,
    card: String,
}

impl std::fmt::Debug for DeviceHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceHello(card {:?}, key {})",
            self.card,
            &crate::state::fingerprint(&self.key)[..16]
        )
    }
}

impl DeviceHello {
    /// The device's static key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The card it asks for.
    pub fn card(&self) -> &str {
        &self.card
    }

    /// Answers the handshake and waits for the device's key confirmation.
    pub async fn finish(mut self) -> Result<Link, LinkError> {
        tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, async {
            write_hs(&mut self.wire, &mut self.hs, &[]).await?;
            let mut link = Link::new(self.wire, self.hs)?;
            match link.recv().await {
                Ok(Frame::KeepAlive) => Ok(link),
                Ok(other) => Err(LinkError::Protocol(format!(
                    "expected a key confirmation, got {other:?}"
                ))),
                Err(_) => Err(LinkError::Refused(
                    "no key confirmation after the handshake (a replayed first message?)"
                        .to_owned(),
                )),
            }
        })
        .await
        .map_err(|_| LinkError::Refused("handshake timed out".to_owned()))?
    }
}

/// The host's side: reads the hello and the first handshake message.
pub async fn accept_device(
    stream: TcpStream,
    identity: &Identity,
) -> Result<DeviceHello, LinkError> {
    tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, async {
        let mut wire = Wire::new(stream);
        let hello_bytes = wire.recv().await?;
        if Hello::decode(&hello_bytes)? != Hello::Pinned {
            return Err(LinkError::Refused(
                "a card host takes no pairing: enrol the device (vscard host enrol)".to_owned(),
            ));
        }
        let mut hs = noise::builder(noise::PINNED)?
            .local_private_key(identity.private())?
            .prologue(&hello_bytes)?
            .build_responder()?;
        let payload = read_hs(&mut wire, &mut hs).await?;
        let key = remote_static(&hs)?;
        let card = std::str::from_utf8(&payload)
            .ok()
            .filter(|id| !id.is_empty() && id.len() <= MAX_CARD_ID)
            .ok_or_else(|| LinkError::Refused("malformed card ID".to_owned()))?
            .to_owned();
        Ok(DeviceHello {
            wire,
            hs,
            key,
            card,
        })
    })
    .await
    .map_err(|_| LinkError::Refused("handshake timed out".to_owned()))?
}

/// Hears what [`relay_to_hosts`] does.
pub trait HostedObserver: Send + Sync {
    /// The card is open on `host` and in the reader.
    fn connected(&self, host: &str) {
        let _ = host;
    }
    /// The link to `host` ended; the card left the reader.
    fn disconnected(&self, host: &str, reason: &str) {
        let _ = (host, reason);
    }
    /// `host` could not be reached (the next one is tried).
    fn unreachable(&self, host: &str, reason: &str) {
        let _ = (host, reason);
    }
}

/// Where and how [`relay_to_hosts`] reaches the card.
#[derive(Clone, Debug)]
pub struct HostedTarget {
    /// The hosts, `HOST:PORT` each, tried in turn.
    pub hosts: Vec<String>,
    /// The hosts' pinned key.
    pub host_key: PublicKey,
    /// The card.
    pub card: String,
    /// How long a host may take to open the card (its lease, the holder's
    /// approval).
    pub open_timeout: Duration,
}

/// Keeps `target.card` in the vpcd reader (slot 0 of `config`) through
/// whichever host answers, until `shutdown` or a refusal (returned as
/// [`LinkError::Refused`] with the host's reason). A network failure moves
/// on to the next host, with a capped backoff once every host failed.
pub async fn relay_to_hosts(
    target: &HostedTarget,
    identity: &Identity,
    config: &RelayConfig,
    observer: Option<&dyn HostedObserver>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let mut failures = 0usize;
    let mut index = 0usize;
    loop {
        if *shutdown.borrow() || target.hosts.is_empty() {
            return Ok(());
        }
        let host = target.hosts[index % target.hosts.len()].clone();
        index += 1;
        let opened = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            opened = async {
                let mut link = connect_host(&host, &target.host_key, identity, &target.card).await?;
                wait_ready(&mut link, &target.card, target.open_timeout).await?;
                Ok::<Link, LinkError>(link)
            } => opened,
        };
        match opened {
            Ok(link) => {
                failures = 0;
                tracing::info!(target: TARGET, %host, card = %target.card, "card open");
                let reason = match forward(link, config, &host, observer, &mut shutdown).await {
                    Ok(None) => return Ok(()),
                    Ok(Some(reason)) => reason,
                    Err(e) => e.to_string(),
                };
                tracing::info!(target: TARGET, %host, %reason, "link to the host ended");
                if let Some(observer) = observer {
                    observer.disconnected(&host, &reason);
                }
            }
            Err(e @ LinkError::Refused(_)) => return Err(e),
            Err(e) => {
                failures += 1;
                tracing::info!(target: TARGET, %host, error = %e, "host not reached");
                if let Some(observer) = observer {
                    observer.unreachable(&host, &e.to_string());
                }
            }
        }
        if failures >= target.hosts.len() {
            let delay = Duration::from_millis(100 * u64::try_from(failures.min(20)).unwrap_or(20));
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Relays vpcd's requests over the link until either side ends; `None` on
/// shutdown, else why it ended.
async fn forward(
    mut link: Link,
    config: &RelayConfig,
    host: &str,
    observer: Option<&dyn HostedObserver>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<String>, LinkError> {
    let Some(vpcd) = reach_vpcd(&mut link, config, 0, shutdown).await? else {
        link.close("relay stopping").await;
        return Ok(None);
    };
    if let Some(observer) = observer {
        observer.connected(host);
    }
    let (mut from_vpcd, mut to_vpcd) = vpcd.into_split();
    let mut decoder = FrameDecoder::new();
    let mut buf = Zeroizing::new(vec![0u8; 8192]);
    let keep_alive: KeepAlive = config.keep_alive;
    let mut tick = tokio::time::interval(keep_alive.interval.min(Duration::from_secs(1)));
    let mut last_received = Instant::now();
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                link.close("relay stopping").await;
                return Ok(None);
            }
            read = from_vpcd.read(buf.as_mut_slice()) => {
                let n = read?;
                if n == 0 {
                    link.close("the reader closed (pcscd stopped?)").await;
                    return Ok(Some("vpcd closed the connection".to_owned()));
                }
                decoder.extend(&buf[..n]);
                while let Some(request) = decoder.next_request() {
                    let Ok(request) = request else { continue };
                    let reply = request_over_link(&mut link, request, keep_alive.timeout).await?;
                    last_received = Instant::now();
                    last_sent = last_received;
                    if let Some(reply) = reply {
                        let frame = Zeroizing::new(encode_frame(&reply).map_err(|e| LinkError::Protocol(e.to_string()))?);
                        to_vpcd.write_all(&frame).await?;
                    }
                }
                ack_partial(from_vpcd.as_ref(), &decoder);
            }
            frame = link.recv() => {
                last_received = Instant::now();
                match frame? {
                    Frame::KeepAlive => {}
                    Frame::Close(reason) => return Ok(Some(format!("the host closed the link: {reason}"))),
                    other => return Err(LinkError::Protocol(format!("unexpected {other:?} from the host"))),
                }
            }
            _ = tick.tick() => {
                if last_received.elapsed() > keep_alive.timeout {
                    return Err(LinkError::Silent(keep_alive.timeout));
                }
                if last_sent.elapsed() >= keep_alive.interval {
                    link.send(&Frame::KeepAlive).await?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// The device's side of an approval: dials `address` as the device
/// enrolled for `card`, waits (up to `wait`) for the host to offer the
/// card's oldest open request, shows the host's words on it (`offered`:
/// which request, who asks) before answering, approves or refuses it,
/// and returns what the host recorded. `prefix` is the host's marker for
/// an approving device (`vscard_host`'s `APPROVE_PREFIX`).
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
pub async fn answer_approval(
    address: &str,
    host_key: &PublicKey,
    identity: &Identity,
    card: &str,
    prefix: &str,
    approve: bool,
    wait: Duration,
    offered: &dyn Fn(&str),
) -> Result<String, LinkError> {
    let mut link = connect_host(address, host_key, identity, &format!("{prefix}{card}")).await?;
    let deadline = Instant::now() + wait;
    let request = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, link.recv())
            .await
            .map_err(|_| LinkError::Silent(wait))??;
        match frame {
            Frame::KeepAlive => {}
            Frame::Paired(offer) => match offer.strip_prefix("approval ") {
                Some(about) => {
                    offered(&offer);
                    let id = about.split_once(' ').map_or(about, |(id, _)| id);
                    break id.to_owned();
                }
                None => {
                    return Err(LinkError::Protocol(format!(
                        "not an approval request: {offer:?}"
                    )));
                }
            },
            Frame::Close(reason) => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {other:?} from the host"
                )));
            }
        }
    };
    let verb = if approve { "approve" } else { "refuse" };
    link.send(&Frame::Paired(format!("{verb} {request}")))
        .await?;
    loop {
        let frame = tokio::time::timeout(noise::HANDSHAKE_TIMEOUT, link.recv())
            .await
            .map_err(|_| LinkError::Silent(noise::HANDSHAKE_TIMEOUT))??;
        match frame {
            Frame::KeepAlive => {}
            Frame::Close(reason) => return Ok(reason),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {other:?} from the host"
                )));
            }
        }
    }
}
