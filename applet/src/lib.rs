//! The PIV application (NIST SP 800-73-4 Parts 1-2 subset, plus the Yubico
//! extensions middleware probes for) and the NHS identity profile.
//!
//! [`PivApplet`] runs on the `vscard-emulator` runtime. Build one with a
//! personalisation ([`PivConfig`]), install keys and data objects without
//! sending APDUs, and install it as the card's default applet with the
//! [`piv_atr`]:
//!
//! ```
//! use vscard_applet::{PivApplet, PivConfig, Slot, piv_atr};
//! use vscard_emulator::{Card, CardRng};
//!
//! let mut applet = PivApplet::new(PivConfig::default().with_pin(b"654321")).unwrap();
//! let key = p256::SecretKey::from_slice(&[7; 32]).unwrap();
//! let public = applet.install_key(Slot::SIGNATURE, key).unwrap();
//! applet.put_certificate(Slot::SIGNATURE, &[0x30, 0x00]);
//! let mut card = Card::builder()
//!     .atr(piv_atr())
//!     .rng(CardRng::from_u64(1))
//!     .install_default(applet)
//!     .build()
//!     .unwrap();
//! card.power_on();
//! // GET DATA 5FC10A: the 9C certificate container.
//! let answer = card.transmit(&[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x0A, 0x00]).unwrap();
//! assert_eq!(answer, [0x53, 0x09, 0x70, 0x02, 0x30, 0x00, 0x71, 0x01, 0x00, 0xFE, 0x00, 0x90, 0x00]);
//! # let _ = public;
//! ```
//!
//! Personalisation happens before the card is built: the runtime saves
//! the applet's state as the card's first image. A card built on a store
//! that already holds an image loads that image instead (so
//! `PivApplet::with_defaults()` is the right applet to serve an existing
//! image file); outside a card, `PivApplet::from_saved` reads one.
//! Issuance tools build a card this way and write
//! `card.image()` with `vscard_emulator::FileStore::write`.
//!
//! Module map: [`tlv`] (BER-TLV cursor), [`reference`] (key references and
//! algorithms), [`command`] (parsing), one module per group of handlers,
//! [`keys`] and [`management`] (cryptography), [`custody`] (where private
//! keys live: the image, or an external custody behind [`KeyCustody`]), [`objects`] (data objects),
//! [`state`] (persistent format), [`security`] (transient status),
//! [`touch_policy`] (when a key needs a touch), [`move_key`] (MOVE / DELETE
//! KEY), [`device_management`] (the YubiKey Management application, a
//! second applet installed beside PIV on the YubiKey models).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod applet;
mod atr;
mod attestation;
mod authenticate;
pub mod capacity;
pub mod command;
pub mod config;
pub mod custody;
mod data_commands;
pub mod device_management;
mod key_commands;
pub mod keys;
pub mod management;
pub mod model;
pub mod move_key;
pub mod objects;
pub mod pin;
mod pin_commands;
pub mod reference;
pub mod secret;
pub mod security;
pub mod state;
mod stored_key;
pub mod tlv;
pub mod touch_policy;
mod yubico;

pub use applet::{APPLICATION_LABEL, PIV_AID, PivApplet};
pub use atr::{PIV_AID_SHORT, YUBIKEY_5_ATR, atr_for, piv_atr};
pub use capacity::DEFAULT_CAPACITY;
pub use config::{ConfigError, DEFAULT_PIN, DEFAULT_PUK, PivConfig};
#[cfg(any(test, feature = "testing"))]
pub use custody::MemoryCustody;
pub use custody::{
    CallbackCustody, CustodyError, CustodyTarget, ExternalKey, ExternalSigner, KeyCustody,
    KeyReference, SignerRefusal,
};
pub use data_commands::MAX_OBJECT_LEN;
pub use device_management::{MANAGEMENT_AID, ManagementApplet};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use management::{DEFAULT_MANAGEMENT_KEY, ManagementKey};
pub use model::{MODELS, Model, UnknownModel};
pub use objects::{DataObjectTag, PrintedInformation};
pub use pin::PinRules;
pub use reference::{Algorithm, KeyRef, PinPolicy, PinRef, Slot};
pub use state::{PivState, STATE_FORMAT};
pub use stored_key::Origin;
pub use touch_policy::TouchPolicy;
