//! The database schema, in numbered migrations applied in order on start.
//!
//! `vscard_schema` holds the versions applied. Migrations run in one
//! transaction under an advisory lock, so hosts starting together apply
//! each once; a database at a version newer than [`SCHEMA_VERSION`] is
//! refused before anything is written. A migration is never edited once
//! released: a change is a new one.

use crate::error::HostError;

/// Version 1: cards, their parts, leases, enrolled devices, the holder's
/// approvals and the hosts' shared link identity.
///
/// - `card_parts.encoding` says how `value` is to be read: `json` (the
///   part's serde encoding) or `aes256gcm` (that sealed, written by a
///   host given a key: `crate::sealing`; no new table or column was
///   needed). `host_identity.private_key` is 32 bytes in the clear, or
///   sealed (it then starts with the seal's magic).
/// - `approvals`: a host asks (a row), the device decides (any host
///   writes the decision), the asking host reads it; a row past
///   `expires_at` can no longer be decided.
/// - `leases.fence` only ever grows: each new lease takes the next
///   number, and every commit names the number it was made under.
const V1: &str = "
CREATE TABLE cards (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at timestamptz,
    approval text NOT NULL DEFAULT 'none' CHECK (approval IN ('none', 'session', 'signature'))
);
CREATE TABLE card_parts (
    card_id text NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    applet text NOT NULL,
    part text NOT NULL,
    encoding text NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (card_id, applet, part)
);
CREATE TABLE leases (
    card_id text PRIMARY KEY REFERENCES cards (id) ON DELETE CASCADE,
    holder text,
    expires_at timestamptz NOT NULL,
    fence bigint NOT NULL
);
CREATE TABLE devices (
    public_key bytea PRIMARY KEY,
    card_id text NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    enrolled_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE approvals (
    id bigserial PRIMARY KEY,
    card_id text NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    decision text CHECK (decision IN ('approved', 'refused')),
    decided_at timestamptz
);
CREATE INDEX approvals_pending ON approvals (card_id) WHERE decision IS NULL;
CREATE TABLE host_identity (
    id integer PRIMARY KEY CHECK (id = 1),
    private_key bytea NOT NULL,
    public_key bytea NOT NULL
);
";

/// Version 2: a device's role (`relay`: opens sessions; `approver`:
/// decides approvals; never both), and which device asked for an
/// approval (a device never decides its own request); at most one open
/// approval request per card (a request that timed out is `expired`).
const V2: &str = "
ALTER TABLE devices ADD COLUMN role text NOT NULL DEFAULT 'relay'
    CHECK (role IN ('relay', 'approver'));
ALTER TABLE approvals ADD COLUMN requested_device bytea;
UPDATE approvals SET decision = 'expired' WHERE decision IS NULL;
ALTER TABLE approvals DROP CONSTRAINT approvals_decision_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_decision_check
    CHECK (decision IN ('approved', 'refused', 'expired'));
CREATE UNIQUE INDEX approvals_one_open ON approvals (card_id) WHERE decision IS NULL;
";

/// Every migration, in order: index `i` makes version `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build makes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// An arbitrary key for `pg_advisory_xact_lock`: one migrator at a time.
const MIGRATION_LOCK: i64 = 0x7673_6361_7264;

/// Brings the schema to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn migrate(client: &mut postgres::Client) -> Result<i32, HostError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS vscard_schema (version integer PRIMARY KEY)")?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM vscard_schema", &[])?
        .get(0);
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(HostError::FutureSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1i32..)
        .zip(MIGRATIONS.iter())
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO vscard_schema (version) VALUES ($1)",
            &[&version],
        )?;
        tracing::info!(target: "vscard::host", version, "schema migrated");
    }
    tx.commit()?;
    Ok(SCHEMA_VERSION)
}
