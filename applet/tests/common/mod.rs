//! A small typed PIV client that speaks bytes to an in-process card, and
//! the fixtures the PIV tests share.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rsa::pkcs8::DecodePrivateKey;
use vscard_applet::tlv::Reader;
use vscard_applet::{Algorithm, PivApplet, PivConfig, Slot, piv_atr};
use vscard_emulator::{Card, CardError, CardRng, MemoryStore};
use vscard_testkit::{ClientError, TransportError};

/// A test RSA-2048 key (generated once with openssl, committed so no test
/// pays for key generation).
pub fn rsa_key() -> rsa::RsaPrivateKey {
    let der = include_bytes!("../data/piv/rsa2048-test-key.pk8.der");
    rsa::RsaPrivateKey::from_pkcs8_der(der).unwrap()
}

/// A fixed P-256 key.
pub fn p256_key(seed: u8) -> p256::SecretKey {
    p256::SecretKey::from_slice(&[seed; 32]).unwrap()
}

pub const PIN: &[u8] = b"123456";
pub const PUK: &[u8] = b"12345678";
pub const MGMT: [u8; 24] = vscard_applet::DEFAULT_MANAGEMENT_KEY;

pub const SW_OK: u16 = 0x9000;

/// Pads a PIN or PUK with FF to 8 bytes.
pub use vscard_testkit::piv::pad;

/// A card with the PIV applet as default applet, powered on.
pub fn card_with(applet: PivApplet) -> Card {
    card_on_store(applet, MemoryStore::new())
}

pub fn card_on_store(applet: PivApplet, store: MemoryStore) -> Card {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(42))
        .store(store)
        .install_default(applet)
        .build()
        .unwrap();
    card.power_on();
    card
}

/// A default card with keys: RSA in 9A, P-256 in 9C, 9D, 9E.
pub fn default_card() -> Card {
    card_with(keyed_applet(PivConfig::default()))
}

pub fn keyed_applet(config: PivConfig) -> PivApplet {
    let mut applet = PivApplet::new(config).unwrap();
    applet.install_key(Slot::AUTHENTICATION, rsa_key()).unwrap();
    applet.install_key(Slot::SIGNATURE, p256_key(2)).unwrap();
    applet
        .install_key(Slot::KEY_MANAGEMENT, p256_key(3))
        .unwrap();
    applet
        .install_key(Slot::CARD_AUTHENTICATION, p256_key(4))
        .unwrap();
    applet
}

/// The typed client's reply (data and status word).
pub use vscard_testkit::Reply as Answer;

/// The applet's BER-TLV encoder, for the tests' command data.
pub use vscard_applet::tlv::encode as tlv;

/// A PIV client for the tests: the testkit's client over an in-process
/// card, with CLA 00 commands and the PIV commands the tests repeat.
pub struct Client {
    inner: vscard_testkit::Client<Card>,
}

impl Client {
    pub fn new(card: Card) -> Client {
        Client {
            inner: vscard_testkit::Client::new(card),
        }
    }

    /// The card, for checks that look inside it (faults, power, ATR).
    pub fn card(&mut self) -> &mut Card {
        self.inner.transport()
    }

    /// Gives the card back.
    pub fn into_card(self) -> Card {
        self.inner.into_transport()
    }

    pub fn send(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Answer {
        self.try_send(ins, p1, p2, data).unwrap()
    }

    /// [`Client::send`], with the card's error (a power cut) as an error.
    pub fn try_send(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Answer, CardError> {
        match self.inner.command([0x00, ins, p1, p2], data) {
            Ok(answer) => Ok(answer),
            Err(ClientError::Transport(TransportError::Card(error))) => Err(error),
            Err(other) => panic!("{other}"),
        }
    }

    pub fn select(&mut self) -> Answer {
        self.inner.select(&vscard_applet::PIV_AID_SHORT).unwrap()
    }

    pub fn verify(&mut self, pin: &[u8]) -> u16 {
        self.send(0x20, 0x00, 0x80, &pad(pin)).sw()
    }

    pub fn verify_status(&mut self) -> u16 {
        self.send(0x20, 0x00, 0x80, &[]).sw()
    }

    pub fn change_pin(&mut self, old: &[u8], new: &[u8]) -> u16 {
        self.change(0x80, old, new)
    }

    pub fn change_puk(&mut self, old: &[u8], new: &[u8]) -> u16 {
        self.change(0x81, old, new)
    }

    fn change(&mut self, reference: u8, old: &[u8], new: &[u8]) -> u16 {
        let data = [pad(old), pad(new)].concat();
        self.send(0x24, 0x00, reference, &data).sw()
    }

    pub fn unblock(&mut self, puk: &[u8], new_pin: &[u8]) -> u16 {
        let data = [pad(puk), pad(new_pin)].concat();
        self.send(0x2C, 0x00, 0x80, &data).sw()
    }

    pub fn get_data(&mut self, tag: &[u8]) -> Answer {
        self.inner.get_data(tag).unwrap()
    }

    pub fn put_data(&mut self, tag: &[u8], value: &[u8]) -> u16 {
        self.inner.put_data(tag, value).unwrap().sw()
    }

    /// Management key mutual authentication, as yubico-piv-tool does it
    /// (the testkit's, with a fixed host challenge); the final status word.
    pub fn authenticate_management_key(&mut self, algorithm: Algorithm, key: &[u8]) -> u16 {
        let block = algorithm.block_len();
        let challenge: Vec<u8> = (0..block as u8).map(|i| i.wrapping_mul(37)).collect();
        match self
            .inner
            .authenticate_management_key(algorithm.byte(), key, &challenge)
            .unwrap()
        {
            Ok(()) => SW_OK,
            Err(status) => status.to_u16(),
        }
    }

    pub fn authenticate_default(&mut self) {
        assert_eq!(
            self.authenticate_management_key(Algorithm::Tdes, &MGMT),
            SW_OK
        );
    }

    /// GENERAL AUTHENTICATE `7C { 82 00, 81 data }`; returns the `82`
    /// value on success.
    pub fn sign(&mut self, algorithm: Algorithm, slot: Slot, input: &[u8]) -> Result<Vec<u8>, u16> {
        let answer = self
            .inner
            .general_authenticate(algorithm.byte(), slot.byte(), 0x81, input)
            .unwrap();
        if answer.sw() != SW_OK {
            return Err(answer.sw());
        }
        Ok(unwrap_template(&answer.data))
    }

    pub fn generate(&mut self, slot: Slot, algorithm: Algorithm) -> Answer {
        let data = tlv(0xAC, &tlv(0x80, &[algorithm.byte()]));
        self.send(0x47, 0x00, slot.byte(), &data)
    }

    pub fn metadata(&mut self, key: u8) -> Answer {
        self.send(0xF7, 0x00, key, &[])
    }

    /// (PIN tries left, PUK tries left) from GET METADATA (counts nothing).
    pub fn counters(&mut self) -> (u8, u8) {
        let pin = self.metadata(0x80);
        let puk = self.metadata(0x81);
        assert_eq!(pin.sw(), SW_OK);
        assert_eq!(puk.sw(), SW_OK);
        (retries(&pin.data), retries(&puk.data))
    }
}

/// The remaining tries in GET METADATA's `06 { total, remaining }`.
fn retries(metadata: &[u8]) -> u8 {
    let objects = Reader::new(metadata).read_all().unwrap();
    let counts = objects
        .iter()
        .find(|object| object.tag == 0x06)
        .expect("no retries in metadata");
    counts.value[1]
}

/// `7C { 82 value }` -> value.
pub fn unwrap_template(data: &[u8]) -> Vec<u8> {
    vscard_testkit::piv::response_value(data).unwrap()
}

/// Reads the first TLV of `data` and returns (tag, value).
pub fn read_tlv(data: &[u8]) -> (u32, &[u8]) {
    let object = Reader::new(data).read().unwrap();
    (object.tag, object.value)
}

/// One management-key block encrypted with `key` (the testkit's ciphers).
pub fn encrypt(algorithm: Algorithm, key: &[u8], block: &[u8]) -> Vec<u8> {
    vscard_testkit::management::apply(algorithm.byte(), key, block, true).unwrap()
}
