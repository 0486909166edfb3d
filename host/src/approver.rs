//! The link's side of the holder's approval (the database's side is
//! [`crate::approval`]): a device answering a card's open requests, and a
//! session holding a signature until the holder decides.

use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use vscard_link::{Frame, Link, LinkError};

use crate::approval::Decision;
use crate::database::Database;
use crate::lease::holder_name;
use crate::serve::HostConfig;

const TARGET: &str = "vscard::host";

/// How long a device waiting to answer an approval may wait for one.
const APPROVER_WAIT: Duration = Duration::from_secs(60);

/// A device answering an approval request for `card`: the oldest open
/// request is offered (`Paired("approval N for card C: device F through
/// host H")`: who asks), the device answers
/// `Paired("approve N")` or `Paired("refuse N")`, and the decision is
/// recorded (whichever host asked reads it from the database). Returns the
/// close reason the device is told.
pub(crate) async fn approver(
    link: &mut Link,
    card: &str,
    device: &[u8; 32],
    database: &Database,
) -> Result<String, LinkError> {
    let deadline = Instant::now() + APPROVER_WAIT;
    let pending = loop {
        let database = database.clone();
        let id = card.to_owned();
        match tokio::task::spawn_blocking(move || database.pending_approval(&id)).await {
            Ok(Ok(Some(pending))) => break pending,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Ok(format!("cannot read the approval requests: {e}")),
            Err(e) => return Ok(format!("approval lookup failed: {e}")),
        }
        if Instant::now() >= deadline {
            return Ok(format!("no approval request for card {card}"));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            frame = link.recv() => match frame? {
                Frame::KeepAlive => {}
                Frame::Close(reason) => return Ok(format!("the device closed: {reason}")),
                other => return Err(LinkError::Protocol(format!("unexpected {other:?} from the device"))),
            },
        }
    };
    // Who asks, for the holder to see before deciding.
    let asker = pending.requested_device.map_or_else(
        || "an unknown device".to_owned(),
        |key| format!("device {}", &vscard_link::fingerprint(&key)[..16]),
    );
    link.send(&Frame::Paired(format!(
        "approval {} for card {card}: {asker} through host {}",
        pending.id, pending.requested_by
    )))
    .await?;
    let answer = loop {
        let frame = tokio::time::timeout(APPROVER_WAIT, link.recv())
            .await
            .map_err(|_| LinkError::Silent(APPROVER_WAIT))??;
        match frame {
            Frame::KeepAlive => {}
            Frame::Paired(answer) => break answer,
            Frame::Close(reason) => return Ok(format!("the device closed: {reason}")),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {other:?} from the device"
                )));
            }
        }
    };
    let expected = pending.id.to_string();
    let approve = match answer.split_once(' ') {
        Some(("approve", id)) if id == expected => true,
        Some(("refuse", id)) if id == expected => false,
        _ => {
            return Err(LinkError::Protocol(format!(
                "not an answer to request {expected}"
            )));
        }
    };
    let database = database.clone();
    let id = card.to_owned();
    let device = *device;
    let recorded = tokio::task::spawn_blocking(move || {
        database.decide_approval(&id, pending.id, approve, &device)
    })
    .await;
    Ok(match recorded {
        Ok(Ok(true)) if approve => format!("approved request {} for card {card}", pending.id),
        Ok(Ok(true)) => format!("refused request {} for card {card}", pending.id),
        Ok(Ok(false)) => format!("request {} is no longer open (timed out)", pending.id),
        Ok(Err(e)) => format!("cannot record the decision: {e}"),
        Err(e) => format!("cannot record the decision: {e}"),
    })
}

/// Asks the holder to approve one signature (see [`crate::signature`])
/// and waits, keeping the link alive (the relay waits for the APDU's
/// answer meanwhile): `Ok(Ok(approved))`, or `Ok(Err(reason))` when the
/// session ends first (the relay went away: the request is closed
/// undecided; the card's session ended; the host stops). A request that
/// cannot be made or read is a refusal.
pub(crate) async fn ask_signature(
    link: &mut Link,
    card: &str,
    device: &[u8; 32],
    database: &Database,
    config: &HostConfig,
    ended: &mut oneshot::Receiver<String>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Result<bool, String>, LinkError> {
    // Dropped when this returns: the asking thread then withdraws the
    // request if it is still open.
    let (waiting, _waiter) = oneshot::channel::<()>();
    let database = database.clone();
    let timeout = config.approval_timeout;
    let (id, device) = (card.to_owned(), *device);
    let mut asked = tokio::task::spawn_blocking(move || {
        let holder = holder_name()?;
        database.ask_approval(&id, &holder, &device, timeout, &|| waiting.is_closed())
    });
    let keep_alive = config.keep_alive;
    let mut tick = tokio::time::interval(keep_alive.interval.min(Duration::from_secs(1)));
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            decided = &mut asked => {
                let approved = matches!(decided, Ok(Ok(Decision::Approved)));
                match decided {
                    Ok(Ok(decision)) => tracing::info!(target: TARGET, %card, ?decision, "signature approval"),
                    Ok(Err(e)) => tracing::warn!(target: TARGET, %card, error = %e, "signature approval failed: refused"),
                    Err(e) => tracing::warn!(target: TARGET, %card, error = %e, "signature approval failed: refused"),
                }
                return Ok(Ok(approved));
            }
            _ = shutdown.changed() => return Ok(Err("host stopping".to_owned())),
            reason = &mut *ended => {
                return Ok(Err(reason.unwrap_or_else(|_| "the card's session ended".to_owned())));
            }
            frame = link.recv() => match frame? {
                Frame::KeepAlive => {}
                Frame::Close(reason) => return Ok(Err(format!("the relay closed the link: {reason}"))),
                other => {
                    return Err(LinkError::Protocol(format!(
                        "unexpected {other:?} while a signature waits for the holder"
                    )));
                }
            },
            _ = tick.tick() => {
                if last_sent.elapsed() >= keep_alive.interval {
                    link.send(&Frame::KeepAlive).await?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}
