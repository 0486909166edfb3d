//! What the link keeps in the state folder (`<state>/link/`, mode 0700;
//! every file mode 0600, replaced atomically):
//!
//! - `identity.json`: this end's static X25519 key pair (the card's, or
//!   the relay's).
//! - `cards.json` (relay): the cards it pinned, by name and public key.
//! - `relays.json` (card side): the relays it pinned: name, address, key.
//! - `pairings/ID.json` (relay): pending pairings, one file each, written
//!   by `vscard relay pair` and read by the running relay at each pairing
//!   attempt; removing the file is what uses the secret up (only one
//!   remover can succeed).
//! - `relay.json` (relay): where the running relay listens, for `relay
//!   pair` to put in the URI.
//! - `state.lock`: an empty file whose advisory lock (`flock`) every read,
//!   change and write of `cards.json` or `relays.json` holds, so two
//!   `vscard relay pair` (or a pairing and a `relay forget`) at once never
//!   lose an entry: the second reads what the first wrote.

use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::TryRng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use vscard_emulator::files;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::LinkError;
use crate::noise;

/// A public key: 32 bytes of X25519.
pub type PublicKey = [u8; 32];

/// The SHA-256 of a public key, in hex: what a pairing URI carries and
/// `relay list` shows.
pub fn fingerprint(key: &PublicKey) -> String {
    hex::encode(Sha256::digest(key))
}

/// 32 random bytes from the operating system.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, LinkError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    rand::rngs::SysRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|e| LinkError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This end's static key pair. The private half is zeroized on drop and
/// never shown.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    private: [u8; 32],
    #[zeroize(skip)]
    public: PublicKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity(public {})", fingerprint(&self.public))
    }
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct IdentityFile {
    private: String,
    public: String,
}

impl Identity {
    /// A fresh key pair.
    pub fn generate() -> Result<Identity, LinkError> {
        let pair = noise::builder(noise::PINNED)?.generate_keypair()?;
        let private = Zeroizing::new(pair.private);
        Ok(Identity {
            private: key32(&private).ok_or(LinkError::Noise("bad key length".to_owned()))?,
            public: key32(&pair.public).ok_or(LinkError::Noise("bad key length".to_owned()))?,
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// An identity from a stored key pair (a card host's database, a
    /// device key file). The halves are not checked against each other: a
    /// mismatched pair fails every handshake.
    pub fn from_keys(private: &[u8; 32], public: PublicKey) -> Identity {
        Identity {
            private: *private,
            public,
        }
    }

    /// The identity of a stored private key, its public half derived from
    /// it (X25519, as Noise derives its static key: the key a handshake
    /// with it proves), so a stored public half can be checked against
    /// it.
    pub fn from_private(private: &[u8; 32]) -> Identity {
        let secret = x25519_dalek::StaticSecret::from(*private);
        Identity {
            private: *private,
            public: x25519_dalek::PublicKey::from(&secret).to_bytes(),
        }
    }

    /// The private half, for storing it (a card host's database, a device
    /// key file); wiped when dropped.
    pub fn private_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.private)
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

fn key_from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = Zeroizing::new(hex::decode(text).ok()?);
    key32(&bytes)
}

/// A card pinned by the relay.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinnedCard {
    /// Its name (`relay forget NAME`).
    pub name: String,
    /// Its public key, hex.
    pub key: String,
    /// When it paired (Unix seconds).
    pub paired: u64,
}

/// A relay pinned by a card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinnedRelay {
    /// Its name, as the pairing URI gave it.
    pub name: String,
    /// Where it listens (HOST:PORT).
    pub address: String,
    /// Its public key, hex.
    pub key: String,
    /// When the card paired with it (Unix seconds).
    pub paired: u64,
}

impl PinnedRelay {
    /// The pinned key.
    pub fn public_key(&self) -> Result<PublicKey, LinkError> {
        key_from_hex(&self.key).ok_or_else(|| LinkError::BadState {
            path: PathBuf::from("relays.json"),
            reason: format!("relay {} has a malformed key", self.name),
        })
    }
}

#[derive(Default, Serialize, Deserialize)]
struct CardsFile {
    cards: Vec<PinnedCard>,
}

#[derive(Default, Serialize, Deserialize)]
struct RelaysFile {
    relays: Vec<PinnedRelay>,
}

/// A pending pairing as stored (the secret zeroized on drop).
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct PairingFile {
    secret: String,
    expires: u64,
}

/// A pending pairing, found by its id.
pub struct Pending {
    /// The one-time secret (the Noise PSK).
    pub secret: Zeroizing<[u8; 32]>,
    /// When it stops working (Unix seconds).
    pub expires: u64,
    path: PathBuf,
}

/// Where the running relay listens.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelayInfo {
    /// The listening address.
    pub listen: String,
}

/// The link's folder in a state directory.
#[derive(Clone, Debug)]
pub struct LinkState {
    dir: PathBuf,
}

impl LinkState {
    /// `<state_dir>/link` (created, mode 0700, on first write).
    pub fn new(state_dir: &Path) -> LinkState {
        LinkState {
            dir: state_dir.join("link"),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self, dir: &Path) -> Result<(), LinkError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| LinkError::Io {
                path: dir.to_owned(),
                source,
            })
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), LinkError> {
        if let Some(parent) = path.parent() {
            self.ensure_dir(parent)?;
        }
        files::write_private_atomically(path, bytes).map_err(|e| LinkError::Io {
            path: e.path,
            source: e.source,
        })
    }

    /// The file's bytes, `None` when it does not exist.
    fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, LinkError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LinkError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, LinkError> {
        serde_json::from_slice(bytes).map_err(|e| LinkError::BadState {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn json<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, LinkError> {
        serde_json::to_vec_pretty(value)
            .map(Zeroizing::new)
            .map_err(|e| LinkError::Noise(format!("cannot encode state: {e}")))
    }

    /// This end's identity, made and stored on first use.
    pub fn identity(&self) -> Result<Identity, LinkError> {
        let path = self.dir.join("identity.json");
        if let Some(bytes) = Self::read(&path)? {
            let file: IdentityFile = Self::parse(&path, &bytes)?;
            let bad = || LinkError::BadState {
                path: path.clone(),
                reason: "malformed key".to_owned(),
            };
            return Ok(Identity {
                private: key_from_hex(&file.private).ok_or_else(bad)?,
                public: key_from_hex(&file.public).ok_or_else(bad)?,
            });
        }
        let identity = Identity::generate()?;
        let file = IdentityFile {
            private: hex::encode(identity.private),
            public: hex::encode(identity.public),
        };
        // Created only if absent (two processes starting on a fresh state
        // folder, `relay` and `relay pair` say, must end with one key):
        // written whole under a name of its own, then hard-linked
        // into place, which fails when another process got there first.
        let own = self
            .dir
            .join(format!(".identity.json.{}", hex::encode(*random::<8>()?)));
        self.write(&own, &Self::json(&file)?)?;
        let linked = std::fs::hard_link(&own, &path);
        let _ = std::fs::remove_file(&own);
        match linked {
            Ok(()) => Ok(identity),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.identity(),
            Err(source) => Err(LinkError::Io { path, source }),
        }
    }

    /// Takes the state folder's lock (`state.lock`, waiting for another
    /// holder); it lasts until the returned file is dropped.
    fn lock(&self) -> Result<std::fs::File, LinkError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.ensure_dir(&self.dir)?;
        let path = self.dir.join("state.lock");
        let io = |source| LinkError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    fn cards_path(&self) -> PathBuf {
        self.dir.join("cards.json")
    }

    /// The cards the relay pinned.
    pub fn cards(&self) -> Result<Vec<PinnedCard>, LinkError> {
        let path = self.cards_path();
        Ok(match Self::read(&path)? {
            Some(bytes) => Self::parse::<CardsFile>(&path, &bytes)?.cards,
            None => Vec::new(),
        })
    }

    /// The pinned card with this key, if any.
    pub fn card_by_key(&self, key: &PublicKey) -> Result<Option<PinnedCard>, LinkError> {
        let key = hex::encode(key);
        Ok(self.cards()?.into_iter().find(|card| card.key == key))
    }

    /// Pins a card's key under a name made unique from `label`; the same
    /// key pinned again keeps its entry. Returns the name.
    pub fn pin_card(&self, label: &str, key: &PublicKey) -> Result<String, LinkError> {
        let _lock = self.lock()?;
        let mut cards = self.cards()?;
        let hex_key = hex::encode(key);
        if let Some(card) = cards.iter().find(|card| card.key == hex_key) {
            return Ok(card.name.clone());
        }
        let base = clean_name(label);
        let mut name = base.clone();
        let mut n = 2;
        while cards.iter().any(|card| card.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        cards.push(PinnedCard {
            name: name.clone(),
            key: hex_key,
            paired: now_unix(),
        });
        self.write(&self.cards_path(), &Self::json(&CardsFile { cards })?)?;
        Ok(name)
    }

    /// Forgets a pinned card; false when no card has that name.
    pub fn forget_card(&self, name: &str) -> Result<bool, LinkError> {
        let _lock = self.lock()?;
        let mut cards = self.cards()?;
        let before = cards.len();
        cards.retain(|card| card.name != name);
        if cards.len() == before {
            return Ok(false);
        }
        self.write(&self.cards_path(), &Self::json(&CardsFile { cards })?)?;
        Ok(true)
    }

    fn relays_path(&self) -> PathBuf {
        self.dir.join("relays.json")
    }

    /// The relays this card side pinned.
    pub fn relays(&self) -> Result<Vec<PinnedRelay>, LinkError> {
        let path = self.relays_path();
        Ok(match Self::read(&path)? {
            Some(bytes) => Self::parse::<RelaysFile>(&path, &bytes)?.relays,
            None => Vec::new(),
        })
    }

    /// The pinned relay named `target` or listening at `target`.
    pub fn relay(&self, target: &str) -> Result<Option<PinnedRelay>, LinkError> {
        let relays = self.relays()?;
        Ok(relays
            .iter()
            .find(|relay| relay.name == target)
            .or_else(|| relays.iter().find(|relay| relay.address == target))
            .cloned())
    }

    /// Pins a relay (replacing an entry with the same address).
    pub fn pin_relay(&self, relay: PinnedRelay) -> Result<(), LinkError> {
        let _lock = self.lock()?;
        let mut relays = self.relays()?;
        relays.retain(|r| r.address != relay.address);
        relays.push(relay);
        self.write(&self.relays_path(), &Self::json(&RelaysFile { relays })?)
    }

    fn pairing_path(&self, id: &[u8; 16]) -> PathBuf {
        self.dir
            .join("pairings")
            .join(format!("{}.json", hex::encode(id)))
    }

    /// Makes a pending pairing valid for `lifetime`: a fresh id and secret.
    pub fn add_pairing(
        &self,
        lifetime: Duration,
    ) -> Result<([u8; 16], Zeroizing<[u8; 32]>), LinkError> {
        let id: [u8; 16] = *random::<16>()?;
        let secret = random::<32>()?;
        let file = PairingFile {
            secret: hex::encode(secret.as_ref()),
            expires: now_unix().saturating_add(lifetime.as_secs()),
        };
        self.write(&self.pairing_path(&id), &Self::json(&file)?)?;
        Ok((id, secret))
    }

    /// The pending pairing with this id (expired ones are removed and not
    /// returned).
    pub fn pairing(&self, id: &[u8; 16]) -> Result<Option<Pending>, LinkError> {
        let path = self.pairing_path(id);
        let Some(bytes) = Self::read(&path)? else {
            return Ok(None);
        };
        let file: PairingFile = Self::parse(&path, &bytes)?;
        if file.expires <= now_unix() {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        let secret =
            Zeroizing::new(
                key_from_hex(&file.secret).ok_or_else(|| LinkError::BadState {
                    path: path.clone(),
                    reason: "malformed secret".to_owned(),
                })?,
            );
        Ok(Some(Pending {
            secret,
            expires: file.expires,
            path,
        }))
    }

    /// Uses a pending pairing up; false when it was already used.
    pub fn consume(&self, pending: &Pending) -> Result<bool, LinkError> {
        match std::fs::remove_file(&pending.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(source) => Err(LinkError::Io {
                path: pending.path.clone(),
                source,
            }),
        }
    }

    /// Records where the running relay listens.
    pub fn set_relay_info(&self, info: &RelayInfo) -> Result<(), LinkError> {
        self.write(&self.dir.join("relay.json"), &Self::json(info)?)
    }

    /// Where the relay said it listens, if it ever ran here.
    pub fn relay_info(&self) -> Result<Option<RelayInfo>, LinkError> {
        let path = self.dir.join("relay.json");
        match Self::read(&path)? {
            Some(bytes) => Ok(Some(Self::parse(&path, &bytes)?)),
            None => Ok(None),
        }
    }
}

/// A name made of letters, digits, `.`, `_` and `-` (others become `-`),
/// never empty.
pub fn clean_name(label: &str) -> String {
    let name: String = label
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "card".to_owned()
    } else {
        name
    }
}

/// What a pairing URI carries:
/// `vscard-pair://HOST:PORT?name=NAME&key=FINGERPRINT&id=ID&secret=SECRET`.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingUri {
    /// The relay's address.
    pub address: String,
    /// The relay's name (the card side pins it under this name).
    pub name: String,
    /// SHA-256 of the relay's public key, hex.
    pub fingerprint: String,
    /// Which pending pairing.
    pub id: [u8; 16],
    /// The one-time secret.
    pub secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for PairingUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingUri")
            .field("address", &self.address)
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The URI scheme.
pub const PAIR_SCHEME: &str = "vscard-pair://";

impl PairingUri {
    /// The URI as text (it holds the secret: zeroized on drop).
    pub fn to_uri(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{PAIR_SCHEME}{}?name={}&key={}&id={}&secret={}",
            self.address,
            self.name,
            self.fingerprint,
            hex::encode(self.id),
            hex::encode(self.secret.as_ref())
        ))
    }

    /// Parses a pairing URI.
    pub fn parse(text: &str) -> Result<PairingUri, LinkError> {
        let bad = |reason: &str| LinkError::BadUri(reason.to_owned());
        let rest = text
            .trim()
            .strip_prefix(PAIR_SCHEME)
            .ok_or_else(|| bad("does not start with vscard-pair://"))?;
        let (address, query) = rest
            .split_once('?')
            .ok_or_else(|| bad("has no ?name=...&key=...&id=...&secret=..."))?;
        if address.is_empty() || !address.contains(':') {
            return Err(bad("has no HOST:PORT"));
        }
        let (mut name, mut fingerprint, mut id, mut secret) = (None, None, None, None);
        for pair in query.split('&') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("has a malformed query"))?;
            match key {
                "name" => name = Some(clean_name(value)),
                "key" => fingerprint = Some(value.to_ascii_lowercase()),
                "id" => {
                    id = Some(
                        hex::decode(value)
                            .ok()
                            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                            .ok_or_else(|| bad("has a malformed id"))?,
                    )
                }
                "secret" => {
                    secret = Some(Zeroizing::new(
                        key_from_hex(value).ok_or_else(|| bad("has a malformed secret"))?,
                    ))
                }
                _ => {}
            }
        }
        let fingerprint = fingerprint.ok_or_else(|| bad("has no key"))?;
        if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("has a malformed key fingerprint"));
        }
        Ok(PairingUri {
            address: address.to_owned(),
            name: name.unwrap_or_else(|| clean_name(address)),
            fingerprint,
            id: id.ok_or_else(|| bad("has no id"))?,
            secret: secret.ok_or_else(|| bad("has no secret"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_public_half_derived_is_noises() {
        for _ in 0..8 {
            let made = Identity::generate().unwrap();
            let derived = Identity::from_private(&made.private_key());
            assert_eq!(derived.public(), made.public());
        }
    }

    #[test]
    fn uri_round_trips_and_debug_hides_the_secret() {
        let uri = PairingUri {
            address: "127.0.0.1:35950".to_owned(),
            name: "desk".to_owned(),
            fingerprint: "ab".repeat(32),
            id: [7; 16],
            secret: Zeroizing::new([9; 32]),
        };
        let text = uri.to_uri();
        assert_eq!(PairingUri::parse(&text).unwrap(), uri);
        assert!(!format!("{uri:?}").contains("0909"));
        assert!(PairingUri::parse("vscard-pair://h:1?key=00").is_err());
        assert!(PairingUri::parse("http://h:1?").is_err());
    }

    #[test]
    fn ends_starting_together_get_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PublicKey> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| *LinkState::new(dir.path()).identity().unwrap().public()))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|key| key == &keys[0]), "{keys:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("link"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["identity.json"]);
    }

    #[test]
    fn files_are_private_and_pairings_work_once() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let state = LinkState::new(dir.path());
        let identity = state.identity().unwrap();
        assert_eq!(state.identity().unwrap().public(), identity.public());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.dir().join("identity.json")), 0o600);
        assert_eq!(mode(state.dir()), 0o700);
        let (id, secret) = state.add_pairing(Duration::from_secs(60)).unwrap();
        let pending = state.pairing(&id).unwrap().unwrap();
        assert_eq!(*pending.secret, *secret);
        assert!(state.consume(&pending).unwrap());
        assert!(!state.consume(&pending).unwrap());
        assert!(state.pairing(&id).unwrap().is_none());
        let (expired, _) = state.add_pairing(Duration::ZERO).unwrap();
        assert!(state.pairing(&expired).unwrap().is_none());
        assert_eq!(
            state.pin_card("my card", identity.public()).unwrap(),
            "my-card"
        );
        assert_eq!(
            state.pin_card("other", identity.public()).unwrap(),
            "my-card"
        );
        assert_eq!(state.pin_card("my card", &[1; 32]).unwrap(), "my-card-2");
        assert!(state.forget_card("my-card").unwrap());
        assert!(!state.forget_card("my-card").unwrap());
        assert_eq!(state.cards().unwrap().len(), 1);
    }
}
