//! The PIV Card Application Administration Key (`9B`, "management key")
//! and the block cipher operations of its challenge-response
//! authentication (SP 800-73-4 Part 2 Appendix A.1-A.2).
//!
//! Contract: the key value is only ever used to encrypt one block; it is
//! zeroized on drop, redacted in `Debug`, and compared in constant time.

use std::fmt;

use cipher::{Array, BlockCipherEncrypt, KeyInit};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use vscard_emulator::hex_secret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::reference::Algorithm;

/// The default management key of PIV cards and YubiKeys: 3DES
/// `0102030405060708` three times.
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// Why bytes are not a management key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManagementKeyError {
    /// Not 3DES or AES.
    #[error("{0:?} is not a management key algorithm")]
    Algorithm(Algorithm),
    /// The key length does not fit the algorithm.
    #[error("a {algorithm:?} key is {expected} bytes, got {found}")]
    Length {
        /// The algorithm.
        algorithm: Algorithm,
        /// Its key length.
        expected: usize,
        /// The length given.
        found: usize,
    },
}

/// A management key: algorithm and secret value. A stored key is checked
/// on load as [`ManagementKey::new`] checks a new one (symmetric algorithm,
/// matching length), so a damaged image is a load error, not a key that
/// later fails every authentication.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(try_from = "StoredManagementKey")]
pub struct ManagementKey {
    #[zeroize(skip)]
    algorithm: Algorithm,
    #[serde(with = "hex_secret")]
    value: Vec<u8>,
}

/// The stored form of a [`ManagementKey`], before it is checked.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredManagementKey {
    #[zeroize(skip)]
    algorithm: Algorithm,
    #[serde(with = "hex_secret")]
    value: Vec<u8>,
}

impl TryFrom<StoredManagementKey> for ManagementKey {
    type Error = ManagementKeyError;

    fn try_from(stored: StoredManagementKey) -> Result<Self, ManagementKeyError> {
        ManagementKey::new(stored.algorithm, &stored.value)
    }
}

impl ManagementKey {
    /// A key of `algorithm` (3DES, AES-128/192/256) with `value`.
    pub fn new(algorithm: Algorithm, value: &[u8]) -> Result<Self, ManagementKeyError> {
        if !algorithm.is_symmetric() {
            return Err(ManagementKeyError::Algorithm(algorithm));
        }
        if value.len() != algorithm.key_len() {
            return Err(ManagementKeyError::Length {
                algorithm,
                expected: algorithm.key_len(),
                found: value.len(),
            });
        }
        Ok(ManagementKey {
            algorithm,
            value: value.to_vec(),
        })
    }

    /// The well-known default 3DES key.
    pub fn default_tdes() -> Self {
        ManagementKey::well_known(Algorithm::Tdes)
    }

    /// The well-known default key bytes as a key of `algorithm`: 3DES, or
    /// AES-192 (a YubiKey 5.7's default); any other algorithm gets 3DES,
    /// the only other type those 24 bytes fit.
    pub fn well_known(algorithm: Algorithm) -> Self {
        let algorithm = match algorithm {
            Algorithm::Aes192 => Algorithm::Aes192,
            _ => Algorithm::Tdes,
        };
        ManagementKey {
            algorithm,
            value: DEFAULT_MANAGEMENT_KEY.to_vec(),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// True for the well-known default key (GET METADATA tag `05`).
    pub fn is_default(&self) -> bool {
        matches!(self.algorithm, Algorithm::Tdes | Algorithm::Aes192)
            && bool::from(self.value.as_slice().ct_eq(&DEFAULT_MANAGEMENT_KEY))
    }

    /// Encrypts one block (ECB); `None` when `block` is not one block long.
    pub fn encrypt_block(&self, block: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if block.len() != self.algorithm.block_len() {
            return None;
        }
        match self.algorithm {
            Algorithm::Tdes => encrypt::<des::TdesEde3>(&self.value, block),
            Algorithm::Aes128 => encrypt::<aes::Aes128>(&self.value, block),
            Algorithm::Aes192 => encrypt::<aes::Aes192>(&self.value, block),
            Algorithm::Aes256 => encrypt::<aes::Aes256>(&self.value, block),
            _ => None,
        }
    }
}

fn encrypt<C: BlockCipherEncrypt + KeyInit>(
    key: &[u8],
    block: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = C::new_from_slice(key).ok()?;
    let mut buffer = Array::try_from(block).ok()?;
    cipher.encrypt_block(&mut buffer);
    let out = Zeroizing::new(buffer.to_vec());
    buffer.zeroize();
    Some(out)
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementKey")
            .field("algorithm", &self.algorithm)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 197 Appendix C.1 (AES-128).
        let key = ManagementKey::new(
            Algorithm::Aes128,
            &hex::decode("000102030405060708090a0b0c0d0e0f").unwrap(),
        )
        .unwrap();
        let out = key
            .encrypt_block(&hex::decode("00112233445566778899aabbccddeeff").unwrap())
            .unwrap();
        assert_eq!(hex::encode(&*out), "69c4e0d86a7b0430d8cdb78070b4c55a");
        // 3DES with three equal keys is single DES: the classic
        // "Now is t" vector under 0123456789ABCDEF.
        let k = hex::decode("0123456789abcdef").unwrap().repeat(3);
        let tdes = ManagementKey::new(Algorithm::Tdes, &k).unwrap();
        let out = tdes.encrypt_block(b"Now is t").unwrap();
        assert_eq!(hex::encode(&*out), "3fa40e8a984d4815");
    }

    #[test]
    fn lengths_are_checked_and_debug_redacts() {
        assert!(ManagementKey::new(Algorithm::Aes256, &[0; 24]).is_err());
        assert!(ManagementKey::new(Algorithm::Rsa2048, &[]).is_err());
        let key = ManagementKey::default_tdes();
        assert!(key.is_default());
        assert!(key.encrypt_block(&[0; 16]).is_none());
        assert!(!format!("{key:?}").contains("01"));
    }

    #[test]
    fn a_damaged_stored_key_does_not_load() {
        let stored = serde_json::to_value(ManagementKey::default_tdes()).unwrap();
        let back: ManagementKey = serde_json::from_value(stored.clone()).unwrap();
        assert!(back.is_default());
        // Wrong length for 3DES.
        let mut short = stored.clone();
        short["value"] = serde_json::Value::String("0102".into());
        let error = serde_json::from_value::<ManagementKey>(short).unwrap_err();
        assert!(error.to_string().contains("is 24 bytes, got 2"), "{error}");
        // An asymmetric algorithm.
        let mut rsa = stored;
        rsa["algorithm"] = serde_json::to_value(Algorithm::Rsa2048).unwrap();
        let error = serde_json::from_value::<ManagementKey>(rsa).unwrap_err();
        assert!(
            error.to_string().contains("not a management key algorithm"),
            "{error}"
        );
    }
}
