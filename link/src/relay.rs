//! The relay, on the computer: accepts link connections and, for each
//! authenticated card, connects to the local vpcd as that card (one
//! reader slot per connected card; the slot is freed, so the card is
//! removed, when the link drops). The relay is the only process that
//! speaks vpcd; what leaves the machine is the link.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use vscard_vpcd::PeerPolicy;
use vscard_vpcd::codec::{FrameDecoder, VpcdRequest, encode_frame};
use zeroize::Zeroizing;

use crate::KeepAlive;
use crate::error::LinkError;
use crate::frame::Frame;
use crate::handshake::{Peer, accept};
use crate::noise::Link;
use crate::state::{Identity, LinkState};

const TARGET: &str = "vscard::relay";

/// Handshakes the relay runs at once (each lasts at most 10 s).
const MAX_HANDSHAKES: usize = 32;

/// Hears what the relay does (the CLI prints it).
pub trait RelayObserver: Send + Sync {
    /// A card is authenticated and has reader slot `slot`.
    fn connected(&self, peer: &Peer, slot: usize) {
        let _ = (peer, slot);
    }
    /// A card's link ended: it left its reader.
    fn disconnected(&self, name: &str, slot: usize, reason: &str) {
        let _ = (name, slot, reason);
    }
    /// A connection was refused before any frame reached a card.
    fn refused(&self, from: SocketAddr, reason: &str) {
        let _ = (from, reason);
    }
}

/// The relay's settings.
#[derive(Clone)]
pub struct RelayConfig {
    /// vpcd's host (pcscd's machine: this one).
    pub vpcd_host: String,
    /// vpcd's port for slot 0 (slot `i` is `port + i`).
    pub vpcd_port: u16,
    /// Whom the relay accepts as vpcd (default: root's pcscd).
    pub peer: PeerPolicy,
    /// Keep-alive pacing.
    pub keep_alive: KeepAlive,
    /// Who hears about cards.
    pub observer: Option<Arc<dyn RelayObserver>>,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            vpcd_host: "127.0.0.1".to_owned(),
            vpcd_port: vscard_vpcd::VPCD_PORT,
            peer: PeerPolicy::Pcscd,
            keep_alive: KeepAlive::default(),
            observer: None,
        }
    }
}

/// Which reader slots are taken.
#[derive(Default)]
struct Slots(Mutex<Vec<bool>>);

impl Slots {
    fn take(self: &Arc<Self>) -> SlotGuard {
        let mut taken = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let index = taken.iter().position(|t| !t).unwrap_or(taken.len());
        if index == taken.len() {
            taken.push(true);
        } else if let Some(slot) = taken.get_mut(index) {
            *slot = true;
        }
        SlotGuard {
            slots: Arc::clone(self),
            index,
        }
    }
}

struct SlotGuard {
    slots: Arc<Slots>,
    index: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut taken = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = taken.get_mut(self.index) {
            *slot = false;
        }
    }
}

/// What every connection of one relay shares.
struct Shared {
    identity: Identity,
    state: LinkState,
    config: RelayConfig,
    slots: Arc<Slots>,
}

/// Serves link connections on `listener` until `shutdown` turns true.
pub async fn run_relay(
    listener: TcpListener,
    identity: Identity,
    state: LinkState,
    config: RelayConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let shared = Arc::new(Shared {
        identity,
        state,
        config,
        slots: Arc::new(Slots::default()),
    });
    // Handshakes in progress at once: a flood of connections that never
    // finish their handshake cannot hold more than this many tasks.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, from) = tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break; }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(target: TARGET, error = %e, "accept failed");
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::warn!(target: TARGET, %from, "too many handshakes in progress: connection dropped");
            if let Some(observer) = &shared.config.observer {
                observer.refused(from, "too many handshakes in progress");
            }
            continue;
        };
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            connection(stream, from, &shared, shutdown, permit).await;
        });
        // Reap finished connections.
        while tasks.try_join_next().is_some() {}
    }
    // Each connection closes its link with a reason on shutdown; one
    // still in its handshake is cut after a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.shutdown().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let config = &shared.config;
    let accepted = accept(stream, &shared.identity, &shared.state).await;
    drop(permit);
    let (link, peer) = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            let reason = match e {
                LinkError::Refused(reason) => reason,
                other => other.to_string(),
            };
            // The observer (the CLI) says it; the log keeps it too.
            tracing::info!(target: TARGET, %from, %reason, "link refused");
            if let Some(observer) = &config.observer {
                observer.refused(from, &reason);
            }
            return;
        }
    };
    let slot = shared.slots.take();
    tracing::info!(target: TARGET, card = %peer.name, slot = slot.index, "card connected");
    if let Some(observer) = &config.observer {
        observer.connected(&peer, slot.index);
    }
    let reason = match forward(link, shared, &peer, slot.index, shutdown).await {
        Ok(reason) => reason,
        Err(e) => e.to_string(),
    };
    tracing::info!(target: TARGET, card = %peer.name, slot = slot.index, %reason, "card gone");
    if let Some(observer) = &config.observer {
        observer.disconnected(&peer.name, slot.index, &reason);
    }
}

/// Connects to vpcd's port for `slot`, retrying while the link lives.
pub(crate) async fn reach_vpcd(
    link: &mut Link,
    config: &RelayConfig,
    slot: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<TcpStream>, LinkError> {
    let port = u16::try_from(usize::from(config.vpcd_port) + slot)
        .map_err(|_| LinkError::Protocol(format!("no vpcd port for slot {slot}")))?;
    let address = format!("{}:{port}", config.vpcd_host);
    if config.peer == PeerPolicy::Pcscd {
        vscard_vpcd::peer::check_host(&config.vpcd_host, port)
            .map_err(|e| LinkError::Refused(format!("vpcd at {address}: {e}")))?;
    }
    let mut last_sent = Instant::now();
    loop {
        if let Ok(stream) = TcpStream::connect(&address).await {
            if config.peer == PeerPolicy::Pcscd {
                let peer = stream.peer_addr()?;
                vscard_vpcd::peer::check(peer)
                    .map_err(|e| LinkError::Refused(format!("vpcd at {address}: {e}")))?;
            }
            let _ = stream.set_nodelay(true);
            rearm_quickack(&stream);
            return Ok(Some(stream));
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            frame = link.recv() => match frame? {
                Frame::KeepAlive => {}
                Frame::Close(reason) => return Err(LinkError::Closed(Some(reason))),
                other => return Err(LinkError::Protocol(format!("unexpected {other:?} before a reader"))),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if last_sent.elapsed() >= config.keep_alive.interval {
            link.send(&Frame::KeepAlive).await?;
            last_sent = Instant::now();
        }
    }
}

/// Relays vpcd's requests over the link until either side ends; returns
/// why.
async fn forward(
    mut link: Link,
    shared: &Shared,
    peer: &Peer,
    slot: usize,
    mut shutdown: watch::Receiver<bool>,
) -> Result<String, LinkError> {
    let config = &shared.config;
    let Some(vpcd) = reach_vpcd(&mut link, config, slot, &mut shutdown).await? else {
        link.close("relay stopping").await;
        return Ok("relay stopping".to_owned());
    };
    let (mut from_vpcd, mut to_vpcd) = vpcd.into_split();
    let mut decoder = FrameDecoder::new();
    let mut buf = Zeroizing::new(vec![0u8; 8192]);
    let keep_alive = config.keep_alive;
    let mut tick = tokio::time::interval(keep_alive.interval.min(Duration::from_secs(1)));
    let mut last_received = Instant::now();
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                link.close("relay stopping").await;
                return Ok("relay stopping".to_owned());
            }
            read = from_vpcd.read(buf.as_mut_slice()) => {
                let n = read?;
                if n == 0 {
                    link.close("the reader closed (pcscd stopped?)").await;
                    return Ok("vpcd closed the connection".to_owned());
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
                    Frame::Close(reason) => return Ok(format!("the card closed the link: {reason}")),
                    other => return Err(LinkError::Protocol(format!("unexpected {other:?} from the card"))),
                }
            }
            _ = tick.tick() => {
                if last_received.elapsed() > keep_alive.timeout {
                    return Err(LinkError::Silent(keep_alive.timeout));
                }
                // `relay forget` (another process) ends a live link too.
                if let Ok(None) = shared.state.card_by_key(&peer.key) {
                    link.close("this card was forgotten by the relay").await;
                    return Ok("forgotten (vscard relay forget)".to_owned());
                }
                if last_sent.elapsed() >= keep_alive.interval {
                    link.send(&Frame::KeepAlive).await?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// Re-arms `TCP_QUICKACK` (Linux clears it by itself); see
/// `vscard_vpcd`'s socket notes: without it vpcd's second send (the APDU
/// after its length) waits for our delayed ACK, about 40 ms.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn rearm_quickack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

/// No `TCP_QUICKACK` here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn rearm_quickack(_stream: &TcpStream) {}

/// After the requests of a read from vpcd are answered: when part of a
/// request is still to come (vpcd sends the length and the APDU in two
/// sends), re-arms `TCP_QUICKACK`, which also sends at once the ACK that
/// vpcd's second send waits for. A read that ended on a whole request
/// needs no ACK now: vpcd waits for the answer, which carries it (one
/// `setsockopt` per APDU instead of two).
pub(crate) fn ack_partial(stream: &TcpStream, decoder: &FrameDecoder) {
    if decoder.pending() > 0 {
        rearm_quickack(stream);
    }
}

/// Sends one vpcd request as a frame; waits for the card's answer when
/// vpcd expects one.
pub(crate) async fn request_over_link(
    link: &mut Link,
    request: VpcdRequest,
    timeout: Duration,
) -> Result<Option<Zeroizing<Vec<u8>>>, LinkError> {
    let expects = request.expects_reply();
    let frame = match request {
        VpcdRequest::PowerOff => Frame::PowerOff,
        VpcdRequest::PowerOn => Frame::PowerOn,
        VpcdRequest::Reset => Frame::Reset,
        VpcdRequest::GetAtr => Frame::GetAtr,
        VpcdRequest::Apdu(apdu) => Frame::Apdu(Zeroizing::new(apdu)),
    };
    let asked_atr = frame == Frame::GetAtr;
    link.send(&frame).await?;
    drop(frame);
    if !expects {
        return Ok(None);
    }
    loop {
        let answer = tokio::time::timeout(timeout, link.recv())
            .await
            .map_err(|_| LinkError::Silent(timeout))??;
        match answer {
            Frame::KeepAlive => continue,
            Frame::Atr(atr) if asked_atr => return Ok(Some(Zeroizing::new(atr))),
            Frame::Response(response) if !asked_atr => return Ok(Some(response)),
            Frame::Close(reason) => return Err(LinkError::Closed(Some(reason))),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {other:?} as an answer"
                )));
            }
        }
    }
}
