//! [`Card`]: one PIV card, opened from its image, in memory or on the
//! app's store.

use std::sync::{Arc, Mutex, MutexGuard};

use vscard_applet::{ManagementApplet, PIV_AID, PivApplet, PivState, piv_atr};
use vscard_emulator::{CardImage, ImageCodec};
use vscard_link::CardLinkHandle;

use crate::issue::seal_key;
use crate::keystore::{CallbackCustody, Keystore};
use crate::piv;
use crate::store::{CardStore, ForeignStore};
use crate::{VscardError, card_error, store_error};

/// Where the card is: here, or served over the link.
pub(crate) enum Place {
    Here(Box<vscard_emulator::Card>),
    Linked(CardLinkHandle),
    /// The link thread failed and did not give the card back.
    Lost,
}

/// A vscard PIV card in this process (no reader, no pcscd).
#[derive(uniffi::Object)]
pub struct Card {
    place: Mutex<Place>,
}

impl Card {
    pub(crate) fn place(&self) -> MutexGuard<'_, Place> {
        // Nothing leaves the card half-changed on a panic (the runtime
        // commits whole images), so a poisoned lock is still usable.
        self.place.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the card when it is here.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut vscard_emulator::Card) -> Result<T, VscardError>,
    ) -> Result<T, VscardError> {
        match &mut *self.place() {
            Place::Here(card) => f(card),
            Place::Linked(_) => Err(VscardError::Card {
                message: "the card is served over the link (stop_link first)".to_owned(),
            }),
            Place::Lost => Err(VscardError::Card {
                message: "the card was lost when its link thread failed".to_owned(),
            }),
        }
    }

    /// The PIV state as last committed.
    fn piv_state(&self) -> Result<PivState, VscardError> {
        self.with(|card| piv_state_of(card.image()))
    }

    /// The PIN and PUK tries left as last committed (those two parts
    /// only: decoding the whole state, keys included, cost hundreds of
    /// microseconds per call).
    fn tries_left(&self) -> Result<(u8, u8), VscardError> {
        self.with(|card| {
            let state = card
                .image()
                .applet(&PIV_AID.to_hex())
                .ok_or_else(no_piv_application)?;
            PivState::tries_left_in(state).map_err(|error| VscardError::Image {
                message: error.to_string(),
            })
        })
    }

    /// Sends `apdu` and, while the card answers `61xx`, GET RESPONSE:
    /// the whole answer and its status word.
    fn exchange(&self, apdu: &[u8]) -> Result<(Vec<u8>, u16), VscardError> {
        self.with(|card| {
            let mut data = Vec::new();
            let mut answer = card.transmit(apdu).map_err(card_error)?;
            // 65536 bytes at most (256 GET RESPONSEs of 256).
            for _ in 0..=256 {
                let (part, sw) = piv::split(&answer)?;
                data.extend_from_slice(part);
                if sw >> 8 != 0x61 {
                    return Ok((data, sw));
                }
                let le = (sw & 0xFF) as u8;
                answer = card
                    .transmit(&[0x00, 0xC0, 0x00, 0x00, le])
                    .map_err(card_error)?;
            }
            Err(VscardError::Card {
                message: "the card's answer did not end after 65536 bytes of GET RESPONSE"
                    .to_owned(),
            })
        })
    }

    /// The status word of a command whose answer carries no data.
    fn status(&self, apdu: &[u8]) -> Result<u16, VscardError> {
        self.exchange(apdu).map(|(_, sw)| sw)
    }

    pub(crate) fn take_for_link(&self) -> Result<vscard_emulator::Card, VscardError> {
        let mut place = self.place();
        match std::mem::replace(&mut *place, Place::Lost) {
            Place::Here(card) => Ok(*card),
            other => {
                *place = other;
                Err(VscardError::Card {
                    message: "the card is already served over the link".to_owned(),
                })
            }
        }
    }
}

fn no_piv_application() -> VscardError {
    VscardError::Image {
        message: "the image holds no PIV application".to_owned(),
    }
}

fn piv_state_of(image: &CardImage) -> Result<PivState, VscardError> {
    let state = image
        .applet(&PIV_AID.to_hex())
        .ok_or_else(no_piv_application)?;
    PivState::from_saved(state).map_err(|error| VscardError::Image {
        message: error.to_string(),
    })
}

#[uniffi::export]
impl Card {
    /// Opens the card in `image` (bytes from `issue_image`, `snapshot`, or
    /// a `vscard issue` file). With `store`, the card lives on the app's
    /// store: an empty store is given `image` as its first commit, a store
    /// that holds an image opens that one (and `image` is ignored). With
    /// `key` (32 bytes), images are sealed: `image` and the store's bytes
    /// must be sealed under it, and every commit is sealed. With
    /// `keystore`, the keys `install_keystore_key` put in the image are
    /// used through the app's keystore.
    ///
    /// Sealed images only: with `identity`, another card's image is
    /// refused (`VscardError.Encryption`) even under the right key; with
    /// `min_generation`, so is an image older than that generation (an
    /// old copy of the store put back, and with it spent PIN tries). An
    /// app that records `sealed_generation(bytes)` of each commit in its
    /// keystore passes the last one here.
    #[uniffi::constructor(default(
        store = None,
        key = None,
        keystore = None,
        identity = None,
        min_generation = None
    ))]
    pub fn from_image(
        image: Vec<u8>,
        store: Option<Arc<dyn CardStore>>,
        key: Option<Vec<u8>>,
        keystore: Option<Arc<dyn Keystore>>,
        identity: Option<String>,
        min_generation: Option<u64>,
    ) -> Result<Arc<Card>, VscardError> {
        // The app's copy of the key is wiped once the codec holds its own.
        let key = key.map(zeroize::Zeroizing::new);
        let key = key.as_deref().map(|key| seal_key(key)).transpose()?;
        if key.is_none() && (identity.is_some() || min_generation.is_some()) {
            return Err(VscardError::argument(
                "identity and min_generation check sealed images: give the key too",
            ));
        }
        let mut codec = ImageCodec::new(key)
            .with_identity(identity.unwrap_or_default().into_bytes())
            .with_min_generation(min_generation.unwrap_or(0));
        let builder = vscard_emulator::Card::builder().atr(piv_atr());
        let (builder, image) = match store {
            None => {
                let image = codec.decode(&image).map_err(|e| store_error(&e))?;
                (builder.image(image.clone()), image)
            }
            Some(app) => {
                let mut foreign = ForeignStore::new(app.clone(), codec);
                let held =
                    vscard_emulator::Store::load(&mut foreign).map_err(|e| store_error(&e))?;
                let image = match held {
                    Some(image) => image,
                    None => {
                        let image = foreign
                            .codec_mut()
                            .decode(&image)
                            .map_err(|e| store_error(&e))?;
                        vscard_emulator::Store::commit(&mut foreign, &image)
                            .map_err(|e| store_error(&e))?;
                        image
                    }
                };
                (builder.store(foreign), image)
            }
        };
        let state = piv_state_of(&image)?;
        let mut applet = PivApplet::with_defaults();
        if let Some(keystore) = keystore {
            applet = applet.with_custody(Arc::new(CallbackCustody::new(keystore)));
        }
        let mut builder = builder.install_default(applet);
        if let Some(management) = ManagementApplet::for_card(&state) {
            builder = builder.install(management);
        }
        let card = builder.build().map_err(card_error)?;
        Ok(Arc::new(Card {
            place: Mutex::new(Place::Here(Box::new(card))),
        }))
    }

    /// Powers the card on (a cold reset); returns the ATR.
    pub fn power_on(&self) -> Result<Vec<u8>, VscardError> {
        self.with(|card| Ok(card.power_on().to_vec()))
    }

    /// Powers the card off: security status and selections are gone.
    pub fn power_off(&self) -> Result<(), VscardError> {
        self.with(|card| {
            card.power_off();
            Ok(())
        })
    }

    /// A warm reset; returns the ATR.
    pub fn reset(&self) -> Result<Vec<u8>, VscardError> {
        self.with(|card| Ok(card.reset().to_vec()))
    }

    /// The ATR.
    pub fn atr(&self) -> Result<Vec<u8>, VscardError> {
        self.with(|card| Ok(card.atr().to_vec()))
    }

    /// Sends one command APDU; returns the response APDU (data and SW1
    /// SW2). A malformed APDU is answered with a status word, as a real
    /// card does; an unpowered card raises `VscardError.Card`.
    pub fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, VscardError> {
        self.with(|card| card.transmit(&apdu).map_err(card_error))
    }

    /// The card's image as last committed (plain bytes, the JSON card
    /// image format): `Card.from_image(snapshot)` is the same card.
    pub fn snapshot(&self) -> Result<Vec<u8>, VscardError> {
        self.with(|card| {
            ImageCodec::plain()
                .encode(card.image())
                .map(|bytes| bytes.to_vec())
                .map_err(|e| store_error(&e))
        })
    }

    /// SELECT of the PIV application; returns its answer (the
    /// application property template), raises `Status` unless `9000`.
    pub fn select_piv(&self) -> Result<Vec<u8>, VscardError> {
        match self.exchange(&piv::select_piv())? {
            (data, piv::OK) => Ok(data),
            (_, sw) => Err(VscardError::Status { sw }),
        }
    }

    /// VERIFY of the PIN; returns the status word (`9000`, `63Cx` with x
    /// tries left, `6983` blocked).
    pub fn verify_pin(&self, pin: String) -> Result<u16, VscardError> {
        let pin = piv::padded(&pin, "PIN")?;
        self.status(&piv::command(0x20, 0x00, 0x80, &pin))
    }

    /// CHANGE REFERENCE DATA of the PIN; returns the status word.
    pub fn change_pin(&self, old_pin: String, new_pin: String) -> Result<u16, VscardError> {
        let mut data = piv::padded(&old_pin, "PIN")?;
        data.extend_from_slice(&piv::padded(&new_pin, "new PIN")?);
        self.status(&piv::command(0x24, 0x00, 0x80, &data))
    }

    /// RESET RETRY COUNTER: unblocks the PIN with the unlock code (PUK)
    /// and sets `new_pin`; returns the status word.
    pub fn unblock_pin(&self, unlock_code: String, new_pin: String) -> Result<u16, VscardError> {
        let mut data = piv::padded(&unlock_code, "unlock code")?;
        data.extend_from_slice(&piv::padded(&new_pin, "new PIN")?);
        self.status(&piv::command(0x2C, 0x00, 0x80, &data))
    }

    /// GENERAL AUTHENTICATE with the key in `slot` (`9a`, `9c`, `9d`,
    /// `9e`): for an ECC key `data` is the digest, for RSA the padded
    /// block; returns the signature (DER `SEQUENCE { r, s }` for ECC).
    /// Raises `Status` unless `9000` (`6982`: VERIFY the PIN first; 9C
    /// wants it before every signature).
    pub fn sign(&self, slot: String, data: Vec<u8>) -> Result<Vec<u8>, VscardError> {
        let slot = piv::slot(&slot)?;
        let algorithm = self
            .piv_state()?
            .public_key(slot)
            .map(|key| key.algorithm())
            .ok_or_else(|| VscardError::argument(format!("slot {slot} holds no key")))?;
        let request = piv::authenticate_request(&data);
        let apdu = piv::extended(0x87, algorithm.byte(), slot.byte(), &request)?;
        match self.exchange(&apdu)? {
            (answer, piv::OK) => piv::signature(&answer),
            (_, sw) => Err(VscardError::Status { sw }),
        }
    }

    /// The DER certificate in `slot`, `None` when it has none.
    pub fn read_certificate(&self, slot: String) -> Result<Option<Vec<u8>>, VscardError> {
        let slot = piv::slot(&slot)?;
        let state = self.piv_state()?;
        let certificate =
            vscard_issuance::certificate(&state, slot).map_err(|error| VscardError::Image {
                message: error.to_string(),
            })?;
        certificate
            .map(|c| vscard_issuance::certificate_der(&c))
            .transpose()
            .map_err(|error| VscardError::Image {
                message: error.to_string(),
            })
    }

    /// For benchmarks: the mean time in nanoseconds of `count` calls of
    /// the runtime's `Card::transmit(apdu)` on this card, timed in Rust
    /// (the baseline for what a call through the bindings adds).
    pub fn native_transmit_ns(&self, apdu: Vec<u8>, count: u32) -> Result<f64, VscardError> {
        self.with(|card| {
            let started = std::time::Instant::now();
            for _ in 0..count {
                card.transmit(&apdu).map_err(card_error)?;
            }
            Ok(started.elapsed().as_nanos() as f64 / f64::from(count.max(1)))
        })
    }

    /// PIN tries left, as committed.
    pub fn pin_tries_left(&self) -> Result<u8, VscardError> {
        self.tries_left().map(|(pin, _)| pin)
    }

    /// Unlock-code (PUK) tries left, as committed.
    pub fn puk_tries_left(&self) -> Result<u8, VscardError> {
        self.tries_left().map(|(_, puk)| puk)
    }
}
