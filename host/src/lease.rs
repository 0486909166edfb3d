//! [`Lease`]: one host per card at a time, with a fencing number.
//!
//! A card's `leases` row says who holds it, until when (the database's
//! clock), and under which fencing number. Taking a lease succeeds only
//! when the row's lease has expired (or was released), and always takes
//! the next fencing number. Renewing and committing succeed only while the
//! row still has this lease's number and has not expired; both lock the
//! row, so a new lease waits for a commit in progress, and a commit after
//! the lease moved finds another number and writes nothing.
//!
//! A lease taken for a device (a session's relay) is taken only while that
//! device is still enrolled as a relay for the card, in the same statement,
//! and every renewal checks it again, so a device revoked while it waited
//! for the card never gets it, and one whose row goes while it holds the
//! card loses it at its next renewal. Both lock the device's row
//! (`FOR KEY SHARE`), so a revocation in progress is waited for, never
//! raced.

use std::time::{Duration, Instant};

use rand_core::TryRng as _;

use crate::database::Database;
use crate::error::{HostError, check_card_id};

/// A held lease on one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub(crate) card: String,
    pub(crate) holder: String,
    pub(crate) fence: i64,
    pub(crate) ttl: Duration,
    /// The device it was taken for, if any: every renewal checks it is
    /// still enrolled.
    pub(crate) device: Option<[u8; 32]>,
    /// By this host's monotonic clock: the instant before the last
    /// successful acquire or renewal was sent, plus the ttl, less a
    /// margin. The database's expiry is never earlier, so a host that
    /// answers only before this never answers after its lease could have
    /// gone to another host.
    pub(crate) valid_until: Instant,
}

/// How much of a lease's ttl is kept back from [`Lease::valid_until`]:
/// a fifth (the clocks of host and database run at slightly different
/// rates; the statement takes time to reach the database).
pub(crate) fn lease_margin(ttl: Duration) -> Duration {
    ttl / 5
}

fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl.saturating_sub(lease_margin(ttl))
}

/// The condition, on parameters `$1` (the card) and `device` (a device's
/// public key, or NULL), that `device` is NULL or still enrolled as a
/// relay for the card; its row locked against a revocation in progress.
macro_rules! device_enrolled {
    ($device:literal) => {
        concat!(
            "(",
            $device,
            "::bytea IS NULL OR EXISTS (SELECT 1 FROM devices
                 WHERE public_key = ",
            $device,
            " AND card_id = $1 AND role = 'relay'
                 FOR KEY SHARE))"
        )
    };
}

/// [`HostError::DeviceNotEnrolled`] when `device` is given and no longer
/// enrolled as a relay for card `id`.
fn device_refusal(
    client: &mut postgres::Client,
    id: &str,
    device: Option<&[u8; 32]>,
) -> Result<Option<HostError>, HostError> {
    let Some(device) = device else {
        return Ok(None);
    };
    let enrolled = client.query_opt(
        "SELECT 1 FROM devices WHERE public_key = $2 AND card_id = $1 AND role = 'relay'",
        &[&id, &device.as_slice()],
    )?;
    Ok(enrolled.is_none().then(|| HostError::DeviceNotEnrolled {
        card: id.to_owned(),
        device: vscard_link::fingerprint(device)[..16].to_owned(),
    }))
}

/// Why card `id`'s lease cannot be taken (for `device`, if given): no
/// card, a revoked one, a device no longer enrolled, or a lease held
/// ([`HostError::LeaseHeld`] with 0 s left when it is free after all:
/// released or expired since).
fn refusal(
    client: &mut postgres::Client,
    id: &str,
    device: Option<&[u8; 32]>,
) -> Result<HostError, HostError> {
    let why = client.query_opt(
        "SELECT c.revoked_at IS NOT NULL, l.holder,
                CASE WHEN l.expires_at > clock_timestamp()
                     THEN extract(epoch FROM l.expires_at - clock_timestamp())::float8
                     ELSE 0 END
         FROM cards c JOIN leases l ON l.card_id = c.id WHERE c.id = $1",
        &[&id],
    )?;
    let revoked = why.as_ref().is_some_and(|row| row.get::<_, bool>(0));
    if why.is_some()
        && !revoked
        && let Some(refused) = device_refusal(client, id, device)?
    {
        return Ok(refused);
    }
    Ok(match why {
        None => HostError::NoSuchCard(id.to_owned()),
        Some(_) if revoked => HostError::Revoked(id.to_owned()),
        Some(row) => HostError::LeaseHeld {
            card: id.to_owned(),
            holder: row.get::<_, Option<String>>(1).unwrap_or_default(),
            seconds: row.get::<_, Option<f64>>(2).unwrap_or(0.0).max(0.0),
        },
    })
}

impl Lease {
    /// The card.
    pub fn card(&self) -> &str {
        &self.card
    }

    /// The fencing number this lease was taken under.
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// Who holds it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long each renewal lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Until when (this host's monotonic clock) the lease is surely still
    /// this host's: answer nothing after it without a renewal.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// True once [`Lease::valid_until`] has passed.
    pub fn lapsed(&self) -> bool {
        Instant::now() >= self.valid_until
    }
}

/// A holder name unique to this process and call: `HOST/PID/RANDOM`.
pub fn holder_name() -> Result<String, HostError> {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let mut nonce = [0u8; 4];
    rand::rngs::SysRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| HostError::Random(e.to_string()))?;
    Ok(format!(
        "{host}/{}/{}",
        std::process::id(),
        hex::encode(nonce)
    ))
}

/// Seconds as PostgreSQL's `make_interval(secs => ...)` takes them.
pub(crate) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Database {
    /// Takes the lease on card `id` for `ttl`, if it is free (never taken,
    /// released, or expired); the lease gets the next fencing number. A
    /// lease for no device (administration, tests, benchmarks):
    /// [`Database::acquire_for`] is a session's.
    pub fn acquire(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, HostError> {
        self.take(id, holder, None, ttl)
    }

    /// [`Database::acquire`] for a session of relay device `device` (its
    /// public link key): taken only while the device is still enrolled as
    /// a relay for the card (checked in the same statement; else
    /// [`HostError::DeviceNotEnrolled`]), and every
    /// [`Database::renew`] checks it again.
    pub fn acquire_for(
        &self,
        id: &str,
        holder: &str,
        device: &[u8; 32],
        ttl: Duration,
    ) -> Result<Lease, HostError> {
        self.take(id, holder, Some(device), ttl)
    }

    fn take(
        &self,
        id: &str,
        holder: &str,
        device: Option<&[u8; 32]>,
        ttl: Duration,
    ) -> Result<Lease, HostError> {
        check_card_id(id)?;
        let mut client = self.client()?;
        let sent = Instant::now();
        let row = client.query_opt(
            concat!(
                "UPDATE leases SET holder = $2, fence = fence + 1,
                     expires_at = clock_timestamp() + make_interval(secs => $3)
                 WHERE card_id = $1 AND expires_at <= clock_timestamp()
                   AND EXISTS (SELECT 1 FROM cards WHERE id = $1 AND revoked_at IS NULL)
                   AND ",
                device_enrolled!("$4"),
                " RETURNING fence"
            ),
            &[
                &id,
                &holder,
                &seconds(ttl),
                &device.map(|key| key.as_slice()),
            ],
        )?;
        if let Some(row) = row {
            return Ok(Lease {
                card: id.to_owned(),
                holder: holder.to_owned(),
                fence: row.get(0),
                ttl,
                device: device.copied(),
                valid_until: valid_until(sent, ttl),
            });
        }
        Err(refusal(&mut client, id, device)?)
    }

    /// Waits up to `wait` until card `id`'s lease is free (never taken,
    /// released, or expired) without taking it; [`HostError::LeaseHeld`]
    /// when it is still held then (a live session renews it), as
    /// [`Database::acquire_waiting`] would. A session for a card whose
    /// holder approves asks this first, so the holder is never asked for a
    /// session that would find its card in another one.
    pub fn wait_lease_free(&self, id: &str, wait: Duration) -> Result<(), HostError> {
        check_card_id(id)?;
        let deadline = Instant::now() + wait;
        loop {
            let refused = {
                let mut client = self.client()?;
                refusal(&mut client, id, None)?
            };
            match refused {
                HostError::LeaseHeld { seconds, .. } if seconds <= 0.0 => return Ok(()),
                HostError::LeaseHeld { seconds, .. } if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let until_expiry = Duration::from_secs_f64(seconds.clamp(0.0, 0.1));
                    std::thread::sleep(until_expiry.min(left).max(Duration::from_millis(5)));
                }
                other => return Err(other),
            }
        }
    }

    /// [`Database::acquire`] (with `device`: [`Database::acquire_for`]),
    /// waiting up to `wait` while another host holds the lease (a host
    /// that died holds it until it expires). A device revoked meanwhile
    /// is refused when the lease frees, never given it.
    pub fn acquire_waiting(
        &self,
        id: &str,
        holder: &str,
        device: Option<&[u8; 32]>,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Lease, HostError> {
        let deadline = Instant::now() + wait;
        loop {
            match self.take(id, holder, device, ttl) {
                Err(HostError::LeaseHeld { seconds, .. }) if Instant::now() < deadline => {
                    // Wake when it expires (by the database's clock), but
                    // look again at least every 100 ms: a release frees it
                    // early.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let until_expiry = Duration::from_secs_f64(seconds.clamp(0.0, 0.1));
                    std::thread::sleep(until_expiry.min(left).max(Duration::from_millis(5)));
                }
                other => return other,
            }
        }
    }

    /// Extends `lease` by its ttl (and moves its
    /// [`Lease::valid_until`] on); [`HostError::LeaseLost`] when it
    /// expired or moved, [`HostError::DeviceNotEnrolled`] when the device
    /// it was taken for is no longer enrolled (the session must end; the
    /// lease is left to expire or be released).
    pub fn renew(&self, lease: &mut Lease) -> Result<(), HostError> {
        let mut client = self.client()?;
        let sent = Instant::now();
        let device = lease.device.as_ref().map(|key| key.as_slice());
        let renewed = client.execute(
            concat!(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
                 WHERE card_id = $1 AND fence = $2 AND expires_at > clock_timestamp()
                   AND ",
                device_enrolled!("$4")
            ),
            &[&lease.card, &lease.fence, &seconds(lease.ttl), &device],
        )?;
        if renewed == 1 {
            lease.valid_until = valid_until(sent, lease.ttl);
            return Ok(());
        }
        match device_refusal(&mut client, &lease.card, lease.device.as_ref())? {
            Some(refused) => Err(refused),
            None => Err(lease.lost()),
        }
    }

    /// Gives `lease` up (the card can be taken at once). Nothing happens
    /// when it already moved.
    pub fn release(&self, lease: &Lease) -> Result<(), HostError> {
        let mut client = self.client()?;
        client.execute(
            "UPDATE leases SET holder = NULL, expires_at = '-infinity'
             WHERE card_id = $1 AND fence = $2",
            &[&lease.card, &lease.fence],
        )?;
        Ok(())
    }

    /// The fencing number of card `id`'s lease now (tests and `list`).
    pub fn fence(&self, id: &str) -> Result<i64, HostError> {
        let mut client = self.client()?;
        client
            .query_opt("SELECT fence FROM leases WHERE card_id = $1", &[&id])?
            .map(|row| row.get(0))
            .ok_or_else(|| HostError::NoSuchCard(id.to_owned()))
    }
}

impl Lease {
    /// The error of a lease past [`Lease::valid_until`].
    pub(crate) fn lapsed_error(&self) -> HostError {
        HostError::LeaseLapsed {
            card: self.card.clone(),
            fence: self.fence,
        }
    }

    pub(crate) fn lost(&self) -> HostError {
        HostError::LeaseLost {
            card: self.card.clone(),
            fence: self.fence,
        }
    }
}
