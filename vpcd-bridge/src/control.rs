//! The control socket: insert, remove and status of a running `vscard
//! serve`, from another process (`vscard ctl PATH remove`).
//!
//! Protocol: the client connects to the Unix socket, sends one line
//! (`status [CARD]`, `status-json [CARD]`, `insert [CARD]`, `remove
//! [CARD]`; without CARD, every card; `insert CARD PATH`: swap card CARD
//! for the image at PATH, an absolute path, the rest of the line;
//! `cards`: each card's [`CardLabel`], the file and user ID `vscard ctl
//! --card` may name it by; `touch [CARD]`: press the card's touch button,
//! [`crate::touch`]), and reads the answer until the server closes:
//! one line per card (`status-json`, `cards`: one JSON array), or a line
//! starting with `error:`.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use vscard_emulator::Card;

use crate::bridge::BridgeHandle;
pub use crate::labels::CardLabel;
use crate::labels::CardLabels;

/// Log target of the control socket.
const TARGET: &str = "vscard::control";

/// The longest command line accepted (a path included: Linux's
/// `PATH_MAX` is 4096).
const MAX_LINE: u64 = 4200;

/// Opens the card image at a path for [`ControlCommand::Swap`], with the
/// card's new label; the error is shown to the client as is.
pub type CardOpener = Arc<dyn Fn(&Path) -> Result<(Card, CardLabel), String> + Send + Sync>;

/// One control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Report a card's state (all when `None`).
    Status(Option<usize>),
    /// As [`ControlCommand::Status`], as one JSON array of
    /// [`CardStatus::to_json`](crate::CardStatus::to_json) objects.
    StatusJson(Option<usize>),
    /// Insert a card (all when `None`).
    Insert(Option<usize>),
    /// Remove a card (all when `None`).
    Remove(Option<usize>),
    /// Swap a card for the image at an absolute path (`insert CARD PATH`).
    Swap(usize, PathBuf),
    /// Every card's [`CardLabel`], as one JSON array (`cards`).
    Cards,
    /// Touch a card (all when `None`): completes the command waiting for a
    /// touch, or keeps the touch for the next one ([`crate::touch`]).
    Touch(Option<usize>),
}

/// A line that is not a control command.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "unknown control command {0:?} (expected status [CARD], status-json [CARD], insert [CARD], insert CARD /PATH, remove [CARD], touch [CARD] or cards)"
)]
pub struct BadCommand(pub String);

impl FromStr for ControlCommand {
    type Err = BadCommand;

    fn from_str(line: &str) -> Result<ControlCommand, BadCommand> {
        let bad = || BadCommand(line.trim().to_owned());
        // `insert CARD PATH`: the path is the rest of the line, spaces
        // and all (only the line ending is not part of it).
        let line_end = line.trim_end_matches(['\n', '\r']);
        if let Some((card, path)) = line_end
            .strip_prefix("insert ")
            .and_then(|rest| rest.split_once(' '))
        {
            let card = card.parse::<usize>().map_err(|_| bad())?;
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(bad());
            }
            return Ok(ControlCommand::Swap(card, path));
        }
        let mut words = line.split_whitespace();
        let verb = words.next().ok_or_else(bad)?;
        let card = match words.next() {
            None => None,
            Some(word) => Some(word.parse::<usize>().map_err(|_| bad())?),
        };
        if words.next().is_some() {
            return Err(bad());
        }
        match (verb, card) {
            ("cards", None) => Ok(ControlCommand::Cards),
            ("status", card) => Ok(ControlCommand::Status(card)),
            ("status-json", card) => Ok(ControlCommand::StatusJson(card)),
            ("insert", card) => Ok(ControlCommand::Insert(card)),
            ("remove", card) => Ok(ControlCommand::Remove(card)),
            ("touch", card) => Ok(ControlCommand::Touch(card)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, card) = match self {
            ControlCommand::Status(card) => ("status", *card),
            ControlCommand::StatusJson(card) => ("status-json", *card),
            ControlCommand::Insert(card) => ("insert", *card),
            ControlCommand::Remove(card) => ("remove", *card),
            ControlCommand::Touch(card) => ("touch", *card),
            ControlCommand::Swap(card, path) => {
                return write!(f, "insert {card} {}", path.display());
            }
            ControlCommand::Cards => return f.write_str("cards"),
        };
        match card {
            Some(card) => write!(f, "{verb} {card}"),
            None => f.write_str(verb),
        }
    }
}

/// A control socket being served; the socket file is removed on drop.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket left by a dead process, but
    /// never a live one or another kind of file) and serves it on the
    /// current tokio runtime.
    /// `insert CARD PATH` is refused: the bridge alone cannot open card
    /// images ([`ControlServer::bind_with_opener`] can).
    /// `cards` answers no file and no user ID.
    pub fn bind(path: &Path, bridge: Arc<BridgeHandle>) -> io::Result<ControlServer> {
        ControlServer::serve(path, bridge, None, Vec::new())
    }

    /// As [`ControlServer::bind`], and `insert CARD PATH` swaps card CARD
    /// for the card `opener` opens at PATH; the old card is dropped
    /// (its image released) before the answer. `labels` names the cards
    /// (by index) for `cards`; a swap replaces the card's label with the
    /// one `opener` gives.
    pub fn bind_with_opener(
        path: &Path,
        bridge: Arc<BridgeHandle>,
        opener: CardOpener,
        labels: Vec<CardLabel>,
    ) -> io::Result<ControlServer> {
        ControlServer::serve(path, bridge, Some(opener), labels)
    }

    fn serve(
        path: &Path,
        bridge: Arc<BridgeHandle>,
        opener: Option<CardOpener>,
        labels: Vec<CardLabel>,
    ) -> io::Result<ControlServer> {
        let controls = Arc::new(Controls {
            bridge,
            opener,
            labels: CardLabels::new(labels),
        });
        remove_stale_socket(path)?;
        // Only the owner may pull the cards: the socket is created 0600
        // (umask 077 around the bind, so there is no moment at which
        // another user could connect), and set so again in case the file
        // system ignores the umask.
        let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let bound = UnixListener::bind(path);
        rustix::process::umask(previous);
        let listener = bound?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let task = tokio::spawn(accept_loop(listener, controls));
        Ok(ControlServer {
            path: path.to_owned(),
            task,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by another vscard", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// What the control socket acts on.
struct Controls {
    bridge: Arc<BridgeHandle>,
    opener: Option<CardOpener>,
    labels: CardLabels,
}

async fn accept_loop(listener: UnixListener, controls: Arc<Controls>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let controls = Arc::clone(&controls);
                tokio::spawn(async move {
                    if let Err(e) = serve_client(stream, controls).await {
                        tracing::warn!(target: TARGET, error = %e, "control client failed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(target: TARGET, error = %e, "cannot accept a control client");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// How long a control client has to send its command.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_client(stream: UnixStream, controls: Arc<Controls>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A client that connects and says nothing is dropped after a while
    // instead of holding a task and a descriptor forever.
    let mut reader = BufReader::new(read.take(MAX_LINE));
    tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no command within 10 s"))??;
    let answer = match line.parse::<ControlCommand>() {
        Ok(command) => {
            tracing::info!(target: TARGET, %command, "control command");
            // Insert and remove wait for the card's thread.
            tokio::task::spawn_blocking(move || execute(&controls, command))
                .await
                .unwrap_or_else(|e| format!("error: {e}\n"))
        }
        Err(e) => format!("error: {e}\n"),
    };
    write.write_all(answer.as_bytes()).await?;
    write.shutdown().await
}

/// Carries out a command and describes the cards it touched; the
/// controls' opener opens the image of a swap (none: swaps are refused).
fn execute(controls: &Controls, command: ControlCommand) -> String {
    let bridge = &*controls.bridge;
    let (card, action): (Option<usize>, fn(&BridgeHandle, usize) -> _) = match command {
        ControlCommand::Swap(card, path) => return swap(controls, card, &path),
        ControlCommand::StatusJson(card) => return status_json(bridge, card),
        ControlCommand::Cards => {
            return format!("{}\n", controls.labels.to_json(bridge.card_count()));
        }
        ControlCommand::Touch(card) => return touch(bridge, card),
        ControlCommand::Status(card) => (card, |_, _| Ok(())),
        ControlCommand::Insert(card) => (card, BridgeHandle::insert),
        ControlCommand::Remove(card) => (card, BridgeHandle::remove),
    };
    let indices: Vec<usize> = match card {
        Some(card) => vec![card],
        None => (0..bridge.card_count()).collect(),
    };
    let mut answer = String::new();
    for index in indices {
        let line = action(bridge, index)
            .and_then(|()| bridge.status(index))
            .map_or_else(|e| format!("error: {e}"), |s| format!("card {index}: {s}"));
        answer.push_str(&line);
        answer.push('\n');
    }
    answer
}

/// `insert CARD PATH`: the card index is checked before the image is
/// opened (a wrong index must not lock another image), and the old card
/// is dropped, which writes nothing more and releases its image's lock,
/// before the answer is sent.
/// `touch [CARD]`: one line per card, `card N: touched, ...`.
fn touch(bridge: &BridgeHandle, card: Option<usize>) -> String {
    let indices: Vec<usize> = match card {
        Some(card) => vec![card],
        None => (0..bridge.card_count()).collect(),
    };
    let mut answer = String::new();
    for index in indices {
        let line = match bridge.touch(index) {
            Ok(crate::Touched::Completed) => {
                format!("card {index}: touched, the waiting command completed")
            }
            Ok(crate::Touched::Kept) => format!(
                "card {index}: touched, kept for the next command that asks within {} s",
                crate::TOUCH_TIMEOUT.as_secs()
            ),
            Err(e) => format!("error: {e}"),
        };
        answer.push_str(&line);
        answer.push('\n');
    }
    answer
}

fn swap(controls: &Controls, index: usize, path: &Path) -> String {
    let bridge = &*controls.bridge;
    let Some(opener) = controls.opener.as_ref() else {
        return "error: this bridge cannot open card images\n".to_owned();
    };
    if let Err(e) = bridge.status(index) {
        return format!("error: {e}\n");
    }
    let (card, label) = match opener(path) {
        Ok(opened) => opened,
        Err(e) => return format!("error: {}: {e}\n", path.display()),
    };
    match bridge.swap(index, card) {
        Ok(old) => {
            drop(old);
            controls.labels.set(index, label);
            match bridge.status(index) {
                Ok(status) => format!("card {index}: {status}\n"),
                Err(e) => format!("error: {e}\n"),
            }
        }
        Err(e) => format!("error: {e}\n"),
    }
}

/// Every card's (or one card's) state as a JSON array on one line; a card
/// that does not exist is an `error:` line instead.
fn status_json(bridge: &BridgeHandle, card: Option<usize>) -> String {
    let indices: Vec<usize> = match card {
        Some(card) => vec![card],
        None => (0..bridge.card_count()).collect(),
    };
    let mut cards = Vec::new();
    for index in indices {
        match bridge.status(index) {
            Ok(status) => cards.push(status.to_json(index)),
            Err(e) => return format!("error: {e}\n"),
        }
    }
    format!("{}\n", serde_json::Value::Array(cards))
}

/// Sends one command to a control socket and returns the answer.
pub fn request(path: &Path, command: &ControlCommand) -> io::Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_print() {
        for line in [
            "status",
            "status 1",
            "status-json",
            "status-json 0",
            "insert",
            "insert 1",
            "remove",
            "remove 0",
            "touch",
            "touch 1",
            "cards",
        ] {
            let command: ControlCommand = line.parse().unwrap();
            assert_eq!(command.to_string(), line);
        }
        assert!("status 1 2".parse::<ControlCommand>().is_err());
        assert!("remove x".parse::<ControlCommand>().is_err());
        assert!("".parse::<ControlCommand>().is_err());
        assert!("eject".parse::<ControlCommand>().is_err());
        assert!("cards 1".parse::<ControlCommand>().is_err());
        let swap: ControlCommand = "insert 1 /tmp/a card.json\n".parse().unwrap();
        assert_eq!(
            swap,
            ControlCommand::Swap(1, PathBuf::from("/tmp/a card.json"))
        );
        assert_eq!(swap.to_string(), "insert 1 /tmp/a card.json");
        // A relative path means nothing to a server in another directory.
        assert!("insert 1 card.json".parse::<ControlCommand>().is_err());
        assert!("insert x /card.json".parse::<ControlCommand>().is_err());
    }
}
