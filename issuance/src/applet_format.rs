//! How the applet's types are written where people and files see them:
//! the algorithm names of profiles (`rsa2048`, `p256`, `ed25519`, ...) and
//! of messages (`RSA-2048`, `P-256`, `Ed25519`, ...), and the profile's PIN
//! policy table as the applet's [`PinRules`].
//!
//! Contract: these adapters keep the profile format and the summaries'
//! JSON exactly as they were when issuance had its own copies of these
//! types; a profile can name only the slot key algorithms (RSA-1024 to
//! 4096, P-256, P-384, Ed25519, X25519), never a management key type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vscard_applet::{Algorithm, PinRules};

/// The name people read for an algorithm (`RSA-2048`, `P-256`, `Ed25519`);
/// the symmetric management-key algorithms never name a slot key but get
/// their usual names.
pub const fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Rsa1024 => "RSA-1024",
        Algorithm::Rsa2048 => "RSA-2048",
        Algorithm::Rsa3072 => "RSA-3072",
        Algorithm::Rsa4096 => "RSA-4096",
        Algorithm::EccP256 => "P-256",
        Algorithm::EccP384 => "P-384",
        Algorithm::Ed25519 => "Ed25519",
        Algorithm::X25519 => "X25519",
        Algorithm::Tdes => "3DES",
        Algorithm::Aes128 => "AES-128",
        Algorithm::Aes192 => "AES-192",
        Algorithm::Aes256 => "AES-256",
    }
}

/// A slot key algorithm as profiles and summaries spell it. A private
/// mirror, so serde's own "unknown variant ..., expected one of
/// `rsa1024`, `rsa2048`, ..." message names exactly the algorithms a
/// profile may use.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SlotAlgorithm {
    Rsa1024,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    Ed25519,
    X25519,
}

impl From<SlotAlgorithm> for Algorithm {
    fn from(algorithm: SlotAlgorithm) -> Algorithm {
        match algorithm {
            SlotAlgorithm::Rsa1024 => Algorithm::Rsa1024,
            SlotAlgorithm::Rsa2048 => Algorithm::Rsa2048,
            SlotAlgorithm::Rsa3072 => Algorithm::Rsa3072,
            SlotAlgorithm::Rsa4096 => Algorithm::Rsa4096,
            SlotAlgorithm::P256 => Algorithm::EccP256,
            SlotAlgorithm::P384 => Algorithm::EccP384,
            SlotAlgorithm::Ed25519 => Algorithm::Ed25519,
            SlotAlgorithm::X25519 => Algorithm::X25519,
        }
    }
}

impl TryFrom<Algorithm> for SlotAlgorithm {
    type Error = Algorithm;

    fn try_from(algorithm: Algorithm) -> Result<SlotAlgorithm, Algorithm> {
        match algorithm {
            Algorithm::Rsa1024 => Ok(SlotAlgorithm::Rsa1024),
            Algorithm::Rsa2048 => Ok(SlotAlgorithm::Rsa2048),
            Algorithm::Rsa3072 => Ok(SlotAlgorithm::Rsa3072),
            Algorithm::Rsa4096 => Ok(SlotAlgorithm::Rsa4096),
            Algorithm::EccP256 => Ok(SlotAlgorithm::P256),
            Algorithm::EccP384 => Ok(SlotAlgorithm::P384),
            Algorithm::Ed25519 => Ok(SlotAlgorithm::Ed25519),
            Algorithm::X25519 => Ok(SlotAlgorithm::X25519),
            other => Err(other),
        }
    }
}

fn serialize_algorithm<S: Serializer>(
    algorithm: Algorithm,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mirror = SlotAlgorithm::try_from(algorithm).map_err(|other| {
        serde::ser::Error::custom(format!(
            "{} is not a slot key algorithm",
            algorithm_name(other)
        ))
    })?;
    mirror.serialize(serializer)
}

/// `#[serde(with = ...)]` for a slot key [`Algorithm`].
pub(crate) mod slot_algorithm {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        algorithm: &Algorithm,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_algorithm(*algorithm, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Algorithm, D::Error> {
        SlotAlgorithm::deserialize(deserializer).map(Algorithm::from)
    }
}

/// `#[serde(serialize_with = ...)]` for an optional slot key
/// [`Algorithm`] in a summary (`null` when the slot is empty).
pub(crate) fn optional_slot_algorithm<S: Serializer>(
    algorithm: &Option<Algorithm>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match algorithm {
        Some(algorithm) => serializer.serialize_some(&AsSlotAlgorithm(*algorithm)),
        None => serializer.serialize_none(),
    }
}

struct AsSlotAlgorithm(Algorithm);

impl Serialize for AsSlotAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_algorithm(self.0, serializer)
    }
}

/// The profile's `[pin_policy]` table: the applet's [`PinRules`] without
/// `digits_only`, which a profile cannot turn off (SP 800-73-4 Part 2
/// 2.4.3: a PIV PIN is digits; NHS unlock codes are too).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PinPolicyTable {
    min_length: u8,
    max_length: u8,
    pin_tries: u8,
    puk_tries: u8,
}

impl Default for PinPolicyTable {
    fn default() -> PinPolicyTable {
        PinPolicyTable::from(&PinRules::default())
    }
}

impl From<&PinRules> for PinPolicyTable {
    fn from(rules: &PinRules) -> PinPolicyTable {
        PinPolicyTable {
            min_length: rules.min_length,
            max_length: rules.max_length,
            pin_tries: rules.pin_tries,
            puk_tries: rules.puk_tries,
        }
    }
}

/// `#[serde(with = ...)]` for the profile's PIN policy as [`PinRules`].
pub(crate) mod pin_policy {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        rules: &PinRules,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        PinPolicyTable::from(rules).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PinRules, D::Error> {
        let table = PinPolicyTable::deserialize(deserializer)?;
        Ok(PinRules {
            min_length: table.min_length,
            max_length: table.max_length,
            digits_only: true,
            pin_tries: table.pin_tries,
            puk_tries: table.puk_tries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slot_key_algorithms_have_profile_names() {
        for algorithm in Algorithm::ALL {
            let mirror = SlotAlgorithm::try_from(algorithm);
            assert_eq!(mirror.is_ok(), !algorithm.is_symmetric(), "{algorithm:?}");
            if let Ok(mirror) = mirror {
                assert_eq!(Algorithm::from(mirror), algorithm);
            }
        }
        assert_eq!(algorithm_name(Algorithm::EccP384), "P-384");
    }
}
