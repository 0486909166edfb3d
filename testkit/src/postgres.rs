//! A private PostgreSQL cluster for tests.
//!
//! Nothing depends on a system PostgreSQL: each test makes its own cluster
//! in a temporary folder (`initdb`), runs its server with TCP off and its
//! Unix socket in that folder (`listen_addresses = ''`,
//! `unix_socket_directories = <folder>`), waits until `pg_isready` says it
//! takes connections, and stops it when the [`PrivatePostgres`] is dropped
//! (`pg_ctl stop -m fast`, then a kill if that fails). PostgreSQL refuses to
//! run as root, so under root (CI) the folder is given to `nobody` and
//! `initdb`, `postgres` and `pg_ctl` run as `nobody` through `setpriv`;
//! root still reaches the socket.
//!
//! The server is the harness's own child (`postgres` started directly
//! rather than through `pg_ctl start`, which would detach it), so a test
//! can stop it mid-command ([`PrivatePostgres::stop`]), kill it, and start
//! it again on the same data ([`PrivatePostgres::start`]).
//!
//! Binaries: `/usr/lib/postgresql/<newest>/bin` (Debian's `postgresql`
//! package, `.ci/install-deps`), else the folder on `PATH` that has
//! `initdb`, `postgres` and `pg_isready`. When none is found
//! [`PrivatePostgres::start_new`] says so ([`PostgresError::Missing`]);
//! [`private_postgres`] then skips the test, except under `CI`, where it
//! fails.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use thiserror::Error;

/// How long the server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(30);

/// The interval of the readiness probe.
const POLL: Duration = Duration::from_millis(20);

/// The port number in the socket's name (`.s.PGSQL.5432`); no TCP port is
/// opened.
pub const PORT: u16 = 5432;

/// `nobody`'s uid and gid on Debian.
const NOBODY: u32 = 65534;

/// Why the cluster could not be made, started or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// No PostgreSQL binaries on this machine.
    #[error(
        "no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin or on PATH (Debian package postgresql)"
    )]
    Missing,
    /// A process or file could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A PostgreSQL program failed.
    #[error("{what} failed ({status})\n{output}")]
    Failed {
        /// The program.
        what: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its output.
        output: String,
    },
    /// The server did not take connections in time.
    #[error("the server did not accept connections within {0:?}\n--- server log ---\n{1}")]
    Timeout(Duration, String),
    /// The server exited by itself.
    #[error("the server exited ({0})\n--- server log ---\n{1}")]
    Exited(std::process::ExitStatus, String),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PostgresError {
    let what = what.into();
    move |source| PostgresError::Io { what, source }
}

/// A cluster of this test's own, in a temporary folder.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_nobody: bool,
    server: Option<Child>,
}

/// A started cluster, or `None` when PostgreSQL is not installed and this
/// is not CI (the test is skipped with a line on stderr). Panics (failing
/// the test) when the cluster cannot start.
pub fn private_postgres() -> Option<PrivatePostgres> {
    match PrivatePostgres::start_new() {
        Ok(cluster) => Some(cluster),
        Err(PostgresError::Missing) if std::env::var_os("CI").is_none() => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {}",
                PostgresError::Missing
            );
            None
        }
        Err(error) => panic!("cannot start a private PostgreSQL: {error}"),
    }
}

impl PrivatePostgres {
    /// Makes a cluster (`initdb`) and starts its server.
    pub fn start_new() -> Result<PrivatePostgres, PostgresError> {
        let bin = binaries().ok_or(PostgresError::Missing)?;
        let dir = tempfile::Builder::new()
            .prefix("vscard-postgres-")
            .tempdir()
            .map_err(io_error("cannot create a temporary directory"))?;
        let as_nobody = rustix::process::geteuid().is_root();
        if as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))
                .map_err(io_error("cannot give the cluster's folder to nobody"))?;
        }
        let mut cluster = PrivatePostgres {
            bin,
            dir,
            as_nobody,
            server: None,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                // The cluster lives as long as the test; the server still
                // syncs every commit (`fsync`, `synchronous_commit`).
                "--no-sync".as_ref(),
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    /// The folder of the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The folder of the server's programs (`psql` is there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A connection URL for database `database` as the superuser
    /// `postgres` (no password: the socket is the test's own).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgresql://postgres@/{database}?host={}&port={PORT}",
            self.socket_dir().display()
        )
    }

    /// [`PrivatePostgres::url_for`] the default database `postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// True while the server runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.server {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `program` from the cluster's binaries, as `nobody` under root, in
    /// the cluster's folder.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_nobody {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Result<(), PostgresError> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(io_error(format!("cannot run {program}")))?;
        if output.status.success() {
            return Ok(());
        }
        Err(PostgresError::Failed {
            what: program.to_owned(),
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// Starts the server (again, on the same data) and waits until it
    /// accepts connections.
    pub fn start(&mut self) -> Result<(), PostgresError> {
        if self.is_running() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io_error("cannot open the server log"))?;
        let log_err = log
            .try_clone()
            .map_err(io_error("cannot open the server log"))?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(PORT.to_string())
            .arg("-c")
            .arg("listen_addresses=")
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            // Durable commits, as in production: a PIN try is on disk
            // before the card compares.
            .arg("-c")
            .arg("fsync=on")
            .arg("-c")
            .arg("synchronous_commit=on");
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io_error("cannot start postgres"))?;
        self.server = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), PostgresError> {
        let started = Instant::now();
        loop {
            if let Some(child) = &mut self.server
                && let Ok(Some(status)) = child.try_wait()
            {
                self.server = None;
                return Err(PostgresError::Exited(status, self.log()));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(self.socket_dir())
                .arg("-p")
                .arg(PORT.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(io_error("cannot run pg_isready"))?;
            if ready.success() {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                let log = self.log();
                self.kill();
                return Err(PostgresError::Timeout(STARTUP, log));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: open transactions are
    /// rolled back, connections cut) and waits for it; kills it when
    /// `pg_ctl` fails.
    pub fn stop(&mut self) -> Result<(), PostgresError> {
        if self.server.is_none() {
            return Ok(());
        }
        let data = self.data_dir();
        let stopped = self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
            ],
        );
        if stopped.is_err() {
            self.kill();
        }
        if let Some(mut child) = self.server.take() {
            child.wait().map_err(io_error("cannot wait for postgres"))?;
        }
        stopped
    }

    /// Kills the server's process group (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        if let Some(group) = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = child.wait();
    }

    /// Runs one SQL command through `psql` and returns its unaligned,
    /// tuples-only output (a test's look at the database that shares no
    /// code with what it checks).
    pub fn psql(&self, sql: &str) -> Result<String, PostgresError> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url())
            .stdin(Stdio::null())
            .output()
            .map_err(io_error("cannot run psql"))?;
        if !output.status.success() {
            return Err(PostgresError::Failed {
                what: format!("psql -c {sql:?}"),
                status: output.status,
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.stop().is_err() {
            self.kill();
        }
    }
}

/// The folder of `initdb`, `postgres`, `pg_ctl` and `pg_isready`.
fn binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_ctl", "pg_isready"]
            .iter()
            .all(|program| dir.join(program).is_file())
    };
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    newest.or_else(|| {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).find(|dir| complete(dir)))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_cluster_answers_stops_starts_again_and_goes_away() {
        let Some(mut cluster) = private_postgres() else {
            return;
        };
        assert_eq!(cluster.psql("SHOW synchronous_commit").unwrap(), "on");
        assert_eq!(cluster.psql("SHOW listen_addresses").unwrap(), "");
        cluster.psql("CREATE TABLE t (v integer)").unwrap();
        cluster.psql("INSERT INTO t VALUES (7)").unwrap();
        cluster.stop().unwrap();
        assert!(!cluster.is_running());
        assert!(cluster.psql("SELECT 1").is_err());
        cluster.start().unwrap();
        assert_eq!(cluster.psql("SELECT v FROM t").unwrap(), "7");
        let socket = cluster.socket_dir().to_owned();
        drop(cluster);
        assert!(!socket.exists());
    }
}
