//! A small typed PIV client that speaks bytes to an in-process card, and
//! the fixtures the PIV tests share.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use rsa::pkcs8::DecodePrivateKey;
use vscard_applet::{Algorithm, PivApplet, PivConfig, Slot, piv_atr};
use vscard_emulator::{Card, CardError, CardRng, MemoryStore};

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
pub fn pad(value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    out.resize(8.max(value.len()), 0xFF);
    out
}

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

/// A response: data and status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub data: Vec<u8>,
    pub sw: u16,
}

/// Encodes short APDUs, chaining commands longer than 255 bytes (as
/// yubico-piv-tool does) and collecting `61xx` pieces with GET RESPONSE.
pub fn exchange(
    card: &mut Card,
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &[u8],
) -> Result<Answer, CardError> {
    let mut chunks: Vec<&[u8]> = data.chunks(255).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    let mut raw = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let class = if i == last { cla } else { cla | 0x10 };
        let mut apdu = vec![class, ins, p1, p2];
        if !chunk.is_empty() {
            apdu.push(chunk.len() as u8);
            apdu.extend_from_slice(chunk);
        }
        if i == last {
            apdu.push(0x00);
        }
        raw = card.transmit(&apdu)?;
        if i != last {
            let sw = status(&raw);
            if sw != SW_OK {
                return Ok(Answer {
                    data: Vec::new(),
                    sw,
                });
            }
        }
    }
    let mut data = Vec::new();
    loop {
        let sw = status(&raw);
        data.extend_from_slice(&raw[..raw.len() - 2]);
        if sw >> 8 != 0x61 {
            return Ok(Answer { data, sw });
        }
        raw = card.transmit(&[0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8])?;
    }
}

fn status(raw: &[u8]) -> u16 {
    u16::from_be_bytes([raw[raw.len() - 2], raw[raw.len() - 1]])
}

/// The typed client.
pub struct Client {
    pub card: Card,
}

impl Client {
    pub fn new(card: Card) -> Client {
        Client { card }
    }

    pub fn send(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Answer {
        exchange(&mut self.card, 0x00, ins, p1, p2, data).unwrap()
    }

    pub fn try_send(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Answer, CardError> {
        exchange(&mut self.card, 0x00, ins, p1, p2, data)
    }

    pub fn select(&mut self) -> Answer {
        self.send(0xA4, 0x04, 0x00, &vscard_applet::PIV_AID_SHORT)
    }

    pub fn verify(&mut self, pin: &[u8]) -> u16 {
        self.send(0x20, 0x00, 0x80, &pad(pin)).sw
    }

    pub fn verify_status(&mut self) -> u16 {
        self.send(0x20, 0x00, 0x80, &[]).sw
    }

    pub fn change_pin(&mut self, old: &[u8], new: &[u8]) -> u16 {
        self.change(0x80, old, new)
    }

    pub fn change_puk(&mut self, old: &[u8], new: &[u8]) -> u16 {
        self.change(0x81, old, new)
    }

    fn change(&mut self, reference: u8, old: &[u8], new: &[u8]) -> u16 {
        let data = [pad(old), pad(new)].concat();
        self.send(0x24, 0x00, reference, &data).sw
    }

    pub fn unblock(&mut self, puk: &[u8], new_pin: &[u8]) -> u16 {
        let data = [pad(puk), pad(new_pin)].concat();
        self.send(0x2C, 0x00, 0x80, &data).sw
    }

    pub fn get_data(&mut self, tag: &[u8]) -> Answer {
        let mut data = vec![0x5C, tag.len() as u8];
        data.extend_from_slice(tag);
        self.send(0xCB, 0x3F, 0xFF, &data)
    }

    pub fn put_data(&mut self, tag: &[u8], value: &[u8]) -> u16 {
        let mut data = vec![0x5C, tag.len() as u8];
        data.extend_from_slice(tag);
        data.extend(tlv(0x53, value));
        self.send(0xDB, 0x3F, 0xFF, &data).sw
    }

    /// Management key mutual authentication, as yubico-piv-tool does it.
    pub fn authenticate_management_key(&mut self, algorithm: Algorithm, key: &[u8]) -> u16 {
        let alg = algorithm.byte();
        let step1 = self.send(0x87, alg, 0x9B, &[0x7C, 0x02, 0x80, 0x00]);
        if step1.sw != SW_OK {
            return step1.sw;
        }
        let block = algorithm.block_len();
        assert_eq!(step1.data[..4], [0x7C, block as u8 + 2, 0x80, block as u8]);
        let witness = decrypt(algorithm, key, &step1.data[4..]);
        let challenge: Vec<u8> = (0..block as u8).map(|i| i.wrapping_mul(37)).collect();
        let inner = [tlv(0x80, &witness), tlv(0x81, &challenge)].concat();
        let step2 = self.send(0x87, alg, 0x9B, &tlv(0x7C, &inner));
        if step2.sw != SW_OK {
            return step2.sw;
        }
        assert_eq!(step2.data[..4], [0x7C, block as u8 + 2, 0x82, block as u8]);
        assert_eq!(
            step2.data[4..],
            encrypt(algorithm, key, &challenge)[..],
            "card proved the key"
        );
        step2.sw
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
        let inner = [tlv(0x82, &[]), tlv(0x81, input)].concat();
        let answer = self.send(0x87, algorithm.byte(), slot.byte(), &tlv(0x7C, &inner));
        if answer.sw != SW_OK {
            return Err(answer.sw);
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
        assert_eq!(pin.sw, SW_OK);
        assert_eq!(puk.sw, SW_OK);
        (retries(&pin.data), retries(&puk.data))
    }
}

fn retries(metadata: &[u8]) -> u8 {
    let mut rest = metadata;
    while rest.len() >= 2 {
        let (tag, len) = (rest[0], rest[1] as usize);
        if tag == 0x06 {
            return rest[3];
        }
        rest = &rest[2 + len..];
    }
    panic!("no retries in metadata");
}

/// `7C { 82 value }` -> value.
pub fn unwrap_template(data: &[u8]) -> Vec<u8> {
    let (tag, inner) = read_tlv(data);
    assert_eq!(tag, 0x7C);
    let (tag, value) = read_tlv(inner);
    assert_eq!(tag, 0x82);
    value.to_vec()
}

/// Reads one TLV with a 1- or 2-byte tag and returns (tag, value).
pub fn read_tlv(data: &[u8]) -> (u32, &[u8]) {
    let (tag, rest) = if data[0] & 0x1F == 0x1F {
        ((u32::from(data[0]) << 8) | u32::from(data[1]), &data[2..])
    } else {
        (u32::from(data[0]), &data[1..])
    };
    let (len, rest) = match rest[0] {
        0x81 => (rest[1] as usize, &rest[2..]),
        0x82 => (((rest[1] as usize) << 8) | rest[2] as usize, &rest[3..]),
        n => (n as usize, &rest[1..]),
    };
    (tag, &rest[..len])
}

/// Encodes one TLV (1- or 2-byte tag).
pub fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if tag > 0xFF {
        out.extend_from_slice(&(tag as u16).to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

pub fn encrypt(algorithm: Algorithm, key: &[u8], block: &[u8]) -> Vec<u8> {
    fn run<C: BlockCipherEncrypt + KeyInit>(key: &[u8], block: &[u8]) -> Vec<u8> {
        let mut b = Array::try_from(block).unwrap();
        C::new_from_slice(key).unwrap().encrypt_block(&mut b);
        b.to_vec()
    }
    match algorithm {
        Algorithm::Tdes => run::<des::TdesEde3>(key, block),
        Algorithm::Aes128 => run::<aes::Aes128>(key, block),
        Algorithm::Aes192 => run::<aes::Aes192>(key, block),
        Algorithm::Aes256 => run::<aes::Aes256>(key, block),
        other => panic!("{other:?}"),
    }
}

pub fn decrypt(algorithm: Algorithm, key: &[u8], block: &[u8]) -> Vec<u8> {
    fn run<C: BlockCipherDecrypt + KeyInit>(key: &[u8], block: &[u8]) -> Vec<u8> {
        let mut b = Array::try_from(block).unwrap();
        C::new_from_slice(key).unwrap().decrypt_block(&mut b);
        b.to_vec()
    }
    match algorithm {
        Algorithm::Tdes => run::<des::TdesEde3>(key, block),
        Algorithm::Aes128 => run::<aes::Aes128>(key, block),
        Algorithm::Aes192 => run::<aes::Aes192>(key, block),
        Algorithm::Aes256 => run::<aes::Aes256>(key, block),
        other => panic!("{other:?}"),
    }
}
