//! The ATR of a PIV card.
//!
//! OpenSC's PIV driver recognises a card whose historical bytes (category
//! `80`, compact-TLV) carry an application identifier object (tag `F`)
//! equal to the 9-byte PIV AID `A0 00 00 03 08 00 00 10 00` (card-piv.c,
//! `piv_match_card_continued`: the length must be exactly 9), so no vendor
//! quirk is needed to detect this card.

use vscard_emulator::{Atr, CompactTlv, compact_tag};

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
}
