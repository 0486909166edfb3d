//! Mutual authentication with the PIV card application administration
//! key (`9B`), as yubico-piv-tool does it (SP 800-73-4 Part 2 Appendix
//! A.2): ask for a witness, decrypt it, send it back with a host
//! challenge, and check the card's encryption of that challenge.
//!
//! The block ciphers are RustCrypto's, not the applet's code, so a test
//! checks the card and not itself.

use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use vscard_applet::tlv::{self, Reader, Writer};
use vscard_emulator::Status;

use crate::client::{Client, ClientError, Transport};

/// The management key's key reference (SP 800-73-4 Part 1 table 4).
const MANAGEMENT_KEY: u8 = 0x9B;

/// The block length of a management-key algorithm (SP 800-78-4 table
/// 6-1: `03` 3DES, `08` / `0A` / `0C` AES-128 / 192 / 256).
pub fn block_len(algorithm: u8) -> Option<usize> {
    match algorithm {
        0x03 => Some(8),
        0x08 | 0x0A | 0x0C => Some(16),
        _ => None,
    }
}

/// One block encrypted (`encrypt`) or decrypted with `key`; `None` for an
/// unknown algorithm or a key or block of the wrong length.
pub fn apply(algorithm: u8, key: &[u8], block: &[u8], encrypt: bool) -> Option<Vec<u8>> {
    fn run<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
        key: &[u8],
        block: &[u8],
        encrypt: bool,
    ) -> Option<Vec<u8>> {
        let cipher = C::new_from_slice(key).ok()?;
        let mut b = Array::try_from(block).ok()?;
        if encrypt {
            cipher.encrypt_block(&mut b);
        } else {
            cipher.decrypt_block(&mut b);
        }
        Some(b.to_vec())
    }
    match algorithm {
        0x03 => run::<des::TdesEde3>(key, block, encrypt),
        0x08 => run::<aes::Aes128>(key, block, encrypt),
        0x0A => run::<aes::Aes192>(key, block, encrypt),
        0x0C => run::<aes::Aes256>(key, block, encrypt),
        _ => None,
    }
}

/// The single object `outer { inner value }` of `data` -> `value`.
fn nested(data: &[u8], outer: u32, inner: u32) -> Result<&[u8], ClientError> {
    let malformed = |error: tlv::TlvError| {
        ClientError::Malformed(format!("no {outer:X} {{ {inner:X} }}: {error}"))
    };
    let template = tlv::single(data, outer).map_err(malformed)?;
    let mut reader = Reader::new(template);
    let value = reader.expect(inner).map_err(malformed)?;
    reader.expect_empty().map_err(malformed)?;
    Ok(value)
}

fn unusable(what: &str) -> ClientError {
    ClientError::Malformed(format!("unusable management key or algorithm: {what}"))
}

impl<T: Transport> Client<T> {
    /// Mutual authentication with the management key `key` of
    /// `algorithm`, sending `challenge` (one block) as the host's
    /// challenge. `Ok(Err(status))` when the card refuses a step; an error
    /// when an answer is malformed or the card's proof is wrong.
    pub fn authenticate_management_key(
        &mut self,
        algorithm: u8,
        key: &[u8],
        challenge: &[u8],
    ) -> Result<Result<(), Status>, ClientError> {
        let n = block_len(algorithm).ok_or_else(|| unusable("algorithm"))?;
        if challenge.len() != n {
            return Err(unusable("challenge length"));
        }
        let header = [0x00, 0x87, algorithm, MANAGEMENT_KEY];
        // Step 1: 7C { 80 00 } asks for a witness.
        let reply = self.command(header, &[0x7C, 0x02, 0x80, 0x00])?;
        if reply.status != Status::Success {
            return Ok(Err(reply.status));
        }
        let witness = nested(&reply.data, 0x7C, 0x80)?;
        if witness.len() != n {
            return Err(ClientError::Malformed(format!(
                "witness of {} bytes, expected {n}",
                witness.len()
            )));
        }
        let decrypted = apply(algorithm, key, witness, false).ok_or_else(|| unusable("key"))?;
        // Step 2: 7C { 80 decrypted witness, 81 challenge }.
        let data = Writer::new()
            .nest(0x7C, |w| {
                w.put(0x80, &decrypted).put(0x81, challenge);
            })
            .finish();
        let reply = self.command(header, &data)?;
        if reply.status != Status::Success {
            return Ok(Err(reply.status));
        }
        let response = nested(&reply.data, 0x7C, 0x82)?;
        let expected = apply(algorithm, key, challenge, true).ok_or_else(|| unusable("key"))?;
        if response != expected.as_slice() {
            return Err(ClientError::Malformed(
                "the card's encryption of the host challenge is wrong".into(),
            ));
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ciphers_round_trip_and_refuse_bad_sizes() {
        let key = [7u8; 24];
        let block = [1u8; 8];
        let encrypted = apply(0x03, &key, &block, true).unwrap();
        assert_ne!(encrypted, block);
        assert_eq!(apply(0x03, &key, &encrypted, false).unwrap(), block);
        assert_eq!(
            apply(0x08, &[0; 16], &[0; 16], true).map(|b| b.len()),
            Some(16)
        );
        assert_eq!(apply(0x08, &[0; 15], &[0; 16], true), None);
        assert_eq!(apply(0x03, &key, &[0; 7], true), None);
        assert_eq!(apply(0x11, &key, &block, true), None);
    }
}
