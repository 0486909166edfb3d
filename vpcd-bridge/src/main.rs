//! `vscard`: serve virtual cards to pcscd, and control them.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use vscard_vpcd::control::{self, ControlCommand};
use vscard_vpcd::{CardSource, EchoFixtureSource, Mode, PivCardSource, ServeOptions, serve};

/// A virtual PIV smartcard for pcscd and every PC/SC client.
#[derive(Debug, Parser)]
#[command(name = "vscard", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put cards into pcscd's virtual readers (vsmartcard vpcd) until
    /// SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Insert, remove or show the cards of a running `vscard serve`.
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Card images to serve, one reader slot each; none: the default
    /// demo card.
    #[arg(value_name = "CARD.json")]
    cards: Vec<PathBuf>,
    /// Connect to vpcd at HOST:PORT (card i to PORT + i).
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:35963",
        conflicts_with = "listen"
    )]
    vpcd: String,
    /// Reverse mode: wait for vpcd to connect to ADDR:PORT, or to PORT on
    /// 127.0.0.1 (card i on PORT + i).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Print one line per APDU (command name and status word; never PINs
    /// or keys).
    #[arg(long)]
    trace: bool,
    /// Serve a control socket at PATH (`vscard ctl PATH ...`).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Test fixture for the bridge's own tests: serve N echo cards instead
    /// of PIV cards.
    #[arg(long, value_name = "N", hide = true)]
    fixture_echo_cards: Option<usize>,
}

#[derive(Debug, Args)]
struct CtlArgs {
    /// The control socket of a running `vscard serve --control PATH`.
    path: PathBuf,
    /// What to do.
    action: Action,
    /// Which card (default: all).
    #[arg(long)]
    card: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Action {
    /// Pull the card out of the reader.
    Remove,
    /// Put the card back.
    Insert,
    /// Show each card's state.
    Status,
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Ctl(args) => run_ctl(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vscard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let mode = match &args.listen {
        Some(listen) => Mode::Reverse {
            listen: parse_listen(listen)?,
        },
        None => parse_vpcd(&args.vpcd)?,
    };
    let source: Box<dyn CardSource> = match args.fixture_echo_cards {
        Some(count) => Box::new(EchoFixtureSource { count }),
        None => Box::new(PivCardSource),
    };
    let options = ServeOptions {
        paths: args.cards,
        mode,
        trace: args.trace,
        control: args.control,
    };
    serve(options, source.as_ref())
}

fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let command = match args.action {
        Action::Remove => ControlCommand::Remove(args.card),
        Action::Insert => ControlCommand::Insert(args.card),
        Action::Status => ControlCommand::Status,
    };
    let answer = control::request(&args.path, command)
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", args.path.display()))?;
    print!("{answer}");
    anyhow::ensure!(!answer.contains("error:"), "the command failed");
    Ok(())
}

/// `HOST:PORT` (the host may be a name; `[v6]:port` for IPv6).
fn parse_vpcd(text: &str) -> anyhow::Result<Mode> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--vpcd wants HOST:PORT, got {text:?}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("--vpcd: bad port in {text:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "--vpcd: no host in {text:?}");
    Ok(Mode::Client {
        host: host.to_owned(),
        port,
    })
}

/// `ADDR:PORT`, or `PORT` alone for loopback (never all interfaces unless
/// asked).
fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse()
        .map_err(|_| anyhow::anyhow!("--listen wants ADDR:PORT or PORT, got {text:?}"))
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
}
