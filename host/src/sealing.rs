//! Card parts and the hosts' link key sealed at rest (AES-256-GCM, the
//! emulator's [`vscard_emulator::seal`] layout), under the key a host is
//! given (`--encrypt-key-file`).
//!
//! Each sealed value's identity (the associated data the key
//! authenticates) names exactly what it is: a card part names its card,
//! applet key and part name, the link key [`HOST_IDENTITY`]. A row copied
//! to another card or part, or into `host_identity`, opens to another
//! identity and is refused, as a changed byte or a wrong key is. Every
//! call to the emulator's `seal`/`open` goes through [`seal`] and
//! [`open`] here.

use vscard_emulator::seal::{self, SealError, SealKey};
use zeroize::Zeroizing;

/// The `card_parts.encoding` of a sealed part: the AES-256-GCM seal of
/// the part's JSON bytes (what the `json` encoding stores in the clear).
pub(crate) const SEALED: &str = "aes256gcm";

/// The version a sealed value's header carries: the format of its
/// plaintext (a part's JSON bytes; the link key's 32 bytes).
const PLAINTEXT_VERSION: u32 = 1;

/// The identity of the hosts' sealed link key.
pub(crate) const HOST_IDENTITY: &[u8] = b"vscard host identity";

/// The identity of part `part` of applet `applet` of card `card`: each
/// field with its length, so that no two triples give the same bytes.
pub(crate) fn part_identity(card: &str, applet: &str, part: &str) -> Vec<u8> {
    format!(
        "vscard card part {}:{card} {}:{applet} {}:{part}",
        card.len(),
        applet.len(),
        part.len()
    )
    .into_bytes()
}

/// `plaintext` sealed for `identity` under `key` (a new random nonce).
pub(crate) fn seal(key: &SealKey, identity: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    seal::seal(key, PLAINTEXT_VERSION, identity, plaintext)
}

/// The plaintext of `sealed`, which must be `identity`'s under `key`.
pub(crate) fn open(
    key: &SealKey,
    sealed: &[u8],
    identity: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let opened = seal::open(key, sealed, Some(identity)).map_err(|e| match e {
        SealError::Rejected => {
            "cannot decrypt it: wrong key (--encrypt-key-file), or the row was modified".to_owned()
        }
        SealError::OtherCard { .. } => {
            "it was encrypted for another card or part (the row was copied or moved): refused"
                .to_owned()
        }
        other => other.to_string(),
    })?;
    if opened.version != PLAINTEXT_VERSION {
        return Err(format!(
            "its sealed format {} is not one this vscard reads",
            opened.version
        ));
    }
    Ok(opened.plaintext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failure
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_as_what_it_was_sealed_for() {
        let key = SealKey::from_bytes([7; 32]);
        let identity = part_identity("card-1", "A000000308", "pin");
        let sealed = seal(&key, &identity, b"{\"value\":\"313233343536\"}").unwrap();
        assert_eq!(
            open(&key, &sealed, &identity).unwrap().as_slice(),
            b"{\"value\":\"313233343536\"}"
        );
        let moved = open(&key, &sealed, &part_identity("card-2", "A000000308", "pin"));
        assert!(moved.unwrap_err().contains("another card or part"));
        let wrong = open(&SealKey::from_bytes([8; 32]), &sealed, &identity);
        assert!(wrong.unwrap_err().contains("wrong key"));
        // Lengths keep the fields apart.
        assert_ne!(
            part_identity("a b", "c", "d"),
            part_identity("a", "b c", "d")
        );
    }
}
