//! `vscard relay` (the computer's end of the link), `relay pair | list |
//! forget`, and `vscard serve --link` (the card's end).

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use vscard_emulator::files;
use vscard_issuance::cards::CardFileError;
use vscard_link::{
    CardLinkConfig, CardLinkHandle, CardObserver, LinkState, PairingUri, Peer, PinnedRelay,
    RelayConfig, RelayInfo, RelayObserver, Target, fingerprint,
};
use vscard_vpcd::PeerPolicy;
use zeroize::Zeroizing;

use crate::args::{RelayArgs, RelayForgetArgs, RelayPairArgs, VpcdPeer};
use crate::source::CardSource;

/// `--listen` when not given.
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], vscard_link::DEFAULT_PORT))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Prints what the relay does.
struct RelayPrinter {
    vpcd_port: u16,
}

impl RelayObserver for RelayPrinter {
    fn connected(&self, peer: &Peer, slot: usize) {
        let how = if peer.paired_now {
            "paired and connected"
        } else {
            "connected"
        };
        let _ = writeln!(
            std::io::stdout(),
            "card {} {how}: in the vpcd reader on port {}",
            peer.name,
            usize::from(self.vpcd_port) + slot
        );
    }

    fn disconnected(&self, name: &str, slot: usize, reason: &str) {
        let _ = writeln!(
            std::io::stdout(),
            "card {name} left the vpcd reader on port {}: {reason}",
            usize::from(self.vpcd_port) + slot
        );
    }

    fn refused(&self, from: SocketAddr, reason: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "vscard: refused a link from {from}: {reason}"
        );
    }
}

/// `vscard relay --listen ADDR:PORT [--vpcd HOST:PORT]`: until SIGINT or
/// SIGTERM.
pub fn run(args: RelayArgs, state_dir: &Path) -> anyhow::Result<()> {
    let listen = match &args.listen {
        Some(text) => crate::parse_listen(text)?,
        None => default_listen(),
    };
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
    let state = LinkState::new(state_dir);
    let identity = state.identity()?;
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
    state.set_relay_info(&RelayInfo {
        listen: listen.to_string(),
    })?;
    let config = RelayConfig {
        vpcd_host: vpcd_host.clone(),
        vpcd_port,
        peer: policy,
        observer: Some(Arc::new(RelayPrinter { vpcd_port }) as Arc<dyn RelayObserver>),
        ..RelayConfig::default()
    };
    let scope = if listen.ip().is_loopback() {
        "loopback only: give --listen ADDR:PORT for the phone to reach it"
    } else {
        "reachable from the network; only paired cards get in"
    };
    println!(
        "relay listening on {listen} ({scope}); key {}; cards go to vpcd at {vpcd_host}:{vpcd_port}",
        &fingerprint(identity.public())[..16]
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = runtime.spawn(vscard_link::run_relay(
        listener,
        identity,
        state.clone(),
        config,
        stopped,
    ));
    runtime.block_on(async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    });
    let _ = stop.send(true);
    let result = runtime.block_on(relay);
    println!("stopped");
    match result {
        Ok(result) => Ok(result?),
        Err(e) => anyhow::bail!("the relay failed: {e}"),
    }
}

/// This machine's name for the pairing URI (`relay` when unknown).
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .map_or_else(
            || "relay".to_owned(),
            |name| vscard_link::state::clean_name(&name),
        )
}

/// `vscard relay pair`.
pub fn pair(args: RelayPairArgs, state_dir: &Path) -> anyhow::Result<()> {
    let state = LinkState::new(state_dir);
    let identity = state.identity()?;
    let address = match args.address {
        Some(address) => address,
        None => {
            let listen = state
                .relay_info()?
                .map_or_else(|| default_listen().to_string(), |info| info.listen);
            if let Ok(addr) = listen.parse::<SocketAddr>()
                && addr.ip().is_unspecified()
            {
                return Err(CardFileError::BadValue {
                    option: "--address",
                    reason: format!(
                        "the relay listens on {addr} (every interface): give the address the card reaches it at"
                    ),
                }
                .into());
            }
            listen
        }
    };
    let (id, secret) = state.add_pairing(args.expires)?;
    let uri = PairingUri {
        address,
        name: host_name(),
        fingerprint: fingerprint(identity.public()),
        id,
        secret,
    };
    let text = uri.to_uri();
    if let Some(out) = &args.out {
        let mut line = Zeroizing::new(text.as_bytes().to_vec());
        line.push(b'\n');
        files::write_private_atomically(out, &line)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    let code = qrcode::QrCode::new(text.as_bytes()).context("cannot make the QR code")?;
    let picture = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{picture}")?;
    writeln!(out, "{}", text.as_str())?;
    writeln!(
        out,
        "one-time pairing for relay {} ({}), key {}; works once, for {} s",
        uri.name,
        uri.address,
        &uri.fingerprint[..16],
        args.expires.as_secs()
    )?;
    if let Some(path) = &args.out {
        writeln!(
            out,
            "written to {} (mode 0600): vscard serve CARD.json --link-file {}",
            path.display(),
            path.display()
        )?;
    }
    Ok(())
}

/// `vscard relay list`.
pub fn list(state_dir: &Path) -> anyhow::Result<()> {
    let cards = LinkState::new(state_dir).cards()?;
    if cards.is_empty() {
        println!("no paired cards (pair one with `vscard relay pair`)");
    }
    for card in cards {
        let key: String = card.key.chars().take(16).collect();
        let paired = i64::try_from(card.paired)
            .ok()
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .map_or_else(|| card.paired.to_string(), crate::serve::utc_timestamp);
        println!("{}\tkey {key}\tpaired {paired}", card.name);
    }
    Ok(())
}

/// `vscard relay forget NAME`.
pub fn forget(args: &RelayForgetArgs, state_dir: &Path) -> anyhow::Result<()> {
    if !LinkState::new(state_dir).forget_card(&args.name)? {
        return Err(CardFileError::BadValue {
            option: "NAME",
            reason: format!(
                "no paired card is named {:?} (see vscard relay list)",
                args.name
            ),
        }
        .into());
    }
    println!("forgot {}: its key is refused from now on", args.name);
    Ok(())
}

/// The `--link` target: the argument, or the first line of `--link-file`
/// (`-`: standard input).
pub fn link_target(
    link: Option<String>,
    link_file: Option<&PathBuf>,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(text) = link {
        return Ok(Zeroizing::new(text));
    }
    let Some(path) = link_file else {
        anyhow::bail!("no --link target");
    };
    let mut line = Zeroizing::new(String::new());
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the link target from standard input")?;
    } else {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| CardFileError::Io {
                    path: path.clone(),
                    source,
                })?,
            );
        line.push_str(text.lines().next().unwrap_or_default());
    }
    let trimmed = Zeroizing::new(line.trim().to_owned());
    anyhow::ensure!(
        !trimmed.is_empty(),
        "{} holds no link target",
        path.display()
    );
    Ok(trimmed)
}

/// Prints what the card's link does.
struct CardPrinter {
    name: String,
    hint: Option<String>,
}

impl CardObserver for CardPrinter {
    fn paired(&self, relay: &PinnedRelay) {
        let _ = writeln!(
            std::io::stdout(),
            "paired with relay {} ({}); from now on: --link {}",
            relay.name,
            relay.address,
            relay.name
        );
    }

    fn connected(&self, relay: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} is linked to the relay at {relay}", self.name);
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "try on the relay's computer: {hint}");
        }
    }

    fn disconnected(&self, reason: &str) {
        let _ = writeln!(
            std::io::stdout(),
            "{} left the reader: {reason}; reconnecting",
            self.name
        );
    }
}

/// `vscard serve CARD.json --link TARGET`: until SIGINT or SIGTERM, or a
/// refusal by the relay (exit 1).
pub fn serve_link(
    paths: &[PathBuf],
    target: &str,
    state_dir: &Path,
    source: &dyn CardSource,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        paths.len() <= 1,
        CardFileError::BadValue {
            option: "--link",
            reason: "serves one card; start one `serve --link` per card".to_owned(),
        }
    );
    let state = LinkState::new(state_dir);
    let target = Target::resolve(target, &state).map_err(|error| match error {
        // A malformed URI is bad input (exit code 2).
        vscard_link::LinkError::BadUri(_) => anyhow::Error::from(CardFileError::BadValue {
            option: "--link",
            reason: error.to_string(),
        }),
        other => other.into(),
    })?;
    let mut served = source.open(paths)?;
    let served = served.pop().context("no card to serve")?;
    for notice in &served.notices {
        println!("{notice}");
    }
    let label = paths
        .first()
        .and_then(|p| p.file_stem())
        .map_or_else(|| "demo".to_owned(), |s| s.to_string_lossy().into_owned());
    let address = target.address().to_owned();
    let config = CardLinkConfig {
        label,
        observer: Some(Arc::new(CardPrinter {
            name: served.name.clone(),
            hint: served.hint.clone(),
        }) as Arc<dyn CardObserver>),
        ..CardLinkConfig::default()
    };
    println!("serving {} over the link to {address}", served.name);
    let handle = CardLinkHandle::spawn(served.card, target, state, config)?;
    let runtime = runtime()?;
    let _context = runtime.enter();
    let (mut terminate, mut interrupt) = (
        signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
    );
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = tick.tick() => if handle.is_finished() { break },
            }
        }
    });
    let (_card, result) = handle.stop();
    result.with_context(|| format!("the link to {address}"))?;
    println!("stopped");
    Ok(())
}
