//! `vscard`: issue, inspect and renew virtual PIV cards, serve them to
//! pcscd, and control them.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tracing_subscriber::EnvFilter;
use vscard_issuance::cards::{CardFileError, EXIT_BAD_INPUT, EXIT_FAILURE};
use vscard_vpcd::control::{self, ControlCommand};
use vscard_vpcd::{Mode, PeerPolicy, reader_conf};

mod args;
mod card_commands;
mod card_selector;
mod custody;
mod issue_request;
mod man;
mod ocsp_server;
mod pcscd_setup;
mod relay;
mod renewal_window;
mod revocation_commands;
mod serve;
mod source;

use serve::{ServeOptions, serve};
use source::PivCardSource;

use args::{Action, Cli, Command, CtlArgs, PkiCommand, RelayCommand, ServeArgs, VpcdPeer};
use card_selector::{CardSelector, ServedLabel};

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in a CI log or a
        // file they are noise (tracing-subscriber colours unless told).
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let state_dir = cli.state_dir;
    let result = match cli.command {
        Command::Serve(args) => run_serve(args, state_dir),
        Command::Ctl(args) => run_ctl(args),
        Command::Relay(args) => run_relay(args, state_dir),
        Command::Issue(args) => with_state_dir(state_dir, |dir| card_commands::issue(*args, dir)),
        Command::Inspect(args) => card_commands::inspect(args).map_err(anyhow::Error::from),
        Command::ExportCert(args) => card_commands::export_cert(args).map_err(anyhow::Error::from),
        Command::ExportCa(args) => {
            with_state_dir(state_dir, |dir| card_commands::export_ca(args, dir))
        }
        Command::Renew(args) => with_state_dir(state_dir, |dir| card_commands::renew(args, dir)),
        Command::Pki(PkiCommand::Init(args)) => {
            with_state_dir(state_dir, |dir| card_commands::pki_init(args, dir))
        }
        Command::Pki(PkiCommand::Import(args)) => {
            with_state_dir(state_dir, |dir| card_commands::pki_import(args, dir))
        }
        Command::PcscdSetup(args) => pcscd_setup::run(&args),
        Command::Man(args) => man::write_pages(&args),
        Command::Pki(PkiCommand::Config(args)) => {
            with_state_dir(state_dir, |dir| revocation_commands::pki_config(args, dir))
        }
        Command::Revoke(args) => {
            with_state_dir(state_dir, |dir| revocation_commands::revoke(args, dir))
        }
        Command::Crl(args) => with_state_dir(state_dir, |dir| revocation_commands::crl(args, dir)),
        Command::Ocsp(args) => {
            with_state_dir(state_dir, |dir| revocation_commands::ocsp(args, dir))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vscard: {}", one_line(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The error and its causes on one line, joined by ": ", each cause left
/// out when the message before it already says it (typed errors embed
/// their source in their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Help and version go to stdout with success; a bad command line is one
/// line on stderr and exit code 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.use_stderr() {
            ExitCode::from(EXIT_BAD_INPUT)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's message up to its usage lines, on one line.
    let rendered = error.render().to_string();
    let message = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("vscard: {message} (see vscard --help)");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// 2 for bad input (found anywhere in the error's chain), else 1.
fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<CardFileError>())
        .map_or(EXIT_FAILURE, CardFileError::exit_code)
}

fn with_state_dir(
    flag: Option<PathBuf>,
    run: impl FnOnce(&std::path::Path) -> Result<(), CardFileError>,
) -> anyhow::Result<()> {
    let dir = card_commands::state_dir(flag)?;
    Ok(run(&dir)?)
}

fn run_relay(mut args: args::RelayArgs, state_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = card_commands::state_dir(state_dir)?;
    match args.command.take() {
        None => relay::run(args, &dir),
        Some(RelayCommand::Pair(pair)) => relay::pair(pair, &dir),
        Some(RelayCommand::List) => relay::list(&dir),
        Some(RelayCommand::Forget(forget)) => relay::forget(&forget, &dir),
    }
}

fn run_serve(args: ServeArgs, state_dir: Option<PathBuf>) -> anyhow::Result<()> {
    if args.link.is_some() || args.link_file.is_some() {
        let target = relay::link_target(args.link, args.link_file.as_ref())?;
        let dir = card_commands::state_dir(state_dir.clone())?;
        let source = PivCardSource::new(
            state_dir,
            args.pkcs11_pin_file.clone(),
            &args.pkcs11_modules,
            card_commands::encrypt_key(args.encrypt_key_file.as_deref())?,
        )?;
        return relay::serve_link(&args.cards, &target, &dir, &source);
    }
    let mode = match &args.listen {
        Some(listen) => Mode::Reverse {
            listen: parse_listen(listen)?,
        },
        None => client_mode(args.vpcd.as_deref(), &args.reader_conf_dir)?,
    };
    let source = PivCardSource::new(
        state_dir,
        args.pkcs11_pin_file.clone(),
        &args.pkcs11_modules,
        card_commands::encrypt_key(args.encrypt_key_file.as_deref())?,
    )?;
    let options = ServeOptions {
        paths: args.cards,
        mode,
        peer: match args.vpcd_peer {
            VpcdPeer::Pcscd => PeerPolicy::Pcscd,
            VpcdPeer::Any => PeerPolicy::Any,
        },
        trace: args.trace,
        control: args.control,
        vpcd_timeout: args.vpcd_timeout,
        ready_file: args.ready_file,
        reader_conf_dir: args.reader_conf_dir,
        auto_touch: args.auto_touch,
        touch_timeout: args.touch_timeout,
    };
    serve(options, &source)
}

fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.timeout;
    if args.image.is_some() && !matches!(args.action, Action::Insert) {
        return Err(CardFileError::BadValue {
            option: "CARD.json",
            reason: "only `insert --card N CARD.json` takes a card image".to_owned(),
        }
        .into());
    }
    let card = resolve_card(&args, deadline)?;
    let command = match (args.action, &args.image, card) {
        // The server runs in another directory: send an absolute path.
        (Action::Insert, Some(image), Some(card)) => {
            let image = std::path::absolute(image).map_err(|source| CardFileError::Io {
                path: image.clone(),
                source,
            })?;
            ControlCommand::Swap(card, image)
        }
        (Action::Remove, _, _) => ControlCommand::Remove(card),
        (Action::Insert, _, _) => ControlCommand::Insert(card),
        (Action::Status, _, _) if args.json => ControlCommand::StatusJson(card),
        (Action::Status, _, _) => ControlCommand::Status(card),
        (Action::Wait, _, _) => return ctl_wait(&args, card, deadline),
        (Action::Touch, _, _) => ControlCommand::Touch(card),
    };
    let answer = ctl_request(&args, &command, deadline)?;
    refuse_no_such_card(&answer)?;
    print!("{answer}");
    anyhow::ensure!(!answer.contains("error:"), "the command failed");
    Ok(())
}

/// The index `--card` names: as given, or the one card whose file or
/// user ID it is (asked of the running serve).
fn resolve_card(args: &CtlArgs, deadline: Instant) -> anyhow::Result<Option<usize>> {
    let name = match &args.card {
        None => return Ok(None),
        Some(CardSelector::Index(index)) => return Ok(Some(*index)),
        Some(CardSelector::Name(name)) => name,
    };
    let answer = ctl_request(args, &ControlCommand::Cards, deadline)?;
    let cards = ServedLabel::parse_all(&answer)
        .map_err(|e| anyhow::anyhow!("bad answer from {}: {e}", args.path.display()))?;
    Ok(Some(card_selector::resolve(name, &cards)?))
}

/// `--card N` beyond the bridge's cards is bad input (exit code 2, as the
/// README's exit codes say), not a failed command: the bridge answers
/// `error: no card N (the bridge has M)` (vscard-vpcd's `NoSuchCard`).
fn refuse_no_such_card(answer: &str) -> Result<(), CardFileError> {
    match answer
        .lines()
        .find_map(|line| line.strip_prefix("error: no card "))
    {
        Some(rest) => Err(CardFileError::BadValue {
            option: "--card",
            reason: format!("no card {rest}"),
        }),
        None => Ok(()),
    }
}

/// How often `ctl` tries the socket again, and looks at the cards again
/// during `wait` (the bridge's own backoff is capped at 250 ms).
const CTL_POLL: Duration = Duration::from_millis(50);

/// Sends `command`, waiting until `deadline` for the socket to take it:
/// `serve --control PATH & vscard ctl PATH remove` starts ctl before serve
/// has bound the socket (or while a stale one from a dead serve is still
/// there).
fn ctl_request(
    args: &CtlArgs,
    command: &ControlCommand,
    deadline: Instant,
) -> anyhow::Result<String> {
    loop {
        match control::request(&args.path, command) {
            Ok(answer) => return Ok(answer),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                std::thread::sleep(CTL_POLL);
            }
            Err(e) => anyhow::bail!(
                "cannot reach {} (is `vscard serve --control {}` running?): {e}",
                args.path.display(),
                args.path.display()
            ),
        }
    }
}

/// `vscard ctl PATH wait`: polls the cards' JSON status until each asked
/// for is present, or names the first that is not at the deadline.
fn ctl_wait(args: &CtlArgs, card: Option<usize>, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let answer = ctl_request(args, &ControlCommand::StatusJson(card), deadline)?;
        refuse_no_such_card(&answer)?;
        if answer.starts_with("error:") {
            anyhow::bail!("{}", answer.trim_end());
        }
        let cards: Vec<serde_json::Value> = serde_json::from_str(&answer)
            .map_err(|e| anyhow::anyhow!("bad answer from {}: {e}", args.path.display()))?;
        let absent = cards
            .iter()
            .find(|card| card["present"] != serde_json::Value::Bool(true));
        let Some(absent) = absent else {
            for card in &cards {
                println!("card {} is present", card["card"]);
            }
            return Ok(());
        };
        if Instant::now() >= deadline {
            anyhow::bail!(
                "card {} is not in a reader pcscd reports present after {} s (link: {})",
                absent["card"],
                args.timeout.as_secs_f64(),
                absent["link"].as_str().unwrap_or("unknown")
            );
        }
        std::thread::sleep(CTL_POLL);
    }
}

/// A bad `--vpcd` or `--listen` value (exit code 2).
fn bad_address(option: &'static str, reason: String) -> CardFileError {
    CardFileError::BadValue { option, reason }
}

/// `HOST:PORT` (the host may be a name; `[v6]:port` for IPv6).
#[cfg(test)]
fn parse_vpcd(text: &str) -> Result<Mode, CardFileError> {
    let (host, port) = parse_host_port(text)?;
    Ok(Mode::Client { host, port })
}

/// `HOST:PORT` (the host may be a name; `[v6]:port` for IPv6).
fn parse_host_port(text: &str) -> Result<(String, u16), CardFileError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| bad_address("--vpcd", format!("wants HOST:PORT, got {text:?}")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad_address("--vpcd", format!("bad port in {text:?}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad_address("--vpcd", format!("no host in {text:?}")));
    }
    Ok((host.to_owned(), port))
}

/// Client mode: the vpcd readers of pcscd's reader configuration in
/// `dir` (from `--vpcd`'s port on, when given), or `--vpcd`'s port plus
/// the card's index when the configuration has no vpcd reader there (or
/// vpcd is on another machine, whose configuration is not this one).
fn client_mode(vpcd: Option<&str>, dir: &std::path::Path) -> Result<Mode, CardFileError> {
    let (host, port) = parse_host_port(vpcd.unwrap_or(DEFAULT_VPCD))?;
    let local = matches!(host.as_str(), "127.0.0.1" | "::1" | "localhost");
    let readers = if local {
        reader_conf::read_dir(dir).unwrap_or_else(|e| {
            // Still served, at PORT + i: the configuration only names the
            // readers and their ports.
            eprintln!("vscard: {e}; cards go to port {port} + card number");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let slots = reader_conf::listening_slots(&readers);
    let from = match (vpcd, slots.first()) {
        (None, Some(first)) => first.port,
        _ => port,
    };
    Ok(match reader_conf::slots_from(&slots, from) {
        Some(slots) => Mode::Slots { host, slots },
        None => Mode::Client { host, port },
    })
}

/// `--vpcd` when not given.
const DEFAULT_VPCD: &str = "127.0.0.1:35963";

/// `ADDR:PORT`, or `PORT` alone for loopback (never all interfaces unless
/// asked).
fn parse_listen(text: &str) -> Result<SocketAddr, CardFileError> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse()
        .map_err(|_| bad_address("--listen", format!("wants ADDR:PORT or PORT, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vscard_vpcd::VPCD_PORT;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_vpcd("127.0.0.1:35963").unwrap(),
            Mode::Client {
                host: "127.0.0.1".into(),
                port: VPCD_PORT
            }
        );
        assert_eq!(
            parse_vpcd("[::1]:1").unwrap(),
            Mode::Client {
                host: "::1".into(),
                port: 1
            }
        );
        assert!(parse_vpcd("nohost").is_err());
        assert_eq!(parse_listen("4000").unwrap().to_string(), "127.0.0.1:4000");
        assert_eq!(
            parse_listen("0.0.0.0:4000").unwrap().to_string(),
            "0.0.0.0:4000"
        );
        assert!(parse_listen("x:1").is_err());
    }

    #[test]
    fn cards_follow_the_reader_configuration_when_vpcd_is_local() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |name: &str, port: u16, library: &str| {
            format!(
                "FRIENDLYNAME \"{name}\"\nDEVICENAME /dev/null:{port:#06X}\nLIBPATH /x/{library}\n"
            )
        };
        std::fs::write(
            dir.path().join("vpcd"),
            entry("Virtual PCD", 35963, "libifdvpcd.so"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("vscard-vpcd-1"),
            entry("Virtual PCD 1", 35965, "libifdvpcd-vscard-1.so"),
        )
        .unwrap();
        let ports = |mode: Mode| match mode {
            Mode::Slots { slots, .. } => slots.iter().map(|s| s.port).collect::<Vec<_>>(),
            other => panic!("not the configured slots: {other:?}"),
        };
        assert_eq!(
            ports(client_mode(None, dir.path()).unwrap()),
            [35963, 35964, 35965, 35966]
        );
        assert_eq!(
            ports(client_mode(Some("localhost:35965"), dir.path()).unwrap()),
            [35965, 35966]
        );
        // A port the configuration does not have, another host, or no
        // configuration: PORT + i, readers not named.
        for (vpcd, folder) in [
            (Some("127.0.0.1:4000"), dir.path()),
            (Some("192.0.2.7:35963"), dir.path()),
            (None, std::path::Path::new("/nonexistent")),
        ] {
            let (host, port) = parse_host_port(vpcd.unwrap_or(DEFAULT_VPCD)).unwrap();
            assert_eq!(
                client_mode(vpcd, folder).unwrap(),
                Mode::Client { host, port },
                "{vpcd:?}"
            );
        }
    }
}
