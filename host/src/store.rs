//! [`PostgresStore`]: a card's image in rows, committed under its lease.
//!
//! One row per part (`card_parts`: card, applet AID key, part name, the
//! encoding and its bytes). A commit of a few parts (a PIN try) is one
//! statement, so one round trip and one transaction: it renews-and-checks
//! the lease row (`UPDATE ... WHERE fence = $n AND expires_at > now`,
//! which locks it) and upserts the parts only when that found the lease.
//! With `synchronous_commit = on` (set on every connection) the commit is
//! on the server's disk before the statement returns, so a PIN try is
//! counted before the card compares. A failure of any kind leaves the
//! previous image and becomes [`StoreError::Backend`]; the runtime then
//! answers as for any failed write (`6581`) and reloads the applet.

use std::collections::{BTreeMap, BTreeSet};

use vscard_emulator::{CardImage, Changes, Store, StoreError};

use crate::database::Database;
use crate::error::HostError;
use crate::lease::{Lease, seconds};

/// The encoding of a part's bytes: its serde JSON. (A sealed form, the
/// image encrypted at rest, is another value of `card_parts.encoding`.)
pub(crate) const JSON: &str = "json";

/// One stored part: applet key, part name, encoded value.
pub(crate) type PartRow = (String, String, Vec<u8>);

/// A card's image on PostgreSQL, written only under `lease`.
#[derive(Debug)]
pub struct PostgresStore {
    database: Database,
    lease: Lease,
}

impl PostgresStore {
    /// The store of the card `lease` is on.
    pub fn new(database: Database, lease: Lease) -> PostgresStore {
        PostgresStore { database, lease }
    }

    /// The lease it writes under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Reads card `id`'s committed image (no lease needed: reading never
    /// changes a card).
    pub fn read(database: &Database, id: &str) -> Result<Option<CardImage>, HostError> {
        let mut client = database.client()?;
        let rows = client.query(
            "SELECT applet, part, encoding, value FROM card_parts WHERE card_id = $1",
            &[&id],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut applets: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for row in rows {
            let applet: String = row.get(0);
            let part: String = row.get(1);
            let encoding: String = row.get(2);
            let bytes = zeroize::Zeroizing::new(row.get::<_, Vec<u8>>(3));
            let damaged = |reason: String| HostError::DamagedPart {
                card: id.to_owned(),
                applet: applet.clone(),
                part: part.clone(),
                reason,
            };
            if encoding != JSON {
                return Err(damaged(format!(
                    "encoding {encoding:?} is not one this vscard reads"
                )));
            }
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
            applets
                .entry(applet.clone())
                .or_default()
                .insert(part, value);
        }
        let image = serde_json::Value::Object(
            applets
                .into_iter()
                .map(|(key, parts)| (key, serde_json::Value::Object(parts)))
                .collect(),
        );
        Ok(Some(serde_json::from_value(image)?))
    }

    fn backend(&self, error: HostError) -> StoreError {
        StoreError::Backend {
            store: format!("PostgreSQL card {}", self.lease.card),
            source: Box::new(error),
        }
    }

    /// Renews-and-checks the lease inside `tx` (locking its row).
    fn check_lease(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), HostError> {
        let found = tx.execute(
            "UPDATE leases SET expires_at = greatest(expires_at, clock_timestamp() + make_interval(secs => $3))
             WHERE card_id = $1 AND fence = $2 AND expires_at > clock_timestamp()",
            &[&self.lease.card, &self.lease.fence, &seconds(self.lease.ttl)],
        )?;
        if found == 1 {
            Ok(())
        } else {
            Err(self.lease.lost())
        }
    }

    fn commit_whole(&self, image: &CardImage) -> Result<(), HostError> {
        let rows = image_rows(image)?;
        let mut client = self.database.client()?;
        let mut tx = client.transaction()?;
        self.check_lease(&mut tx)?;
        tx.execute(
            "DELETE FROM card_parts WHERE card_id = $1",
            &[&self.lease.card],
        )?;
        insert_rows(&mut tx, &self.lease.card, &rows)?;
        tx.commit()?;
        Ok(())
    }

    fn commit_parts(&self, image: &CardImage, changes: Changes<'_>) -> Result<(), HostError> {
        let key = changes.applet();
        let Some(state) = image.applet(key) else {
            return self.commit_whole(image);
        };
        let names: BTreeSet<&str> = changes.parts().collect();
        let mut upsert_names = Vec::new();
        let mut upsert_values = Vec::new();
        let mut removed = Vec::new();
        for name in names {
            // Only the changed parts are encoded (a try counter, not the
            // certificates).
            let encoded = state
                .encoded_part(name)
                .map_err(|e| HostError::DamagedPart {
                    card: self.lease.card.clone(),
                    applet: key.to_owned(),
                    part: name.to_owned(),
                    reason: e.to_string(),
                })?;
            match encoded {
                Some(value) => {
                    upsert_names.push(name);
                    upsert_values.push(serde_json::to_vec(&value)?);
                }
                None => removed.push(name),
            }
        }
        let mut client = self.database.client()?;
        if removed.is_empty() {
            // The common case (a try counter): one statement, one round
            // trip. The parts are written only if the lease row was found
            // (and locked) under this fence.
            let written = client.execute(
                "WITH lease AS (
                     UPDATE leases SET expires_at = greatest(expires_at, clock_timestamp() + make_interval(secs => $3))
                     WHERE card_id = $1 AND fence = $2 AND expires_at > clock_timestamp()
                     RETURNING card_id)
                 INSERT INTO card_parts (card_id, applet, part, encoding, value)
                 SELECT lease.card_id, $4::text, p.part, $5::text, p.value
                 FROM lease, unnest($6::text[], $7::bytea[]) AS p (part, value)
                 ON CONFLICT (card_id, applet, part)
                 DO UPDATE SET encoding = excluded.encoding, value = excluded.value",
                &[
                    &self.lease.card,
                    &self.lease.fence,
                    &seconds(self.lease.ttl),
                    &key,
                    &JSON,
                    &upsert_names,
                    &upsert_values,
                ],
            )?;
            return if usize::try_from(written).ok() == Some(upsert_names.len()) {
                Ok(())
            } else {
                Err(self.lease.lost())
            };
        }
        let mut tx = client.transaction()?;
        self.check_lease(&mut tx)?;
        tx.execute(
            "DELETE FROM card_parts WHERE card_id = $1 AND applet = $2 AND part = ANY($3)",
            &[&self.lease.card, &key, &removed],
        )?;
        let rows: Vec<PartRow> = upsert_names
            .iter()
            .zip(upsert_values)
            .map(|(name, value)| (key.to_owned(), (*name).to_owned(), value))
            .collect();
        insert_rows(&mut tx, &self.lease.card, &rows)?;
        tx.commit()?;
        Ok(())
    }
}

/// Every part of `image` as rows.
pub(crate) fn image_rows(image: &CardImage) -> Result<Vec<PartRow>, HostError> {
    let serde_json::Value::Object(applets) = serde_json::to_value(image)? else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (applet, parts) in applets {
        let serde_json::Value::Object(parts) = parts else {
            continue;
        };
        for (part, value) in parts {
            rows.push((applet.clone(), part, serde_json::to_vec(&value)?));
        }
    }
    Ok(rows)
}

/// Upserts `rows` for card `id` in `tx`.
pub(crate) fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    id: &str,
    rows: &[PartRow],
) -> Result<(), HostError> {
    let statement = tx.prepare(
        "INSERT INTO card_parts (card_id, applet, part, encoding, value) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (card_id, applet, part) DO UPDATE SET encoding = excluded.encoding, value = excluded.value",
    )?;
    for (applet, part, value) in rows {
        tx.execute(&statement, &[&id, applet, part, &JSON, value])?;
    }
    Ok(())
}

impl Store for PostgresStore {
    fn load(&mut self) -> Result<Option<CardImage>, StoreError> {
        PostgresStore::read(&self.database, &self.lease.card).map_err(|e| self.backend(e))
    }

    fn commit(&mut self, image: &CardImage) -> Result<(), StoreError> {
        self.commit_whole(image).map_err(|e| {
            tracing::warn!(target: "vscard::host", card = %self.lease.card, error = %e, "commit failed");
            self.backend(e)
        })
    }

    fn commit_changes(
        &mut self,
        image: &CardImage,
        changes: Changes<'_>,
    ) -> Result<(), StoreError> {
        self.commit_parts(image, changes).map_err(|e| {
            tracing::warn!(target: "vscard::host", card = %self.lease.card, error = %e, "commit failed");
            self.backend(e)
        })
    }
}
