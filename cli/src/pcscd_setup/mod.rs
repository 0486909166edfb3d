//! `vscard pcscd-setup --readers N` and `--undo`: pcscd configured for N
//! vpcd readers.
//!
//! Debian's vpcd driver has 2 slots per instance and keeps them in static
//! memory, so a second reader.conf entry of the same library collides with
//! the first. A *copy* of the library under another path is loaded as a
//! library of its own (the dynamic loader tells libraries apart by file),
//! so N readers are N/2 (rounded up) instances: the installed driver with
//! its package's entry (`/etc/reader.conf.d/vpcd`), and copies, each with
//! an entry of its own, its own ports (2 more after the previous
//! instance's) and its own `FRIENDLYNAME` (so pcscd's reader names are
//! known). Every file written starts with [`MARKER`] (entries) or carries
//! vscard's name (copies), is written atomically, and is the only kind of
//! file `--undo` or a smaller `--readers` removes. pcscd is never
//! restarted here: it loads its configuration when it starts, and the
//! output says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use vscard_emulator::files;
use vscard_vpcd::VPCD_PORT;
use vscard_vpcd::reader_conf::{self, VPCD_SLOTS, VpcdDevice, VpcdReader};

use crate::args::PcscdSetupArgs;

/// Where Debian installs the vpcd driver.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// Where the copies of the driver go (vscard's own folder: nothing else
/// is put there).
pub const DRIVER_DIR: &str = "/usr/local/lib/vscard/pcsc";

/// The first line of every reader.conf entry vscard writes.
pub const MARKER: &str = "# Written by vscard pcscd-setup";

/// vscard's reader.conf files are `vscard-vpcd-K`.
const CONF_PREFIX: &str = "vscard-vpcd-";

/// vscard's driver copies are `libifdvpcd-vscard-K.so`.
const COPY_PREFIX: &str = "libifdvpcd-vscard-";

/// The reader name of the instance vscard writes when the installed
/// driver has no entry (Debian's own name for it).
const DEFAULT_NAME: &str = "Virtual PCD";

/// pcscd's reader.conf and the driver files are read by root's pcscd and
/// hold no secret: world-readable, as the packages' own.
const MODE: u32 = 0o644;

/// The folders and the driver `pcscd-setup` works with.
#[derive(Clone, Debug)]
pub struct Setup {
    /// pcscd's reader configuration folder.
    pub conf_dir: PathBuf,
    /// Where the copies go.
    pub driver_dir: PathBuf,
    /// The vpcd driver to copy.
    pub driver: PathBuf,
}

/// One driver instance: its entry and, for a copy, the copy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Instance {
    name: String,
    port: u16,
    /// The entry's file; `None` when the package's entry serves.
    conf: Option<PathBuf>,
    library: PathBuf,
    /// True for a copy of the driver that vscard writes.
    copy: bool,
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Files written (new or changed).
    pub written: Vec<PathBuf>,
    /// Files removed.
    pub removed: Vec<PathBuf>,
    /// The readers pcscd has once restarted: `(name, port)`.
    pub readers: Vec<(String, u16)>,
    /// Problems of entries vscard did not write (left as they are).
    pub warnings: Vec<String>,
}

impl Report {
    fn changed(&self) -> bool {
        !self.written.is_empty() || !self.removed.is_empty()
    }

    /// What the command prints.
    pub fn render(&self, wanted: Option<u16>) -> String {
        let mut text = String::new();
        for warning in &self.warnings {
            let _ = writeln!(text, "warning: {warning}");
        }
        for path in &self.written {
            let _ = writeln!(text, "wrote {}", path.display());
        }
        for path in &self.removed {
            let _ = writeln!(text, "removed {}", path.display());
        }
        if let Some(wanted) = wanted {
            let _ = writeln!(
                text,
                "{} vpcd readers configured for {wanted} cards:",
                self.readers.len()
            );
            for (name, port) in &self.readers {
                let _ = writeln!(text, "  {name} (vpcd port {port})");
            }
        }
        if self.changed() {
            text.push_str(
                "pcscd loads its reader configuration when it starts: restart it to use this \
                 (`sudo systemctl restart pcscd`, or stop and start the pcscd you run); \
                 vscard restarts no pcscd itself\n",
            );
        } else {
            text.push_str("nothing to change\n");
        }
        text
    }
}

/// A permission error says how to get it.
fn io_context(what: String, error: std::io::Error) -> anyhow::Error {
    let hint = if error.kind() == std::io::ErrorKind::PermissionDenied {
        " (pcscd's configuration belongs to root: run `sudo vscard pcscd-setup ...`)"
    } else {
        ""
    };
    anyhow::anyhow!("{what}: {error}{hint}")
}

/// The file's name, if it is UTF-8.
fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|name| name.to_str())
}

/// True for a reader.conf file vscard wrote.
fn is_ours(path: &Path) -> bool {
    file_name(path).is_some_and(|name| name.starts_with(CONF_PREFIX))
        && std::fs::read(path).is_ok_and(|text| text.starts_with(MARKER.as_bytes()))
}

/// The same file, through links and other spellings.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

impl Setup {
    /// From the command line.
    pub fn from_args(args: &PcscdSetupArgs) -> Setup {
        Setup {
            conf_dir: args.reader_conf_dir.clone(),
            driver_dir: args.driver_dir.clone(),
            driver: args.driver.clone(),
        }
    }

    fn readers(&self) -> anyhow::Result<Vec<VpcdReader>> {
        Ok(reader_conf::read_dir(&self.conf_dir)?)
    }

    /// The driver instances for `readers` readers, given the entries
    /// already there that vscard did not write.
    fn plan(&self, readers: u16, foreign: &[VpcdReader]) -> anyhow::Result<Vec<Instance>> {
        let installed = foreign.iter().find(|reader| {
            matches!(reader.device, VpcdDevice::Listen { .. })
                && same_file(&reader.entry.library, &self.driver)
        });
        let (base_name, base_port) = match installed {
            Some(reader) => (reader.entry.friendly_name.clone(), reader.port()),
            None => (DEFAULT_NAME.to_owned(), VPCD_PORT),
        };
        let count = readers.div_ceil(VPCD_SLOTS);
        let mut instances = Vec::new();
        for k in 0..count {
            let port = u16::try_from(u32::from(base_port) + u32::from(k) * u32::from(VPCD_SLOTS))
                .ok()
                .filter(|port| port.checked_add(VPCD_SLOTS - 1).is_some())
                .with_context(|| format!("reader {k} would need ports past 65535"))?;
            let instance = if k == 0 {
                Instance {
                    name: base_name.clone(),
                    port,
                    conf: installed
                        .is_none()
                        .then(|| self.conf_dir.join(format!("{CONF_PREFIX}0"))),
                    library: self.driver.clone(),
                    copy: false,
                }
            } else {
                Instance {
                    name: format!("{base_name} {k}"),
                    port,
                    conf: Some(self.conf_dir.join(format!("{CONF_PREFIX}{k}"))),
                    library: self.driver_dir.join(format!("{COPY_PREFIX}{k}.so")),
                    copy: true,
                }
            };
            if instance.conf.is_some() {
                refuse_collision(&instance, foreign)?;
            }
            instances.push(instance);
        }
        Ok(instances)
    }

    /// `--readers N`: writes what is missing or different, removes what
    /// vscard wrote for more readers than N.
    pub fn apply(&self, readers: u16) -> anyhow::Result<Report> {
        if !self.driver.is_file() {
            anyhow::bail!(
                "the vpcd driver {} is not there (Debian package vsmartcard-vpcd; or give --driver PATH)",
                self.driver.display()
            );
        }
        let all = self.readers()?;
        let mut foreign: Vec<VpcdReader> = all.into_iter().filter(|r| !is_ours(&r.file)).collect();
        // pcscd loads the files in no set order: the package's entry (on
        // vpcd's default port) is taken as the driver's own, others after.
        foreign.sort_by_key(|reader| reader.port() != VPCD_PORT);
        let instances = self.plan(readers, &foreign)?;
        let mut report = Report {
            warnings: shared_drivers(&foreign),
            ..Report::default()
        };
        let driver = std::fs::read(&self.driver)
            .map_err(|e| io_context(format!("cannot read {}", self.driver.display()), e))?;
        // Copies first: a pcscd started meanwhile never finds an entry
        // whose library is not there yet.
        // Root writes here what root's pcscd loads: every folder on the way
        // must be one nobody else can change.
        if instances.iter().any(|i| i.copy) {
            create_private_dirs(&self.driver_dir)?;
            check_trusted_dir(&self.driver_dir)?;
        }
        check_trusted_dir(&self.conf_dir)?;
        for instance in instances.iter().filter(|i| i.copy) {
            write_if_changed(&instance.library, &driver, &mut report)?;
        }
        for instance in &instances {
            if let Some(conf) = &instance.conf {
                write_if_changed(conf, entry_text(instance).as_bytes(), &mut report)?;
            }
            for slot in 0..VPCD_SLOTS {
                report.readers.push((
                    format!("{} 00 {slot:02X}", instance.name),
                    instance.port + slot,
                ));
            }
        }
        let keep_conf: Vec<&PathBuf> = instances.iter().filter_map(|i| i.conf.as_ref()).collect();
        let keep_copies: Vec<&PathBuf> = instances
            .iter()
            .filter(|i| i.copy)
            .map(|i| &i.library)
            .collect();
        self.remove_ours(&keep_conf, &keep_copies, &mut report)?;
        Ok(report)
    }

    /// `--undo`: removes every file vscard wrote, nothing else.
    pub fn undo(&self) -> anyhow::Result<Report> {
        let mut report = Report::default();
        self.remove_ours(&[], &[], &mut report)?;
        // The folder is vscard's own; gone once empty (a folder with
        // anything else in it stays).
        if report
            .removed
            .iter()
            .any(|p| p.starts_with(&self.driver_dir))
        {
            let _ = std::fs::remove_dir(&self.driver_dir);
        }
        Ok(report)
    }

    /// Removes vscard's entries and copies but those kept: entries first,
    /// so that no entry is left naming a removed library.
    fn remove_ours(
        &self,
        keep_conf: &[&PathBuf],
        keep_copies: &[&PathBuf],
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let mut doomed = Vec::new();
        for path in list(&self.conf_dir)? {
            if is_ours(&path) && !keep_conf.contains(&&path) {
                doomed.push(path);
            }
        }
        for path in list(&self.driver_dir)? {
            let copy = file_name(&path)
                .is_some_and(|name| name.starts_with(COPY_PREFIX) && name.ends_with(".so"));
            if copy && !keep_copies.contains(&&path) {
                doomed.push(path);
            }
        }
        for path in doomed {
            std::fs::remove_file(&path)
                .map_err(|e| io_context(format!("cannot remove {}", path.display()), e))?;
            report.removed.push(path);
        }
        Ok(())
    }
}

/// The files in a folder, sorted; none when it does not exist.
fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(format!("cannot read {}", dir.display()), e)),
    };
    let mut paths = Vec::new();
    for item in listing {
        let item = item.map_err(|e| io_context(format!("cannot read {}", dir.display()), e))?;
        if item.file_type().is_ok_and(|t| t.is_file()) {
            paths.push(item.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// Entries of one driver library after the first: the driver keeps its
/// slots in static memory, so they share (and break) the first one's.
fn shared_drivers(foreign: &[VpcdReader]) -> Vec<String> {
    let mut first: Vec<&VpcdReader> = Vec::new();
    let mut warnings = Vec::new();
    for reader in foreign {
        match first
            .iter()
            .find(|r| same_file(&r.entry.library, &reader.entry.library))
        {
            Some(earlier) => warnings.push(format!(
                "{} configures another reader of {}, already used by {}: one driver instance \
                 has one set of slots, so the two collide (remove it; pcscd-setup uses copies \
                 of the driver)",
                reader.file.display(),
                reader.entry.library.display(),
                earlier.file.display()
            )),
            None => first.push(reader),
        }
    }
    warnings
}

/// An entry of another file on the ports an instance would take is a
/// collision: vpcd would fail to listen on one of them.
fn refuse_collision(instance: &Instance, foreign: &[VpcdReader]) -> anyhow::Result<()> {
    let mine = instance.port..instance.port + VPCD_SLOTS;
    for reader in foreign {
        let theirs = reader.port()..reader.port().saturating_add(VPCD_SLOTS);
        if mine.start < theirs.end && theirs.start < mine.end {
            anyhow::bail!(
                "{} already configures a vpcd reader on port {} (vscard pcscd-setup wants ports {} and {}): remove or move that entry first",
                reader.file.display(),
                reader.port(),
                mine.start,
                mine.end - 1
            );
        }
    }
    Ok(())
}

/// The reader.conf entry of an instance.
fn entry_text(instance: &Instance) -> String {
    format!(
        "{MARKER}: vpcd reader \"{name}\", ports {port} and {next}.\n\
         # `vscard pcscd-setup --undo` removes it; pcscd loads it when it starts.\n\
         FRIENDLYNAME \"{name}\"\n\
         DEVICENAME   /dev/null:{port:#06X}\n\
         LIBPATH      {library}\n\
         CHANNELID    {port:#06X}\n",
        name = instance.name,
        port = instance.port,
        next = instance.port + 1,
        library = instance.library.display(),
    )
}

/// Creates the missing folders of `dir` with mode 0755 (whatever the
/// umask would have allowed).
fn create_private_dirs(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| io_context(format!("cannot create {}", dir.display()), e))
}

/// Refuses `dir` unless it and every folder above it is a folder owned by
/// root (or this user) that no one else may write: a world-writable folder
/// above is allowed only with the sticky bit (`/tmp`), since then the next
/// folder down, which is checked too, cannot be replaced by others.
fn check_trusted_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let canonical = dir
        .canonicalize()
        .map_err(|e| io_context(format!("cannot resolve {}", dir.display()), e))?;
    let me = rustix::process::geteuid().as_raw();
    for (depth, folder) in canonical.ancestors().enumerate() {
        let meta = std::fs::symlink_metadata(folder)
            .map_err(|e| io_context(format!("cannot look at {}", folder.display()), e))?;
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0 && depth > 0;
        let problem = if !meta.is_dir() {
            Some("not a folder".to_owned())
        } else if meta.uid() != 0 && meta.uid() != me {
            Some(format!("owned by uid {}", meta.uid()))
        } else if mode & 0o022 != 0 && !sticky {
            Some(format!("writable by others (mode {mode:04o})"))
        } else {
            None
        };
        if let Some(problem) = problem {
            anyhow::bail!(
                "refusing {}: {} is {problem}, so someone else could change what root's pcscd loads",
                dir.display(),
                folder.display()
            );
        }
    }
    Ok(())
}

/// True when `path` is a regular file of this user with `mode`, one name
/// and exactly `bytes`: nothing to write. A link, a FIFO, another owner or
/// another mode is rewritten (the atomic rename replaces the name).
fn already_written(path: &Path, bytes: &[u8], mode: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && meta.uid() == rustix::process::geteuid().as_raw()
        && meta.mode() & 0o7777 == mode
        && meta.nlink() == 1
        && std::fs::read(path).is_ok_and(|old| old == bytes)
}

/// Writes `bytes` to `path` atomically unless it already holds them.
fn write_if_changed(path: &Path, bytes: &[u8], report: &mut Report) -> anyhow::Result<()> {
    if already_written(path, bytes, MODE) {
        return Ok(());
    }
    files::write_atomically(path, bytes, MODE).map_err(|e| {
        io_context(
            format!("cannot write {}", path.display()),
            std::io::Error::new(e.source.kind(), e.source.to_string()),
        )
    })?;
    report.written.push(path.to_owned());
    Ok(())
}

/// `vscard pcscd-setup`.
pub fn run(args: &PcscdSetupArgs) -> anyhow::Result<()> {
    let setup = Setup::from_args(args);
    let report = match args.readers {
        Some(readers) if !args.undo => setup.apply(readers)?,
        _ => setup.undo()?,
    };
    print!("{}", report.render(args.readers));
    Ok(())
}

#[cfg(test)]
mod tests;
