//! A private pcscd for tests.
//!
//! Tests that go through real PC/SC must never touch the pcscd a developer
//! runs, and must be able to run side by side. Each such test therefore
//! runs in its own Linux namespaces:
//!
//! 1. The test calls [`private_pcscd`] (or [`PrivatePcscd::enter`]) first.
//!    Outside the namespaces it re-runs *only this test* (the current test
//!    binary with `--exact NAME`) under `unshare --mount --net --pid
//!    --fork --mount-proc --kill-child`, after mounting a tmpfs on
//!    `/run/pcscd` and bringing up `lo`, waits for it, replays its output,
//!    fails if it failed, and returns `None`: the outer test body returns.
//! 2. Inside, it starts `pcscd --foreground` with its own `reader.conf`
//!    (only vpcd; server mode on 35963 + slot, or reverse mode), waits until
//!    vpcd listens (read from `/proc/net/tcp`: a probe `connect()` would
//!    look like a card to vpcd), and returns the running [`PrivatePcscd`].
//!    Everything the test starts from then on (an in-process
//!    [`vscard_vpcd::Bridge`], the `vscard` binary, `opensc-tool`, the `pcsc`
//!    crate) sees only this pcscd, on the default socket path and ports.
//! 3. When the test ends, dropping [`PrivatePcscd`] kills pcscd's process
//!    group, and the end of the namespace's first process kills whatever is
//!    left in it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // in a #[test] fn:
//! let Some(pcscd) = vscard_testkit::private_pcscd() else { return Ok(()) };
//! let cards = vec![vscard_testkit::echo::echo_card()?];
//! let config = vscard_vpcd::BridgeConfig { mode: pcscd.bridge_mode(), ..Default::default() };
//! let _bridge = vscard_vpcd::Bridge::start(cards, config)?;
//! pcscd.wait_for_card(0, std::time::Duration::from_secs(1))?;
//! let card = pcscd.connect(0)?;
//! let answer = vscard_testkit::transmit(&card, &[0x00, 0x01, 0x00, 0x00, 0x01, 0xAB])?;
//! # Ok(()) }
//! ```
//!
//! Other crates take `vscard-testkit` as a dev-dependency and use
//! `vscard_testkit::pcsc` (re-exported, so versions match).
//! A test of a script that starts its own pcscd calls [`private_namespace`]
//! instead: the same namespaces, no pcscd in them.
//! A program that is not a libtest test (a criterion bench, a `main`)
//! calls [`rerun_process_in_namespace`] first and then
//! [`PrivatePcscd::start_here`].
//!
//! Requirements: Linux, root (CI and the development machines run as
//! root), `unshare`, `mount`, `ip`, `pcscd` and the vpcd driver (Debian
//! packages `pcscd vsmartcard-vpcd iproute2`; `.ci/install-deps`). When one
//! is missing the test prints why on stderr and passes as skipped, except
//! when the environment variable `CI` is set: then it fails, so CI can
//! never skip silently. Tests must use the standard libtest harness (the
//! re-run relies on `--exact`), and call [`private_pcscd`] once, first.
//!
//! Environment: `VSCARD_PCSCD_DEBUG=1` runs pcscd with `--debug --apdu`
//! (its log is in [`PrivatePcscd::log`], and printed when a wait fails);
//! `VSCARD_PCSCD_TEST_TIMEOUT` (seconds, default 600) bounds each re-run.

use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use thiserror::Error;

use vscard_vpcd::{Mode, VPCD_PORT};

mod namespace;
mod trivial;

use namespace::{NAMESPACE_VAR, rerun_in_namespace, vpcd_driver};
pub use namespace::{
    is_listening, missing_prerequisites, rerun_process_in_namespace, wait_until_listening,
};
pub use trivial::{TRIVIAL_ATR, TrivialCard};

/// The PC/SC client crate the harness uses, re-exported so users need no
/// dependency of their own.
pub use pcsc;

/// How long pcscd may take to come up.
const STARTUP: Duration = Duration::from_secs(10);

/// The interval of the few short polls (reader not known yet, process
/// exit); every other wait is event-driven.
const POLL: Duration = Duration::from_millis(5);

/// Errors of the harness.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A process or file could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A PC/SC call failed.
    #[error("{what}: {source}")]
    Pcsc {
        /// The call.
        what: String,
        /// The PC/SC error.
        source: pcsc::Error,
    },
    /// A wait ran out.
    #[error("timed out after {waited:?} waiting for {what}\n--- pcscd log ---\n{log}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// pcscd's output so far.
        log: String,
    },
    /// pcscd exited by itself.
    #[error("pcscd exited ({status})\n--- pcscd log ---\n{log}")]
    PcscdExited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its output.
        log: String,
    },
    /// Not called from a libtest test thread.
    #[error("the private pcscd must be entered from a #[test] thread (its name is the test's)")]
    NotATest,
    /// The private namespaces cannot be had on this machine.
    #[error("private pcscd unavailable: {0}")]
    Unavailable(String),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

fn pcsc_error(what: impl Into<String>) -> impl FnOnce(pcsc::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Pcsc { what, source }
}

/// How the private pcscd's vpcd reader is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcscdOptions {
    /// `None`: vpcd listens on 35963 + slot and the card connects (the
    /// Debian default). `Some(port)`: reverse mode, vpcd connects to a
    /// card listening on 127.0.0.1:port + slot. In reverse mode pcscd is
    /// NOT started by [`PrivatePcscd::enter`]: start the cards, wait until
    /// every slot's port listens ([`wait_until_listening`]; Debian's vpcd
    /// opens 2 slots), then call [`PrivatePcscd::start`]. Debian's vpcd
    /// 3.3 aborts pcscd (`bit out of range 0 - FD_SETSIZE on fd_set`) when
    /// a reverse connection fails or ends, so in reverse mode a test can
    /// neither start pcscd before the cards listen nor remove a card.
    pub reverse_port: Option<u16>,
    /// In server mode, how many slots must listen before the harness
    /// returns (Debian's vpcd opens 2).
    pub slots: u16,
}

impl Default for PcscdOptions {
    fn default() -> PcscdOptions {
        PcscdOptions {
            reverse_port: None,
            slots: 1,
        }
    }
}

/// Enters a private pcscd with the default vpcd configuration; see the
/// module documentation. `None` means: the test already ran in its own
/// namespaces (or was skipped); return at once.
pub fn private_pcscd() -> Option<PrivatePcscd> {
    PrivatePcscd::enter(PcscdOptions::default())
}

/// Runs the calling test in fresh private namespaces, as
/// [`private_pcscd`] does, but starts no pcscd there: for tests of scripts
/// that start their own (nothing answers on the tmpfs `/run/pcscd`, and
/// vpcd's ports are free). `true`: this is the run inside, go on; `false`:
/// the test already ran inside (or was skipped), return at once.
pub fn private_namespace() -> bool {
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => panic!("{}", HarnessError::NotATest),
    };
    if std::env::var_os(NAMESPACE_VAR).is_some() {
        return true;
    }
    if let Some(reason) = missing_prerequisites() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: pcscd tests cannot run in CI: {reason}");
        }
        // Straight to stderr, past libtest's capture: a skip must show.
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
        return false;
    }
    if let Err(e) = rerun_in_namespace(&test) {
        panic!("{test} in its private namespace: {e}");
    }
    false
}

/// The name pcscd gives the vpcd reader unless told otherwise (Debian's
/// reader.conf).
pub const DEFAULT_READER_NAME: &str = "Virtual PCD";

/// A pcscd running in this test's private namespaces.
#[derive(Debug)]
pub struct PrivatePcscd {
    options: PcscdOptions,
    reader_name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The ports to wait for instead of the options' slots (a reader
    /// configuration the test wrote).
    ports: Option<Vec<u16>>,
}

impl PrivatePcscd {
    /// As [`private_pcscd`], with options. Panics (failing the test) when
    /// the re-run fails or pcscd cannot start.
    pub fn enter(options: PcscdOptions) -> Option<PrivatePcscd> {
        PrivatePcscd::enter_named(options, DEFAULT_READER_NAME)
    }

    /// As [`PrivatePcscd::enter`], with the vpcd reader named `reader_name`
    /// (its `FRIENDLYNAME`) instead of "Virtual PCD": some middleware only
    /// looks at readers with a vendor's name (Yubico's PKCS#11 module wants
    /// names starting with "Yubico").
    pub fn enter_named(options: PcscdOptions, reader_name: &str) -> Option<PrivatePcscd> {
        PrivatePcscd::enter_inner(options, Some(reader_name))
    }

    /// As [`PrivatePcscd::enter`], but with an empty reader configuration
    /// and pcscd not started: the test writes the configuration into
    /// [`PrivatePcscd::reader_conf_dir`] (`vscard pcscd-setup
    /// --reader-conf-dir`, say), then calls
    /// [`PrivatePcscd::start_listening`] with the ports vpcd must listen on.
    /// [`PrivatePcscd::reader`] does not apply (the test knows the names).
    pub fn enter_unconfigured() -> Option<PrivatePcscd> {
        PrivatePcscd::enter_inner(PcscdOptions::default(), None)
    }

    /// `reader_name: None`: no reader configuration, pcscd not started.
    fn enter_inner(options: PcscdOptions, reader_name: Option<&str>) -> Option<PrivatePcscd> {
        if !private_namespace() {
            return None;
        }
        let started = match reader_name {
            Some(reader_name) => PrivatePcscd::start_here_named(options, reader_name),
            None => PrivatePcscd::unstarted(options, DEFAULT_READER_NAME),
        };
        match started {
            Ok(pcscd) => Some(pcscd),
            Err(e) => panic!("cannot start the private pcscd: {e}"),
        }
    }

    /// Starts pcscd in the current (already private) namespaces.
    pub fn start_here(options: PcscdOptions) -> Result<PrivatePcscd, HarnessError> {
        PrivatePcscd::start_here_named(options, DEFAULT_READER_NAME)
    }

    /// As [`PrivatePcscd::start_here`], with the reader named `reader_name`.
    pub fn start_here_named(
        options: PcscdOptions,
        reader_name: &str,
    ) -> Result<PrivatePcscd, HarnessError> {
        let mut pcscd = PrivatePcscd::unstarted(options, reader_name)?;
        let conf = pcscd.reader_conf_dir();
        let device = match pcscd.options.reverse_port {
            None => format!("/dev/null:{VPCD_PORT:#06X}"),
            Some(port) => format!("127.0.0.1:{port:#06X}"),
        };
        let channel = pcscd.options.reverse_port.unwrap_or(VPCD_PORT);
        let reader_conf = format!(
            "FRIENDLYNAME \"{reader_name}\"\nDEVICENAME   {device}\nLIBPATH      {}\nCHANNELID    {channel:#06X}\n",
            vpcd_driver().display()
        );
        std::fs::write(conf.join("vpcd"), reader_conf)
            .map_err(io_error("cannot write reader.conf"))?;
        if pcscd.options.reverse_port.is_none() {
            pcscd.start()?;
        }
        Ok(pcscd)
    }

    /// Its folders made, its reader configuration empty, pcscd not started.
    fn unstarted(options: PcscdOptions, reader_name: &str) -> Result<PrivatePcscd, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("vscard-pcscd-")
            .tempdir()
            .map_err(io_error("cannot create a temporary directory"))?;
        std::fs::create_dir(dir.path().join("reader.conf.d"))
            .map_err(io_error("cannot create reader.conf.d"))?;
        Ok(PrivatePcscd {
            options,
            reader_name: reader_name.to_owned(),
            dir,
            child: None,
            ports: None,
        })
    }

    /// pcscd's reader configuration folder (its `--config`).
    pub fn reader_conf_dir(&self) -> PathBuf {
        self.dir.path().join("reader.conf.d")
    }

    /// Starts pcscd with the reader configuration the test wrote and waits
    /// until it is ready: its socket exists and vpcd listens on `ports`.
    pub fn start_listening(&mut self, ports: &[u16]) -> Result<(), HarnessError> {
        self.ports = Some(ports.to_vec());
        self.start()
    }

    /// Starts pcscd (again) and waits until it is ready: its socket
    /// exists and, in server mode, vpcd listens on every slot asked for.
    pub fn start(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io_error("cannot open the pcscd log"))?;
        let log_err = log
            .try_clone()
            .map_err(io_error("cannot open the pcscd log"))?;
        let mut command = Command::new("pcscd");
        command
            .arg("--foreground")
            .arg("--config")
            .arg(self.reader_conf_dir());
        if std::env::var_os("VSCARD_PCSCD_DEBUG").is_some() {
            command.args(["--debug", "--apdu"]);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io_error("cannot start pcscd"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        let ports: Vec<u16> = match (&self.ports, self.options.reverse_port) {
            (Some(ports), _) => ports.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => (0..self.options.slots.max(1))
                .map(|slot| VPCD_PORT.saturating_add(slot))
                .collect(),
        };
        loop {
            self.check_alive()?;
            let socket_ready = Path::new("/run/pcscd/pcscd.comm").exists();
            if socket_ready && ports.iter().all(|port| is_listening(*port)) {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                return Err(HarnessError::Timeout {
                    what: format!("pcscd to listen on {ports:?}"),
                    waited: STARTUP,
                    log: self.log(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    fn check_alive(&mut self) -> Result<(), HarnessError> {
        if let Some(child) = &mut self.child
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            return Err(HarnessError::PcscdExited {
                status,
                log: self.log(),
            });
        }
        Ok(())
    }

    /// Stops pcscd with SIGTERM (a clean shutdown) and waits for it.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.signal(Signal::TERM)
    }

    /// Kills pcscd with SIGKILL (a crash) and waits for it.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.signal(Signal::KILL)
    }

    /// Kills pcscd (SIGKILL) and starts it again.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill()?;
        self.start()
    }

    fn signal(&mut self, signal: Signal) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(group) = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)) {
            let _ = kill_process_group(group, signal);
        }
        child.wait().map_err(io_error("cannot wait for pcscd"))?;
        Ok(())
    }

    /// True while pcscd runs.
    pub fn is_running(&mut self) -> bool {
        self.check_alive().is_ok() && self.child.is_some()
    }

    /// pcscd's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pcscd.log")
    }

    /// The bridge mode that reaches this pcscd's vpcd.
    pub fn bridge_mode(&self) -> Mode {
        match self.options.reverse_port {
            None => Mode::Client {
                host: "127.0.0.1".to_owned(),
                port: VPCD_PORT,
            },
            Some(port) => Mode::Reverse {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            },
        }
    }

    /// The `vscard serve` arguments that reach this pcscd's vpcd (and
    /// name its readers from its reader configuration).
    pub fn serve_args(&self) -> Vec<String> {
        match self.options.reverse_port {
            None => vec![
                "--vpcd".to_owned(),
                format!("127.0.0.1:{VPCD_PORT}"),
                "--reader-conf-dir".to_owned(),
                self.reader_conf_dir().display().to_string(),
            ],
            Some(port) => vec!["--listen".to_owned(), format!("127.0.0.1:{port}")],
        }
    }

    /// The PC/SC name of the reader for vpcd slot `slot`.
    pub fn reader(&self, slot: u16) -> String {
        format!("{} 00 {slot:02}", self.reader_name)
    }

    /// A fresh PC/SC context (contexts die with the pcscd they were made
    /// with: make a new one after a restart).
    pub fn context(&self) -> Result<pcsc::Context, HarnessError> {
        pcsc::Context::establish(pcsc::Scope::User).map_err(pcsc_error("SCardEstablishContext"))
    }

    /// Waits until pcscd reports a card in `slot`; returns how long that
    /// took.
    pub fn wait_for_card(&self, slot: u16, timeout: Duration) -> Result<Duration, HarnessError> {
        self.wait_for_state(&self.reader(slot), timeout, true)
    }

    /// Waits until pcscd reports a card in the reader named `reader`;
    /// returns how long that took.
    pub fn wait_for_card_in(
        &self,
        reader: &str,
        timeout: Duration,
    ) -> Result<Duration, HarnessError> {
        self.wait_for_state(reader, timeout, true)
    }

    /// Waits until pcscd reports `slot` empty; returns how long that took.
    pub fn wait_for_no_card(&self, slot: u16, timeout: Duration) -> Result<Duration, HarnessError> {
        self.wait_for_state(&self.reader(slot), timeout, false)
    }

    fn wait_for_state(
        &self,
        reader: &str,
        timeout: Duration,
        present: bool,
    ) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let reader = reader.to_owned();
        let what = format!("{} in {reader}", if present { "a card" } else { "no card" });
        let timed_out = || HarnessError::Timeout {
            what: what.clone(),
            waited: timeout,
            log: self.log(),
        };
        let context = self.context()?;
        let name = CString::new(reader.clone()).map_err(|e| HarnessError::Io {
            what: "reader name".to_owned(),
            source: std::io::Error::other(e),
        })?;
        let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            match context.get_status_change(left, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Err(timed_out()),
                // The reader is not registered yet (pcscd just started).
                Err(pcsc::Error::UnknownReader) => {
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(e) => return Err(pcsc_error(format!("SCardGetStatusChange({reader})"))(e)),
            }
            let [state] = &mut states;
            let event = state.event_state();
            let has_card =
                event.contains(pcsc::State::PRESENT) && !event.contains(pcsc::State::MUTE);
            if has_card == present {
                return Ok(started.elapsed());
            }
            if left.is_zero() {
                return Err(timed_out());
            }
            state.sync_current_state();
        }
    }

    /// Connects to the card in `slot` (shared, T=1 or T=0).
    pub fn connect(&self, slot: u16) -> Result<pcsc::Card, HarnessError> {
        let reader = self.reader(slot);
        let name = CString::new(reader.clone()).map_err(|e| HarnessError::Io {
            what: "reader name".to_owned(),
            source: std::io::Error::other(e),
        })?;
        self.context()?
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(pcsc_error(format!("SCardConnect({reader})")))
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Sends one APDU through PC/SC and returns the response (data and SW).
pub fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, HarnessError> {
    let mut buffer = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(apdu, &mut buffer)
        .map(<[u8]>::to_vec)
        .map_err(pcsc_error("SCardTransmit"))
}
