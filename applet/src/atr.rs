//! The ATR of a PIV card.
//!
//! OpenSC's PIV driver recognises a card whose historical bytes (category
//! `80`, compact-TLV) carry an application identifier object (tag `F`)
//! equal to the 9-byte PIV AID `A0 00 00 03 08 00 00 10 00` (card-piv.c,
//! `piv_match_card_continued`: the length must be exactly 9), so no vendor
//! quirk is needed to detect this card.
//!
//! The YubiKey models answer a YubiKey 5's ATR instead ([`atr_for`]), byte
//! for byte as libykpiv and OpenSC list it (`3B FD 13 00 00 81 31 FE 15
//! 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40`, "YubiKey" in its
//! historical bytes): libykpiv takes the device type from it, and OpenSC's
//! PIV driver still claims the card, by the "YubiKey" issuer data in the
//! compact-TLV historical bytes, as a YubiKey (then it reads GET VERSION).

use vscard_emulator::{Atr, CompactTlv, compact_tag};

use crate::model::Model;

/// A YubiKey 5's ATR over USB (CCID): T=1, IFSC 254, historical bytes
/// `80 73 C0 21 C0 57 "YubiKey"`.
pub const YUBIKEY_5_ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// The ATR a card of `model` answers: a YubiKey 5's for the YubiKey
/// models, the generic PIV one ([`piv_atr`]) for a plain PIV card.
pub fn atr_for(model: Model) -> Atr {
    if model.has_yubico_extensions() {
        Atr::from_bytes(&YUBIKEY_5_ATR).unwrap_or_else(|_| piv_atr())
    } else {
        piv_atr()
    }
}

/// The PIV AID without its version, as OpenSC matches it in the ATR.
pub const PIV_AID_SHORT: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// The ATR for a PIV card: T=1 and `80 F9 <PIV AID>` in the historical
/// bytes.
pub fn piv_atr() -> Atr {
    CompactTlv::new(compact_tag::APPLICATION_IDENTIFIER, &PIV_AID_SHORT)
        .and_then(|aid| Atr::builder().historical(aid).build())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_carries_the_piv_aid() {
        let atr = piv_atr();
        let mut expected = vec![0x80, 0xF9];
        expected.extend_from_slice(&PIV_AID_SHORT);
        assert_eq!(atr.historical_bytes(), &expected[..]);
        assert_eq!(
            hex::encode_upper(atr.as_bytes()),
            "3B8B8131FE4580F9A0000003080000100042"
        );
        let xor = atr.as_bytes().iter().skip(1).fold(0u8, |a, b| a ^ b);
        assert_eq!(xor, 0, "TCK");
    }

    #[test]
    fn yubikey_models_answer_a_yubikey_5_atr() {
        for model in [Model::YubiKey57, Model::YubiKey54] {
            assert_eq!(atr_for(model).as_bytes(), &YUBIKEY_5_ATR[..]);
        }
        assert_eq!(atr_for(Model::Piv), piv_atr());
        assert_eq!(
            &atr_for(Model::YubiKey57).historical_bytes()[6..],
            b"YubiKey"
        );
    }
}
