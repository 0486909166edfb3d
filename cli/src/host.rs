//! `vscard host` (serve the database's cards over the link), its
//! administration (`import`, `issue`, `list`, `revoke`, `enrol`), and
//! `vscard relay --host` (the computer's side of a hosted card).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use vscard_emulator::seal::SealKey;
use vscard_emulator::{FileStore, StoreError};
use vscard_host::serve::{HostConfig, HostObserver, host_identity, run_host};
use vscard_host::{Approval, CardOptions, Database, DeviceKey, DeviceRole, redact_url};
use vscard_issuance::cards::CardFileError;
use vscard_link::hosted::{HostedObserver, HostedTarget, relay_to_hosts};
use vscard_link::{Identity, RelayConfig, fingerprint};
use vscard_vpcd::PeerPolicy;
use zeroize::Zeroizing;

use crate::args::{
    ApproveArgs, DatabaseArgs, EnrolRole, HostArgs, HostCommand, HostEnrolArgs, HostImportArgs,
    HostIssueArgs, HostListArgs, HostRevokeArgs, HostSealArgs, RelayArgs, RequireApproval,
    VpcdPeer,
};

/// `--listen` when not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:35951";

/// Connections a host keeps to the database.
const POOL_SIZE: u32 = 16;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// `vscard host ...`.
pub fn run(args: HostArgs, state_dir: Option<PathBuf>) -> anyhow::Result<()> {
    if args.command.is_some()
        && (args.seal.encrypt_key_file.is_some() || args.seal.insecure_plaintext)
    {
        return Err(CardFileError::BadValue {
            option: "--encrypt-key-file",
            reason: "give --encrypt-key-file (or --insecure-plaintext) after the host subcommand"
                .to_owned(),
        }
        .into());
    }
    match args.command {
        None => serve(&args),
        Some(HostCommand::Import(import)) => self::import(&import),
        Some(HostCommand::Issue(issue)) => self::issue(*issue, state_dir),
        Some(HostCommand::List(list)) => self::list(&list),
        Some(HostCommand::Revoke(revoke)) => self::revoke(&revoke),
        Some(HostCommand::Enrol(enrol)) => self::enrol(&enrol),
    }
}

/// The URL from `--database` or `--database-file`.
fn database_url(args: &DatabaseArgs) -> anyhow::Result<Zeroizing<String>> {
    if let Some(url) = &args.database {
        return Ok(Zeroizing::new(url.expose().to_owned()));
    }
    let Some(path) = &args.database_file else {
        return Err(CardFileError::BadValue {
            option: "--database",
            reason: "give the card database: --database URL or --database-file FILE".to_owned(),
        }
        .into());
    };
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| CardFileError::Io {
                path: path.clone(),
                source,
            })?,
        );
    let line = Zeroizing::new(text.lines().next().unwrap_or_default().trim().to_owned());
    anyhow::ensure!(!line.is_empty(), "{} holds no database URL", path.display());
    Ok(line)
}

fn database(args: &DatabaseArgs) -> anyhow::Result<Database> {
    let url = database_url(args)?;
    Database::connect_with(&url, POOL_SIZE, args.database_insecure)
        .with_context(|| format!("cannot open the card database {}", redact_url(&url)))
}

/// The key card images and the hosts' link key are sealed under. No key
/// is bad input unless `insecure_plaintext`: a PIN, a private key or the
/// link key is never put in the database in the clear by default.
fn seal_key(
    key_file: Option<&std::path::Path>,
    insecure_plaintext: bool,
) -> Result<Option<SealKey>, CardFileError> {
    let key = crate::card_commands::encrypt_key(key_file)?;
    if key.is_none() && !insecure_plaintext {
        return Err(CardFileError::BadValue {
            option: "--encrypt-key-file",
            reason: "card images (PINs, private keys) and the hosts' link key are encrypted in \
                     the database: give --encrypt-key-file FILE (64 hexadecimal digits, mode \
                     0600), or --insecure-plaintext to keep them in the clear"
                .to_owned(),
        });
    }
    Ok(key)
}

/// [`database`], sealed under the key of `seal` (required unless
/// `--insecure-plaintext`). The key file is read before connecting.
fn sealed_database(args: &DatabaseArgs, seal: &HostSealArgs) -> anyhow::Result<Database> {
    let key = seal_key(seal.encrypt_key_file.as_deref(), seal.insecure_plaintext)?;
    Ok(keyed(database(args)?, key))
}

/// `database`, sealed under `key` if there is one.
fn keyed(database: Database, key: Option<SealKey>) -> Database {
    match key {
        Some(key) => database.with_seal_key(key),
        None => database,
    }
}

/// The approval a card is put in with.
fn approval(flag: Option<RequireApproval>) -> Approval {
    match flag {
        None => Approval::None,
        Some(RequireApproval::Session) => Approval::Session,
        Some(RequireApproval::Signature) => Approval::Signature,
    }
}

/// Prints what the host does.
struct HostPrinter;

impl HostObserver for HostPrinter {
    fn opened(&self, card: &str, fence: i64) {
        let _ = writeln!(
            std::io::stdout(),
            "card {card} opened (lease fence {fence})"
        );
    }

    fn closed(&self, card: &str, reason: &str) {
        let _ = writeln!(std::io::stdout(), "card {card} closed: {reason}");
    }

    fn refused(&self, from: SocketAddr, reason: &str) {
        let _ = writeln!(std::io::stderr(), "vscard: refused {from}: {reason}");
    }
}

/// `vscard host --database URL --listen ADDR:PORT`: until SIGINT or
/// SIGTERM.
fn serve(args: &HostArgs) -> anyhow::Result<()> {
    let listen = crate::parse_listen(args.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
    let lease = args.lease;
    let database = sealed_database(&args.database, &args.seal)?;
    let identity = host_identity(&database)?;
    let runtime = runtime()?;
    let _context = runtime.enter();
    let (mut terminate, mut interrupt) = (
        signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    let listen = listener.local_addr().unwrap_or(listen);
    println!(
        "host listening on {listen}; key {}; cards in {}",
        &fingerprint(identity.public())[..16],
        database.url()
    );
    let config = HostConfig {
        lease_ttl: lease,
        lease_wait: lease + std::time::Duration::from_secs(2),
        approval_timeout: args.approval_timeout,
        observer: Some(Arc::new(HostPrinter) as Arc<dyn HostObserver>),
        ..HostConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let host = runtime.spawn(run_host(listener, database, identity, config, stopped));
    runtime.block_on(async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    });
    let _ = stop.send(true);
    let result = runtime.block_on(host);
    println!("stopped");
    match result {
        Ok(result) => Ok(result?),
        Err(e) => anyhow::bail!("the host failed: {e}"),
    }
}

/// `vscard host import CARD.json --id ID`.
fn import(args: &HostImportArgs) -> anyhow::Result<()> {
    let key = seal_key(
        args.seal.encrypt_key_file.as_deref(),
        args.seal.insecure_plaintext,
    )?;
    // A card file in the clear, or encrypted under the database's key.
    let read = match FileStore::read_with(&args.card, key.as_ref()) {
        Err(StoreError::NotEncrypted { .. }) => FileStore::read(&args.card),
        read => read,
    };
    let image = read
        .map_err(CardFileError::from)?
        .ok_or_else(|| CardFileError::Missing {
            path: args.card.clone(),
        })?;
    let options = CardOptions {
        approval: approval(args.require_approval),
    };
    keyed(database(&args.database)?, key).put_card(&args.id, &image, options)?;
    println!(
        "imported {} as card {} (approval: {})",
        args.card.display(),
        args.id,
        options.approval.as_str()
    );
    Ok(())
}

/// `vscard host issue --id ID [issue flags]`: issued into a private
/// temporary folder, put in, and the file removed.
fn issue(mut args: HostIssueArgs, state_dir: Option<PathBuf>) -> anyhow::Result<()> {
    if args.issue.out.is_some() || args.issue.print_profile || args.issue.force {
        return Err(CardFileError::BadValue {
            option: "--out",
            reason:
                "host issue puts the card in the database: no --out, --print-profile or --force"
                    .to_owned(),
        }
        .into());
    }
    let approval = approval(args.require_approval);
    // The temporary card file is encrypted under the same key.
    let key = seal_key(
        args.issue.encrypt_key_file.as_deref(),
        args.insecure_plaintext,
    )?;
    let database = keyed(database(&args.database)?, key.clone());
    let folder = tempfile::Builder::new()
        .prefix("vscard-host-issue-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let path = folder.path().join("card.json");
    args.issue.out = Some(path.clone());
    let dir = crate::card_commands::state_dir(state_dir)?;
    crate::card_commands::issue(args.issue, &dir)?;
    let image = FileStore::read_with(&path, key.as_ref())
        .map_err(CardFileError::from)?
        .ok_or(CardFileError::Missing { path })?;
    let options = CardOptions { approval };
    database.put_card(&args.id, &image, options)?;
    println!(
        "put the card in the database as card {} (approval: {})",
        args.id,
        options.approval.as_str()
    );
    Ok(())
}

/// `vscard host list [--json]`.
fn list(args: &HostListArgs) -> anyhow::Result<()> {
    let cards = database(&args.database)?.list()?;
    if args.json {
        let rows: Vec<serde_json::Value> = cards
            .iter()
            .map(|card| {
                serde_json::json!({
                    "id": card.id,
                    "revoked": card.revoked,
                    "approval": card.approval.as_str(),
                    "fence": card.fence,
                    "served_by": card.holder,
                    "parts": card.parts,
                    "devices": card.devices,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if cards.is_empty() {
        println!("no cards (put one in with `vscard host import` or `vscard host issue`)");
    }
    for card in cards {
        let state = if card.revoked {
            "revoked".to_owned()
        } else {
            card.holder
                .as_deref()
                .map_or_else(|| "idle".to_owned(), |holder| format!("served by {holder}"))
        };
        println!(
            "{}\t{state}\tfence {}\tapproval {}\tdevices {}",
            card.id,
            card.fence,
            card.approval.as_str(),
            card.devices
        );
    }
    Ok(())
}

/// `vscard host revoke --id ID` or `--device KEY`.
fn revoke(args: &HostRevokeArgs) -> anyhow::Result<()> {
    let database = database(&args.database)?;
    if let Some(id) = &args.id {
        database.revoke(id)?;
        println!("revoked card {id}: it is never served again");
        return Ok(());
    }
    let Some(device) = &args.device else {
        return Err(CardFileError::BadValue {
            option: "--id",
            reason: "give the card (--id ID) or the device (--device KEY) to revoke".to_owned(),
        }
        .into());
    };
    // A key file (the device's own) or the fingerprint `enrol` printed.
    let wanted = if std::path::Path::new(device).is_file() {
        fingerprint(
            DeviceKey::read(std::path::Path::new(device))?
                .identity
                .public(),
        )
    } else {
        device.to_ascii_lowercase()
    };
    let revoked = database.revoke_device(&wanted)?;
    println!(
        "revoked device {} ({}) of card {}: it is refused from now on; the card stays",
        &fingerprint(&revoked.public_key)[..16],
        revoked.role.as_str(),
        revoked.card
    );
    Ok(())
}

/// `vscard host enrol --id ID --out DEVICE.key`.
fn enrol(args: &HostEnrolArgs) -> anyhow::Result<()> {
    let database = sealed_database(&args.database, &args.seal)?;
    let host = host_identity(&database)?;
    let identity = Identity::generate()?;
    let key = DeviceKey {
        card: args.id.clone(),
        identity,
        host_key: *host.public(),
    };
    // The file first: a device row without its key file is harmless, a
    // key file without its row would be refused anyway; this way a failed
    // write enrols nothing.
    key.write(&args.out)?;
    let role = match args.role {
        EnrolRole::Relay => DeviceRole::Relay,
        EnrolRole::Approver => DeviceRole::Approver,
    };
    if let Err(e) = database.add_device(&args.id, key.identity.public(), role) {
        let _ = std::fs::remove_file(&args.out);
        return Err(e.into());
    }
    println!(
        "enrolled device {} for card {} as {}: {} (mode 0600); hosts' key {}",
        &fingerprint(key.identity.public())[..16],
        args.id,
        role.as_str(),
        args.out.display(),
        &fingerprint(&key.host_key)[..16]
    );
    Ok(())
}

/// Prints what the hosted relay does.
struct HostedPrinter {
    card: String,
    vpcd_port: u16,
}

impl HostedObserver for HostedPrinter {
    fn connected(&self, host: &str) {
        let _ = writeln!(
            std::io::stdout(),
            "card {} from host {host}: in the vpcd reader on port {}",
            self.card,
            self.vpcd_port
        );
    }

    fn disconnected(&self, host: &str, reason: &str) {
        let _ = writeln!(
            std::io::stdout(),
            "card {} left the reader (host {host}: {reason}); trying the hosts again",
            self.card
        );
    }

    fn unreachable(&self, host: &str, reason: &str) {
        let _ = writeln!(std::io::stdout(), "host {host} not reached: {reason}");
    }
}

/// `vscard relay --host HOST:PORT[,...] --card ID --device-key FILE`.
pub fn relay(args: &RelayArgs) -> anyhow::Result<()> {
    let (Some(card), Some(key_path)) = (&args.card, &args.device_key) else {
        return Err(CardFileError::BadValue {
            option: "--host",
            reason: "give --card ID and --device-key FILE with --host".to_owned(),
        }
        .into());
    };
    let key = DeviceKey::read(key_path)?;
    if &key.card != card {
        return Err(CardFileError::BadValue {
            option: "--card",
            reason: format!(
                "{} was enrolled for card {}, not {card}",
                key_path.display(),
                key.card
            ),
        }
        .into());
    }
    let (vpcd_host, vpcd_port) =
        crate::parse_host_port(args.vpcd.as_deref().unwrap_or(crate::DEFAULT_VPCD))?;
    let policy = match args.vpcd_peer {
        VpcdPeer::Pcscd => PeerPolicy::Pcscd,
        VpcdPeer::Any => PeerPolicy::Any,
    };
    if policy == PeerPolicy::Pcscd
        && let Err(error) = vscard_vpcd::peer::check_host(&vpcd_host, vpcd_port)
    {
        anyhow::bail!(
            "refusing --vpcd {vpcd_host}:{vpcd_port}: {error} (vpcd has no authentication, so the \
             relay serves only root's pcscd on this machine; --vpcd-peer any turns this check off)"
        );
    }
    let config = RelayConfig {
        vpcd_host,
        vpcd_port,
        peer: policy,
        ..RelayConfig::default()
    };
    let target = HostedTarget {
        hosts: args.host.clone(),
        host_key: key.host_key,
        card: card.clone(),
        open_timeout: std::time::Duration::from_secs(90),
    };
    let printer = HostedPrinter {
        card: card.clone(),
        vpcd_port,
    };
    println!(
        "relaying card {card} from {} to vpcd at {}:{vpcd_port}",
        args.host.join(", "),
        config.vpcd_host
    );
    let runtime = runtime()?;
    let _context = runtime.enter();
    let (mut terminate, mut interrupt) = (
        signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let result = runtime.block_on(async {
        let relay = relay_to_hosts(&target, &key.identity, &config, Some(&printer), stopped);
        tokio::pin!(relay);
        tokio::select! {
            result = &mut relay => return result,
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        // Stopped: the relay closes its link and takes the card out.
        let _ = stop.send(true);
        relay.await
    });
    result.with_context(|| format!("card {card}"))?;
    println!("stopped");
    Ok(())
}

/// `vscard approve --device DEVICE.key --host HOST:PORT [--refuse]`.
pub fn approve(args: &ApproveArgs) -> anyhow::Result<()> {
    let key = DeviceKey::read(&args.device)?;
    let runtime = runtime()?;
    let recorded = runtime.block_on(vscard_link::hosted::answer_approval(
        &args.host,
        &key.host_key,
        &key.identity,
        &key.card,
        vscard_host::serve::APPROVE_PREFIX,
        !args.refuse,
        args.wait,
        &|offer| println!("{offer}"),
    ));
    let recorded = recorded.with_context(|| format!("card {} at {}", key.card, args.host))?;
    println!("{recorded}");
    anyhow::ensure!(
        recorded.starts_with("approved") || recorded.starts_with("refused"),
        "nothing was decided"
    );
    Ok(())
}
