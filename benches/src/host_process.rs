//! `vscard host` processes for the card-host table's scale rows, and the
//! relay's side of their sessions, driven from this process.
//!
//! A host is the real CLI binary (`vscard host --database URL --listen
//! 127.0.0.1:0`), found beside this program, so its resident memory is
//! its own and nothing of the client's. The client side connects as an
//! enrolled device ([`vscard_link::hosted::connect_host`]), waits for the
//! card to open, and then sends APDUs over the link as `vscard relay
//! --host` does for vpcd.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vscard_link::hosted::{connect_host, wait_ready};
use vscard_link::{Frame, Identity, Link};
use zeroize::Zeroizing;

use crate::{BenchError, io_error};

/// How long a host may take to open a card for a session.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Sessions opened at once: a host drops connections past 64 handshakes
/// in progress.
pub const OPENING_AT_ONCE: usize = 16;

fn link_error(error: vscard_link::LinkError) -> BenchError {
    BenchError::Host(format!("link: {error}"))
}

/// `vscard` beside this program (`target/release/vscard` beside
/// `vscard-bench`), or one folder up for a test binary (which cargo puts
/// in `target/debug/deps/`).
pub fn vscard_beside() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let here = exe.with_file_name("vscard");
    let up = exe.parent()?.parent()?.join("vscard");
    [here, up].into_iter().find(|path| path.is_file())
}

/// A running `vscard host`, killed when dropped.
pub struct HostProcess {
    child: Child,
    address: String,
    _state: tempfile::TempDir,
}

impl HostProcess {
    /// Starts `vscard host` on the database at `url`, listening on a free
    /// loopback port, and waits until it says it listens.
    pub fn start(vscard: &Path, url: &str) -> Result<HostProcess, BenchError> {
        let state = tempfile::tempdir().map_err(io_error("a temporary folder"))?;
        let mut child = Command::new(vscard)
            .env("VSCARD_HOME", state.path())
            .arg("--state-dir")
            .arg(state.path())
            // Cards cloned in SQL stay in the clear (sealed parts are bound
            // to their card ID); sealing adds an AES-GCM pass per part read.
            .args([
                "host",
                "--insecure-plaintext",
                "--database",
                url,
                "--listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io_error(format!("running {}", vscard.display())))?;
        let mut lines = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).lines())
            .ok_or_else(|| BenchError::Host("vscard host: no stdout".to_owned()))?;
        // "host listening on 127.0.0.1:PORT; key ...; cards in ..."
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let address = first
            .strip_prefix("host listening on ")
            .and_then(|rest| rest.split(';').next())
            .map(str::to_owned);
        let Some(address) = address else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Host(format!(
                "vscard host said {first:?}, not where it listens"
            )));
        };
        // It prints a line per session opened and closed: keep its pipe
        // drained.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Ok(HostProcess {
            child,
            address,
            _state: state,
        })
    }

    /// Where relays connect.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Its resident memory in bytes.
    pub fn resident(&self) -> Result<u64, BenchError> {
        crate::scale::resident_of(&format!("/proc/{}/status", self.child.id()))
    }
}

/// CPU time (user + system, all threads) a process used so far, from
/// `/proc/PID/stat` (in USER_HZ ticks, 100 a second on Linux).
pub fn cpu_time(stat_file: &str) -> Result<Duration, BenchError> {
    let text = std::fs::read_to_string(stat_file).map_err(io_error(stat_file))?;
    // The command name (in parentheses) may hold spaces: count fields
    // after it. utime and stime are fields 14 and 15 of the line.
    let ticks = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().skip(11).take(2))
        .map(|fields| fields.filter_map(|f| f.parse::<u64>().ok()).sum::<u64>());
    ticks
        .map(|ticks| Duration::from_millis(ticks * 10))
        .ok_or_else(|| BenchError::Host(format!("{stat_file}: no CPU times")))
}

impl HostProcess {
    /// The CPU time it used so far.
    pub fn cpu_time(&self) -> Result<Duration, BenchError> {
        cpu_time(&format!("/proc/{}/stat", self.child.id()))
    }

    /// The CPU time its live session threads (`vscard-card-ID`, the
    /// cards' own) used so far. Threads that end between the listing and
    /// the reading are left out.
    pub fn session_threads_cpu(&self) -> Result<Duration, BenchError> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut total = Duration::ZERO;
        for entry in std::fs::read_dir(&tasks).map_err(io_error(&tasks))? {
            let path = entry.map_err(io_error(&tasks))?.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if name.starts_with("vscard-card") {
                total += cpu_time(&path.join("stat").to_string_lossy()).unwrap_or_default();
            }
        }
        Ok(total)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device enrolled for one card.
pub struct Device {
    /// The card it opens.
    pub card: String,
    /// Its link identity.
    pub identity: Identity,
}

/// One open session.
pub struct Session {
    link: Link,
}

/// The relay's side of many sessions, on one thread (a current-thread
/// runtime, as `vscard relay` runs).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    host_key: [u8; 32],
}

impl Client {
    /// A client that pins `host_key`.
    pub fn new(host_key: [u8; 32]) -> Result<Client, BenchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error("a tokio runtime"))?;
        Ok(Client { runtime, host_key })
    }

    /// Opens a session for each `(host address, device)`, a few at a time,
    /// and sends each card `apdu` once (checking `sw`). Returns them in
    /// order, and how long opening took.
    pub fn open(
        &self,
        targets: &[(&str, &Device)],
        apdu: &[u8],
        sw: u16,
    ) -> Result<(Vec<Session>, Duration), BenchError> {
        let started = Instant::now();
        let mut sessions = Vec::with_capacity(targets.len());
        for batch in targets.chunks(OPENING_AT_ONCE) {
            let mut opening = JoinSet::new();
            for (i, (address, device)) in batch.iter().enumerate() {
                let (address, card, host_key) =
                    (address.to_string(), device.card.clone(), self.host_key);
                let identity = device.identity.clone();
                let apdu = apdu.to_vec();
                opening.spawn_on(
                    async move {
                        let mut link = connect_host(&address, &host_key, &identity, &card)
                            .await
                            .map_err(link_error)?;
                        wait_ready(&mut link, &card, OPEN_TIMEOUT)
                            .await
                            .map_err(link_error)?;
                        let mut session = Session { link };
                        session.exchange(&apdu, sw).await?;
                        Ok::<_, BenchError>((i, session))
                    },
                    self.runtime.handle(),
                );
            }
            let mut opened: Vec<(usize, Session)> = self.runtime.block_on(async {
                let mut opened = Vec::with_capacity(batch.len());
                while let Some(joined) = opening.join_next().await {
                    opened.push(joined.map_err(|e| BenchError::Host(e.to_string()))??);
                }
                Ok::<_, BenchError>(opened)
            })?;
            opened.sort_unstable_by_key(|(i, _)| *i);
            sessions.extend(opened.into_iter().map(|(_, session)| session));
        }
        Ok((sessions, started.elapsed()))
    }

    /// Every session sends `apdu` (expecting `sw`) in a loop, one APDU in
    /// flight each, for `duration`. Returns the sessions and how many
    /// APDUs were answered in how long.
    pub fn drive(
        &self,
        sessions: Vec<Session>,
        apdu: &[u8],
        sw: u16,
        duration: Duration,
    ) -> Result<(Vec<Session>, u64, Duration), BenchError> {
        self.runtime.block_on(async {
            let started = Instant::now();
            let deadline = started + duration;
            let mut running = JoinSet::new();
            for (i, mut session) in sessions.into_iter().enumerate() {
                let apdu = apdu.to_vec();
                running.spawn(async move {
                    let mut answered = 0u64;
                    while Instant::now() < deadline {
                        session.exchange(&apdu, sw).await?;
                        answered += 1;
                    }
                    Ok::<_, BenchError>((i, session, answered))
                });
            }
            let mut done = Vec::new();
            let mut total = 0;
            while let Some(joined) = running.join_next().await {
                let (i, session, answered) =
                    joined.map_err(|e| BenchError::Host(e.to_string()))??;
                total += answered;
                done.push((i, session));
            }
            let elapsed = started.elapsed();
            done.sort_unstable_by_key(|(i, _)| *i);
            Ok((done.into_iter().map(|(_, s)| s).collect(), total, elapsed))
        })
    }

    /// Closes the sessions (each host then releases its card's lease).
    pub fn close(&self, sessions: Vec<Session>) {
        self.runtime.block_on(async {
            for session in sessions {
                session.link.close("benchmark done").await;
            }
        });
    }
}

impl Session {
    /// Sends one APDU and waits for its answer (skipping keep-alives).
    async fn exchange(&mut self, apdu: &[u8], sw: u16) -> Result<(), BenchError> {
        self.link
            .send(&Frame::Apdu(Zeroizing::new(apdu.to_vec())))
            .await
            .map_err(link_error)?;
        loop {
            match self.link.recv().await.map_err(link_error)? {
                Frame::KeepAlive => {}
                Frame::Response(response) => {
                    let got = match response.as_slice() {
                        [.., sw1, sw2] => u16::from_be_bytes([*sw1, *sw2]),
                        _ => return Err(BenchError::ShortResponse("hosted APDU".to_owned())),
                    };
                    return if got == sw {
                        Ok(())
                    } else {
                        Err(BenchError::Status {
                            command: "hosted APDU".to_owned(),
                            sw: got,
                        })
                    };
                }
                other => {
                    return Err(BenchError::Host(format!(
                        "expected a response, got {other:?}"
                    )));
                }
            }
        }
    }
}
