//! Typed key references and algorithm identifiers (SP 800-73-4 Part 1
//! 5.1, SP 800-78-4 Table 6-2, and the Yubico extensions).
//!
//! Contract: every byte that names a key or an algorithm in a command is
//! turned into one of these types by the parser; an unknown value is
//! refused there with `6A86` (P1/P2) or `6A80` (data field), so handlers
//! only see references they can act on.

use std::fmt;

use serde::{Deserialize, Serialize};
use vscard_emulator::Status;

/// A PIN-like reference: the PIV Card Application PIN (`80`) or the PIN
/// Unblocking Key (`81`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinRef {
    /// `80`: the PIV Card Application PIN.
    Pin,
    /// `81`: the PIN Unblocking Key.
    Puk,
}

impl PinRef {
    /// The key reference byte.
    pub const fn byte(self) -> u8 {
        match self {
            PinRef::Pin => 0x80,
            PinRef::Puk => 0x81,
        }
    }

    /// The reference for a P2 byte; `6A88` for anything else (SP 800-73-4
    /// Part 2 3.2.2: "key reference not found").
    pub const fn from_p2(p2: u8) -> Result<PinRef, Status> {
        match p2 {
            0x80 => Ok(PinRef::Pin),
            0x81 => Ok(PinRef::Puk),
            _ => Err(Status::ReferenceNotFound),
        }
    }
}

/// An asymmetric key slot: the four PIV keys and the twenty retired key
/// management keys (`82`..=`95`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Slot(u8);

impl Slot {
    /// `9A`: PIV Authentication.
    pub const AUTHENTICATION: Slot = Slot(0x9A);
    /// `9C`: Digital Signature (PIN-always).
    pub const SIGNATURE: Slot = Slot(0x9C);
    /// `9D`: Key Management.
    pub const KEY_MANAGEMENT: Slot = Slot(0x9D);
    /// `9E`: Card Authentication (no PIN).
    pub const CARD_AUTHENTICATION: Slot = Slot(0x9E);

    /// The slot for a key reference byte, if it names one.
    pub const fn new(byte: u8) -> Option<Slot> {
        match byte {
            0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95 => Some(Slot(byte)),
            _ => None,
        }
    }

    /// The key reference byte.
    pub const fn byte(self) -> u8 {
        self.0
    }

    /// The PIN policy a key in this slot gets unless told otherwise: 9C
    /// needs the PIN before every use, 9E never, the others once per
    /// session (SP 800-73-4 Part 1 3.2, Yubico defaults).
    pub const fn default_pin_policy(self) -> PinPolicy {
        match self.0 {
            0x9C => PinPolicy::Always,
            0x9E => PinPolicy::Never,
            _ => PinPolicy::Once,
        }
    }

    /// The data object that holds this slot's certificate (SP 800-73-4
    /// Part 1 Table 3 and Table 15 for retired keys).
    pub const fn certificate_tag(self) -> u32 {
        match self.0 {
            0x9A => 0x5FC105,
            0x9C => 0x5FC10A,
            0x9D => 0x5FC10B,
            0x9E => 0x5FC101,
            retired => 0x5FC10D + (retired as u32 - 0x82),
        }
    }
}

impl TryFrom<u8> for Slot {
    type Error = String;
    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        Slot::new(byte).ok_or_else(|| format!("{byte:02X} is not a key slot"))
    }
}

impl From<Slot> for u8 {
    fn from(slot: Slot) -> u8 {
        slot.0
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slot({:02X})", self.0)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// Any key reference a command may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// `80` or `81`.
    Pin(PinRef),
    /// `9B`: the PIV Card Application Administration (management) key.
    Management,
    /// An asymmetric key slot.
    Slot(Slot),
}

impl KeyRef {
    /// The reference for a byte, if it names a key of this card.
    pub const fn new(byte: u8) -> Option<KeyRef> {
        match byte {
            0x80 => Some(KeyRef::Pin(PinRef::Pin)),
            0x81 => Some(KeyRef::Pin(PinRef::Puk)),
            0x9B => Some(KeyRef::Management),
            other => match Slot::new(other) {
                Some(slot) => Some(KeyRef::Slot(slot)),
                None => None,
            },
        }
    }

    /// The key reference byte.
    pub const fn byte(self) -> u8 {
        match self {
            KeyRef::Pin(pin) => pin.byte(),
            KeyRef::Management => 0x9B,
            KeyRef::Slot(slot) => slot.byte(),
        }
    }
}

/// A cryptographic algorithm identifier (SP 800-78-4 Table 6-2; Yubico
/// numbering for AES management keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// `03` (and the legacy `00`): three-key Triple DES, ECB.
    Tdes,
    /// `08`: AES-128, ECB.
    Aes128,
    /// `0A`: AES-192, ECB.
    Aes192,
    /// `0C`: AES-256, ECB.
    Aes256,
    /// `06`: RSA with a 1024-bit modulus.
    Rsa1024,
    /// `07`: RSA with a 2048-bit modulus.
    Rsa2048,
    /// `05`: RSA with a 3072-bit modulus (SP 800-78-5; YubiKey 5.7).
    Rsa3072,
    /// `16`: RSA with a 4096-bit modulus (Yubico; YubiKey 5.7).
    Rsa4096,
    /// `11`: ECC on curve P-256.
    EccP256,
    /// `14`: ECC on curve P-384.
    EccP384,
    /// `E0`: Ed25519 signatures (Yubico; YubiKey 5.7).
    Ed25519,
    /// `E1`: X25519 key agreement (Yubico; YubiKey 5.7).
    X25519,
}

impl Algorithm {
    /// The identifier for a byte; `None` for algorithms this card lacks.
    pub const fn new(byte: u8) -> Option<Algorithm> {
        match byte {
            0x00 | 0x03 => Some(Algorithm::Tdes),
            0x08 => Some(Algorithm::Aes128),
            0x0A => Some(Algorithm::Aes192),
            0x0C => Some(Algorithm::Aes256),
            0x06 => Some(Algorithm::Rsa1024),
            0x07 => Some(Algorithm::Rsa2048),
            0x05 => Some(Algorithm::Rsa3072),
            0x16 => Some(Algorithm::Rsa4096),
            0x11 => Some(Algorithm::EccP256),
            0x14 => Some(Algorithm::EccP384),
            0xE0 => Some(Algorithm::Ed25519),
            0xE1 => Some(Algorithm::X25519),
            _ => None,
        }
    }

    /// The identifier byte.
    pub const fn byte(self) -> u8 {
        match self {
            Algorithm::Tdes => 0x03,
            Algorithm::Aes128 => 0x08,
            Algorithm::Aes192 => 0x0A,
            Algorithm::Aes256 => 0x0C,
            Algorithm::Rsa1024 => 0x06,
            Algorithm::Rsa2048 => 0x07,
            Algorithm::Rsa3072 => 0x05,
            Algorithm::Rsa4096 => 0x16,
            Algorithm::EccP256 => 0x11,
            Algorithm::EccP384 => 0x14,
            Algorithm::Ed25519 => 0xE0,
            Algorithm::X25519 => 0xE1,
        }
    }

    /// True for the symmetric (management key) algorithms.
    pub const fn is_symmetric(self) -> bool {
        matches!(
            self,
            Algorithm::Tdes | Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256
        )
    }

    /// The key length of a symmetric algorithm; 0 for asymmetric ones.
    pub const fn key_len(self) -> usize {
        match self {
            Algorithm::Tdes | Algorithm::Aes192 => 24,
            Algorithm::Aes128 => 16,
            Algorithm::Aes256 => 32,
            _ => 0,
        }
    }

    /// The block length of a symmetric algorithm (the witness and
    /// challenge size); 0 for asymmetric ones.
    pub const fn block_len(self) -> usize {
        match self {
            Algorithm::Tdes => 8,
            Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => 16,
            _ => 0,
        }
    }

    /// The modulus size of an RSA algorithm in bits; `None` for the others.
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            Algorithm::Rsa1024 => Some(1024),
            Algorithm::Rsa2048 => Some(2048),
            Algorithm::Rsa3072 => Some(3072),
            Algorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The RSA algorithm of a modulus size; `None` for other sizes.
    pub const fn rsa_of_bits(bits: usize) -> Option<Algorithm> {
        match bits {
            1024 => Some(Algorithm::Rsa1024),
            2048 => Some(Algorithm::Rsa2048),
            3072 => Some(Algorithm::Rsa3072),
            4096 => Some(Algorithm::Rsa4096),
            _ => None,
        }
    }

    /// Every algorithm identifier the card knows (the card model decides
    /// which of them it accepts: [`crate::Model::supports`]).
    pub const ALL: [Algorithm; 12] = [
        Algorithm::Tdes,
        Algorithm::Aes128,
        Algorithm::Aes192,
        Algorithm::Aes256,
        Algorithm::Rsa1024,
        Algorithm::Rsa2048,
        Algorithm::Rsa3072,
        Algorithm::Rsa4096,
        Algorithm::EccP256,
        Algorithm::EccP384,
        Algorithm::Ed25519,
        Algorithm::X25519,
    ];

    /// The algorithms the SELECT answer lists (its application property
    /// template, unchanged since the first release).
    pub const ADVERTISED: [Algorithm; 7] = [
        Algorithm::Tdes,
        Algorithm::Aes128,
        Algorithm::Aes192,
        Algorithm::Aes256,
        Algorithm::Rsa2048,
        Algorithm::EccP256,
        Algorithm::EccP384,
    ];
}

/// When a private key needs the PIN (Yubico PIN policy, tag `AA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PinPolicy {
    /// `01`: never.
    Never,
    /// `02`: once per session.
    Once,
    /// `03`: a fresh VERIFY before every use.
    Always,
}

impl PinPolicy {
    /// The policy byte.
    pub const fn byte(self) -> u8 {
        match self {
            PinPolicy::Never => 0x01,
            PinPolicy::Once => 0x02,
            PinPolicy::Always => 0x03,
        }
    }

    /// The policy for a byte: `00` means the slot's default.
    pub const fn from_byte(byte: u8, slot: Slot) -> Option<PinPolicy> {
        match byte {
            0x00 => Some(slot.default_pin_policy()),
            0x01 => Some(PinPolicy::Never),
            0x02 => Some(PinPolicy::Once),
            0x03 => Some(PinPolicy::Always),
            _ => None,
        }
    }
}

/// Touch policy byte of the management key: `01` (never; SET MANAGEMENT
/// KEY with P2 `FE`, "touch required", is refused). Slot keys have a
/// [`crate::TouchPolicy`].
pub const TOUCH_NEVER: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        for byte in 0..=u8::MAX {
            if let Some(key) = KeyRef::new(byte) {
                assert_eq!(key.byte(), byte);
            }
            if let Some(alg) = Algorithm::new(byte)
                && byte != 0
            {
                assert_eq!(alg.byte(), byte);
            }
        }
        assert_eq!(KeyRef::new(0x9B), Some(KeyRef::Management));
        assert_eq!(KeyRef::new(0x96), None);
        assert_eq!(Slot::new(0x95).unwrap().certificate_tag(), 0x5FC120);
        assert_eq!(Slot::SIGNATURE.default_pin_policy(), PinPolicy::Always);
    }
}
