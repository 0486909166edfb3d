//! Who listens on vpcd's port: the peer check (issue 12).
//!
//! vpcd has no authentication: whatever listens on the port the card
//! connects to is its reader, and a reader can block the PIN and the PUK.
//! So, in client mode, before a card answers anything on a new connection,
//! [`check`] finds who holds the listening socket on the peer's port and
//! accepts only root's pcscd:
//!
//! 1. `/proc/net/tcp` and `/proc/net/tcp6` (this network namespace) give
//!    the LISTEN sockets on the port whose address covers the peer's (the
//!    address itself, the wildcard, a v4-mapped address), each with its
//!    owner's uid and its inode.
//! 2. `/proc/*/fd` links `socket:[INODE]` give the processes holding it;
//!    each must be named `pcscd` (`/proc/PID/comm`) and run as root
//!    (`/proc/PID/status`, `Uid:`).
//! 3. An unprivileged user cannot read the fd table of root's processes.
//!    A socket owned by uid 0 whose holder is not visible is accepted when
//!    a root process named `pcscd` runs (only root can own that socket);
//!    any other socket nobody visible holds is refused.
//!
//! What it does not do: it cannot look at another machine (a non-loopback
//! peer is refused, unless the check is off), it trusts root entirely, and
//! it proves nothing about the bytes on the wire (no encryption, no
//! authentication of the messages).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Whom a card accepts as its reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Only root's pcscd, checked through `/proc` at each connection (the
    /// default). Client mode with a loopback address only.
    #[default]
    Pcscd,
    /// Whatever listens (no check): for set-ups the check cannot see, such
    /// as vpcd on another machine or pcscd in another namespace.
    Any,
}

/// The process pcscd should be (`/proc/PID/comm`).
const PCSCD: &str = "pcscd";

/// A process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its pid (in this pid namespace).
    pub pid: u32,
    /// Its name, `/proc/PID/comm`.
    pub name: String,
    /// Its real uid.
    pub uid: u32,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {}, uid {})", self.name, self.pid, self.uid)
    }
}

impl Process {
    fn is_root_pcscd(&self) -> bool {
        self.name == PCSCD && self.uid == 0
    }
}

/// Why a peer was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer is not on this machine: `/proc` cannot tell who it is.
    #[error(
        "vpcd at {addr} is not a loopback address: the peer check cannot see who listens there"
    )]
    Remote {
        /// The address (as given, or as connected).
        addr: String,
    },
    /// No LISTEN socket covers the port.
    #[error("port {port}: no process found listening")]
    NoListener {
        /// vpcd's port.
        port: u16,
    },
    /// The socket is held by another process than root's pcscd.
    #[error("port {port} is held by {process}, not by root's pcscd")]
    NotPcscd {
        /// vpcd's port.
        port: u16,
        /// The process found.
        process: Process,
    },
    /// Nobody visible holds the socket, and it is not one root's pcscd
    /// could own.
    #[error("port {port}: no process found holding the listening socket (owned by uid {uid})")]
    NoProcess {
        /// vpcd's port.
        port: u16,
        /// The socket's owner, from `/proc/net/tcp`.
        uid: u32,
    },
    /// The end that accepted this very connection belongs to another uid
    /// than root: whoever listened when the card connected was not root's
    /// pcscd, whatever listens now.
    #[error("port {port}: the connection was accepted by a socket of uid {uid}, not root's pcscd")]
    NotRootConnection {
        /// vpcd's port.
        port: u16,
        /// The accepting socket's owner, from `/proc/net/tcp`.
        uid: u32,
    },
    /// The end that accepted this connection is already gone (a pcscd
    /// that died with the connection in its queue): the bridge treats it
    /// as a closed connection and connects again, since nothing was
    /// answered.
    #[error("port {port}: the end that accepted the connection is gone")]
    ConnectionGone {
        /// vpcd's port.
        port: u16,
    },
    /// `/proc` could not be read (not Linux, or no `/proc` mounted).
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl PeerError {
    /// True for what a root pcscd that is dying shows for a moment (seen
    /// when pcscd is killed and started again under a running card): a
    /// listening socket owned by root whose holder is not found. Worth
    /// looking again shortly before refusing. Nothing else is: no listener
    /// at all, once connected, means whoever accepted the connection has
    /// closed its listener (an impostor making room for root's pcscd to
    /// bind, so that a later look would pass), and a socket of another uid
    /// or held by another process is refused at once.
    pub fn is_transient(&self) -> bool {
        matches!(self, PeerError::NoProcess { uid: 0, .. })
    }
}

/// Who the check accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The pcscd processes seen holding the socket.
    Seen(Vec<Process>),
    /// A socket of uid 0 whose holder this user cannot see, with root's
    /// pcscd running.
    RootSocket,
}

/// Checks that `peer` (the vpcd end of a connection just made) is a socket
/// held by root's pcscd on this machine.
pub fn check(peer: SocketAddr) -> Result<Accepted, PeerError> {
    ProcFs::new("/proc").check(peer)
}

/// [`check`], and then the connection itself (`local` is the card's end):
/// the socket that accepted it must be root's, and held by root's pcscd
/// where that can be seen. The listener alone is not enough: a process
/// that accepted the card's connection and then closed its listener,
/// letting root's pcscd bind the port, would pass a look at the listener.
pub fn check_connection(peer: SocketAddr, local: SocketAddr) -> Result<Accepted, PeerError> {
    ProcFs::new("/proc").check_connection(peer, local)
}

/// Refuses, before any connection, a host the check cannot look at: an
/// address that is not loopback. A host name is resolved later and the
/// connected address checked by [`check`].
pub fn check_host(host: &str, port: u16) -> Result<(), PeerError> {
    match host.parse::<IpAddr>() {
        Ok(ip) if !ip.to_canonical().is_loopback() => Err(PeerError::Remote {
            addr: SocketAddr::new(ip, port).to_string(),
        }),
        _ => Ok(()),
    }
}

/// One LISTEN socket of `/proc/net/tcp*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    pub addr: SocketAddr,
    pub uid: u32,
    pub inode: u64,
}

/// The socket state LISTEN in `/proc/net/tcp` (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// The LISTEN sockets of a `/proc/net/tcp` (IPv4) or `/proc/net/tcp6`
/// table. Lines that do not parse (the header) are skipped.
pub(crate) fn parse_listeners(table: &str) -> Vec<Listener> {
    table.lines().filter_map(parse_line).collect()
}

/// One table line: `sl local_address rem_address st tx:rx tr:when
/// retrnsmt uid timeout inode ...` (the kernel's `tcp4_seq_show`): the
/// addresses as printed, the state, the uid and the inode.
fn parse_row(line: &str) -> Option<(SocketAddr, SocketAddr, &str, u32, u64)> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = parse_address(fields.next()?)?;
    let remote = parse_address(fields.next()?)?;
    let state = fields.next()?;
    let _queues = fields.next()?;
    let _timer = fields.next()?;
    let _retransmits = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some((local, remote, state, uid, inode))
}

/// A LISTEN line as a [`Listener`].
fn parse_line(line: &str) -> Option<Listener> {
    let (addr, _, state, uid, inode) = parse_row(line)?;
    (state == LISTEN).then_some(Listener { addr, uid, inode })
}

/// One socket of `/proc/net/tcp*` in any state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Connection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
    pub inode: u64,
}

/// Every socket of a `/proc/net/tcp` or `tcp6` table, addresses in
/// canonical form (a v4-mapped IPv6 address as IPv4).
pub(crate) fn parse_connections(table: &str) -> Vec<Connection> {
    table
        .lines()
        .filter_map(parse_row)
        .map(|(local, remote, _, uid, inode)| Connection {
            local: canonical(local),
            remote: canonical(remote),
            uid,
            inode,
        })
        .collect()
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `0100007F:8C7B` or 32 hex digits and a port. The address is printed
/// as 32-bit words in host byte order (`%08X` of the raw `__be32`), the
/// port as a number.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (chunk, out) in bytes.chunks_exact_mut(4).enumerate() {
                let hex = address.get(chunk * 8..chunk * 8 + 8)?;
                out.copy_from_slice(&word(hex)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// True when a socket listening on `listen` takes connections to `peer`
/// (same port, and the same address, the wildcard, or, for an IPv6 socket,
/// the v4-mapped address or the dual-stack wildcard). Generous on purpose:
/// every socket that might have taken the connection is checked.
fn covers(listen: SocketAddr, peer: SocketAddr) -> bool {
    if listen.port() != peer.port() {
        return false;
    }
    match (listen.ip(), peer.ip()) {
        (IpAddr::V4(listen), IpAddr::V4(peer)) => listen.is_unspecified() || listen == peer,
        (IpAddr::V6(listen), IpAddr::V6(peer)) => listen.is_unspecified() || listen == peer,
        (IpAddr::V6(listen), IpAddr::V4(peer)) => {
            listen.is_unspecified() || listen.to_ipv4_mapped() == Some(peer)
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// The listeners that can have taken a connection to `peer`. An IPv6
/// listener is one only when no IPv4 listener covers an IPv4 peer: Linux
/// lets an IPv6-only socket (`IPV6_V6ONLY`) share the port with pcscd's
/// IPv4 one, and such a socket, which never sees the connection, must not
/// get the card refused.
fn candidates(listeners: Vec<Listener>, peer: SocketAddr) -> Vec<Listener> {
    let mut covering: Vec<Listener> = listeners
        .into_iter()
        .filter(|l| covers(l.addr, peer))
        .collect();
    if peer.is_ipv4() && covering.iter().any(|l| l.addr.is_ipv4()) {
        covering.retain(|l| l.addr.is_ipv4());
    }
    covering
}

/// A `/proc` tree (the real one, or a copy in a test).
pub(crate) struct ProcFs {
    root: PathBuf,
}

impl ProcFs {
    pub(crate) fn new(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs { root: root.into() }
    }

    pub(crate) fn check(&self, peer: SocketAddr) -> Result<Accepted, PeerError> {
        // `::ffff:127.0.0.1` is IPv4's loopback, reached over IPv4.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        if !peer.ip().is_loopback() {
            return Err(PeerError::Remote {
                addr: peer.to_string(),
            });
        }
        let port = peer.port();
        let listeners = candidates(self.listeners()?, peer);
        if listeners.is_empty() {
            return Err(PeerError::NoListener { port });
        }
        let holders = self.holders(listeners.iter().map(|l| l.inode).collect());
        let mut seen = Vec::new();
        for listener in &listeners {
            match holders.get(&listener.inode) {
                Some(processes) => {
                    if let Some(process) = processes.iter().find(|p| !p.is_root_pcscd()) {
                        return Err(PeerError::NotPcscd {
                            port,
                            process: process.clone(),
                        });
                    }
                    seen.extend(processes.iter().cloned());
                }
                // Only root's processes are hidden from the fd scan of an
                // unprivileged user (and non-dumpable ones, whose sockets
                // are their own uid's): uid 0 plus a running root pcscd is
                // the most that can be known.
                None if listener.uid == 0 && self.root_pcscd_runs() => {}
                None => {
                    return Err(PeerError::NoProcess {
                        port,
                        uid: listener.uid,
                    });
                }
            }
        }
        Ok(if seen.is_empty() {
            Accepted::RootSocket
        } else {
            Accepted::Seen(seen)
        })
    }

    /// Every LISTEN socket, IPv4 and IPv6 (no `tcp6` table: no IPv6).
    fn listeners(&self) -> Result<Vec<Listener>, PeerError> {
        Ok(self
            .tables()?
            .iter()
            .flat_map(|table| parse_listeners(table))
            .collect())
    }

    /// The `tcp` and `tcp6` tables (no `tcp6` table: no IPv6).
    fn tables(&self) -> Result<Vec<String>, PeerError> {
        let mut all = Vec::new();
        for (name, required) in [("tcp", true), ("tcp6", false)] {
            let path = self.root.join("net").join(name);
            match fs::read_to_string(&path) {
                Ok(table) => all.push(table),
                Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(PeerError::Proc { path, source }),
            }
        }
        Ok(all)
    }

    pub(crate) fn check_connection(
        &self,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Result<Accepted, PeerError> {
        let accepted = self.check(peer)?;
        let (peer, local) = (canonical(peer), canonical(local));
        let port = peer.port();
        // The accepting end: its local address is the card's peer, its
        // remote the card's own end. Its uid is the accepting process's
        // (or, before accept(), the listener's, whose child it is).
        let server = self
            .tables()?
            .iter()
            .flat_map(|table| parse_connections(table))
            .find(|c| c.local == peer && c.remote == local)
            .ok_or(PeerError::ConnectionGone { port })?;
        if server.uid != 0 {
            return Err(PeerError::NotRootConnection {
                port,
                uid: server.uid,
            });
        }
        // Once accepted it has an inode: whoever holds it must be root's
        // pcscd where the fd tables can be read.
        if server.inode != 0
            && let Some(processes) = self.holders(vec![server.inode]).get(&server.inode)
            && let Some(process) = processes.iter().find(|p| !p.is_root_pcscd())
        {
            return Err(PeerError::NotPcscd {
                port,
                process: process.clone(),
            });
        }
        Ok(accepted)
    }

    /// The pids under the tree (entries that are numbers).
    fn pids(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// The visible processes holding each of `inodes`. Processes that end
    /// meanwhile, and fd tables this user may not read, are skipped.
    fn holders(&self, inodes: Vec<u64>) -> HashMap<u64, Vec<Process>> {
        let wanted: HashMap<String, u64> = inodes
            .into_iter()
            .map(|inode| (format!("socket:[{inode}]"), inode))
            .collect();
        let mut found: HashMap<u64, Vec<Process>> = HashMap::new();
        for pid in self.pids() {
            let Ok(fds) = fs::read_dir(self.root.join(pid.to_string()).join("fd")) else {
                continue;
            };
            let mut held: Vec<u64> = fds
                .filter_map(Result::ok)
                .filter_map(|fd| fs::read_link(fd.path()).ok())
                .filter_map(|target| wanted.get(target.to_str()?).copied())
                .collect();
            held.sort_unstable();
            held.dedup();
            if held.is_empty() {
                continue;
            }
            let process = self.process(pid);
            for inode in held {
                found.entry(inode).or_default().push(process.clone());
            }
        }
        found
    }

    /// A process's name and real uid (`?` and `u32::MAX` when it ended:
    /// then it cannot be pcscd either).
    fn process(&self, pid: u32) -> Process {
        let dir = self.root.join(pid.to_string());
        let name = read_trimmed(&dir.join("comm")).unwrap_or_else(|| "?".to_owned());
        let uid = read_trimmed(&dir.join("status"))
            .as_deref()
            .and_then(real_uid)
            .unwrap_or(u32::MAX);
        Process { pid, name, uid }
    }

    /// True when a process named pcscd runs as root (its `comm` and
    /// `status` are readable by everyone, unlike its fd table).
    fn root_pcscd_runs(&self) -> bool {
        self.pids()
            .into_iter()
            .any(|pid| self.process(pid).is_root_pcscd())
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|text| text.trim_end_matches('\n').to_owned())
}

/// The real uid of a `/proc/PID/status` (`Uid:\treal\teffective\t...`).
fn real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A `/proc/net/tcp` of an x86-64 host (little-endian words): pcscd's
    /// vpcd on 127.0.0.1:35963 (0x8C7B), sshd on 0.0.0.0:22, and a
    /// connection (state 01) on 35963 that is not a listener.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:8C7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   2: 0100007F:9C40 0100007F:8C7B 01 00000000:00000000 00:00000000 00000000  1000        0 5555 1 0000000000000000 20 4 30 10 -1
";

    /// A `/proc/net/tcp6`: a user's listener on [::1]:35964 and the
    /// wildcard [::]:8080.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:8C7C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 100 0 0 10 0
";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn listeners_of_an_ipv4_table_skip_the_header_and_connections() {
        assert_eq!(
            parse_listeners(TCP),
            [
                Listener {
                    addr: addr("127.0.0.1:35963"),
                    uid: 0,
                    inode: 41234
                },
                Listener {
                    addr: addr("0.0.0.0:22"),
                    uid: 0,
                    inode: 1001
                },
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn listeners_of_an_ipv6_table() {
        assert_eq!(
            parse_listeners(TCP6),
            [
                Listener {
                    addr: addr("[::1]:35964"),
                    uid: 1000,
                    inode: 777
                },
                Listener {
                    addr: addr("[::]:8080"),
                    uid: 0,
                    inode: 888
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        for line in [
            "",
            "   0: 0100007F 00000000:0000 0A",
            "   0: 0100007F:8C7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000 root 0 1",
            "   0: 0100007F:XYZW 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 01007F:8C7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
        ] {
            assert_eq!(parse_listeners(line), [], "{line:?}");
        }
    }

    #[test]
    fn which_listeners_take_a_connection() {
        let peer = addr("127.0.0.1:35963");
        assert!(covers(addr("127.0.0.1:35963"), peer));
        assert!(covers(addr("0.0.0.0:35963"), peer));
        assert!(covers(addr("[::]:35963"), peer));
        assert!(covers(addr("[::ffff:127.0.0.1]:35963"), peer));
        assert!(!covers(addr("127.0.0.1:35964"), peer), "another port");
        assert!(!covers(addr("127.0.0.2:35963"), peer));
        assert!(!covers(addr("[::1]:35963"), peer));
        assert!(covers(addr("[::1]:35963"), addr("[::1]:35963")));
        assert!(!covers(addr("0.0.0.0:35963"), addr("[::1]:35963")));
    }

    #[test]
    fn an_ipv6_only_listener_beside_pcscd_is_not_a_candidate() {
        let listener = |a: &str, inode| Listener {
            addr: addr(a),
            inode,
            uid: 1000,
        };
        let peer = addr("127.0.0.1:35963");
        let both = vec![listener("0.0.0.0:35963", 1), listener("[::]:35963", 2)];
        let inodes: Vec<u64> = candidates(both, peer).iter().map(|l| l.inode).collect();
        assert_eq!(inodes, [1]);
        // Alone, the dual-stack wildcard is the one that took it.
        let inodes: Vec<u64> = candidates(vec![listener("[::]:35963", 2)], peer)
            .iter()
            .map(|l| l.inode)
            .collect();
        assert_eq!(inodes, [2]);
    }

    #[test]
    fn uid_from_status() {
        let status = "Name:\tpcscd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(real_uid(status), Some(0));
        assert_eq!(real_uid("Uid:\t1000\t0\t0\t0\n"), Some(1000));
        assert_eq!(real_uid("Name:\tx\n"), None);
    }

    #[test]
    fn only_a_missing_listener_or_holder_is_looked_at_again() {
        assert!(PeerError::NoProcess { port: 1, uid: 0 }.is_transient());
        assert!(!PeerError::NoProcess { port: 1, uid: 1000 }.is_transient());
        assert!(!PeerError::NoListener { port: 1 }.is_transient());
        assert!(
            !PeerError::Remote {
                addr: "192.0.2.7:1".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn remote_hosts_are_refused_before_connecting() {
        assert!(check_host("127.0.0.1", 35963).is_ok());
        assert!(check_host("::1", 35963).is_ok());
        assert!(
            check_host("::ffff:127.0.0.1", 35963).is_ok(),
            "v4-mapped loopback"
        );
        assert!(
            check_host("localhost", 35963).is_ok(),
            "names: checked once connected"
        );
        let refused = check_host("192.0.2.7", 35963).unwrap_err();
        assert!(matches!(&refused, PeerError::Remote { addr } if addr == "192.0.2.7:35963"));
        assert_eq!(
            refused.to_string(),
            "vpcd at 192.0.2.7:35963 is not a loopback address: the peer check cannot see who listens there"
        );
        assert!(matches!(
            check(addr("192.0.2.7:35963")),
            Err(PeerError::Remote { .. })
        ));
    }

    /// This test process listening: found through the real `/proc`, by
    /// pid, and refused because it is not pcscd.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_listener_of_this_process_is_found_and_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        match check(peer) {
            Err(PeerError::NotPcscd { port, process }) => {
                assert_eq!(port, peer.port());
                assert_eq!(process.pid, std::process::id());
                assert_ne!(process.name, PCSCD);
            }
            other => panic!("{other:?}"),
        }
        drop(listener);
        assert!(matches!(
            check(peer),
            Err(PeerError::NoListener { port }) if port == peer.port()
        ));
    }

    #[test]
    #[cfg(all(unix, target_endian = "little"))]
    fn the_end_that_accepted_the_connection_must_be_roots_pcscd() {
        // Root's pcscd listens now, but the connection was accepted by a
        // user's socket (which then closed its listener): refused.
        let tree = FakeProc::new("impostor", 0, &[(100, "pcscd", 0, Some(true))]);
        assert!(matches!(
            tree.check_connection(),
            Err(PeerError::ConnectionGone { port: 35963 })
        ));
        tree.accepted_by(1000, 777, None);
        let refused = tree.check_connection().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "port 35963: the connection was accepted by a socket of uid 1000, not root's pcscd"
        );
        // Accepted by root, not yet taken by accept() (no inode): fine.
        let tree = FakeProc::new("backlog", 0, &[(100, "pcscd", 0, Some(true))]);
        tree.accepted_by(0, 0, None);
        assert!(tree.check_connection().is_ok());
        // Accepted and held by root's pcscd: fine; held by another root
        // process: refused.
        let tree = FakeProc::new("held", 0, &[(100, "pcscd", 0, Some(true))]);
        tree.accepted_by(0, 888, Some(100));
        assert!(tree.check_connection().is_ok());
        let tree = FakeProc::new(
            "heldbyother",
            0,
            &[
                (100, "pcscd", 0, Some(true)),
                (300, "socat", 0, Some(false)),
            ],
        );
        tree.accepted_by(0, 999, Some(300));
        assert!(matches!(
            tree.check_connection(),
            Err(PeerError::NotPcscd { process, .. }) if process.pid == 300
        ));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_accepting_end_of_a_real_connection_is_found_with_its_uid() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let local = client.local_addr().unwrap();
        let table = fs::read_to_string("/proc/net/tcp").unwrap();
        let found = parse_connections(&table)
            .into_iter()
            .find(|c| c.local == server && c.remote == local)
            .unwrap();
        assert_eq!(found.uid, rustix::process::geteuid().as_raw());
        assert_ne!(found.inode, 0);
        // And the check refuses it, this process not being pcscd.
        assert!(matches!(
            check_connection(server, local),
            Err(PeerError::NotPcscd { .. })
        ));
    }

    #[test]
    fn no_proc_is_an_error_naming_the_file() {
        let proc = ProcFs::new("/nonexistent-proc-for-vscard-test");
        match proc.check(addr("127.0.0.1:35963")) {
            Err(PeerError::Proc { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent-proc-for-vscard-test/net/tcp"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A `/proc` tree in a temporary folder: `net/tcp` with one listener
    /// on 127.0.0.1:35963 (inode 41234) owned by `socket_uid`, and the
    /// given processes (pid, comm, uid, holds the socket or not; `None`:
    /// its fd table is unreadable, as root's are to a user).
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(
            name: &str,
            socket_uid: u32,
            processes: &[(u32, &str, u32, Option<bool>)],
        ) -> FakeProc {
            let root =
                std::env::temp_dir().join(format!("vscard-peer-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("net")).unwrap();
            let line = format!(
                "   0: 0100007F:8C7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000 {socket_uid} 0 41234 1 0 100 0 0 10 0\n"
            );
            fs::write(
                root.join("net/tcp"),
                format!("  sl  local_address ...\n{line}"),
            )
            .unwrap();
            for &(pid, comm, uid, holds) in processes {
                let dir = root.join(pid.to_string());
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
                fs::write(
                    dir.join("status"),
                    format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
                )
                .unwrap();
                if let Some(holds) = holds {
                    fs::create_dir_all(dir.join("fd")).unwrap();
                    let target = if holds { "socket:[41234]" } else { "/dev/null" };
                    std::os::unix::fs::symlink(target, dir.join("fd/3")).unwrap();
                }
            }
            FakeProc(root)
        }

        fn check(&self) -> Result<Accepted, PeerError> {
            ProcFs::new(&self.0).check(addr("127.0.0.1:35963"))
        }

        /// Adds the accepting end of a connection from 127.0.0.1:50000 to
        /// the listener, owned by `uid`, with socket `inode`, held by the
        /// process `holder` (which must exist) when given.
        fn accepted_by(&self, uid: u32, inode: u64, holder: Option<u32>) {
            let path = self.0.join("net/tcp");
            let mut table = fs::read_to_string(&path).unwrap();
            table.push_str(&format!(
                "   1: 0100007F:8C7B 0100007F:C350 01 00000000:00000000 00:00000000 00000000 {uid} 0 {inode} 1 0 20 4 30 10 -1\n"
            ));
            fs::write(&path, table).unwrap();
            if let Some(pid) = holder {
                let fd = self.0.join(pid.to_string()).join("fd");
                fs::create_dir_all(&fd).unwrap();
                std::os::unix::fs::symlink(format!("socket:[{inode}]"), fd.join("4")).unwrap();
            }
        }

        fn check_connection(&self) -> Result<Accepted, PeerError> {
            ProcFs::new(&self.0).check_connection(addr("127.0.0.1:35963"), addr("127.0.0.1:50000"))
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    #[cfg(all(unix, target_endian = "little"))]
    fn owners_in_a_fake_proc_tree() {
        let pcscd = Process {
            pid: 100,
            name: PCSCD.to_owned(),
            uid: 0,
        };
        // Root's pcscd seen holding the socket.
        let tree = FakeProc::new(
            "seen",
            0,
            &[
                (100, "pcscd", 0, Some(true)),
                (7, "bash", 1000, Some(false)),
            ],
        );
        assert_eq!(tree.check().unwrap(), Accepted::Seen(vec![pcscd]));
        // A user's process holding it, even named pcscd.
        let tree = FakeProc::new("user", 1000, &[(200, "pcscd", 1000, Some(true))]);
        match tree.check() {
            Err(PeerError::NotPcscd {
                port: 35963,
                process,
            }) => {
                assert_eq!(process.to_string(), "pcscd (pid 200, uid 1000)");
            }
            other => panic!("{other:?}"),
        }
        // A second holder that is not pcscd spoils it.
        let tree = FakeProc::new(
            "shared",
            0,
            &[(100, "pcscd", 0, Some(true)), (300, "nc", 0, Some(true))],
        );
        assert!(
            matches!(tree.check(), Err(PeerError::NotPcscd { process, .. }) if process.pid == 300)
        );
        // Root's fd tables hidden (an unprivileged caller): a root socket
        // with root's pcscd running is accepted ...
        let tree = FakeProc::new("hidden", 0, &[(100, "pcscd", 0, None)]);
        assert_eq!(tree.check().unwrap(), Accepted::RootSocket);
        // ... but not without root's pcscd ...
        let tree = FakeProc::new("nopcscd", 0, &[(100, "pcscd", 1000, None)]);
        assert!(matches!(
            tree.check(),
            Err(PeerError::NoProcess {
                port: 35963,
                uid: 0
            })
        ));
        // ... and never a hidden socket of another uid.
        let tree = FakeProc::new("hiddenuser", 1000, &[(100, "pcscd", 0, None)]);
        let refused = tree.check().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "port 35963: no process found holding the listening socket (owned by uid 1000)"
        );
    }
}
