//! Answer to reset (ISO 7816-3 8.2, historical bytes ISO 7816-4 8.1.1).
//!
//! The ATR is built from typed parts: the card advertises T=1 (PC/SC
//! middleware such as yubico-piv-tool only sends Le under T=1), with an
//! information field size and waiting times, and carries historical bytes
//! in compact-TLV form after the category indicator `80`, so an applet can
//! announce itself (for example its AID under the application identifier
//! tag `F`). The check byte TCK is computed.

use thiserror::Error;

/// One compact-TLV data object of the historical bytes (ISO 7816-4 8.1.1.2):
/// a 4-bit tag and up to 15 bytes of value, encoded as one byte `tag|len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactTlv {
    tag: u8,
    value: Vec<u8>,
}

/// Compact-TLV tag numbers used by cards (ISO 7816-4 table 9).
pub mod compact_tag {
    /// Country code and national data.
    pub const COUNTRY_CODE: u8 = 0x1;
    /// Card service data.
    pub const CARD_SERVICE_DATA: u8 = 0x3;
    /// Initial access data.
    pub const INITIAL_ACCESS_DATA: u8 = 0x4;
    /// Card issuer's data.
    pub const ISSUER_DATA: u8 = 0x5;
    /// Pre-issuing data.
    pub const PRE_ISSUING_DATA: u8 = 0x6;
    /// Card capabilities (selection methods, data coding, chaining and
    /// logical channels).
    pub const CARD_CAPABILITIES: u8 = 0x7;
    /// Application identifier.
    pub const APPLICATION_IDENTIFIER: u8 = 0xF;
}

/// Why ATR parts do not fit.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AtrError {
    /// A compact-TLV tag is a 4-bit number.
    #[error("compact-TLV tag {0:#x} is not 1..=15")]
    Tag(u8),
    /// A compact-TLV value is at most 15 bytes.
    #[error("compact-TLV value of {0} bytes is longer than 15")]
    ValueLength(usize),
    /// The historical bytes are at most 15 bytes in all.
    #[error("historical bytes of {0} bytes are longer than 15")]
    HistoricalLength(usize),
    /// Bytes given as an ATR that are not one (ISO 7816-3 8.2): no `3B`
    /// (direct convention) first, interface or historical bytes missing,
    /// bytes after the check byte, or a check byte that does not match.
    #[error("not a direct-convention ATR with a valid check byte: {0}")]
    Malformed(&'static str),
}

impl CompactTlv {
    /// A compact-TLV object; tag 1..=15, value up to 15 bytes.
    pub fn new(tag: u8, value: &[u8]) -> Result<CompactTlv, AtrError> {
        if tag == 0 || tag > 0x0F {
            return Err(AtrError::Tag(tag));
        }
        if value.len() > 0x0F {
            return Err(AtrError::ValueLength(value.len()));
        }
        Ok(CompactTlv {
            tag,
            value: value.to_vec(),
        })
    }

    /// The card capabilities object (tag 7, ISO 7816-4 8.1.1.2.7) for a card
    /// that selects by full and partial DF name, supports command chaining
    /// and extended length, and offers `channels` logical channels.
    ///
    /// The third software function table codes up to 8 channels in three
    /// bits (`111` means 8 or more), so any count above 7 is written as
    /// "8 or more".
    pub fn card_capabilities(channels: u8) -> CompactTlv {
        let selection = 0b1110_0000; // by full DF name, by partial DF name, by path
        let data_coding = 0b0000_0001; // one-byte data unit size
        let coded = channels.clamp(1, 8) - 1;
        let third = 0b1100_0000 // command chaining, extended Lc and Le
            | 0b0001_0000 // logical channel number assignment by the card
            | coded;
        CompactTlv {
            tag: compact_tag::CARD_CAPABILITIES,
            value: vec![selection, data_coding, third],
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push((self.tag << 4) | self.value.len() as u8);
        out.extend_from_slice(&self.value);
    }
}

/// A built answer to reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atr {
    bytes: Vec<u8>,
}

impl Atr {
    /// A builder with the defaults: T=1, IFSC 254, BWI 4, CWI 5, no
    /// historical bytes.
    pub fn builder() -> AtrBuilder {
        AtrBuilder {
            ifsc: 0xFE,
            bwi: 4,
            cwi: 5,
            historical: Vec::new(),
        }
    }

    /// An ATR given byte for byte (a real card's, say), checked: direct
    /// convention (`3B`), every interface byte that T0 and the TDi bytes
    /// announce, K historical bytes, and TCK (present when a protocol other
    /// than T=0 is announced) making the XOR of T0 to TCK zero.
    pub fn from_bytes(bytes: &[u8]) -> Result<Atr, AtrError> {
        if bytes.first() != Some(&0x3B) {
            return Err(AtrError::Malformed("TS is not 3B"));
        }
        let (historical, needs_tck) =
            historical_range(bytes).ok_or(AtrError::Malformed("interface bytes missing"))?;
        let end = historical.end + usize::from(needs_tck);
        if bytes.len() != end {
            return Err(AtrError::Malformed("length does not match T0 and TDi"));
        }
        if needs_tck && bytes.iter().skip(1).fold(0u8, |acc, b| acc ^ b) != 0 {
            return Err(AtrError::Malformed("TCK does not match"));
        }
        Ok(Atr {
            bytes: bytes.to_vec(),
        })
    }

    /// The ATR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The historical bytes (empty when there are none).
    pub fn historical_bytes(&self) -> &[u8] {
        historical_range(&self.bytes)
            .and_then(|(range, _)| self.bytes.get(range))
            .unwrap_or(&[])
    }
}

/// Where the historical bytes of `bytes` are, and whether a TCK follows
/// them (a TDi announced a protocol other than T=0; ISO 7816-3 8.2.5):
/// T0 and each TDi say by their high nibble which of TAi, TBi, TCi, TDi
/// follow. `None` when the bytes end before the interface bytes do.
fn historical_range(bytes: &[u8]) -> Option<(std::ops::Range<usize>, bool)> {
    let t0 = *bytes.get(1)?;
    let count = usize::from(t0 & 0x0F);
    let mut index = 2;
    let mut present = t0 >> 4;
    let mut needs_tck = false;
    loop {
        index += present.count_ones() as usize;
        if present & 0x8 == 0 {
            break;
        }
        let td = *bytes.get(index - 1)?;
        needs_tck |= td & 0x0F != 0;
        present = td >> 4;
    }
    let end = index + count;
    (end <= bytes.len()).then_some((index..end, needs_tck))
}

impl Default for Atr {
    fn default() -> Self {
        Atr::builder().build().unwrap_or(Atr { bytes: Vec::new() })
    }
}

/// Builds an [`Atr`].
#[derive(Clone, Debug)]
pub struct AtrBuilder {
    ifsc: u8,
    bwi: u8,
    cwi: u8,
    historical: Vec<CompactTlv>,
}

impl AtrBuilder {
    /// The T=1 information field size for the card (TA3), 1..=254.
    pub fn ifsc(mut self, ifsc: u8) -> Self {
        self.ifsc = ifsc.clamp(1, 0xFE);
        self
    }

    /// Adds a compact-TLV object to the historical bytes.
    pub fn historical(mut self, object: CompactTlv) -> Self {
        self.historical.push(object);
        self
    }

    /// Encodes the ATR: `3B`, T0 with TD1 and K, TD1 (T=1, TD2 follows),
    /// TD2 (T=1, TA3 and TB3 follow), TA3, TB3, historical bytes, TCK.
    pub fn build(self) -> Result<Atr, AtrError> {
        let mut historical = Vec::new();
        if !self.historical.is_empty() {
            historical.push(0x80);
            for object in &self.historical {
                object.encode_into(&mut historical);
            }
        }
        if historical.len() > 15 {
            return Err(AtrError::HistoricalLength(historical.len()));
        }
        let mut bytes = vec![
            0x3B,
            0x80 | historical.len() as u8,
            0x81,
            0x31,
            self.ifsc,
            ((self.bwi & 0x0F) << 4) | (self.cwi & 0x0F),
        ];
        bytes.extend_from_slice(&historical);
        // TCK: XOR of T0 up to the last historical byte (ISO 7816-3 8.2.5).
        let tck = bytes.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
        bytes.push(tck);
        Ok(Atr { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_atr_is_t1_with_valid_check_byte() {
        let atr = Atr::default();
        assert_eq!(atr.as_bytes()[..6], [0x3B, 0x80, 0x81, 0x31, 0xFE, 0x45]);
        let xor = atr.as_bytes()[1..].iter().fold(0u8, |a, b| a ^ b);
        assert_eq!(xor, 0, "TCK makes the XOR of T0..TCK zero");
        assert!(atr.historical_bytes().is_empty());
    }

    #[test]
    fn historical_bytes_carry_compact_tlv() {
        let aid = [0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0];
        let atr = Atr::builder()
            .historical(CompactTlv::new(compact_tag::APPLICATION_IDENTIFIER, &aid).unwrap())
            .build()
            .unwrap();
        let hist = atr.historical_bytes();
        assert_eq!(hist[0], 0x80);
        assert_eq!(hist[1], 0xF9);
        assert_eq!(&hist[2..], &aid);
        assert_eq!(atr.as_bytes()[1], 0x80 | 11);
    }

    #[test]
    fn an_atr_from_bytes_is_checked_and_its_historical_bytes_found() {
        // A YubiKey 5's: TA1 TB1 TC1 before TD1, 13 historical bytes.
        let yubikey = hex::decode("3BFD1300008131FE158073C021C057597562694B657940").unwrap();
        let atr = Atr::from_bytes(&yubikey).unwrap();
        assert_eq!(atr.as_bytes(), &yubikey[..]);
        assert_eq!(atr.historical_bytes(), &yubikey[9..22]);
        let built = Atr::default();
        assert_eq!(Atr::from_bytes(built.as_bytes()), Ok(built));
        let mut bad = yubikey.clone();
        bad[22] ^= 1;
        assert_eq!(
            Atr::from_bytes(&bad),
            Err(AtrError::Malformed("TCK does not match"))
        );
        assert!(Atr::from_bytes(&yubikey[..20]).is_err());
        assert!(Atr::from_bytes(&[0x3F, 0x00]).is_err());
        // T=0 only: no TCK.
        assert!(Atr::from_bytes(&[0x3B, 0x02, 0x14, 0x50]).is_ok());
    }

    #[test]
    fn oversized_parts_are_refused() {
        assert_eq!(CompactTlv::new(0, &[]), Err(AtrError::Tag(0)));
        assert_eq!(CompactTlv::new(1, &[0; 16]), Err(AtrError::ValueLength(16)));
        let big = CompactTlv::new(0xF, &[0; 15]).unwrap();
        assert_eq!(
            Atr::builder().historical(big).build(),
            Err(AtrError::HistoricalLength(17))
        );
    }
}
