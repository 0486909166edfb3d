//! `vscard host`: serves the database's cards over the link.
//!
//! Each connection: the device's handshake ([`vscard_link::hosted`]), its
//! key looked up among the enrolled devices (it must be enrolled for the
//! card it asks for), then a session on a thread of its own: the lease
//! taken (waiting while a host that died still holds it; only while the
//! device is still enrolled, checked again at every renewal), the card built
//! on a [`PostgresStore`], and every frame answered there. The lease is
//! renewed while the session lives and released when it ends. Every
//! frame is answered only while the lease is surely still this host's
//! ([`Lease::valid_until`]: the instant before the last successful
//! acquire or renewal was sent, plus the ttl, less a margin); past it,
//! or once the lease is lost (it moved while this host was paused, the
//! card was revoked), the session ends and the card leaves the reader.
//! A card costs the host memory only while a session has it open.
//!
//! One session per card: a second one, on any host, finds the lease held
//! and is refused once a dead host's lease would have run out. A card
//! whose holder approves is asked for only once its lease is free, and
//! the request is withdrawn if the relay goes away while it waits; one
//! that asks per signature has each signature held until the holder
//! decides (the `signature` module says which APDUs those are), refused
//! with `6982` unless approved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use vscard_applet::{ManagementApplet, PIV_AID, PivApplet, piv_atr};
use vscard_emulator::{Card, Status};
use vscard_link::hosted::accept_device;
use vscard_link::{Frame, Identity, KeepAlive, Link, LinkError, answer_frame};
use zeroize::Zeroizing;

use crate::approval::Decision;
use crate::approver::{approver, ask_signature};
use crate::database::{Approval, Database, DeviceRole};
use crate::error::{HostError, check_card_id};
use crate::lease::{Lease, holder_name};
use crate::signature::{SignatureGate, Step};
use crate::store::PostgresStore;

const TARGET: &str = "vscard::host";

/// Handshakes at once (each lasts at most 10 s).
const MAX_HANDSHAKES: usize = 64;

/// Sessions at once (each holds an OS thread and may hold a database
/// connection); a device past this is refused.
const MAX_SESSIONS: usize = 256;

/// Hears what the host does (the CLI prints it).
pub trait HostObserver: Send + Sync {
    /// A session opened card `card` under lease fence `fence`.
    fn opened(&self, card: &str, fence: i64) {
        let _ = (card, fence);
    }
    /// A session ended.
    fn closed(&self, card: &str, reason: &str) {
        let _ = (card, reason);
    }
    /// A connection was refused before any card was opened.
    fn refused(&self, from: SocketAddr, reason: &str) {
        let _ = (from, reason);
    }
}

/// The host's settings.
#[derive(Clone)]
pub struct HostConfig {
    /// How long a lease lasts without renewal (a dead host's cards are
    /// free after this).
    pub lease_ttl: Duration,
    /// How long a session waits for a card another host still holds.
    pub lease_wait: Duration,
    /// How long the holder has to approve a session (for a card that
    /// requires it) before it is refused.
    pub approval_timeout: Duration,
    /// Keep-alive pacing on the link.
    pub keep_alive: KeepAlive,
    /// Who hears about sessions.
    pub observer: Option<Arc<dyn HostObserver>>,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            lease_ttl: Duration::from_secs(10),
            lease_wait: Duration::from_secs(12),
            approval_timeout: Duration::from_secs(60),
            keep_alive: KeepAlive::default(),
            observer: None,
        }
    }
}

/// The hosts' shared link identity, from the database (made by the first
/// host that needs it).
pub fn host_identity(database: &Database) -> Result<Identity, HostError> {
    let (private, public) = database.host_identity(|| {
        let identity = Identity::generate().map_err(|e| HostError::Random(e.to_string()))?;
        let private = identity.private_key();
        Ok((
            crate::database::zeroize_bytes::Secret::new(*private),
            *identity.public(),
        ))
    })?;
    Ok(Identity::from_keys(private.expose(), public))
}

struct Shared {
    database: Database,
    identity: Identity,
    config: HostConfig,
    sessions: Arc<tokio::sync::Semaphore>,
}

/// Serves connections on `listener` until `shutdown` turns true.
pub async fn run_host(
    listener: TcpListener,
    database: Database,
    identity: Identity,
    config: HostConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let shared = Arc::new(Shared {
        database,
        identity,
        config,
        sessions: Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS)),
    });
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
            continue;
        };
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            connection(stream, from, &shared, shutdown, permit).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.shutdown().await;
    // Closing the pool's connections blocks (the synchronous client runs
    // its own runtime to say goodbye): never on this runtime's thread.
    let _ = tokio::task::spawn_blocking(move || drop(shared)).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let refuse = |reason: String| {
        tracing::info!(target: TARGET, %from, %reason, "connection refused");
        if let Some(observer) = &shared.config.observer {
            observer.refused(from, &reason);
        }
    };
    let hello = match accept_device(stream, &shared.identity).await {
        Ok(hello) => hello,
        Err(e) => return refuse(e.to_string()),
    };
    let database = shared.database.clone();
    let key = *hello.key();
    // `approve:ID`: the device answers an approval request for its card.
    let (card, approving) = match hello.card().strip_prefix(APPROVE_PREFIX) {
        Some(card) => (card.to_owned(), true),
        None => (hello.card().to_owned(), false),
    };
    if let Err(e) = check_card_id(&card) {
        return refuse(e.to_string());
    }
    let enrolled = tokio::task::spawn_blocking(move || database.device_card(&key)).await;
    let wanted = if approving {
        DeviceRole::Approver
    } else {
        DeviceRole::Relay
    };
    match enrolled {
        Ok(Ok(Some((enrolled, role)))) if enrolled == card && role == wanted => {}
        Ok(Ok(Some((enrolled, role)))) if enrolled == card => {
            // No answer at all: the device learns nothing.
            return refuse(format!(
                "device {} is enrolled for card {card:?} as {}: it may not {}",
                &vscard_link::fingerprint(&key)[..16],
                role.as_str(),
                if approving {
                    "decide approvals"
                } else {
                    "open sessions"
                }
            ));
        }
        Ok(Ok(_)) => {
            // No answer at all: a stranger learns nothing.
            return refuse(format!(
                "device {} is not enrolled for card {card:?}",
                &vscard_link::fingerprint(&key)[..16],
            ));
        }
        Ok(Err(e)) => return refuse(format!("cannot look the device up: {e}")),
        Err(e) => return refuse(format!("lookup failed: {e}")),
    }
    let mut link = match hello.finish().await {
        Ok(link) => link,
        Err(e) => return refuse(e.to_string()),
    };
    drop(permit);
    if approving {
        let reason = match approver(&mut link, &card, &key, &shared.database).await {
            Ok(reason) => reason,
            Err(e) => e.to_string(),
        };
        tracing::info!(target: TARGET, %card, %reason, "approval answered");
        link.close(&reason).await;
        return;
    }
    let Ok(_session) = Arc::clone(&shared.sessions).try_acquire_owned() else {
        let reason = format!("this host serves {MAX_SESSIONS} sessions already: try another host");
        refuse(reason.clone());
        link.close(&reason).await;
        return;
    };
    let reason = match session(&mut link, &card, &key, shared, shutdown).await {
        Ok(reason) => reason,
        Err(e) => e.to_string(),
    };
    tracing::info!(target: TARGET, %card, %reason, "session ended");
    if let Some(observer) = &shared.config.observer {
        observer.closed(&card, &reason);
    }
    link.close(&reason).await;
}

/// The first-message payload of a device answering an approval request
/// (card IDs never hold a `:`).
pub const APPROVE_PREFIX: &str = "approve:";

/// One request to the card's thread.
struct Request {
    frame: Frame,
    answer: oneshot::Sender<Result<Option<Frame>, String>>,
}

/// Opens `card` on its own thread and relays the link's frames to it;
/// returns why it ended.
async fn session(
    link: &mut Link,
    card: &str,
    device: &[u8; 32],
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> Result<String, LinkError> {
    let (requests, requests_in) = mpsc::channel::<Request>();
    let (opened_tx, opened) = oneshot::channel::<Result<(i64, Approval), String>>();
    let (ended_tx, mut ended) = oneshot::channel::<String>();
    let database = shared.database.clone();
    let config = shared.config.clone();
    let id = card.to_owned();
    let device = *device;
    std::thread::Builder::new()
        .name(format!("vscard-card-{card}"))
        .spawn(move || {
            card_thread(
                &database,
                &id,
                &device,
                &config,
                &requests_in,
                opened_tx,
                ended_tx,
            )
        })
        .map_err(LinkError::Net)?;
    let (fence, approval) = match wait_opened(link, opened, &mut shutdown).await? {
        Ok(opened) => opened,
        Err(reason) => return Ok(reason),
    };
    let mut gate = SignatureGate::new(approval == Approval::Signature);
    if let Some(observer) = &shared.config.observer {
        observer.opened(card, fence);
    }
    link.send(&Frame::Paired(card.to_owned())).await?;
    let keep_alive = shared.config.keep_alive;
    let mut tick = tokio::time::interval(keep_alive.interval.min(Duration::from_secs(1)));
    let mut last_received = Instant::now();
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok("host stopping".to_owned()),
            reason = &mut ended => {
                return Ok(reason.unwrap_or_else(|_| "the card's session ended".to_owned()));
            }
            frame = link.recv() => {
                last_received = Instant::now();
                let frame = frame?;
                match frame {
                    Frame::KeepAlive => continue,
                    Frame::Close(reason) => return Ok(format!("the relay closed the link: {reason}")),
                    frame => {
                        let pass = match gate.step(&frame) {
                            Step::Pass => true,
                            Step::Refuse => false,
                            Step::Ask => {
                                let asked = ask_signature(link, card, &device, &shared.database, &shared.config, &mut ended, &mut shutdown).await?;
                                // The relay waited for the answer and said nothing.
                                last_received = Instant::now();
                                last_sent = Instant::now();
                                let approved = match asked {
                                    Ok(approved) => approved,
                                    Err(reason) => return Ok(reason),
                                };
                                gate.decided(approved);
                                approved
                            }
                        };
                        if !pass {
                            let refused = Status::SecurityStatusNotSatisfied.to_bytes().to_vec();
                            link.send(&Frame::Response(Zeroizing::new(refused))).await?;
                            last_sent = Instant::now();
                            continue;
                        }
                        let (answer, answered) = oneshot::channel();
                        if requests.send(Request { frame, answer }).is_err() {
                            return Ok(ended_reason(&mut ended));
                        }
                        match answered.await {
                            Ok(Ok(Some(reply))) => {
                                link.send(&reply).await?;
                                last_sent = Instant::now();
                            }
                            Ok(Ok(None)) => {}
                            Ok(Err(reason)) => return Ok(reason),
                            Err(_) => return Ok(ended_reason(&mut ended)),
                        }
                    }
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

/// Waits for the card's thread to open the card (its lease, the holder's
/// approval) while reading the link: a relay that goes away meanwhile
/// ends the wait (`Err(reason)`), and dropping `opened` then tells the
/// card's thread nobody waits for the card any more (it closes the
/// approval request and takes no lease).
async fn wait_opened(
    link: &mut Link,
    mut opened: oneshot::Receiver<Result<(i64, Approval), String>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Result<(i64, Approval), String>, LinkError> {
    loop {
        tokio::select! {
            result = &mut opened => {
                return Ok(result.unwrap_or_else(|_| Err("the card's session failed to start".to_owned())));
            }
            _ = shutdown.changed() => return Ok(Err("host stopping".to_owned())),
            frame = link.recv() => match frame {
                Ok(Frame::KeepAlive) => {}
                Ok(Frame::Close(reason)) => {
                    return Ok(Err(format!("the relay closed the link before the card opened: {reason}")));
                }
                Ok(other) => {
                    return Err(LinkError::Protocol(format!("unexpected {other:?} before the card opened")));
                }
                Err(e) => return Ok(Err(format!("the relay's link dropped before the card opened: {e}"))),
            },
        }
    }
}

/// Why the card's thread ended (it says so before it drops its end of
/// the requests, so a failed request finds the reason there).
fn ended_reason(ended: &mut oneshot::Receiver<String>) -> String {
    ended
        .try_recv()
        .unwrap_or_else(|_| "the card's session ended".to_owned())
}

/// The card's thread: lease, card, frames, renewals; the lease released
/// at the end (unless it was lost).
fn card_thread(
    database: &Database,
    id: &str,
    device: &[u8; 32],
    config: &HostConfig,
    requests: &mpsc::Receiver<Request>,
    opened: oneshot::Sender<Result<(i64, Approval), String>>,
    ended: oneshot::Sender<String>,
) {
    let (mut card, mut lease, approval) =
        match open_card(database, id, device, config, &|| opened.is_closed()) {
            Ok(pair) => pair,
            Err(e) => {
                let _ = opened.send(Err(e.to_string()));
                return;
            }
        };
    let _ = opened.send(Ok((lease.fence(), approval)));
    let renew_every = (lease.ttl() / 3).max(Duration::from_millis(50));
    let mut next_renewal = Instant::now() + renew_every;
    let reason = loop {
        if Instant::now() >= next_renewal {
            match database.renew(&mut lease) {
                Ok(()) => next_renewal = Instant::now() + renew_every,
                Err(e @ HostError::LeaseLost { .. }) => break Some(e.to_string()),
                // Its device was revoked (its row went while the lease
                // stayed): ended, and the card freed for the devices
                // still enrolled.
                Err(e @ HostError::DeviceNotEnrolled { .. }) => {
                    if let Err(e) = database.release(&lease) {
                        tracing::warn!(target: TARGET, card = %id, error = %e, "lease not released (it expires by itself)");
                    }
                    break Some(e.to_string());
                }
                // The database is away: try again soon, while the lease
                // is surely still this host's (checked below).
                Err(e) => {
                    tracing::warn!(target: TARGET, card = %id, error = %e, "lease renewal failed");
                    next_renewal = Instant::now() + renew_every / 2;
                }
            }
        }
        // Nothing is answered once the lease could have expired: another
        // host may serve the card by now.
        if lease.lapsed() {
            break Some(lease.lapsed_error().to_string());
        }
        let wake = next_renewal.min(lease.valid_until());
        let wait = wake.saturating_duration_since(Instant::now());
        match requests.recv_timeout(wait) {
            Ok(request) => {
                if lease.lapsed() {
                    let reason = lease.lapsed_error().to_string();
                    let _ = request.answer.send(Err(reason.clone()));
                    break Some(reason);
                }
                let answer = answer_frame(&mut card, request.frame).map_err(|e| e.to_string());
                let _ = request.answer.send(answer);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    drop(card);
    match reason {
        Some(reason) => {
            let _ = ended.send(reason);
        }
        None => {
            if let Err(e) = database.release(&lease) {
                tracing::warn!(target: TARGET, card = %id, error = %e, "lease not released (it expires by itself)");
            }
        }
    }
}

/// The lease, then the card on a [`PostgresStore`] under it.
fn open_card(
    database: &Database,
    id: &str,
    device: &[u8; 32],
    config: &HostConfig,
    withdrawn: &dyn Fn() -> bool,
) -> Result<(Card, Lease, Approval), HostError> {
    let holder = holder_name()?;
    // Asked before the lease: no card is held while a person decides.
    // Nor is the holder asked for a card in another session (it would be
    // refused after the decision).
    let approval = database.approval(id)?;
    if approval != Approval::None {
        database.wait_lease_free(id, config.lease_wait)?;
        match database.ask_approval(id, &holder, device, config.approval_timeout, withdrawn)? {
            Decision::Approved => {}
            Decision::Withdrawn => return Err(HostError::Withdrawn(id.to_owned())),
            Decision::Refused => return Err(HostError::ApprovalRefused(id.to_owned())),
            Decision::TimedOut => {
                return Err(HostError::ApprovalTimedOut {
                    card: id.to_owned(),
                    seconds: config.approval_timeout.as_secs(),
                });
            }
        }
    }
    // Only while the device is still enrolled: one revoked while it
    // waited (for the lease, for the holder) never gets the card.
    let lease = database.acquire_waiting(
        id,
        &holder,
        Some(device),
        config.lease_ttl,
        config.lease_wait,
    )?;
    let built = build_card(database, &lease);
    match built {
        Ok(card) => Ok((card, lease, approval)),
        Err(e) => {
            let _ = database.release(&lease);
            Err(e)
        }
    }
}

fn build_card(database: &Database, lease: &Lease) -> Result<Card, HostError> {
    let image = PostgresStore::read(database, lease.card())?
        .ok_or_else(|| HostError::NoSuchCard(lease.card().to_owned()))?;
    let management = image
        .applet(&PIV_AID.to_hex())
        .and_then(|state| PivApplet::from_saved(state).ok())
        .and_then(|saved| ManagementApplet::for_card(saved.state()));
    let store = PostgresStore::new(database.clone(), lease.clone());
    let mut builder = Card::builder()
        .atr(piv_atr())
        .store(store)
        .install_default(PivApplet::with_defaults());
    if let Some(management) = management {
        builder = builder.install(management);
    }
    builder.build().map_err(|e| HostError::CardUnusable {
        card: lease.card().to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failure
mod tests {
    use std::time::Duration;

    use vscard_applet::{PivApplet, piv_atr};
    use vscard_emulator::Card;

    use super::{HostConfig, open_card};
    use crate::database::{CardOptions, Database, DeviceRole};
    use crate::error::HostError;

    const LONG: Duration = Duration::from_secs(30);

    /// Card `id` in `database`, with relay devices `[1; 32]` and `[2; 32]`.
    fn card_with_relays(database: &Database, id: &str) {
        let card = Card::builder()
            .atr(piv_atr())
            .install_default(PivApplet::with_defaults())
            .build()
            .unwrap();
        database
            .put_card(id, card.image(), CardOptions::default())
            .unwrap();
        for device in [[1; 32], [2; 32]] {
            database.add_device(id, &device, DeviceRole::Relay).unwrap();
        }
    }

    #[test]
    fn a_device_revoked_while_it_waits_for_the_card_never_gets_it() {
        let Some(cluster) = vscard_testkit::postgres::private_postgres() else {
            return;
        };
        let database = Database::connect(&cluster.url(), 4).unwrap();
        card_with_relays(&database, "waited");
        // Another session holds the card; device 1 waits for it.
        database.acquire("waited", "other", LONG).unwrap();
        let config = HostConfig {
            lease_wait: LONG,
            ..HostConfig::default()
        };
        let waiting = {
            let (database, config) = (database.clone(), config.clone());
            std::thread::spawn(move || {
                open_card(&database, "waited", &[1; 32], &config, &|| false)
                    .map(|(_, lease, _)| lease)
            })
        };
        // Revoking device 1 ends the session in progress (its lease is
        // freed): the waiting session of the same device is refused, not
        // handed the card.
        database
            .revoke_device(&vscard_link::fingerprint(&[1; 32])[..16])
            .unwrap();
        let refused = waiting.join().unwrap().unwrap_err();
        assert!(
            matches!(refused, HostError::DeviceNotEnrolled { ref card, .. } if card == "waited"),
            "{refused}"
        );
        // The card stays for the device still enrolled.
        let (_, lease, _) = open_card(&database, "waited", &[2; 32], &config, &|| false).unwrap();
        assert_eq!(lease.fence(), 3);
    }

    #[test]
    fn a_session_whose_device_went_ends_at_its_next_renewal() {
        let Some(cluster) = vscard_testkit::postgres::private_postgres() else {
            return;
        };
        let database = Database::connect(&cluster.url(), 4).unwrap();
        card_with_relays(&database, "renewed");
        let config = HostConfig::default();
        let (_, mut lease, _) =
            open_card(&database, "renewed", &[1; 32], &config, &|| false).unwrap();
        database.renew(&mut lease).unwrap();
        // The device's row goes, the lease untouched (as a revocation
        // racing the acquire would leave it).
        cluster
            .psql(
                "DELETE FROM devices WHERE card_id = 'renewed' \
                 AND public_key = decode(repeat('01', 32), 'hex')",
            )
            .unwrap();
        let refused = database.renew(&mut lease).unwrap_err();
        assert!(
            matches!(refused, HostError::DeviceNotEnrolled { ref card, .. } if card == "renewed"),
            "{refused}"
        );
    }
}
