//! [`PostgresStore`]: a card's image in rows, committed under its lease.
//!
//! One row per part (`card_parts`: card, applet AID key, part name, the
//! encoding and its bytes). A commit of a few parts (a PIN try) is one
//! statement, so one round trip and one transaction: it checks the lease
//! row (`SELECT ... WHERE fence = $n AND expires_at > now FOR SHARE`,
//! which holds off a new lease until the commit ends) and upserts the
//! parts only when that found the lease. The lease itself is renewed by
//! the session's renewals, not by commits.
//! With `synchronous_commit = on` (set on every connection) the commit is
//! on the server's disk before the statement returns, so a PIN try is
//! counted before the card compares. A failure of any kind leaves the
//! previous image and becomes [`StoreError::Backend`]; the runtime then
//! answers as for any failed write (`6581`) and reloads the applet.
//!
//! Given a key ([`Database::with_seal_key`]), each part's JSON bytes are
//! sealed for their card, applet and part ([`crate::sealing`]) and stored
//! with `encoding = 'aes256gcm'`; the PIN-try commit is still the one
//! statement. Such a store reads only sealed parts: a part in the clear
//! is refused ([`HostError::NotEncrypted`]), never served; a store
//! without a key refuses sealed parts ([`HostError::KeyNeeded`]).

use std::collections::{BTreeMap, BTreeSet};

use vscard_emulator::seal::SealKey;
use vscard_emulator::{CardImage, Changes, Store, StoreError};
use zeroize::Zeroizing;

use crate::database::Database;
use crate::error::HostError;
use crate::lease::Lease;
use crate::sealing::{self, SEALED};

/// The encoding of a part's bytes in the clear: its serde JSON. (Sealed:
/// [`SEALED`].)
pub(crate) const JSON: &str = "json";

/// One stored part: applet key, part name, encoded value (its JSON, or
/// that sealed).
pub(crate) type PartRow = (String, String, Zeroizing<Vec<u8>>);

/// The `card_parts.encoding` a host with (or without) a key writes.
pub(crate) fn encoding(key: Option<&SealKey>) -> &'static str {
    if key.is_some() { SEALED } else { JSON }
}

/// Part `part` of applet `applet` of card `card`, as stored: its JSON,
/// sealed under `key` if there is one.
pub(crate) fn encode_part(
    key: Option<&SealKey>,
    card: &str,
    applet: &str,
    part: &str,
    value: &serde_json::Value,
) -> Result<Zeroizing<Vec<u8>>, HostError> {
    let json = Zeroizing::new(serde_json::to_vec(value)?);
    match key {
        None => Ok(json),
        Some(key) => sealing::seal(key, &sealing::part_identity(card, applet, part), &json)
            .map(Zeroizing::new)
            .map_err(HostError::Seal),
    }
}

/// The JSON bytes of a stored part, opened under `key` if it is sealed;
/// a part in the clear under a key, or sealed without one, is refused.
fn decode_part(
    key: Option<&SealKey>,
    card: &str,
    applet: &str,
    part: &str,
    encoding: &str,
    bytes: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, HostError> {
    let damaged = |reason: String| HostError::DamagedPart {
        card: card.to_owned(),
        applet: applet.to_owned(),
        part: part.to_owned(),
        reason,
    };
    match (key, encoding) {
        (None, JSON) => Ok(bytes),
        (Some(key), SEALED) => {
            sealing::open(key, &bytes, &sealing::part_identity(card, applet, part)).map_err(damaged)
        }
        (Some(_), JSON) => Err(HostError::NotEncrypted {
            what: format!("card {card} (part {applet}/{part})"),
        }),
        (None, SEALED) => Err(HostError::KeyNeeded {
            what: format!("card {card}"),
        }),
        (_, other) => Err(damaged(format!(
            "encoding {other:?} is not one this vscard reads"
        ))),
    }
}

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
    /// changes a card), opening its parts under the database's key.
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
            let bytes = Zeroizing::new(row.get::<_, Vec<u8>>(3));
            let key = database.seal_key();
            let json = decode_part(key, id, &applet, &part, &encoding, bytes)?;
            let value: serde_json::Value =
                serde_json::from_slice(&json).map_err(|e| HostError::DamagedPart {
                    card: id.to_owned(),
                    applet: applet.clone(),
                    part: part.clone(),
                    reason: e.to_string(),
                })?;
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

    /// Checks the lease inside `tx`, share-locking its row until the
    /// transaction ends: a new lease (an `UPDATE` of that row) waits for
    /// this commit, and sees the fence this commit was made under.
    fn check_lease(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), HostError> {
        let found = tx.execute(
            "SELECT 1 FROM leases
             WHERE card_id = $1 AND fence = $2 AND expires_at > clock_timestamp()
             FOR SHARE",
            &[&self.lease.card, &self.lease.fence],
        )?;
        if found == 1 {
            Ok(())
        } else {
            Err(self.lease.lost())
        }
    }

    fn commit_whole(&self, image: &CardImage) -> Result<(), HostError> {
        let rows = image_rows(self.database.seal_key(), &self.lease.card, image)?;
        let mut client = self.database.client()?;
        let mut tx = client.transaction()?;
        self.check_lease(&mut tx)?;
        tx.execute(
            "DELETE FROM card_parts WHERE card_id = $1",
            &[&self.lease.card],
        )?;
        insert_rows(&mut tx, self.database.seal_key(), &self.lease.card, &rows)?;
        tx.commit()?;
        Ok(())
    }

    fn commit_parts(&self, image: &CardImage, changes: Changes<'_>) -> Result<(), HostError> {
        let key = changes.applet();
        let Some(state) = image.applet(key) else {
            return self.commit_whole(image);
        };
        let seal_key = self.database.seal_key();
        let names: BTreeSet<&str> = changes.parts().collect();
        let mut upsert_names = Vec::new();
        let mut upsert_values = Vec::new();
        let mut removed = Vec::new();
        for name in names {
            // Only the changed parts are encoded (a try counter, not the
            // certificates), and sealed if the host has a key.
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
                    upsert_values.push(encode_part(seal_key, &self.lease.card, key, name, &value)?);
                }
                None => removed.push(name),
            }
        }
        let mut client = self.database.client()?;
        if removed.is_empty() {
            let values: Vec<&[u8]> = upsert_values.iter().map(|v| v.as_slice()).collect();
            // The common case (a try counter): one statement, one round
            // trip. The parts are written only if the lease row was found
            // under this fence, share-locked to the commit (a new lease
            // waits for it); the lease is renewed by the session's own
            // renewals, not by every commit (which wrote the lease row
            // too: two row versions per PIN try).
            let written = client.execute(
                "WITH lease AS (
                     SELECT card_id FROM leases
                     WHERE card_id = $1 AND fence = $2 AND expires_at > clock_timestamp()
                     FOR SHARE)
                 INSERT INTO card_parts (card_id, applet, part, encoding, value)
                 SELECT lease.card_id, $3::text, p.part, $4::text, p.value
                 FROM lease, unnest($5::text[], $6::bytea[]) AS p (part, value)
                 ON CONFLICT (card_id, applet, part)
                 DO UPDATE SET encoding = excluded.encoding, value = excluded.value",
                &[
                    &self.lease.card,
                    &self.lease.fence,
                    &key,
                    &encoding(seal_key),
                    &upsert_names,
                    &values,
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
        insert_rows(&mut tx, seal_key, &self.lease.card, &rows)?;
        tx.commit()?;
        Ok(())
    }
}

/// Every part of card `card`'s `image` as rows, sealed under `key` if
/// there is one.
pub(crate) fn image_rows(
    key: Option<&SealKey>,
    card: &str,
    image: &CardImage,
) -> Result<Vec<PartRow>, HostError> {
    let serde_json::Value::Object(applets) = serde_json::to_value(image)? else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (applet, parts) in applets {
        let serde_json::Value::Object(parts) = parts else {
            continue;
        };
        for (part, value) in parts {
            let bytes = encode_part(key, card, &applet, &part, &value)?;
            rows.push((applet.clone(), part, bytes));
        }
    }
    Ok(rows)
}

/// Upserts `rows` for card `id` in `tx` (sealed under `key`: made by
/// [`image_rows`] with the same key).
pub(crate) fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    key: Option<&SealKey>,
    id: &str,
    rows: &[PartRow],
) -> Result<(), HostError> {
    let statement = tx.prepare(
        "INSERT INTO card_parts (card_id, applet, part, encoding, value) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (card_id, applet, part) DO UPDATE SET encoding = excluded.encoding, value = excluded.value",
    )?;
    let encoding = encoding(key);
    for (applet, part, value) in rows {
        tx.execute(
            &statement,
            &[&id, applet, part, &encoding, &value.as_slice()],
        )?;
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
