//! pcscd's reader configuration (`/etc/reader.conf.d`), read for its vpcd
//! readers: the ports vpcd listens on and the names pcscd gives them.
//!
//! pcsc-lite reads every file of the folder; an entry is a
//! `FRIENDLYNAME "name"`, a `DEVICENAME`, a `LIBPATH` (the driver) and an
//! optional `CHANNELID`, `#` starting a comment. vpcd's `DEVICENAME` is
//! `/dev/null:PORT` when vpcd listens for cards (client mode of the
//! bridge) and `HOST:PORT` when it connects to them (reverse mode); the
//! port is read as C's `strtoul(.., 0)` does (`0x8C7B`, `35963`), and slot
//! `s` of the reader uses `PORT + s`. Debian's vpcd has two slots per
//! driver instance, and keeps them in static memory: a second entry of the
//! same library shares (and breaks) the first one's slots, so more readers
//! take copies of the library (`vscard pcscd-setup`).
//!
//! pcscd names slot `s` of a reader `"FRIENDLYNAME II SS"`, `II` (hex)
//! counting the readers of the same name; a name that only one entry
//! carries is therefore `"FRIENDLYNAME 00 SS"`, and a name shared by
//! several entries cannot be known from the configuration (pcscd numbers
//! them in the order it loads them).

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where pcscd reads its reader configuration on Debian.
pub const READER_CONF_DIR: &str = "/etc/reader.conf.d";

/// Slots per vpcd driver instance (Debian's build; vsmartcard's
/// `--enable-vpcdslots`).
pub const VPCD_SLOTS: u16 = 2;

/// The reader configuration cannot be read.
#[derive(Debug, Error)]
#[error("cannot read pcscd's reader configuration {path}: {source}")]
pub struct ReaderConfError {
    /// The folder or file.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// One complete entry of a reader.conf file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderEntry {
    /// `FRIENDLYNAME`, quotes removed.
    pub friendly_name: String,
    /// `DEVICENAME`.
    pub device: String,
    /// `LIBPATH`.
    pub library: PathBuf,
    /// `CHANNELID`, as written.
    pub channel: Option<String>,
}

/// Where a vpcd reader meets its cards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VpcdDevice {
    /// `/dev/null:PORT`: vpcd listens on `PORT + slot` of loopback.
    Listen {
        /// The first slot's port.
        port: u16,
    },
    /// `HOST:PORT`: vpcd connects to a card listening there.
    Connect {
        /// The card's host.
        host: String,
        /// The first slot's port.
        port: u16,
    },
}

/// A vpcd reader of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcdReader {
    /// The file it is in.
    pub file: PathBuf,
    /// Its entry.
    pub entry: ReaderEntry,
    /// Its ports.
    pub device: VpcdDevice,
    /// True when no other entry of the configuration has its
    /// `FRIENDLYNAME`, so pcscd's names for its slots are known.
    pub unique_name: bool,
}

impl VpcdReader {
    /// The first slot's port.
    pub fn port(&self) -> u16 {
        match &self.device {
            VpcdDevice::Listen { port } | VpcdDevice::Connect { port, .. } => *port,
        }
    }

    /// The PC/SC name of slot `slot`, when the configuration tells it.
    pub fn slot_name(&self, slot: u16) -> Option<String> {
        self.unique_name
            .then(|| format!("{} 00 {slot:02X}", self.entry.friendly_name))
    }
}

/// One vpcd slot a card can connect to: its port, and the reader name
/// pcscd gives it when the configuration tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderSlot {
    /// vpcd's port for this slot.
    pub port: u16,
    /// pcscd's name for the reader (`Virtual PCD 00 01`).
    pub reader: Option<String>,
}

/// The entries of one reader.conf text, in order; incomplete ones (no
/// `DEVICENAME` or `LIBPATH`) are left out, as pcscd leaves them out.
pub fn parse_entries(text: &str) -> Vec<ReaderEntry> {
    #[derive(Default)]
    struct Partial {
        name: Option<String>,
        device: Option<String>,
        library: Option<String>,
        channel: Option<String>,
    }
    fn finish(partial: Partial, entries: &mut Vec<ReaderEntry>) {
        if let (Some(friendly_name), Some(device), Some(library)) =
            (partial.name, partial.device, partial.library)
        {
            entries.push(ReaderEntry {
                friendly_name,
                device,
                library: PathBuf::from(library),
                channel: partial.channel,
            });
        }
    }
    let mut entries = Vec::new();
    let mut current = Partial::default();
    for line in text.lines() {
        let line = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        let Some((key, value)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .to_owned();
        match key {
            "FRIENDLYNAME" => {
                finish(std::mem::take(&mut current), &mut entries);
                current.name = Some(value);
            }
            "DEVICENAME" => current.device = Some(value),
            "LIBPATH" => current.library = Some(value),
            "CHANNELID" => current.channel = Some(value),
            _ => {}
        }
    }
    finish(current, &mut entries);
    entries
}

/// A number as C's `strtoul(text, NULL, 0)` reads it whole: `0x` hex, a
/// leading `0` octal, else decimal.
pub fn parse_c_number(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1
        && let Some(octal) = text.strip_prefix('0')
    {
        u32::from_str_radix(octal, 8).ok()
    } else {
        text.parse().ok()
    }
}

/// True when the entry's driver is vpcd (`libifdvpcd.so`, or a copy
/// named `libifdvpcd-*`).
pub fn is_vpcd(entry: &ReaderEntry) -> bool {
    entry
        .library
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("libifdvpcd"))
}

/// vpcd's `DEVICENAME`, or `None` when it is not one vpcd reads.
pub fn parse_device(device: &str) -> Option<VpcdDevice> {
    let (host, port) = device.rsplit_once(':')?;
    let port = u16::try_from(parse_c_number(port)?).ok()?;
    if host == "/dev/null" {
        Some(VpcdDevice::Listen { port })
    } else if host.is_empty() {
        None
    } else {
        Some(VpcdDevice::Connect {
            host: host.to_owned(),
            port,
        })
    }
}

/// The vpcd readers of every file in `dir` (file names in byte order),
/// with the names pcscd gives them where the configuration tells them. A
/// folder that does not exist has none.
pub fn read_dir(dir: &Path) -> Result<Vec<VpcdReader>, ReaderConfError> {
    let error = |path: &Path| {
        let path = path.to_owned();
        move |source| ReaderConfError { path, source }
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(dir)(e)),
    };
    let mut files = Vec::new();
    for item in listing {
        let item = item.map_err(error(dir))?;
        let path = item.path();
        // pcscd skips hidden files (and so the temporary files of an
        // atomic write).
        let hidden = item.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut entries = Vec::new();
    for file in files {
        let text = std::fs::read(&file).map_err(error(&file))?;
        for entry in parse_entries(&String::from_utf8_lossy(&text)) {
            entries.push((file.clone(), entry));
        }
    }
    Ok(vpcd_readers(entries))
}

/// The vpcd readers among `entries` (each with the file it came from).
pub fn vpcd_readers(entries: Vec<(PathBuf, ReaderEntry)>) -> Vec<VpcdReader> {
    let names: Vec<String> = entries
        .iter()
        .map(|(_, entry)| entry.friendly_name.clone())
        .collect();
    entries
        .into_iter()
        .filter(|(_, entry)| is_vpcd(entry))
        .filter_map(|(file, entry)| {
            let device = parse_device(&entry.device)?;
            let unique_name = names.iter().filter(|n| **n == entry.friendly_name).count() == 1;
            Some(VpcdReader {
                file,
                entry,
                device,
                unique_name,
            })
        })
        .collect()
}

/// The slots cards can connect to (vpcd listening), in port order, each
/// reader giving [`VPCD_SLOTS`]. Two entries of one driver library share
/// its slots (its static memory), so only the first of them counts.
pub fn listening_slots(readers: &[VpcdReader]) -> Vec<ReaderSlot> {
    let mut seen_libraries: Vec<&Path> = Vec::new();
    let mut slots = Vec::new();
    for reader in readers {
        let VpcdDevice::Listen { port } = reader.device else {
            continue;
        };
        if seen_libraries.contains(&reader.entry.library.as_path()) {
            continue;
        }
        seen_libraries.push(&reader.entry.library);
        for slot in 0..VPCD_SLOTS {
            if let Some(port) = port.checked_add(slot) {
                slots.push(ReaderSlot {
                    port,
                    reader: reader.slot_name(slot),
                });
            }
        }
    }
    slots.sort_by_key(|slot| slot.port);
    slots.dedup_by_key(|slot| slot.port);
    slots
}

/// The slots for cards that start at `port` (`--vpcd HOST:PORT`): the
/// configuration's slots from the one on `port` on, or `None` when no
/// configured slot has that port.
pub fn slots_from(slots: &[ReaderSlot], port: u16) -> Option<Vec<ReaderSlot>> {
    let first = slots.iter().position(|slot| slot.port == port)?;
    Some(slots[first..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x8C7B\nLIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID    0x8C7B\n";

    fn readers(files: &[(&str, &str)]) -> Vec<VpcdReader> {
        vpcd_readers(
            files
                .iter()
                .flat_map(|(file, text)| {
                    parse_entries(text)
                        .into_iter()
                        .map(move |entry| (PathBuf::from(file), entry))
                })
                .collect(),
        )
    }

    #[test]
    fn debians_entry_gives_two_named_slots() {
        let readers = readers(&[("vpcd", DEBIAN)]);
        assert_eq!(readers.len(), 1);
        assert_eq!(readers[0].device, VpcdDevice::Listen { port: 35963 });
        assert_eq!(readers[0].entry.channel.as_deref(), Some("0x8C7B"));
        assert_eq!(
            listening_slots(&readers),
            vec![
                ReaderSlot {
                    port: 35963,
                    reader: Some("Virtual PCD 00 00".into())
                },
                ReaderSlot {
                    port: 35964,
                    reader: Some("Virtual PCD 00 01".into())
                },
            ]
        );
    }

    #[test]
    fn copies_add_slots_and_a_second_entry_of_one_library_adds_none() {
        let copy = "# written by vscard\nFRIENDLYNAME \"Virtual PCD 1\"\nDEVICENAME /dev/null:35965 # two more\nLIBPATH /usr/local/lib/vscard/pcsc/libifdvpcd-vscard-1.so\n";
        let same = "FRIENDLYNAME \"Other\"\nDEVICENAME /dev/null:0x9000\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\n";
        let slots = listening_slots(&readers(&[("vpcd", DEBIAN), ("x", copy), ("y", same)]));
        let ports: Vec<u16> = slots.iter().map(|s| s.port).collect();
        assert_eq!(ports, [35963, 35964, 35965, 35966]);
        assert_eq!(slots[3].reader.as_deref(), Some("Virtual PCD 1 00 01"));
        assert_eq!(
            slots_from(&slots, 35964).map(|s| s.len()),
            Some(3),
            "from the second slot on"
        );
        assert_eq!(slots_from(&slots, 4000), None);
    }

    #[test]
    fn shared_names_reverse_entries_and_other_drivers() {
        let twin = "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x8C7D\nLIBPATH /opt/libifdvpcd-copy.so\n";
        let reverse = "FRIENDLYNAME \"R\"\nDEVICENAME localhost:0x8C80\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\n";
        let ccid = "FRIENDLYNAME \"Twin\"\nDEVICENAME /dev/ttyS0\nLIBPATH /usr/lib/pcsc/drivers/serial/libccidtwin.so\n";
        let readers = readers(&[("a", DEBIAN), ("b", twin), ("c", reverse), ("d", ccid)]);
        assert_eq!(readers.len(), 3);
        assert_eq!(
            readers[2].device,
            VpcdDevice::Connect {
                host: "localhost".into(),
                port: 0x8C80
            }
        );
        let slots = listening_slots(&readers);
        assert_eq!(slots.len(), 4);
        // Two entries named "Virtual PCD": pcscd numbers them in its own
        // order, so neither name is known.
        assert!(slots.iter().all(|s| s.reader.is_none()));
    }

    #[test]
    fn numbers_read_as_strtoul_base_zero() {
        assert_eq!(parse_c_number("0x8C7B"), Some(35963));
        assert_eq!(parse_c_number("35963"), Some(35963));
        assert_eq!(parse_c_number("010"), Some(8));
        assert_eq!(parse_c_number("0"), Some(0));
        assert_eq!(parse_c_number("port"), None);
        assert_eq!(parse_device("/dev/null:0x10000"), None);
        assert_eq!(parse_device("nocolon"), None);
    }

    #[test]
    fn incomplete_entries_are_left_out() {
        assert!(parse_entries("FRIENDLYNAME \"x\"\nLIBPATH /a/libifdvpcd.so\n").is_empty());
        assert!(parse_entries("").is_empty());
    }

    #[test]
    fn a_missing_folder_has_no_readers() {
        assert_eq!(
            read_dir(Path::new("/nonexistent/reader.conf.d")).unwrap(),
            Vec::new()
        );
    }
}
