//! Card images sealed at rest with AES-256-GCM.
//!
//! A sealed image is the plaintext image (what a store writes: the file
//! store's JSON document, the bindings' image bytes) encrypted under a
//! 256-bit key the caller holds ([`SealKey`]), behind a header in the
//! clear that the same key authenticates:
//!
//! ```text
//! magic      12 bytes  "VSCARDSEALED"
//! layout      1 byte   2 (this layout; 1 had no generation, still read)
//! version     4 bytes  the image format version of the plaintext, big-endian
//! generation  8 bytes  big-endian: grows by one at every seal of one card
//! id length   2 bytes  big-endian, at most MAX_IDENTITY
//! identity    n bytes  the card's identity (UTF-8 by convention; may be empty)
//! nonce      12 bytes  random, new at every seal
//! ciphertext  rest     AES-256-GCM of the plaintext, its 16-byte tag at the end
//! ```
//!
//! The associated data is everything before the nonce (magic, layout, the
//! image version, the generation and the card identity), so an image
//! given another card's identity, another version or another generation
//! fails to open exactly as a tampered byte or a wrong key does:
//! [`SealError::Rejected`], and not a byte of plaintext comes out. Keys are
//! wiped when dropped.
//!
//! Sealing gives confidentiality and integrity, not freshness: whoever can
//! write the stored bytes can put back an older sealed image of the same
//! card (and with it PIN tries already spent). The generation is what a
//! caller with a trusted place to keep a number (a phone keystore, a
//! hardware counter) checks against: [`Unsealed::generation`] of what it
//! opens must not be below the last generation it saw committed
//! ([`SealError::RolledBack`], through `ImageCodec::with_min_generation`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::TryRng;
use thiserror::Error;
use zeroize::Zeroizing;

/// The first bytes of every sealed image.
pub const SEAL_MAGIC: &[u8; 12] = b"VSCARDSEALED";
/// The sealed layout this build writes (it also reads layout 1, which
/// had no generation: read as generation 0).
pub const SEAL_LAYOUT: u8 = 2;
/// The first sealed layout (no generation field).
const SEAL_LAYOUT_1: u8 = 1;
/// The longest card identity a header carries.
pub const MAX_IDENTITY: usize = 1024;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Magic, layout, version, generation, identity length (layout 2).
const FIXED_HEADER: usize = SEAL_MAGIC.len() + 1 + 4 + 8 + 2;
/// The same without the generation (layout 1).
const FIXED_HEADER_1: usize = SEAL_MAGIC.len() + 1 + 4 + 2;

/// Why an image could not be sealed or opened, or a key not read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The bytes do not start with [`SEAL_MAGIC`]: not a sealed image.
    #[error("not an encrypted card image")]
    NotSealed,
    /// A sealed layout this build does not know.
    #[error("encrypted card image layout {0} is not supported (this vscard reads layouts 1 and 2)")]
    UnknownLayout(u8),
    /// The header or the ciphertext is cut short.
    #[error("encrypted card image truncated ({0} bytes)")]
    Truncated(usize),
    /// The identity is longer than [`MAX_IDENTITY`].
    #[error("card identity of {0} bytes is too long (at most {MAX_IDENTITY})")]
    IdentityTooLong(usize),
    /// Authentication failed: the wrong key, or a byte of the header or
    /// ciphertext changed. Nothing was decrypted.
    #[error(
        "cannot decrypt the card image: wrong key, or the image was modified (nothing was loaded)"
    )]
    Rejected,
    /// The image opened, but is another card's.
    #[error("the encrypted image is card {found:?}'s, not {expected:?}'s")]
    OtherCard {
        /// The identity expected.
        expected: String,
        /// The identity in the image.
        found: String,
    },
    /// The image opened, but is older than the last one the caller saw
    /// committed: a copy put back (and with it spent PIN tries).
    #[error(
        "the encrypted image is generation {found}, older than generation {minimum} already committed: an old copy was put back (refused)"
    )]
    RolledBack {
        /// The generation in the image.
        found: u64,
        /// The lowest generation the caller accepts.
        minimum: u64,
    },
    /// The header names another image format version than the image
    /// inside it.
    #[error(
        "the encrypted image's header says format version {header}, the image inside is version {image}"
    )]
    VersionMismatch {
        /// The version in the header.
        header: u32,
        /// The version of the plaintext image.
        image: u32,
    },
    /// A key that is not 32 bytes (or a key file not 64 hex digits).
    #[error("bad encryption key: {0}")]
    BadKey(String),
    /// The system gave no randomness for the nonce.
    #[error("no randomness for the nonce: {0}")]
    NoRandomness(String),
}

/// An AES-256 key for sealing card images. Wiped when dropped; `Debug`
/// does not show it.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(Zeroizing::new(bytes))
    }

    /// A key from a slice that must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<SealKey, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err(SealError::BadKey(format!(
                "{} bytes, an AES-256 key is 32",
                bytes.len()
            )));
        }
        key.copy_from_slice(bytes);
        Ok(SealKey(key))
    }

    /// A key from the contents of a key file: exactly 64 hexadecimal
    /// digits (either case), optionally followed by one newline (`\n` or
    /// `\r\n`). Nothing else is accepted (no raw bytes: 32 raw bytes that
    /// happen to end in a newline would otherwise be read two ways).
    pub fn from_key_file(contents: &[u8]) -> Result<SealKey, SealError> {
        let text = contents
            .strip_suffix(b"\r\n")
            .or_else(|| contents.strip_suffix(b"\n"))
            .unwrap_or(contents);
        if text.len() != 64 {
            return Err(SealError::BadKey(format!(
                "a key file holds 64 hexadecimal digits (and at most a newline), this one {} bytes",
                contents.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, key.as_mut_slice()).map_err(|_| {
            SealError::BadKey(
                "a key file holds 64 hexadecimal digits, this one other characters".to_owned(),
            )
        })?;
        Ok(SealKey(key))
    }

    /// A new random key from the system.
    pub fn generate() -> Result<SealKey, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::SysRng
            .try_fill_bytes(key.as_mut_slice())
            .map_err(|e| SealError::NoRandomness(e.to_string()))?;
        Ok(SealKey(key))
    }

    /// The key as a key file: 64 lower-case hex digits and a newline.
    /// (Encoded into a wiped buffer of the final size: no copy of the
    /// digits is left in a freed allocation.)
    pub fn to_key_file(&self) -> Zeroizing<String> {
        let mut digits = Zeroizing::new([0u8; 64]);
        let mut text = Zeroizing::new(String::with_capacity(digits.len() + 1));
        if hex::encode_to_slice(self.0.as_slice(), digits.as_mut_slice()).is_ok() {
            for &digit in digits.iter() {
                text.push(char::from(digit));
            }
        }
        text.push('\n');
        text
    }

    /// The cipher, keyed from the wiped buffer itself (no copy of the key
    /// on the stack); `aes` wipes its round keys when the cipher drops.
    fn cipher(&self) -> Result<Aes256Gcm, SealError> {
        Aes256Gcm::new_from_slice(self.0.as_slice())
            .map_err(|_| SealError::BadKey("an AES-256 key is 32 bytes".to_owned()))
    }
}

/// Reads a key file ([`SealKey::from_key_file`]'s format). The file must
/// be a regular file of this user that no one else can read or write
/// (mode 0600 or stricter, as for a private SSH key); anything else is
/// refused before it is read, naming the file but never its contents.
pub fn read_key_file(path: &std::path::Path) -> Result<SealKey, SealError> {
    use std::io::Read as _;
    let bad = |reason: String| SealError::BadKey(format!("{}: {reason}", path.display()));
    // Not through a planted link, and not blocking on a planted FIFO
    // before the checks below can refuse it.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::file_store::files::no_follow(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| bad(e.to_string()))?;
    let metadata = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !metadata.is_file() {
        return Err(bad("not a regular file".to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let user = rustix::process::geteuid().as_raw();
        if metadata.uid() != user {
            return Err(bad(format!(
                "owned by uid {}, not by this user (uid {user})",
                metadata.uid()
            )));
        }
        if metadata.mode() & 0o077 != 0 {
            return Err(bad(format!(
                "mode {:o} lets others read or write the key: chmod 600 it",
                metadata.mode() & 0o777
            )));
        }
    }
    let mut contents = Zeroizing::new(Vec::with_capacity(80));
    file.by_ref()
        .take(128)
        .read_to_end(&mut contents)
        .map_err(|e| bad(e.to_string()))?;
    SealKey::from_key_file(&contents).map_err(|e| match e {
        SealError::BadKey(reason) => bad(reason),
        other => other,
    })
}

/// True when `bytes` start as a sealed image does.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEAL_MAGIC)
}

/// Seals `plaintext` (an image of format `version`) for the card
/// `identity` under `key`, with a new random nonce, as generation 0 (for
/// callers that keep freshness elsewhere; see [`seal_generation`]).
pub fn seal(
    key: &SealKey,
    version: u32,
    identity: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_generation(key, version, 0, identity, plaintext)
}

/// Seals `plaintext` as [`seal`] does, as generation `generation` of the
/// card (the caller makes it grow with every commit).
pub fn seal_generation(
    key: &SealKey,
    version: u32,
    generation: u64,
    identity: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let id_len = u16::try_from(identity.len())
        .ok()
        .filter(|len| usize::from(*len) <= MAX_IDENTITY)
        .ok_or(SealError::IdentityTooLong(identity.len()))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::SysRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| SealError::NoRandomness(e.to_string()))?;
    let mut out =
        Vec::with_capacity(FIXED_HEADER + identity.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(SEAL_MAGIC);
    out.push(SEAL_LAYOUT);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&id_len.to_be_bytes());
    out.extend_from_slice(identity);
    let ciphertext = key
        .cipher()?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &out,
            },
        )
        .map_err(|_| SealError::Rejected)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// An opened sealed image.
pub struct Unsealed {
    /// The image format version the header names.
    pub version: u32,
    /// The generation the header names (0 for layout 1).
    pub generation: u64,
    /// The card identity the header names.
    pub identity: Vec<u8>,
    /// The plaintext image; wiped when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("version", &self.version)
            .field("generation", &self.generation)
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .finish_non_exhaustive()
    }
}

/// A sealed image's header, as read (not yet authenticated).
struct Header<'a> {
    version: u32,
    generation: u64,
    identity: &'a [u8],
    /// Where the nonce starts.
    nonce_at: usize,
}

/// Splits a sealed image at its header.
fn split(sealed: &[u8]) -> Result<Header<'_>, SealError> {
    if !is_sealed(sealed) {
        return Err(SealError::NotSealed);
    }
    let truncated = SealError::Truncated(sealed.len());
    let Some(&layout) = sealed.get(SEAL_MAGIC.len()) else {
        return Err(truncated);
    };
    let fixed = match layout {
        SEAL_LAYOUT => FIXED_HEADER,
        SEAL_LAYOUT_1 => FIXED_HEADER_1,
        other => return Err(SealError::UnknownLayout(other)),
    };
    let Some(fields) = sealed.get(SEAL_MAGIC.len() + 1..fixed) else {
        return Err(truncated);
    };
    // Version first, identity length last, the generation between (none
    // in layout 1).
    let (Some((version, rest)), Some(id_at)) =
        (fields.split_at_checked(4), fields.len().checked_sub(6))
    else {
        return Err(truncated);
    };
    let (generation, id_len) = rest.split_at_checked(id_at).ok_or(truncated.clone())?;
    let version = u32::from_be_bytes(version.try_into().map_err(|_| truncated.clone())?);
    let generation = match generation.try_into() {
        Ok(bytes) => u64::from_be_bytes(bytes),
        // Layout 1: no generation field.
        Err(_) => 0,
    };
    let id_len = usize::from(u16::from_be_bytes(
        id_len.try_into().map_err(|_| truncated.clone())?,
    ));
    if id_len > MAX_IDENTITY {
        return Err(SealError::IdentityTooLong(id_len));
    }
    let nonce_at = fixed + id_len;
    let Some(identity) = sealed.get(fixed..nonce_at) else {
        return Err(truncated);
    };
    if sealed.len() < nonce_at + NONCE_LEN + TAG_LEN {
        return Err(truncated);
    }
    Ok(Header {
        version,
        generation,
        identity,
        nonce_at,
    })
}

/// The generation a sealed image's header names, read without the key
/// (so not authenticated: for bookkeeping of what was written, e.g. an
/// app's store recording the generation it committed; [`open`] is what
/// checks it).
pub fn generation_of(sealed: &[u8]) -> Result<u64, SealError> {
    split(sealed).map(|header| header.generation)
}

/// Opens a sealed image under `key`. With `expected_identity`, another
/// card's image is refused ([`SealError::OtherCard`]) even under the right
/// key. A failure returns no plaintext at all.
pub fn open(
    key: &SealKey,
    sealed: &[u8],
    expected_identity: Option<&[u8]>,
) -> Result<Unsealed, SealError> {
    let Header {
        version,
        generation,
        identity,
        nonce_at,
    } = split(sealed)?;
    let (aad, rest) = sealed.split_at(nonce_at);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| SealError::Truncated(sealed.len()))?;
    let plaintext = key
        .cipher()?
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Rejected)?;
    if let Some(expected) = expected_identity
        && expected != identity
    {
        return Err(SealError::OtherCard {
            expected: String::from_utf8_lossy(expected).into_owned(),
            found: String::from_utf8_lossy(identity).into_owned(),
        });
    }
    Ok(Unsealed {
        version,
        generation,
        identity: identity.to_vec(),
        plaintext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_bytes_open_under_their_key_only() {
        let sealed = seal(&key(1), 2, b"card-1", b"secret image 123456").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|window| window == b"123456"));
        let opened = open(&key(1), &sealed, Some(b"card-1")).unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"secret image 123456");
        assert_eq!(opened.version, 2);
        assert_eq!(opened.identity, b"card-1");
        assert_eq!(
            open(&key(2), &sealed, None).unwrap_err(),
            SealError::Rejected
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let sealed = seal(&key(1), 2, b"id", b"image").unwrap();
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            assert!(open(&key(1), &tampered, None).is_err(), "byte {at}");
        }
    }

    #[test]
    fn the_generation_is_carried_and_authenticated() {
        let sealed = seal_generation(&key(1), 2, 41, b"card-1", b"image").unwrap();
        assert_eq!(generation_of(&sealed).unwrap(), 41);
        assert_eq!(open(&key(1), &sealed, None).unwrap().generation, 41);
        // A header edited to a newer generation no longer opens.
        let mut edited = sealed.clone();
        edited[SEAL_MAGIC.len() + 1 + 4 + 7] = 99;
        assert_eq!(generation_of(&edited).unwrap(), 99);
        assert_eq!(
            open(&key(1), &edited, None).unwrap_err(),
            SealError::Rejected
        );
        assert_eq!(generation_of(b"{}").unwrap_err(), SealError::NotSealed);
    }

    #[test]
    fn layout_1_images_still_open_as_generation_0() {
        // Layout 1: magic, layout, version, identity length, identity,
        // nonce, ciphertext; the associated data all before the nonce.
        let mut header = SEAL_MAGIC.to_vec();
        header.push(1);
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&6u16.to_be_bytes());
        header.extend_from_slice(b"card-1");
        let nonce = [7u8; NONCE_LEN];
        let ciphertext = key(1)
            .cipher()
            .unwrap()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: b"old image",
                    aad: &header,
                },
            )
            .unwrap();
        let mut sealed = header;
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        let opened = open(&key(1), &sealed, Some(b"card-1")).unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"old image");
        assert_eq!((opened.version, opened.generation), (2, 0));
    }

    #[test]
    fn each_seal_draws_a_new_nonce() {
        let a = seal(&key(1), 2, b"", b"image").unwrap();
        let b = seal(&key(1), 2, b"", b"image").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn another_cards_identity_is_refused() {
        let sealed = seal(&key(1), 2, b"card-1", b"image").unwrap();
        assert!(matches!(
            open(&key(1), &sealed, Some(b"card-2")),
            Err(SealError::OtherCard { .. })
        ));
    }

    #[test]
    fn short_or_foreign_bytes_are_named() {
        assert_eq!(
            open(&key(1), b"{}", None).unwrap_err(),
            SealError::NotSealed
        );
        let sealed = seal(&key(1), 2, b"id", b"image").unwrap();
        assert_eq!(
            open(&key(1), &sealed[..20], None).unwrap_err(),
            SealError::Truncated(20)
        );
        let mut future = sealed.clone();
        future[SEAL_MAGIC.len()] = 9;
        assert_eq!(
            open(&key(1), &future, None).unwrap_err(),
            SealError::UnknownLayout(9)
        );
    }

    #[test]
    fn key_files_are_64_hex_digits() {
        let text = key(0xAB).to_key_file();
        let back = SealKey::from_key_file(text.as_bytes()).unwrap();
        assert_eq!(back.0.as_slice(), &[0xAB; 32]);
        assert!(SealKey::from_key_file(&[7u8; 32]).is_err());
        assert!(SealKey::from_key_file(&[b'g'; 64]).is_err());
        assert!(SealKey::from_key_file(format!("{}\r\n", "0".repeat(64)).as_bytes()).is_ok());
        assert_eq!(format!("{:?}", key(1)), "SealKey(..)");
    }

    #[test]
    fn a_key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, key(9).to_key_file().as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(&path).unwrap().0.as_slice(), &[9; 32]);
        // A link to that good key file is not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_key_file(&link).is_err());
        // A FIFO is refused without blocking for a writer.
        let fifo = dir.path().join("fifo");
        // Made with a system call, not by running mkfifo: a child forked
        // by this test binary would hold the other tests' lock files
        // until it execs.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_key_file(&fifo).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
