//! The holder's approval: a host asks, the enrolled device decides.
//!
//! The request is a row of `approvals` (so the device may reach any host:
//! the one it reaches records the decision, the asking host reads it).
//! A request not decided within its timeout is refused; a decision after
//! that changes nothing.

use std::time::{Duration, Instant};

use crate::database::Database;
use crate::error::HostError;
use crate::lease::seconds;

/// How often the asking host looks for the decision.
const POLL: Duration = Duration::from_millis(50);

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The holder approved.
    Approved,
    /// The holder refused.
    Refused,
    /// Nobody decided in time.
    TimedOut,
    /// Nobody waits for the answer any more (the relay's link dropped):
    /// the request was closed undecided.
    Withdrawn,
}

/// A request waiting for the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingApproval {
    /// Its number.
    pub id: i64,
    /// The card.
    pub card: String,
    /// Which host asks.
    pub requested_by: String,
    /// Which device's session asks (unknown for requests made before
    /// schema version 2).
    pub requested_device: Option<[u8; 32]>,
}

impl Database {
    /// Asks the holder of card `id` to approve what device
    /// `requested_device` asked for (a session, or a signature in one),
    /// if it is still enrolled as the card's relay
    /// ([`HostError::DeviceNotEnrolled`] otherwise), and waits up to `timeout` for the decision, or until `withdrawn`
    /// says nobody waits for it any more: then the request is closed
    /// (no device can approve it after that) and
    /// [`Decision::Withdrawn`] returned.
    pub fn ask_approval(
        &self,
        id: &str,
        requested_by: &str,
        requested_device: &[u8; 32],
        timeout: Duration,
        withdrawn: &dyn Fn() -> bool,
    ) -> Result<Decision, HostError> {
        let request: i64 = {
            let mut client = self.client()?;
            // Requests that timed out unclosed (their host died) are
            // closed, and old decided ones dropped; one open per card.
            client.execute(
                "UPDATE approvals SET decision = 'expired'
                 WHERE card_id = $1 AND decision IS NULL AND expires_at <= clock_timestamp()",
                &[&id],
            )?;
            client.execute(
                "DELETE FROM approvals WHERE card_id = $1 AND decision IS NOT NULL
                 AND requested_at < clock_timestamp() - interval '1 day'",
                &[&id],
            )?;
            // Only for a device still enrolled as the card's relay: the
            // holder is never asked on behalf of a revoked one.
            let inserted = client.query_opt(
                "INSERT INTO approvals (card_id, requested_by, expires_at, requested_device)
                 SELECT $1, $2, clock_timestamp() + make_interval(secs => $3), $4
                 WHERE EXISTS (SELECT 1 FROM devices
                     WHERE public_key = $4 AND card_id = $1 AND role = 'relay' FOR KEY SHARE)
                 ON CONFLICT (card_id) WHERE decision IS NULL DO NOTHING RETURNING id",
                &[
                    &id,
                    &requested_by,
                    &seconds(timeout),
                    &requested_device.as_slice(),
                ],
            )?;
            match inserted {
                Some(row) => row.get(0),
                None => {
                    let enrolled = client.query_opt(
                        "SELECT 1 FROM devices WHERE public_key = $1 AND card_id = $2 AND role = 'relay'",
                        &[&requested_device.as_slice(), &id],
                    )?;
                    return Err(match enrolled {
                        Some(_) => HostError::ApprovalBusy(id.to_owned()),
                        None => HostError::DeviceNotEnrolled {
                            card: id.to_owned(),
                            device: vscard_link::fingerprint(requested_device)[..16].to_owned(),
                        },
                    });
                }
            }
        };
        let deadline = Instant::now() + timeout;
        loop {
            let decision: Option<String> = {
                let mut client = self.client()?;
                client
                    .query_one("SELECT decision FROM approvals WHERE id = $1", &[&request])?
                    .get(0)
            };
            match decision.as_deref() {
                Some("approved") => return Ok(Decision::Approved),
                Some("expired") => return Ok(Decision::TimedOut),
                Some(_) => return Ok(Decision::Refused),
                None if withdrawn() => {
                    if self.close_approval(request)? {
                        tracing::info!(target: "vscard::host", card = %id, request,
                            "approval request closed: nobody waits for it (the relay's link dropped)");
                        return Ok(Decision::Withdrawn);
                    }
                    // Decided at the last moment: read it.
                }
                None if Instant::now() >= deadline => {
                    if self.close_approval(request)? {
                        return Ok(Decision::TimedOut);
                    }
                    // Decided at the last moment: read it.
                }
                None => std::thread::sleep(POLL),
            }
        }
    }

    /// Closes request `request` undecided (`expired`): a late decision
    /// finds no open row. False when it was decided first.
    fn close_approval(&self, request: i64) -> Result<bool, HostError> {
        let mut client = self.client()?;
        let closed = client.execute(
            "UPDATE approvals SET decision = 'expired' WHERE id = $1 AND decision IS NULL",
            &[&request],
        )?;
        Ok(closed == 1)
    }

    /// The oldest request for card `id` still open, if any.
    pub fn pending_approval(&self, id: &str) -> Result<Option<PendingApproval>, HostError> {
        let mut client = self.client()?;
        let row = client.query_opt(
            "SELECT id, card_id, requested_by, requested_device FROM approvals
             WHERE card_id = $1 AND decision IS NULL AND expires_at > clock_timestamp()
             ORDER BY id LIMIT 1",
            &[&id],
        )?;
        Ok(row.map(|row| PendingApproval {
            id: row.get(0),
            card: row.get(1),
            requested_by: row.get(2),
            requested_device: row
                .get::<_, Option<&[u8]>>(3)
                .and_then(|key| <[u8; 32]>::try_from(key).ok()),
        }))
    }

    /// Records device `deciding_device`'s decision on request `request`
    /// of card `id`; false when it was no longer open (decided, timed
    /// out). The device that asked for the session is refused
    /// ([`HostError::WrongRole`]): nobody approves their own request; so
    /// is one no longer enrolled as the card's approver (revoked since it
    /// connected: [`HostError::DeviceNotEnrolled`]), checked in the same
    /// statement, its row locked against a revocation in progress.
    pub fn decide_approval(
        &self,
        id: &str,
        request: i64,
        approve: bool,
        deciding_device: &[u8; 32],
    ) -> Result<bool, HostError> {
        let mut client = self.client()?;
        let decision = if approve { "approved" } else { "refused" };
        let updated = client.execute(
            "UPDATE approvals SET decision = $3, decided_at = clock_timestamp()
             WHERE id = $1 AND card_id = $2 AND decision IS NULL AND expires_at > clock_timestamp()
               AND requested_device IS DISTINCT FROM $4
               AND EXISTS (SELECT 1 FROM devices
                   WHERE public_key = $4 AND card_id = $2 AND role = 'approver' FOR KEY SHARE)",
            &[&request, &id, &decision, &deciding_device.as_slice()],
        )?;
        if updated == 1 {
            return Ok(true);
        }
        let own = client.query_opt(
            "SELECT 1 FROM approvals WHERE id = $1 AND requested_device = $2",
            &[&request, &deciding_device.as_slice()],
        )?;
        if own.is_some() {
            return Err(HostError::WrongRole(format!(
                "request {request} was made by this device: it cannot decide it"
            )));
        }
        let approver = client.query_opt(
            "SELECT 1 FROM devices WHERE public_key = $1 AND card_id = $2 AND role = 'approver'",
            &[&deciding_device.as_slice(), &id],
        )?;
        if approver.is_none() {
            return Err(HostError::DeviceNotEnrolled {
                card: id.to_owned(),
                device: vscard_link::fingerprint(deciding_device)[..16].to_owned(),
            });
        }
        Ok(false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failure
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use vscard_applet::{PivApplet, piv_atr};
    use vscard_emulator::Card;

    use super::Decision;
    use crate::database::{Approval, CardOptions, Database, DeviceRole};
    use crate::error::HostError;

    const RELAY: [u8; 32] = [1; 32];
    const PHONE: [u8; 32] = [2; 32];

    #[test]
    fn a_revoked_device_neither_decides_nor_asks() {
        let Some(cluster) = vscard_testkit::postgres::private_postgres() else {
            return;
        };
        let database = Database::connect(&cluster.url(), 4).unwrap();
        let card = Card::builder()
            .atr(piv_atr())
            .install_default(PivApplet::with_defaults())
            .build()
            .unwrap();
        let options = CardOptions {
            approval: Approval::Session,
        };
        database.put_card("asked", card.image(), options).unwrap();
        database
            .add_device("asked", &RELAY, DeviceRole::Relay)
            .unwrap();
        database
            .add_device("asked", &PHONE, DeviceRole::Approver)
            .unwrap();
        let withdrawn = Arc::new(AtomicBool::new(false));
        let asking = {
            let (database, withdrawn) = (database.clone(), Arc::clone(&withdrawn));
            std::thread::spawn(move || {
                database.ask_approval("asked", "host", &RELAY, Duration::from_secs(30), &|| {
                    withdrawn.load(Ordering::SeqCst)
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let pending = loop {
            if let Some(pending) = database.pending_approval("asked").unwrap() {
                break pending;
            }
            assert!(Instant::now() < deadline, "no request was made");
            std::thread::sleep(Duration::from_millis(10));
        };
        // The phone connected while enrolled, then was revoked: its
        // decision is refused and the request stays open.
        database
            .revoke_device(&vscard_link::fingerprint(&PHONE)[..16])
            .unwrap();
        let refused = database
            .decide_approval("asked", pending.id, true, &PHONE)
            .unwrap_err();
        assert!(
            matches!(refused, HostError::DeviceNotEnrolled { ref card, .. } if card == "asked"),
            "{refused}"
        );
        assert_eq!(
            database.pending_approval("asked").unwrap().map(|p| p.id),
            Some(pending.id)
        );
        withdrawn.store(true, Ordering::SeqCst);
        assert_eq!(asking.join().unwrap().unwrap(), Decision::Withdrawn);

        // Nor is the holder asked on behalf of a revoked relay.
        database
            .revoke_device(&vscard_link::fingerprint(&RELAY)[..16])
            .unwrap();
        let refused = database
            .ask_approval("asked", "host", &RELAY, Duration::from_secs(30), &|| false)
            .unwrap_err();
        assert!(
            matches!(refused, HostError::DeviceNotEnrolled { ref card, .. } if card == "asked"),
            "{refused}"
        );
        assert_eq!(database.pending_approval("asked").unwrap(), None);
    }
}
