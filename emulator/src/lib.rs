//! vscard-emulator: a Java Card-style smartcard runtime.
//!
//! A [`Card`] is one smartcard as a value: an ATR, a power state, installed
//! [`Applet`]s, logical channels, transient memory and persistent state
//! behind a [`Store`]. The runtime does what a card OS does so applets do
//! not have to: it parses every APDU case, routes by logical channel,
//! selects applets by AID (with partial matching), reassembles command
//! chains, hands out long responses with `61xx` / GET RESPONSE, clears
//! transient memory on reset and deselection, and commits persistent state
//! atomically, so that a power cut at any write leaves the old or the new
//! state and never gives back a PIN try. A panicking applet answers `6F00`
//! (unless [`CardBuilder::catch_panics`] is off, as robustness tests want).
//!
//! The crate is synchronous and does no I/O except through a [`Store`]
//! ([`FileStore`] writes files; [`MemoryStore`] does not), so the same card
//! runs in a test, behind a socket, or inside a phone app. Randomness and
//! time are injected ([`CardRng`], [`Clock`]); power cuts are planned with a
//! [`FaultPlan`].
//!
//! User presence (a YubiKey's touch) never blocks the card either: an
//! applet asks with [`Context::take_touch`]; without a touch it answers as
//! on a touch timeout and the runtime holds the complete command, which
//! [`Card::touch`] runs again once touched ([`Card::awaiting_touch`],
//! [`Card::abandon_touch`]). How long to wait ([`TOUCH_TIMEOUT`]) is the
//! caller's business: the vpcd bridge holds the answer back, a test
//! touches by hand.
//!
//! ```
//! use vscard_emulator::{Aid, Applet, AppletState, Card, CommandApdu, Context, Response,
//!     StateError, Status};
//!
//! struct Hello;
//! impl Applet for Hello {
//!     fn aid(&self) -> Aid { Aid::new(&[0xF0, 0, 0, 0, 1]).unwrap() }
//!     fn process(&mut self, _: &mut Context<'_>, c: &CommandApdu<'_>) -> Result<Response, Status> {
//!         match c.ins {
//!             0x01 => Ok(Response::ok(b"hello".to_vec())),
//!             _ => Err(Status::InstructionNotSupported),
//!         }
//!     }
//!     fn save(&self) -> Result<AppletState, StateError> { Ok(AppletState::new()) }
//!     fn load(&mut self, _: &AppletState) -> Result<(), StateError> { Ok(()) }
//! }
//!
//! let mut card = Card::builder().install_default(Hello).build().unwrap();
//! card.power_on();
//! assert_eq!(card.transmit(&[0x00, 0x01, 0x00, 0x00, 0x00]).unwrap(), b"hello\x90\x00");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aid;
mod apdu;
mod applet;
mod atr;
mod card;
mod channel;
mod environment;
mod file_store;
mod memory_store;
mod pin;
mod routing;
pub mod seal;
mod selection;
mod services;
mod status;
mod store;
mod touch;
mod transient;

pub use aid::{Aid, AidLengthError};
pub use apdu::{Class, CommandApdu, EXTENDED_NE_MAX, ResponseApdu, SHORT_NE_MAX, SecureMessaging};
pub use applet::{Applet, Context, Response};
pub use atr::{Atr, AtrBuilder, AtrError, CompactTlv, compact_tag};
pub use card::{Card, CardBuilder, CardError, Exchange, PowerState, TranscriptEvent};
pub use channel::MAX_CHANNELS;
pub use environment::{CardRng, Clock, CutPoint, FaultPlan, ManualClock, SystemClock};
pub use file_store::files;
pub use file_store::{
    FileStore, IMAGE_FORMAT, IMAGE_VERSION, ImageCodec, JOURNAL_SLOT_SIZE, JOURNAL_SLOTS,
};
pub use memory_store::MemoryStore;
pub use pin::{OwnerPin, PIN_MAX_LEN, PinCheck, PinError, hex_secret};
pub use status::Status;
pub use store::{
    AppletState, CardImage, Changes, DamageKind, Part, StateError, Store, StoreError, UnsafeFile,
};
pub use touch::TOUCH_TIMEOUT;
pub use transient::{ClearOn, Transient};

/// The error of [`CardRng::from_os`], re-exported so callers can name it.
pub use rand::rngs::SysError;
/// Re-exported so applets use the same RNG traits as the runtime.
pub use rand_core;
