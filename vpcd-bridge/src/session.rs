//! One card's thread: reach vpcd, serve its frames, start again.
//!
//! The loop: while the card is inserted, open a connection (client mode:
//! connect with capped backoff; reverse mode: listen and accept), serve
//! frames until the connection ends, power the card off (as a card pulled
//! from a reader loses power; its persistent state is already committed),
//! and start again. Removal drops the connection; in reverse mode the card
//! keeps listening and closes each connection vpcd makes at once (see
//! `stay_removed` for why it does not stop listening).
//!
//! Bad input never stops the loop: an empty frame or an unknown control
//! code is logged and ignored (vpcd expects no answer to a one-byte frame
//! other than GET ATR, and never sends either); a frame cut short by the
//! end of the stream ends that connection only.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use std::io::{Read as _, Write as _};

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use vscard_emulator::{Card, CardError};
use zeroize::Zeroizing;

use crate::codec::{DecodeError, FrameDecoder, VpcdRequest, encode_frame};
use crate::config::{BridgeConfig, Mode, VPCD_PORT};
use crate::error::BridgeError;
use crate::net;
use crate::peer::{self, PeerError, PeerPolicy};
use crate::status::{Desired, Link, Location, StatusCell};
use crate::touch::{TouchButton, Wait};

/// Log target of the bridge.
const TARGET: &str = "vscard::vpcd";

/// The answer sent when the card cannot answer an APDU at all (`6F00`, no
/// precise diagnosis): vpcd has no read timeout, so silence would hang the
/// reader.
const NO_PRECISE_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// How many times the peer check looks before refusing a transient answer
/// ([`PeerError::is_transient`]), and how long apart: half a second in all.
const PEER_LOOKS: u32 = 10;
const PEER_LOOK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// The connection as a blocking std socket with the vpcd socket options.
fn blocking(stream: TcpStream) -> io::Result<std::net::TcpStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    if let Err(e) = net::tune(&stream) {
        tracing::warn!(target: TARGET, error = %e, "cannot set TCP_NODELAY");
    }
    Ok(stream)
}

/// How a session must end when the card is no longer wanted in the reader.
fn unwanted(desired: &watch::Receiver<Desired>) -> Option<End> {
    match *desired.borrow() {
        Desired::Inserted => None,
        Desired::Removed => Some(End::Removed),
        Desired::Shutdown => Some(End::Shutdown),
    }
}

/// The card's loop ends: the bridge is stopping, or the peer was refused.
struct Stopping;

/// Waits `delay` (or less, when the card is told something new) and
/// doubles it up to `max`; `Err` when the handle is gone.
async fn back_off(
    desired: &mut watch::Receiver<Desired>,
    delay: &mut std::time::Duration,
    max: std::time::Duration,
) -> Result<(), watch::error::RecvError> {
    tokio::select! {
        biased;
        changed = desired.changed() => changed?,
        () = tokio::time::sleep(*delay) => {}
    }
    *delay = (*delay * 2).min(max);
    Ok(())
}

/// Where one card meets vpcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// Connect to vpcd.
    Connect {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// pcscd's name for the reader, when the configuration tells it.
        reader: Option<String>,
    },
    /// Listen for vpcd.
    Listen(SocketAddr),
}

impl Endpoint {
    /// Card `index`'s endpoint: the mode's port plus the index, or the
    /// index-th configured slot (past the last one, the ports after it).
    pub(crate) fn for_card(mode: &Mode, index: usize) -> Result<Endpoint, BridgeError> {
        let shift_by = |port: u16, by: usize| {
            let wanted = u32::from(port).saturating_add(u32::try_from(by).unwrap_or(u32::MAX));
            u16::try_from(wanted).map_err(|_| BridgeError::PortRange {
                index,
                port: wanted,
            })
        };
        let shift = |port: u16| shift_by(port, index);
        Ok(match mode {
            Mode::Client { host, port } => Endpoint::Connect {
                host: host.clone(),
                port: shift(*port)?,
                reader: None,
            },
            Mode::Slots { host, slots } => {
                let (port, reader) = match (slots.get(index), slots.last()) {
                    (Some(slot), _) => (slot.port, slot.reader.clone()),
                    (None, Some(last)) => (shift_by(last.port, index + 1 - slots.len())?, None),
                    (None, None) => (shift(VPCD_PORT)?, None),
                };
                Endpoint::Connect {
                    host: host.clone(),
                    port,
                    reader,
                }
            }
            Mode::Reverse { listen } => {
                let mut addr = *listen;
                addr.set_port(shift(listen.port())?);
                Endpoint::Listen(addr)
            }
        })
    }

    /// The reader name pcscd gives this card's slot, when the reader
    /// configuration tells it.
    fn reader_name(&self) -> Option<String> {
        match self {
            Endpoint::Connect { reader, .. } => reader.clone(),
            Endpoint::Listen(_) => None,
        }
    }

    /// Refuses, before any connection, what the peer check cannot look at
    /// (a vpcd address that is not loopback).
    pub(crate) fn precheck(&self, policy: PeerPolicy) -> Result<(), PeerError> {
        match (self, policy) {
            (Endpoint::Connect { host, port, .. }, PeerPolicy::Pcscd) => {
                peer::check_host(host, *port)
            }
            _ => Ok(()),
        }
    }

    /// Checks who took the connection from `local` to `peer`, in client
    /// mode under [`PeerPolicy::Pcscd`] (in reverse mode the card only
    /// listens).
    fn check_peer(
        &self,
        policy: PeerPolicy,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), PeerError> {
        match (self, policy) {
            (Endpoint::Connect { .. }, PeerPolicy::Pcscd) => {
                let accepted = peer::check_connection(peer, local)?;
                tracing::debug!(target: TARGET, %peer, ?accepted, "vpcd's port belongs to root's pcscd");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The vpcd port card `index` connects to in client mode (`None` in
/// reverse mode, or past port 65535).
pub fn vpcd_port(mode: &Mode, index: usize) -> Option<u16> {
    match Endpoint::for_card(mode, index).ok()? {
        Endpoint::Connect { port, .. } => Some(port),
        Endpoint::Listen(_) => None,
    }
}

/// Everything a card's thread needs but the card and its control channel.
pub(crate) struct Worker {
    pub index: usize,
    pub endpoint: Endpoint,
    pub config: BridgeConfig,
    pub desired: watch::Receiver<Desired>,
    pub status: Arc<StatusCell>,
    pub swap: Arc<CardSwap>,
    pub touch: Arc<TouchButton>,
}

/// A card waiting to replace the one in the reader, and the one it
/// replaced ([`crate::BridgeHandle::swap`]). The card's thread makes the
/// exchange while the card is out of the reader, on its way back in, so
/// the old card is never half-way through a command.
#[derive(Debug, Default)]
pub(crate) struct CardSwap {
    incoming: std::sync::Mutex<Option<Card>>,
    outgoing: std::sync::Mutex<Option<Card>>,
}

impl CardSwap {
    /// Offers `card` for the next insertion (replacing an earlier offer,
    /// which is given back).
    pub(crate) fn offer(&self, card: Card) -> Option<Card> {
        lock(&self.incoming).replace(card)
    }

    /// The offered card, if the thread has not taken it.
    pub(crate) fn withdraw(&self) -> Option<Card> {
        lock(&self.incoming).take()
    }

    /// The card taken out, if the exchange was made.
    pub(crate) fn take_outgoing(&self) -> Option<Card> {
        lock(&self.outgoing).take()
    }

    /// Makes the exchange, if a card is on offer: `card` becomes the new
    /// card, the old one (powered off) waits for [`CardSwap::take_outgoing`].
    fn exchange(&self, card: &mut Card, trace: bool) -> bool {
        let Some(mut new) = self.withdraw() else {
            return false;
        };
        if trace {
            new.record_exchanges(true);
        }
        let mut old = std::mem::replace(card, new);
        old.power_off();
        *lock(&self.outgoing) = Some(old);
        true
    }
}

/// A lock that a panic elsewhere does not poison for good: the cells hold
/// whole cards, replaced in one move.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Removed,
    Shutdown,
    PeerClosed,
    Truncated(DecodeError),
    Io(io::Error),
    PowerLost,
    /// The peer check refused the listener: the card stops.
    Refused(PeerError),
}

/// What to send back for one request.
enum Answer {
    Nothing,
    Frame(Vec<u8>),
    /// The card lost power mid-command: end the connection (vpcd sees the
    /// card go and come back).
    Drop,
}

impl Worker {
    /// The thread's body: serves until shutdown, then hands the card back.
    pub(crate) fn run(self, runtime: Runtime, mut card: Card) -> Card {
        let Worker {
            index,
            endpoint,
            config,
            mut desired,
            status,
            swap,
            touch,
        } = self;
        let link = CardLink {
            index,
            endpoint,
            config,
            status,
            swap,
            touch,
        };
        // Marks the card stopped however the thread ends (a panicking
        // applet included), so nobody waits on a card that is gone.
        let _stopped = StoppedOnDrop(Arc::clone(&link.status));
        runtime.block_on(link.serve(&mut desired, &mut card));
        card.power_off();
        card
    }
}

/// Sets the status to [`Link::Stopped`] when dropped.
struct StoppedOnDrop(Arc<StatusCell>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.update(|s| {
            s.link = Link::Stopped;
            s.powered = false;
        });
    }
}

/// The card's side of its link to vpcd (the worker minus its control
/// channel, so both can be borrowed at once).
struct CardLink {
    index: usize,
    endpoint: Endpoint,
    config: BridgeConfig,
    status: Arc<StatusCell>,
    swap: Arc<CardSwap>,
    touch: Arc<TouchButton>,
}

impl CardLink {
    async fn serve(&self, desired: &mut watch::Receiver<Desired>, card: &mut Card) {
        let mut listener: Option<TcpListener> = None;
        let mut delay = self.config.backoff.initial;
        loop {
            let wanted = *desired.borrow_and_update();
            match wanted {
                Desired::Shutdown => return,
                Desired::Removed => {
                    if self.stay_removed(desired, &mut listener).await.is_err() {
                        return;
                    }
                    continue;
                }
                Desired::Inserted => self.insert(card),
            }
            let opened = tokio::select! {
                biased;
                changed = desired.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
                opened = self.open(&mut listener) => opened,
            };
            let (stream, peer) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    tracing::debug!(target: TARGET, card = self.index, error = %e, ?delay, "vpcd not reachable yet");
                    if back_off(desired, &mut delay, self.config.backoff.max)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            };
            let sessions = self.status.get().sessions;
            let end = self.session(desired, stream, peer, card).await;
            // Back off again only when vpcd closed without ever speaking
            // (something that accepts and hangs up at once must not make
            // the card spin).
            if self.status.get().sessions > sessions {
                delay = self.config.backoff.initial;
            } else if matches!(end, End::PeerClosed | End::Io(_))
                && back_off(desired, &mut delay, self.config.backoff.max)
                    .await
                    .is_err()
            {
                return;
            }
            card.power_off();
            self.status.update(|s| s.powered = false);
            if self.report(&end, peer).is_err() {
                return;
            }
        }
    }

    /// The card goes (back) into its reader. A swap is made before the
    /// insertion is reported, so whoever waits for "inserted" finds the
    /// old card out.
    fn insert(&self, card: &mut Card) {
        if self.swap.exchange(card, self.config.trace) {
            tracing::info!(target: TARGET, card = self.index, "card swapped");
        }
        self.status.update(|s| {
            s.inserted = true;
            s.link = Link::Waiting;
        })
    }

    /// Tells the log and the observer why a connection ended; `Err` when
    /// the card stops: a shutdown (nothing to report) or a refused peer.
    fn report(&self, end: &End, peer: SocketAddr) -> Result<(), Stopping> {
        let reason = match end {
            End::Removed => "card removed".to_owned(),
            End::Shutdown => return Err(Stopping),
            End::PeerClosed => "vpcd closed the connection".to_owned(),
            End::Truncated(e) => format!("vpcd closed the connection mid-frame: {e}"),
            End::Io(e) => format!("connection error: {e}"),
            End::PowerLost => "the card lost power during a command".to_owned(),
            End::Refused(error) => {
                // Info, not a warning: the observer gets the typed error
                // and decides what to show (the CLI stops with it).
                tracing::info!(target: TARGET, card = self.index, %peer, %error, "vpcd refused: not root's pcscd");
                if let Some(observer) = &self.config.observer {
                    observer.refused(self.index, error);
                }
                return Err(Stopping);
            }
        };
        tracing::info!(target: TARGET, card = self.index, %peer, "{reason}");
        if let Some(observer) = &self.config.observer {
            observer.disconnected(self.index, &reason);
        }
        Ok(())
    }

    /// Marks the card removed and waits for the next command. In reverse mode the listener
    /// stays open and every connection vpcd makes is closed at once: vpcd
    /// reads end-of-stream for its GET ATR and reports an empty reader,
    /// without ever waiting on a connection nobody serves.
    ///
    /// Known vpcd bug: Debian 12's vpcd 3.3 in reverse mode aborts pcscd
    /// (`bit out of range 0 - FD_SETSIZE on fd_set`) as soon as a card's
    /// connection ends, whatever the card does next; client mode (the
    /// default) is not affected.
    async fn stay_removed(
        &self,
        desired: &mut watch::Receiver<Desired>,
        listener: &mut Option<TcpListener>,
    ) -> Result<(), watch::error::RecvError> {
        self.status.update(|s| {
            s.inserted = false;
            s.link = Link::Removed;
        });
        if let (Endpoint::Listen(addr), None) = (&self.endpoint, &listener) {
            *listener = TcpListener::bind(addr).await.ok();
        }
        loop {
            let knock = async {
                match listener {
                    Some(bound) => bound.accept().await.map(|(_, peer)| peer),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                changed = desired.changed() => return changed,
                knocked = knock => {
                    if let Ok(peer) = knocked {
                        tracing::debug!(target: TARGET, card = self.index, %peer, "vpcd connected while the card is removed: closed");
                    }
                }
            }
        }
    }

    /// Opens one connection to vpcd.
    async fn open(
        &self,
        listener: &mut Option<TcpListener>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.endpoint {
            Endpoint::Connect { host, port, .. } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                let peer = stream.peer_addr()?;
                Ok((stream, peer))
            }
            Endpoint::Listen(addr) => {
                // Borrowed, not taken, while accepting: when a removal
                // cancels this future the listener stays bound, and vpcd
                // never finds the port closed in between.
                let bound = match listener {
                    Some(bound) => bound,
                    None => {
                        let bound = TcpListener::bind(addr).await?;
                        tracing::info!(target: TARGET, card = self.index, %addr, "waiting for vpcd to connect");
                        listener.insert(bound)
                    }
                };
                bound.accept().await
            }
        }
    }

    /// Serves one connection until it ends. The connection is served with
    /// blocking reads and writes on this card's own thread (nothing else
    /// runs on it meanwhile): a wake-up per APDU, as a card in a blocking
    /// `read` has. Removal and shutdown end the read by shutting the socket
    /// down ([`crate::BridgeHandle`] holds a clone through the status).
    async fn session(
        &self,
        desired: &mut watch::Receiver<Desired>,
        stream: TcpStream,
        peer: SocketAddr,
        card: &mut Card,
    ) -> End {
        // Before anything is read or sent (vpcd speaks first, so nothing
        // has been answered): a refused peer only sees the connection close.
        // A root pcscd that is going away may not show its socket's holder
        // for a moment: look again a few times before refusing (only then:
        // see PeerError::is_transient).
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => return End::Io(e),
        };
        let mut looks = 1;
        loop {
            match self.endpoint.check_peer(self.config.peer, peer, local) {
                Ok(()) => break,
                Err(error) if error.is_transient() && looks < PEER_LOOKS => {
                    tracing::debug!(target: TARGET, card = self.index, %peer, %error, "peer check: looking again");
                    looks += 1;
                    tokio::time::sleep(PEER_LOOK_INTERVAL).await;
                }
                // The far end is already gone (a listener that died with
                // the connection in its queue): nothing was answered, so
                // this is a closed connection, and the card reconnects.
                Err(PeerError::ConnectionGone { .. }) => return End::PeerClosed,
                Err(error) => return End::Refused(error),
            }
        }
        let stream = match blocking(stream) {
            Ok(stream) => stream,
            Err(e) => return End::Io(e),
        };
        match stream.try_clone() {
            Ok(clone) => self.status.attach(clone),
            Err(e) => return End::Io(e),
        }
        // Registered first, checked second: a removal asked for before the
        // registration is seen here, one asked for after it hangs up.
        if let Some(end) = unwanted(desired) {
            self.status.detach();
            return end;
        }
        // A new connection is a fresh insertion: no power, no session state.
        card.power_off();
        self.status.update(|s| {
            s.link = Link::Connected { peer };
            s.powered = false;
        });
        tracing::debug!(target: TARGET, card = self.index, %peer, "connected");
        let end = self.serve_frames(&stream, peer, card);
        self.status.detach();
        // An end caused by the handle's hang-up is a removal or shutdown.
        unwanted(desired).unwrap_or(end)
    }

    /// Reads frames and answers them until the connection ends.
    fn serve_frames(
        &self,
        mut stream: &std::net::TcpStream,
        peer: SocketAddr,
        card: &mut Card,
    ) -> End {
        let mut decoder = FrameDecoder::new();
        let mut chunk = Zeroizing::new(vec![0u8; 16 * 1024]);
        let mut serving = false;
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) => {
                    return match decoder.finish() {
                        Ok(()) => End::PeerClosed,
                        Err(e) => End::Truncated(e),
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return End::Io(e),
            };
            net::rearm_quickack(stream);
            decoder.extend(chunk.get(..n).unwrap_or_default());
            if !serving {
                serving = true;
                self.now_serving(peer);
            }
            while let Some(request) = decoder.next_request() {
                let request = match request {
                    Ok(request) => request,
                    Err(e) => {
                        tracing::warn!(target: TARGET, card = self.index, error = %e, "bad frame from vpcd ignored");
                        continue;
                    }
                };
                match self.answer(card, request) {
                    Answer::Nothing => {}
                    Answer::Frame(frame) => {
                        if let Err(e) = stream.write_all(&frame) {
                            return End::Io(e);
                        }
                    }
                    Answer::Drop => return End::PowerLost,
                }
            }
        }
    }

    fn now_serving(&self, peer: SocketAddr) {
        let location = Location {
            peer,
            reader: self.endpoint.reader_name(),
        };
        tracing::info!(target: TARGET, card = self.index, %location, "card in the reader");
        self.status.update(|s| {
            s.link = Link::Serving(location.clone());
            s.sessions += 1;
        });
        if let Some(observer) = &self.config.observer {
            observer.serving(self.index, &location);
        }
    }

    /// Runs one request on the card.
    fn answer(&self, card: &mut Card, request: VpcdRequest) -> Answer {
        match request {
            VpcdRequest::PowerOff => {
                card.power_off();
                self.status.update(|s| s.powered = false);
                Answer::Nothing
            }
            VpcdRequest::PowerOn => {
                card.power_on();
                self.status.update(|s| s.powered = true);
                Answer::Nothing
            }
            VpcdRequest::Reset => {
                card.reset();
                self.status.update(|s| s.powered = true);
                Answer::Nothing
            }
            VpcdRequest::GetAtr => self.frame(card.atr()),
            VpcdRequest::Apdu(command) => {
                if !card.is_powered() {
                    // pcscd (1.9.9) sends a client's APDUs to a card that
                    // another client's disconnect ("unpower card") powered
                    // down, without powering it up again. A reader would
                    // not pass an APDU to a card with no power; answering
                    // 6F00 makes OpenSC 0.23 loop for ever in C_Login. So
                    // the card takes an implicit cold reset first, as
                    // vsmartcard's own cards do: the APDU is answered, and
                    // nothing of the old session (a verified PIN, a
                    // management key authentication) survives it.
                    tracing::info!(target: TARGET, card = self.index, "APDU for an unpowered card: cold reset first");
                    card.power_on();
                    self.status.update(|s| s.powered = true);
                }
                match card
                    .transmit(&command)
                    .and_then(|response| self.touched(card, response))
                {
                    Ok(response) => {
                        self.status.count_apdu();
                        if self.config.trace
                            && let (Some(observer), Some(exchange)) =
                                (&self.config.observer, card.last_exchange())
                        {
                            observer.exchange(self.index, exchange);
                        }
                        self.frame(&response)
                    }
                    // The power-up above did not take: never silence,
                    // which vpcd would wait on for ever.
                    Err(CardError::NotPowered) => {
                        tracing::warn!(target: TARGET, card = self.index, "APDU for a card that cannot power up answered 6F00");
                        self.frame(&NO_PRECISE_DIAGNOSIS)
                    }
                    Err(e) => {
                        tracing::warn!(target: TARGET, card = self.index, error = %e, "no answer to the APDU");
                        Answer::Drop
                    }
                }
            }
        }
    }

    /// `response`, or when the command waits for a touch, the answer
    /// once touched: the wait of [`crate::touch`].
    fn touched(&self, card: &mut Card, response: Vec<u8>) -> Result<Vec<u8>, CardError> {
        if !card.awaiting_touch() {
            return Ok(response);
        }
        tracing::info!(target: TARGET, card = self.index, "waiting for a touch");
        let timeout = self.config.touch_timeout.unwrap_or(crate::TOUCH_TIMEOUT);
        match self.touch.wait(self.config.auto_touch, timeout) {
            Wait::Touched => {
                tracing::info!(target: TARGET, card = self.index, "touched");
                Ok(card.touch()?.unwrap_or(response))
            }
            Wait::GaveUp => {
                tracing::info!(target: TARGET, card = self.index, "no touch: the command timed out");
                card.abandon_touch();
                Ok(response)
            }
        }
    }

    fn frame(&self, payload: &[u8]) -> Answer {
        match encode_frame(payload) {
            Ok(frame) => Answer::Frame(frame),
            Err(e) => {
                tracing::warn!(target: TARGET, card = self.index, error = %e, "answer too long for vpcd, sent 6F00");
                encode_frame(&NO_PRECISE_DIAGNOSIS).map_or(Answer::Drop, Answer::Frame)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReaderSlot;

    fn slot(port: u16, reader: &str) -> ReaderSlot {
        ReaderSlot {
            port,
            reader: Some(reader.to_owned()),
        }
    }

    #[test]
    fn cards_take_the_configured_slots_then_the_ports_after_them() {
        let mode = Mode::Slots {
            host: "127.0.0.1".into(),
            slots: vec![slot(35963, "A 00 00"), slot(36000, "B 00 00")],
        };
        let endpoint = |index| Endpoint::for_card(&mode, index).unwrap();
        let expect = |port, reader: Option<&str>| Endpoint::Connect {
            host: "127.0.0.1".into(),
            port,
            reader: reader.map(str::to_owned),
        };
        assert_eq!(endpoint(0), expect(35963, Some("A 00 00")));
        assert_eq!(endpoint(1), expect(36000, Some("B 00 00")));
        assert_eq!(endpoint(2), expect(36001, None));
        assert_eq!(endpoint(3), expect(36002, None));
        // Without a configuration the reader is not known, never guessed.
        let plain = Mode::Client {
            host: "127.0.0.1".into(),
            port: VPCD_PORT,
        };
        assert_eq!(
            Endpoint::for_card(&plain, 1).unwrap(),
            expect(VPCD_PORT + 1, None)
        );
        assert_eq!(endpoint(0).reader_name().as_deref(), Some("A 00 00"));
    }
}
