//! What card a PIV application claims to be.
//!
//! Middleware picks its behaviour from what the card reports: ykman,
//! libykpiv and piv-go read GET VERSION and expect that firmware's
//! extensions and defaults. A [`Model`] fixes the version, the default
//! management key type and whether the Yubico extensions exist at all, so
//! that a card never claims a version whose behaviour it does not have.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::management::ManagementKey;
use crate::reference::Algorithm;

/// The card a PIV application is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Model {
    /// A YubiKey 5 with firmware 5.7: AES-192 default management key (the
    /// default since 5.7, same key bytes as the 3DES one).
    #[default]
    #[serde(rename = "yubikey-5.7")]
    YubiKey57,
    /// A YubiKey 5 with firmware 5.4: 3DES default management key, as
    /// older middleware (Debian 12's yubico-piv-tool 2.2) needs.
    #[serde(rename = "yubikey-5.4")]
    YubiKey54,
    /// A plain SP 800-73-4 PIV card: none of the Yubico extensions (GET
    /// VERSION, GET SERIAL, GET METADATA, SET MANAGEMENT KEY, RESET, SET
    /// PIN RETRIES, IMPORT, ATTEST, MOVE KEY answer `6D00`), 3DES default
    /// management key.
    #[serde(rename = "piv")]
    Piv,
}

/// Every model, in the order the CLI lists them.
pub const MODELS: [Model; 3] = [Model::YubiKey57, Model::YubiKey54, Model::Piv];

/// A model name that is not one of [`MODELS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown card model {0:?} (yubikey-5.7, yubikey-5.4 or piv)")]
pub struct UnknownModel(pub String);

impl Model {
    /// The name in profiles and on the command line (`yubikey-5.7`).
    pub fn name(self) -> &'static str {
        match self {
            Model::YubiKey57 => "yubikey-5.7",
            Model::YubiKey54 => "yubikey-5.4",
            Model::Piv => "piv",
        }
    }

    /// The firmware version GET VERSION reports; `None` for a plain PIV
    /// card, which has no GET VERSION.
    pub fn version(self) -> Option<[u8; 3]> {
        match self {
            Model::YubiKey57 => Some([5, 7, 1]),
            Model::YubiKey54 => Some([5, 4, 3]),
            Model::Piv => None,
        }
    }

    /// The type of the default management key.
    pub fn management_algorithm(self) -> Algorithm {
        match self {
            Model::YubiKey57 => Algorithm::Aes192,
            Model::YubiKey54 | Model::Piv => Algorithm::Tdes,
        }
    }

    /// The default management key of this model (the well-known bytes).
    pub fn default_management_key(self) -> ManagementKey {
        ManagementKey::well_known(self.management_algorithm())
    }

    /// True when MOVE KEY / DELETE KEY (`F6`) exists: YubiKey 5.7 on.
    pub fn has_move_key(self) -> bool {
        matches!(self, Model::YubiKey57)
    }

    /// True when the YubiKey Management application is installed beside
    /// PIV (the YubiKey models).
    pub fn has_management_application(self) -> bool {
        !matches!(self, Model::Piv)
    }

    /// True when this model holds keys of `algorithm` (GENERATE, IMPORT
    /// and issuance): YubiKey 5.7 has RSA-1024 to 4096, P-256, P-384,
    /// Ed25519 and X25519; YubiKey 5.4 and a plain PIV card (SP 800-78-4)
    /// only RSA-1024, RSA-2048, P-256 and P-384. Symmetric algorithms are
    /// management keys, never slot keys: `false`.
    pub fn supports(self, algorithm: Algorithm) -> bool {
        match algorithm {
            Algorithm::Rsa1024 | Algorithm::Rsa2048 | Algorithm::EccP256 | Algorithm::EccP384 => {
                true
            }
            Algorithm::Rsa3072 | Algorithm::Rsa4096 | Algorithm::Ed25519 | Algorithm::X25519 => {
                self == Model::YubiKey57
            }
            Algorithm::Tdes | Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => false,
        }
    }

    /// True when the Yubico extensions to PIV exist on this model.
    pub fn has_yubico_extensions(self) -> bool {
        !matches!(self, Model::Piv)
    }

    /// For `skip_serializing_if`: images of the default model do not name
    /// it, so images written before models existed load as that model and
    /// stay byte for byte unchanged.
    pub fn is_default(model: &Model) -> bool {
        *model == Model::default()
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = UnknownModel;

    fn from_str(name: &str) -> Result<Model, UnknownModel> {
        MODELS
            .into_iter()
            .find(|model| model.name() == name)
            .ok_or_else(|| UnknownModel(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for model in MODELS {
            assert_eq!(model.name().parse::<Model>(), Ok(model));
            let json = serde_json::to_string(&model).unwrap();
            assert_eq!(json, format!("\"{}\"", model.name()));
            assert_eq!(serde_json::from_str::<Model>(&json).unwrap(), model);
        }
        assert_eq!(
            "yubikey-5.5".parse::<Model>(),
            Err(UnknownModel("yubikey-5.5".into()))
        );
    }

    #[test]
    fn each_model_has_its_default_management_key_type() {
        assert_eq!(Model::YubiKey57.management_algorithm(), Algorithm::Aes192);
        assert_eq!(Model::YubiKey54.management_algorithm(), Algorithm::Tdes);
        assert_eq!(Model::Piv.management_algorithm(), Algorithm::Tdes);
        for model in MODELS {
            assert!(model.default_management_key().is_default());
        }
        assert_eq!(Model::YubiKey54.version(), Some([5, 4, 3]));
        assert_eq!(Model::Piv.version(), None);
    }
}
