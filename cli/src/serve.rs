//! `vscard serve`: cards from a [`CardSource`] on the bridge until SIGINT
//! or SIGTERM.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use vscard_emulator::{Card, Exchange, files};
use vscard_issuance::cards::CardFileError;

use crate::source::{CardSource, ServedCard};
use vscard_vpcd::control::{CardLabel, CardOpener, ControlServer};
use vscard_vpcd::{
    Backoff, Bridge, BridgeConfig, BridgeError, BridgeHandle, Location, Mode, Observer, PeerError,
    PeerPolicy, trace_line,
};

/// Added to a peer check's refusal: why it refuses, and the way out.
const PEER_HINT: &str = "vpcd has no authentication, so vscard serves only root's pcscd; \
                         --vpcd-peer any turns this check off";

/// What `vscard serve` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The `CARD.json` arguments.
    pub paths: Vec<PathBuf>,
    /// Client or reverse mode.
    pub mode: Mode,
    /// Whom the cards accept as vpcd (client mode).
    pub peer: PeerPolicy,
    /// Print one line per APDU.
    pub trace: bool,
    /// Where to serve the control socket.
    pub control: Option<PathBuf>,
    /// Give up (exit 1) when a card has not reached vpcd by then.
    pub vpcd_timeout: Option<Duration>,
    /// Written once every card is present; removed on exit.
    pub ready_file: Option<PathBuf>,
    /// pcscd's reader configuration, which the mode's slots came from.
    pub reader_conf_dir: PathBuf,
    /// Touch a card this long after an operation starts waiting for one.
    pub auto_touch: Option<Duration>,
    /// How long an operation waits for a touch (default 15 s).
    pub touch_timeout: Option<Duration>,
}

/// How long `serve` waits for vpcd before saying what is missing (the
/// issue asks for the hint within 2 s; vpcd answers a live connect at
/// once, so 1.5 s without one means nothing listens).
const MISSING_HINT_AFTER: Duration = Duration::from_millis(1500);

/// How often `serve` looks at the cards' links while it runs.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How the wait in [`serve`] ended.
enum Outcome {
    /// SIGINT or SIGTERM.
    Signal,
    /// The peer check refused a vpcd.
    Refused(String),
    /// `--vpcd-timeout` passed with these cards never having reached vpcd.
    NoVpcd(Vec<usize>),
}

/// One image named twice (`serve x.json x.json`, or `x.json ./x.json`) is
/// bad input (exit code 2), said as such: opening it a second time would
/// otherwise fail on its own lock, as if another process served it.
fn refuse_repeated(paths: &[PathBuf]) -> Result<(), CardFileError> {
    // A path that cannot be resolved (missing, say) is compared as given;
    // opening it reports what is wrong with it.
    let resolved: Vec<PathBuf> = paths
        .iter()
        .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
        .collect();
    for (later, path) in resolved.iter().enumerate() {
        if let Some(first) = resolved[..later].iter().position(|p| p == path) {
            return Err(CardFileError::BadValue {
                option: "CARD.json",
                reason: format!(
                    "{} is given twice (cards {first} and {later}); one image can be in one reader only",
                    paths[later].display()
                ),
            });
        }
    }
    Ok(())
}

/// The cards to serve, each card's notices (a renewal due, say) printed
/// first.
fn cards_with_notices(served: Vec<ServedCard>) -> Vec<Card> {
    served
        .into_iter()
        .map(|card| {
            for notice in &card.notices {
                println!("{notice}");
            }
            card.card
        })
        .collect()
}

/// Runs `vscard serve` until SIGINT or SIGTERM; returns `Ok` after a clean
/// stop (every connection closed, every card powered off).
pub fn serve(options: ServeOptions, source: &dyn CardSource) -> anyhow::Result<()> {
    refuse_repeated(&options.paths)?;
    let served = source.open(&options.paths)?;
    anyhow::ensure!(!served.is_empty(), "no card to serve");
    let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
    let observer = Arc::new(Printer::for_cards(&served, refused_tx));
    let labels: Vec<CardLabel> = served.iter().map(|card| card.label.clone()).collect();
    let cards = cards_with_notices(served);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    // Handlers first, so a signal arriving while cards start is not lost.
    let (mut terminate, mut interrupt) = {
        let _context = runtime.enter();
        (
            signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
        )
    };
    let config = BridgeConfig {
        mode: options.mode.clone(),
        trace: options.trace,
        backoff: Backoff::default(),
        peer: options.peer,
        observer: Some(observer as Arc<dyn Observer>),
        auto_touch: options.auto_touch,
        touch_timeout: options.touch_timeout,
    };
    announce(&config.mode);
    if let Some(warning) = too_few_readers(&config.mode, cards.len(), &options.reader_conf_dir) {
        eprintln!("vscard: {warning}");
    }
    // The card threads own their runtimes; they are started and joined
    // outside this one.
    let bridge = start_bridge(cards, config)?;
    let control = match &options.control {
        Some(path) => {
            let _context = runtime.enter();
            Some(control_socket(path, &bridge, source.opener(), labels)?)
        }
        None => None,
    };
    let outcome = runtime.block_on(watch(
        &options,
        &bridge,
        Signals {
            terminate: &mut terminate,
            interrupt: &mut interrupt,
            refused: &mut refused,
        },
    ));
    drop(control);
    drop(runtime);
    drop(bridge.stop());
    // The cards are gone from their readers: a script must not read a
    // ready file that is no longer true.
    if let Some(path) = &options.ready_file {
        let _ = std::fs::remove_file(path);
    }
    stopped(outcome, &options)?;
    println!("stopped");
    Ok(())
}

/// What ends the serving loop's wait.
struct Signals<'a> {
    terminate: &'a mut tokio::signal::unix::Signal,
    interrupt: &'a mut tokio::signal::unix::Signal,
    refused: &'a mut tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Waits for a signal or a refused peer, meanwhile writing the ready file
/// once every card is in and saying (then, with `--vpcd-timeout`, giving
/// up) when vpcd never answers. A refused peer stops the whole server:
/// serving the other cards while one port is taken over would hide the
/// attack.
async fn watch(options: &ServeOptions, bridge: &BridgeHandle, signals: Signals<'_>) -> Outcome {
    let started = Instant::now();
    let mut hinted = false;
    let mut ready = false;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = signals.terminate.recv() => return Outcome::Signal,
            _ = signals.interrupt.recv() => return Outcome::Signal,
            refusal = signals.refused.recv() => {
                return refusal.map_or(Outcome::Signal, Outcome::Refused);
            }
            _ = tick.tick() => {}
        }
        if !ready
            && let Some(path) = &options.ready_file
            && all_present(bridge)
        {
            ready = true;
            // A failure to write is said, not fatal: the cards are
            // served all the same, and `vscard ctl wait` still works.
            match write_ready_file(path, bridge) {
                Ok(()) => println!("ready: {}", path.display()),
                Err(e) => eprintln!("vscard: cannot write {}: {e}", path.display()),
            }
        }
        let missing = never_reached(bridge);
        if missing.is_empty() {
            continue;
        }
        let waited = started.elapsed();
        if let Some(limit) = options.vpcd_timeout
            && waited >= limit
        {
            return Outcome::NoVpcd(missing);
        }
        if !hinted && waited >= MISSING_HINT_AFTER {
            hinted = true;
            let served = (0..bridge.card_count())
                .any(|index| bridge.status(index).is_ok_and(|s| s.sessions > 0));
            // Some cards are in: pcscd runs, and lacks readers for the others.
            let hint = if served {
                no_reader_hint(options, &missing, bridge.card_count())
            } else {
                Some(missing_hint(&options.mode))
            };
            if let Some(hint) = hint {
                eprintln!("vscard: {hint}");
            }
        }
    }
}

/// The outcome as `serve` reports it: a signal is a clean stop.
fn stopped(outcome: Outcome, options: &ServeOptions) -> anyhow::Result<()> {
    match outcome {
        Outcome::Signal => {}
        Outcome::Refused(refusal) => {
            anyhow::bail!("refusing vpcd: {refusal} ({PEER_HINT})")
        }
        Outcome::NoVpcd(cards) => {
            let limit = options.vpcd_timeout.unwrap_or_default().as_secs_f64();
            let cards = cards
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            anyhow::bail!(
                "no vpcd after {limit} s (--vpcd-timeout) for card {cards}: {}",
                missing_hint(&options.mode)
            )
        }
    }
    Ok(())
}

/// Starts the cards; a peer check's refusal of the address says why and
/// how to turn the check off.
fn start_bridge(cards: Vec<Card>, config: BridgeConfig) -> anyhow::Result<Arc<BridgeHandle>> {
    match Bridge::start(cards, config) {
        Ok(bridge) => Ok(Arc::new(bridge)),
        Err(error @ BridgeError::Peer { .. }) => {
            anyhow::bail!("refusing to connect: {error} ({PEER_HINT})")
        }
        Err(error) => Err(error.into()),
    }
}

/// The cards that are inserted but have never been served by vpcd (a
/// card pulled out with `vscard ctl` is not waited for).
fn never_reached(bridge: &BridgeHandle) -> Vec<usize> {
    (0..bridge.card_count())
        .filter(|&index| {
            bridge
                .status(index)
                .is_ok_and(|s| s.inserted && s.sessions == 0 && !s.is_serving())
        })
        .collect()
}

/// True when every card is in a reader pcscd reports present.
fn all_present(bridge: &BridgeHandle) -> bool {
    (0..bridge.card_count()).all(|index| bridge.status(index).is_ok_and(|s| s.is_present()))
}

/// Writes the ready file (one status line per card) atomically: to a
/// temporary name beside it, then renamed over it, so that a script that
/// polls for the file never reads it half written.
fn write_ready_file(path: &Path, bridge: &BridgeHandle) -> Result<(), files::WriteError> {
    let mut text = String::new();
    for index in 0..bridge.card_count() {
        if let Ok(status) = bridge.status(index) {
            text.push_str(&format!("card {index}: {status}\n"));
        }
    }
    // World-readable like any status file: it holds no secret.
    files::write_atomically(path, text.as_bytes(), 0o644)
}

/// The fix for too few readers.
fn setup_fix(cards: usize) -> String {
    format!(
        "run `sudo vscard pcscd-setup --readers {cards}`, then restart pcscd (Debian's vpcd has \
         2 readers per driver)"
    )
}

/// Said at once when pcscd's reader configuration has fewer vpcd readers
/// than there are cards: the cards past them would wait for readers that
/// do not exist.
fn too_few_readers(mode: &Mode, cards: usize, dir: &Path) -> Option<String> {
    let Mode::Slots { slots, .. } = mode else {
        return None;
    };
    (cards > slots.len()).then(|| {
        let waiting = if cards == slots.len() + 1 {
            format!("card {} waits", slots.len())
        } else {
            format!("cards {} to {} wait", slots.len(), cards - 1)
        };
        format!(
            "{cards} cards, but pcscd's reader configuration ({}) has {} vpcd readers: {waiting} \
             for a reader that does not exist; {}; still retrying",
            dir.display(),
            slots.len(),
            setup_fix(cards)
        )
    })
}

/// Some cards are served and these are not: their ports have no vpcd.
/// Cards past the configured readers were named at the start
/// ([`too_few_readers`]); cards whose readers are configured wait for a
/// pcscd that has loaded that configuration.
fn no_reader_hint(options: &ServeOptions, missing: &[usize], cards: usize) -> Option<String> {
    let mode = &options.mode;
    let ports: Vec<String> = missing
        .iter()
        .filter_map(|&index| vscard_vpcd::vpcd_port(mode, index))
        .map(|port| port.to_string())
        .collect();
    let which = match missing {
        [one] => format!("card {one} has"),
        more => format!(
            "cards {} have",
            more.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let configured = match mode {
        Mode::Slots { slots, .. } => slots.len(),
        _ => 0,
    };
    if missing.iter().all(|&index| index < configured) {
        return Some(format!(
            "{which} no reader: {} configures {}, but nothing answers as vpcd on port {}: \
             restart pcscd so that it loads its reader configuration (`sudo systemctl restart \
             pcscd`); still retrying",
            options.reader_conf_dir.display(),
            if missing.len() == 1 { "it" } else { "them" },
            ports.join(", ")
        ));
    }
    if configured > 0 {
        // Said at the start, with the fix.
        return None;
    }
    Some(format!(
        "{which} no reader: pcscd serves the other cards, but nothing answers as vpcd on port {}; \
         {}; still retrying",
        ports.join(", "),
        setup_fix(cards)
    ))
}

/// What is missing when vpcd does not come, and how to start it.
fn missing_hint(mode: &Mode) -> String {
    match mode {
        Mode::Slots { host, slots } => format!(
            "nothing answers as vpcd at {host}:{}: is pcscd running with the vsmartcard \
             vpcd driver? Start it with `sudo systemctl start pcscd` (or `sudo pcscd -f`); \
             still retrying",
            slots
                .first()
                .map_or(vscard_vpcd::VPCD_PORT, |slot| slot.port)
        ),
        Mode::Client { host, port } => format!(
            "nothing answers as vpcd at {host}:{port}: is pcscd running with the vsmartcard \
             vpcd driver? Start it with `sudo systemctl start pcscd` (or `sudo pcscd -f`); \
             still retrying"
        ),
        Mode::Reverse { listen } => format!(
            "vpcd has not connected to {listen}: is pcscd running with a vpcd reader \
             configured for this address? still waiting"
        ),
    }
}

/// Says where the cards are going.
fn announce(mode: &Mode) {
    match mode {
        Mode::Client { host, port } => {
            println!("connecting to vpcd at {host}:{port} (pcscd with the vsmartcard vpcd driver)")
        }
        Mode::Slots { host, slots } => {
            let ports: Vec<String> = slots.iter().map(|slot| slot.port.to_string()).collect();
            println!(
                "connecting to vpcd at {host}:{} (pcscd with the vsmartcard vpcd driver; {} readers configured, ports {})",
                slots
                    .first()
                    .map_or(vscard_vpcd::VPCD_PORT, |slot| slot.port),
                slots.len(),
                ports.join(", ")
            )
        }
        Mode::Reverse { listen } if listen.ip().is_loopback() => println!(
            "waiting for vpcd to connect to {listen} (loopback only: give --listen ADDR:PORT for another interface)"
        ),
        Mode::Reverse { listen } => println!(
            "waiting for vpcd to connect to {listen} (not loopback: whoever reaches it can be the reader, and vpcd has no authentication)"
        ),
    }
}

/// Binds the control socket at `path` (inside the tokio runtime, with
/// `opener` for swaps and the cards' `labels` for `ctl --card NAME`) and
/// says so.
fn control_socket(
    path: &Path,
    bridge: &Arc<BridgeHandle>,
    opener: Option<CardOpener>,
    labels: Vec<CardLabel>,
) -> anyhow::Result<ControlServer> {
    let bridge = Arc::clone(bridge);
    let server = match opener {
        Some(opener) => ControlServer::bind_with_opener(path, bridge, opener, labels),
        None => ControlServer::bind(path, bridge),
    }
    .with_context(|| format!("cannot serve the control socket {}", path.display()))?;
    println!(
        "control socket: {} (vscard ctl {} status)",
        path.display(),
        path.display()
    );
    Ok(server)
}

/// What the printer remembers about a card.
struct CardNote {
    name: String,
    hint: Option<String>,
    shown: bool,
}

/// Prints connections and (with `--trace`) exchanges to stdout; passes
/// the peer check's refusals on to [`serve`], which stops.
struct Printer {
    cards: Mutex<Vec<CardNote>>,
    several: bool,
    refused: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Printer {
    /// A printer for these cards, none shown yet.
    fn for_cards(
        served: &[ServedCard],
        refused: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Printer {
        Printer {
            cards: served
                .iter()
                .map(|s| CardNote {
                    name: s.name.clone(),
                    hint: s.hint.clone(),
                    shown: false,
                })
                .collect::<Vec<_>>()
                .into(),
            several: served.len() > 1,
            refused,
        }
    }

    fn prefix(&self, card: usize) -> String {
        if self.several {
            format!("[card {card}] ")
        } else {
            String::new()
        }
    }
}

impl Observer for Printer {
    fn serving(&self, card: usize, location: &Location) {
        let mut cards = self.cards.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = std::io::stdout().lock();
        if let Some(note) = cards.get_mut(card) {
            if note.shown {
                let _ = writeln!(out, "{} is back in {location}", note.name);
            } else {
                note.shown = true;
                let _ = writeln!(out, "{} is in {location}", note.name);
                if let Some(hint) = &note.hint {
                    let _ = writeln!(out, "try: {hint}");
                }
            }
        }
    }

    fn disconnected(&self, card: usize, reason: &str) {
        let cards = self.cards.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(note) = cards.get(card) {
            // Card threads call this: a closed stdout (`| head`) must not
            // panic them, so write errors are ignored.
            let _ = writeln!(std::io::stdout(), "{} left the reader: {reason}", note.name);
        }
    }

    fn refused(&self, card: usize, error: &PeerError) {
        let message = if self.several {
            format!("card {card}: {error}")
        } else {
            error.to_string()
        };
        // Gone only when serve is already stopping.
        let _ = self.refused.send(message);
    }

    fn exchange(&self, card: usize, exchange: &Exchange) {
        // When, and how long the card took: a trace is read to find a slow
        // or a stuck command, and to line it up with the host's own log.
        let line = format!(
            "{} {}{} in {} µs",
            utc_timestamp(time::OffsetDateTime::now_utc()),
            self.prefix(card),
            trace_line(exchange),
            exchange.duration.as_micros()
        );
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

/// RFC 3339 UTC with milliseconds (`2026-12-02T17:51:21.750Z`), from the
/// components: the `time` crate's formatting feature is not built here.
pub(crate) fn utc_timestamp(now: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_timestamps_are_rfc3339_utc_with_milliseconds() {
        let at =
            time::OffsetDateTime::from_unix_timestamp_nanos(1_796_233_881_750_307_000).unwrap();
        assert_eq!(utc_timestamp(at), "2026-12-02T17:51:21.750Z");
    }
}
