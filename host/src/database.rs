//! [`Database`]: the pool, the schema check on start, and the card
//! administration (`vscard host import | issue | list | revoke | enrol`).

use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres_openssl::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;
use vscard_emulator::CardImage;
use vscard_emulator::seal::SealKey;
use zeroize::Zeroizing;

use crate::error::{HostError, check_card_id};
use crate::schema;
use crate::sealing::{self, HOST_IDENTITY};
use crate::store::{image_rows, insert_rows};

/// A pool of connections to the card database.
pub(crate) type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// How long a command waits for a connection before it fails (a database
/// that went away fails the command in this time, not never).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// Every connection's settings. `synchronous_commit=on`: a commit (a PIN
/// try) is on disk before it returns. The timeouts keep a host that
/// stalls (paused, cut off) from holding a lease row's lock: a statement
/// runs at most 5 s, waits at most 2 s for a lock, and a transaction left
/// idle is ended by the server after 5 s, so failover and revocation wait
/// at most that long for a stalled host.
const SESSION_OPTIONS: &str = "-c synchronous_commit=on -c statement_timeout=5s \
     -c lock_timeout=2s -c idle_in_transaction_session_timeout=5s";

/// TCP keepalives on the connections: a peer that vanished (a host cut
/// off) is noticed by both ends within about 5 + 3 x 2 = 11 s, and its
/// server session (with its locks) ends.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// Between keepalive probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Probes before the connection is dropped.
const KEEPALIVE_RETRIES: u32 = 3;

/// The card database: a connection pool on a migrated schema, and the
/// key card parts and the link key are sealed under, if any. Clones share
/// the pool.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: String,
    seal: Option<SealKey>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.url)
    }
}

/// Whether the holder must approve on the enrolled device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approval {
    /// No approval.
    #[default]
    None,
    /// Before each session opens.
    Session,
    /// Before each session opens and before each signature.
    Signature,
}

impl Approval {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::None => "none",
            Approval::Session => "session",
            Approval::Signature => "signature",
        }
    }

    /// The approval called `text` (`none`, `session`, `signature`); an
    /// unknown one is an error, never "none".
    pub fn parse(text: &str) -> Result<Approval, HostError> {
        match text {
            "none" => Ok(Approval::None),
            "session" => Ok(Approval::Session),
            "signature" => Ok(Approval::Signature),
            other => Err(HostError::BadSetting {
                what: "approval setting",
                value: other.to_owned(),
            }),
        }
    }
}

/// What an enrolled device may do; one role per key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceRole {
    /// Opens sessions (`vscard relay --host`); never decides approvals.
    #[default]
    Relay,
    /// Decides approvals (`vscard approve`); never opens a session.
    Approver,
}

impl DeviceRole {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Relay => "relay",
            DeviceRole::Approver => "approver",
        }
    }

    /// The role called `text` (`relay`, `approver`).
    pub fn parse(text: &str) -> Result<DeviceRole, HostError> {
        match text {
            "relay" => Ok(DeviceRole::Relay),
            "approver" => Ok(DeviceRole::Approver),
            other => Err(HostError::BadSetting {
                what: "device role",
                value: other.to_owned(),
            }),
        }
    }
}

/// How a card is put in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CardOptions {
    /// Whether the holder approves sessions (or signatures).
    pub approval: Approval,
}

/// One card as `vscard host list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CardRow {
    /// Its ID.
    pub id: String,
    /// True once revoked.
    pub revoked: bool,
    /// Its approval setting.
    pub approval: Approval,
    /// The lease's fencing number (0: never leased).
    pub fence: i64,
    /// Who holds the lease now, if it is live.
    pub holder: Option<String>,
    /// How many parts its image has.
    pub parts: i64,
    /// How many devices are enrolled for it.
    pub devices: i64,
}

/// What may be shown of a database URL: its host(s) and database name
/// only (`database cards on db.example:5432`), never the user, password
/// or other settings, whatever their quoting. Used wherever a URL is
/// shown.
pub fn redact_url(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else {
        return "(a database URL that does not parse)".to_owned();
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(name) => match ports.get(i).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name.clone(),
            },
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "the default host".to_owned()
    } else {
        hosts.join(",")
    };
    format!(
        "database {} on {hosts}",
        config.get_dbname().unwrap_or("(default)")
    )
}

impl Database {
    /// Connects (a pool of up to `max_connections`) and brings the schema
    /// to this build's version, refusing a newer one. Every connection
    /// runs with `synchronous_commit = on`, whatever the server's default.
    ///
    /// A TCP host must be reached over TLS (`sslmode=require` in the URL;
    /// the server's certificate is checked against the system's roots and
    /// its name): anything else is refused. Unix sockets need no TLS.
    pub fn connect(url: &str, max_connections: u32) -> Result<Database, HostError> {
        Database::connect_with(url, max_connections, false)
    }

    /// [`Database::connect`]; with `insecure`, a TCP host without TLS is
    /// allowed (card images and keys then cross the network in the clear).
    pub fn connect_with(
        url: &str,
        max_connections: u32,
        insecure: bool,
    ) -> Result<Database, HostError> {
        let redacted = redact_url(url);
        let mut config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| HostError::BadUrl {
                    url: redacted.clone(),
                    reason: e.to_string(),
                })?;
        config
            .options(SESSION_OPTIONS)
            .application_name("vscard-host")
            .connect_timeout(CONNECTION_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        let tcp = config
            .get_hosts()
            .iter()
            .any(|host| matches!(host, Host::Tcp(_)));
        if tcp && config.get_ssl_mode() != SslMode::Require && !insecure {
            return Err(HostError::BadUrl {
                url: redacted,
                reason: "a TCP host without required TLS (card images and keys would cross the \
                         network readable): add sslmode=require to the URL, use a Unix socket \
                         (host=/run/postgresql), or pass --database-insecure"
                    .to_owned(),
            });
        }
        let tls = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
            .map_err(|e| HostError::BadUrl {
                url: redacted.clone(),
                reason: format!("cannot set TLS up: {e}"),
            })?;
        let manager = PostgresConnectionManager::new(config, MakeTlsConnector::new(tls.build()));
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            // No `SELECT 1` before every checkout: that was a second round
            // trip for each PIN try. A connection that broke is found by
            // the statement it fails (the commit then fails as a write
            // does) and is dropped, not pooled again.
            .test_on_check_out(false)
            .connection_timeout(CONNECTION_TIMEOUT)
            .build(manager)?;
        let database = Database {
            pool,
            url: redacted,
            seal: None,
        };
        let mut client = database.client()?;
        schema::migrate(&mut client)?;
        drop(client);
        Ok(database)
    }

    /// This database, its card parts and the hosts' link key sealed
    /// (AES-256-GCM) under `key` from now on: every part written is sealed
    /// for its card, applet and part, only sealed parts are read (a part in
    /// the clear is [`HostError::NotEncrypted`]), and the link key is
    /// stored sealed (one found in the clear is refused:
    /// [`Database::host_identity`]).
    pub fn with_seal_key(mut self, key: SealKey) -> Database {
        self.seal = Some(key);
        self
    }

    /// The key parts are sealed under, if any.
    pub(crate) fn seal_key(&self) -> Option<&SealKey> {
        self.seal.as_ref()
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection from the pool (checked before it is handed out).
    pub(crate) fn client(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>, HostError>
    {
        Ok(self.pool.get()?)
    }

    /// Puts a new card in with `image` as its committed image (its parts
    /// sealed if the database has a key).
    pub fn put_card(
        &self,
        id: &str,
        image: &CardImage,
        options: CardOptions,
    ) -> Result<(), HostError> {
        check_card_id(id)?;
        let rows = image_rows(self.seal_key(), id, image)?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO cards (id, approval) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&id, &options.approval.as_str()],
        )?;
        if inserted == 0 {
            return Err(HostError::CardExists(id.to_owned()));
        }
        tx.execute(
            "INSERT INTO leases (card_id, holder, expires_at, fence) VALUES ($1, NULL, '-infinity', 0)",
            &[&id],
        )?;
        insert_rows(&mut tx, self.seal_key(), id, &rows)?;
        tx.commit()?;
        Ok(())
    }

    /// Every card, by ID.
    pub fn list(&self) -> Result<Vec<CardRow>, HostError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT c.id, c.revoked_at IS NOT NULL, c.approval, coalesce(l.fence, 0),
                    CASE WHEN l.expires_at > clock_timestamp() THEN l.holder END,
                    (SELECT count(*) FROM card_parts p WHERE p.card_id = c.id),
                    (SELECT count(*) FROM devices d WHERE d.card_id = c.id)
             FROM cards c LEFT JOIN leases l ON l.card_id = c.id ORDER BY c.id",
            &[],
        )?;
        rows.iter()
            .map(|row| {
                Ok(CardRow {
                    id: row.get(0),
                    revoked: row.get(1),
                    approval: Approval::parse(row.get(2))?,
                    fence: row.get(3),
                    holder: row.get(4),
                    parts: row.get(5),
                    devices: row.get(6),
                })
            })
            .collect()
    }

    /// Revokes a card: it is never served again, and the host serving it
    /// now loses its lease (the fencing number moves on), so its next
    /// commit fails.
    pub fn revoke(&self, id: &str) -> Result<(), HostError> {
        check_card_id(id)?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let updated = tx.execute(
            "UPDATE cards SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE id = $1",
            &[&id],
        )?;
        if updated == 0 {
            return Err(HostError::NoSuchCard(id.to_owned()));
        }
        tx.execute(
            "UPDATE leases SET fence = fence + 1, holder = NULL, expires_at = '-infinity' WHERE card_id = $1",
            &[&id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The card's approval setting; refuses a missing or revoked card.
    pub fn approval(&self, id: &str) -> Result<Approval, HostError> {
        let mut client = self.client()?;
        let row = client
            .query_opt(
                "SELECT approval, revoked_at IS NOT NULL FROM cards WHERE id = $1",
                &[&id],
            )?
            .ok_or_else(|| HostError::NoSuchCard(id.to_owned()))?;
        if row.get::<_, bool>(1) {
            return Err(HostError::Revoked(id.to_owned()));
        }
        Approval::parse(row.get(0))
    }

    /// Records an enrolled device's public key for card `id`, in `role`.
    pub fn add_device(
        &self,
        id: &str,
        public_key: &[u8; 32],
        role: DeviceRole,
    ) -> Result<(), HostError> {
        check_card_id(id)?;
        let mut client = self.client()?;
        let exists = client.query_opt(
            "SELECT 1 FROM cards WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )?;
        if exists.is_none() {
            return Err(HostError::NoSuchCard(id.to_owned()));
        }
        client.execute(
            "INSERT INTO devices (public_key, card_id, role) VALUES ($1, $2, $3)",
            &[&public_key.as_slice(), &id, &role.as_str()],
        )?;
        Ok(())
    }

    /// The card a device's key was enrolled for and its role, if any.
    pub fn device_card(
        &self,
        public_key: &[u8; 32],
    ) -> Result<Option<(String, DeviceRole)>, HostError> {
        let mut client = self.client()?;
        let row = client.query_opt(
            "SELECT card_id, role FROM devices WHERE public_key = $1",
            &[&public_key.as_slice()],
        )?;
        row.map(|row| Ok((row.get(0), DeviceRole::parse(row.get(1))?)))
            .transpose()
    }

    /// The hosts' shared link key pair (private, public): made by
    /// `make` the first time, then the same for every host, so a device
    /// pins one key whichever host it reaches. With a key the private
    /// half is stored sealed. The public half stored (what `host enrol`
    /// gives devices to pin) must be the one the private half makes, or
    /// the pair is refused ([`HostError::HostIdentity`]): whoever may
    /// write the database cannot swap in a key of theirs for new devices
    /// to pin. With a key, a private half found in the clear is refused
    /// too, never adopted and sealed: it may have been planted, and
    /// whoever read the database or its backups has it; the admin
    /// deletes it so a new one is made, and enrols the devices again.
    pub fn host_identity(
        &self,
        make: impl FnOnce() -> Result<(zeroize_bytes::Secret, [u8; 32]), HostError>,
    ) -> Result<(zeroize_bytes::Secret, [u8; 32]), HostError> {
        let mut client = self.client()?;
        if let Some(found) = read_identity(&mut client, self.seal_key())? {
            return Ok(found);
        }
        let (private, public) = make()?;
        let stored = match self.seal_key() {
            Some(key) => seal_identity(key, &private)?,
            None => Zeroizing::new(private.expose().to_vec()),
        };
        client.execute(
            "INSERT INTO host_identity (id, private_key, public_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
            &[&stored.as_slice(), &public.as_slice()],
        )?;
        // Another host may have made it first: theirs wins.
        read_identity(&mut client, self.seal_key())?.ok_or_else(|| HostError::DamagedPart {
            card: "-".to_owned(),
            applet: "host_identity".to_owned(),
            part: "1".to_owned(),
            reason: "missing after insert".to_owned(),
        })
    }
}

/// The link key pair: private, public.
type KeyPair = (zeroize_bytes::Secret, [u8; 32]);

/// The link key's private half sealed under `key`.
fn seal_identity(
    key: &SealKey,
    private: &zeroize_bytes::Secret,
) -> Result<Zeroizing<Vec<u8>>, HostError> {
    sealing::seal(key, HOST_IDENTITY, private.expose())
        .map(Zeroizing::new)
        .map_err(HostError::Seal)
}

/// Why a private half in the clear is refused by a host with a key.
const CLEAR_UNDER_KEY: &str = "its private half is stored in the clear, and this host encrypts it \
     (--encrypt-key-file): it may have been planted, and whoever read the database or its \
     backups has it. Delete it (DELETE FROM host_identity) so the next host makes a new one, \
     encrypted, then enrol every device again (vscard host enrol): they pin the hosts' key";

/// The stored link key pair, its private half opened under `key` if it is
/// sealed (sealed without a key: [`HostError::KeyNeeded`]; in the clear
/// with a key, or a public half that is not the private half's:
/// [`HostError::HostIdentity`]).
fn read_identity(
    client: &mut postgres::Client,
    key: Option<&SealKey>,
) -> Result<Option<KeyPair>, HostError> {
    let Some(row) = client.query_opt(
        "SELECT private_key, public_key FROM host_identity WHERE id = 1",
        &[],
    )?
    else {
        return Ok(None);
    };
    let private: Zeroizing<Vec<u8>> = Zeroizing::new(row.get(0));
    let public: Vec<u8> = row.get(1);
    let damaged = |reason: String| HostError::DamagedPart {
        card: "-".to_owned(),
        applet: "host_identity".to_owned(),
        part: "1".to_owned(),
        reason,
    };
    let private = match (key, vscard_emulator::seal::is_sealed(&private)) {
        (Some(key), true) => sealing::open(key, &private, HOST_IDENTITY).map_err(damaged)?,
        (None, true) => {
            return Err(HostError::KeyNeeded {
                what: "the hosts' link key".to_owned(),
            });
        }
        (Some(_), false) => return Err(HostError::HostIdentity(CLEAR_UNDER_KEY.to_owned())),
        (None, false) => private,
    };
    let not_32 = || damaged("a key is not 32 bytes".to_owned());
    let mut bytes = Zeroizing::new([0u8; 32]);
    if private.len() != bytes.len() {
        return Err(not_32());
    }
    bytes.copy_from_slice(&private);
    let public = <[u8; 32]>::try_from(public.as_slice()).map_err(|_| not_32())?;
    let derived = *vscard_link::Identity::from_private(&bytes).public();
    if derived != public {
        return Err(HostError::HostIdentity(format!(
            "its stored public half (fingerprint {}) is not the one its private half makes ({}): \
             the row was changed; refused, as devices enrolled now would pin that key. Put the \
             public half back, or delete the row (DELETE FROM host_identity) and enrol every \
             device again",
            &vscard_link::fingerprint(&public)[..16],
            &vscard_link::fingerprint(&derived)[..16],
        )));
    }
    Ok(Some((zeroize_bytes::Secret::new(*bytes), public)))
}

/// A private key that is wiped when dropped.
pub mod zeroize_bytes {
    /// 32 secret bytes; `Debug` shows nothing.
    pub struct Secret(zeroize::Zeroizing<[u8; 32]>);

    impl Secret {
        /// Wraps `bytes`.
        pub fn new(bytes: [u8; 32]) -> Secret {
            Secret(zeroize::Zeroizing::new(bytes))
        }

        /// The bytes.
        pub fn expose(&self) -> &[u8; 32] {
            &self.0
        }
    }

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(<redacted>)")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failure
mod tests {
    use super::redact_url;

    #[test]
    fn only_hosts_and_the_database_name_show() {
        assert_eq!(
            redact_url("postgresql://vscard:s3cret@db.example:5432/cards"),
            "database cards on db.example:5432"
        );
        assert_eq!(
            redact_url("postgresql://db/cards?user=u&password=s3cret&sslmode=disable"),
            "database cards on db:5432"
        );
        assert_eq!(
            redact_url("host=/tmp user=u password='s3 cr\\'et' dbname=cards"),
            "database cards on /tmp"
        );
        assert_eq!(
            redact_url("postgresql://u@localhost/cards?host=/tmp/x"),
            "database cards on localhost:5432,/tmp/x"
        );
        assert_eq!(
            redact_url("password='s3cret"),
            "(a database URL that does not parse)"
        );
    }

    #[test]
    fn every_connection_has_the_timeouts() {
        let Some(cluster) = vscard_testkit::postgres::private_postgres() else {
            return;
        };
        let database = super::Database::connect(&cluster.url(), 2).unwrap();
        let mut client = database.client().unwrap();
        for (setting, value) in [
            ("synchronous_commit", "on"),
            ("statement_timeout", "5s"),
            ("lock_timeout", "2s"),
            ("idle_in_transaction_session_timeout", "5s"),
        ] {
            let shown: String = client
                .query_one(&format!("SHOW {setting}"), &[])
                .unwrap()
                .get(0);
            assert_eq!(shown, value, "{setting}");
        }
    }
}
