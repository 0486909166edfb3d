//! PIV data objects (SP 800-73-4 Part 1 3.1 and Appendix A): their tags,
//! their access rules, and encoders for the containers this card fills at
//! personalisation (CCC, CHUID, Discovery, Key History, certificates,
//! Printed Information).
//!
//! Contract: the card stores the *value* of each object (what goes inside
//! the `53` wrapper, or inside `7E` for Discovery) and wraps it on GET
//! DATA; every encoder here returns that value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tlv::Writer;

/// A data object tag as named by GET DATA and PUT DATA (`5C` value):
/// `7E` (Discovery), `7F61` (biometric group template), or a 3-byte tag
/// `5Fxxxx` (`5FC1xx` PIV objects, `5FFFxx` vendor objects).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DataObjectTag(u32);

impl DataObjectTag {
    /// `5FC107` Card Capability Container.
    pub const CCC: DataObjectTag = DataObjectTag(0x5FC107);
    /// `5FC102` Card Holder Unique Identifier.
    pub const CHUID: DataObjectTag = DataObjectTag(0x5FC102);
    /// `7E` Discovery Object.
    pub const DISCOVERY: DataObjectTag = DataObjectTag(0x7E);
    /// `5FC10C` Key History Object.
    pub const KEY_HISTORY: DataObjectTag = DataObjectTag(0x5FC10C);
    /// `5FC109` Printed Information (PIN-protected).
    pub const PRINTED_INFORMATION: DataObjectTag = DataObjectTag(0x5FC109);
    /// `5FC106` Security Object.
    pub const SECURITY_OBJECT: DataObjectTag = DataObjectTag(0x5FC106);
    /// `5FFF20` vscard's role profiles object (NHS role, business
    /// functions and organisation of each role the holder has); read needs
    /// the PIN, like Printed Information.
    pub const ROLE_PROFILES: DataObjectTag = DataObjectTag(0x5FFF20);

    /// `5FFF01` the attestation key's certificate (Yubico), which ATTEST
    /// certificates chain to.
    pub const ATTESTATION_CERTIFICATE: DataObjectTag = DataObjectTag(0x5FFF01);

    /// The tag named by the bytes of a `5C` tag list, if valid.
    pub fn from_bytes(bytes: &[u8]) -> Option<DataObjectTag> {
        match *bytes {
            [0x7E] => Some(DataObjectTag(0x7E)),
            [0x7F, 0x61] => Some(DataObjectTag(0x7F61)),
            [0x5F, b, c] => Some(DataObjectTag(0x5F0000 | u32::from(b) << 8 | u32::from(c))),
            _ => None,
        }
    }

    /// The tag from its numeric value, if valid.
    pub fn new(tag: u32) -> Option<DataObjectTag> {
        let bytes = tag.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
        DataObjectTag::from_bytes(bytes.get(skip..)?)
    }

    /// The tag's numeric value (`0x5FC105`).
    pub const fn value(self) -> u32 {
        self.0
    }

    /// True for Discovery, which is answered in its own `7E` tag rather
    /// than in `53` (SP 800-73-4 Part 1 3.3.2).
    pub const fn is_discovery(self) -> bool {
        self.0 == 0x7E
    }

    /// True for objects readable only after PIN verification (SP 800-73-4
    /// Part 1 Table 2: fingerprints, Printed Information, facial image,
    /// iris images), and vscard's role profiles.
    pub const fn read_needs_pin(self) -> bool {
        matches!(self.0, 0x5FC103 | 0x5FC108 | 0x5FC109 | 0x5FC121 | 0x5FFF20)
    }
}

impl fmt::Debug for DataObjectTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataObjectTag({self})")
    }
}

impl fmt::Display for DataObjectTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x7E => f.write_str("7E"),
            0x7F61 => f.write_str("7F61"),
            other => write!(f, "{other:06X}"),
        }
    }
}

impl TryFrom<String> for DataObjectTag {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let bytes = hex::decode(&text).map_err(|e| format!("{text}: {e}"))?;
        DataObjectTag::from_bytes(&bytes).ok_or_else(|| format!("{text} is not a data object tag"))
    }
}

impl From<DataObjectTag> for String {
    fn from(tag: DataObjectTag) -> String {
        tag.to_string()
    }
}

/// The PIV AID as it appears in the Discovery Object.
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// The Card Capability Container (SP 800-73-4 Part 1 Table 8) with a card
/// identifier derived from `serial`.
pub fn ccc(serial: u32) -> Vec<u8> {
    let mut card_id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    card_id.extend_from_slice(&[0u8; 10]);
    card_id.extend_from_slice(&serial.to_be_bytes());
    let mut writer = Writer::new();
    writer
        .put(0xF0, &card_id)
        .put(0xF1, &[0x21])
        .put(0xF2, &[0x21])
        .put(0xF3, &[])
        .put(0xF4, &[0x00])
        .put(0xF5, &[0x10])
        .put(0xF6, &[])
        .put(0xF7, &[])
        .put(0xFA, &[])
        .put(0xFB, &[])
        .put(0xFC, &[])
        .put(0xFD, &[])
        .put(0xFE, &[]);
    writer.finish()
}

/// The Discovery Object value (SP 800-73-4 Part 1 Table 18): the PIV AID
/// and a PIN usage policy of "PIV Card Application PIN only" (`40 00`).
pub fn discovery() -> Vec<u8> {
    Writer::new()
        .put(0x4F, &PIV_AID)
        .put(0x5F2F, &[0x40, 0x00])
        .finish()
}

/// The Key History Object value (SP 800-73-4 Part 1 Table 19) of a card
/// without retired keys.
pub fn key_history() -> Vec<u8> {
    Writer::new()
        .put(0xC1, &[0x00])
        .put(0xC2, &[0x00])
        .put(0xFE, &[])
        .finish()
}

/// A certificate container value (SP 800-73-4 Part 1 Table 10): `70`
/// certificate, `71 01 00` (not compressed), `FE 00` (no error detection).
pub fn certificate(der: &[u8]) -> Vec<u8> {
    Writer::new()
        .put(0x70, der)
        .put(0x71, &[0x00])
        .put(0xFE, &[])
        .finish()
}

/// The certificate inside a certificate container value, if well formed.
pub fn certificate_der(container: &[u8]) -> Option<&[u8]> {
    let objects = crate::tlv::Reader::new(container).read_all().ok()?;
    objects.iter().find(|o| o.tag == 0x70).map(|o| o.value)
}

/// A FASC-N with agency code 9999 and all other fields 9 (the value
/// non-federal PIV-compatible cards use), BCD-encoded as SP 800-73-4
/// Part 1 Table 9 requires.
pub const FILLER_FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// The Card Holder Unique Identifier value (SP 800-73-4 Part 1 Table 9):
/// FASC-N, GUID (`34`, 16 bytes; OpenSC uses it as the token serial),
/// expiration date `YYYYMMDD`, an empty issuer signature and `FE 00`.
pub fn chuid(guid: &[u8; 16], expiration: &[u8; 8]) -> Vec<u8> {
    Writer::new()
        .put(0x30, &FILLER_FASC_N)
        .put(0x34, guid)
        .put(0x35, expiration)
        .put(0x3E, &[])
        .put(0xFE, &[])
        .finish()
}

/// The Printed Information object (SP 800-73-4 Part 1 Table 15).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrintedInformation {
    /// `01` Name (up to 125 bytes).
    pub name: String,
    /// `02` Employee affiliation (up to 20 bytes).
    pub employee_affiliation: String,
    /// `04` Expiration date, `YYYYMMMDD` (e.g. `2028JAN01`).
    pub expiration_date: String,
    /// `05` Agency card serial number (up to 20 bytes).
    pub agency_card_serial: String,
    /// `06` Issuer identification (up to 15 bytes).
    pub issuer: String,
    /// `07` Organization affiliation line 1 (optional).
    pub organization_line1: Option<String>,
    /// `08` Organization affiliation line 2 (optional).
    pub organization_line2: Option<String>,
}

impl PrintedInformation {
    /// The object's value.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer
            .put(0x01, self.name.as_bytes())
            .put(0x02, self.employee_affiliation.as_bytes())
            .put(0x04, self.expiration_date.as_bytes())
            .put(0x05, self.agency_card_serial.as_bytes())
            .put(0x06, self.issuer.as_bytes());
        if let Some(line) = &self.organization_line1 {
            writer.put(0x07, line.as_bytes());
        }
        if let Some(line) = &self.organization_line2 {
            writer.put(0x08, line.as_bytes());
        }
        writer.put(0xFE, &[]);
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_print() {
        let tag = DataObjectTag::from_bytes(&[0x5F, 0xC1, 0x05]).unwrap();
        assert_eq!(tag.value(), 0x5FC105);
        assert_eq!(tag.to_string(), "5FC105");
        assert_eq!(DataObjectTag::new(0x7E), Some(DataObjectTag::DISCOVERY));
        assert_eq!(DataObjectTag::from_bytes(&[0x5F, 0xC1]), None);
        assert_eq!(DataObjectTag::from_bytes(&[0x41]), None);
        assert_eq!(
            DataObjectTag::try_from("7F61".to_string()).unwrap().value(),
            0x7F61
        );
        assert!(DataObjectTag::PRINTED_INFORMATION.read_needs_pin());
        assert!(!DataObjectTag::CHUID.read_needs_pin());
    }

    #[test]
    fn containers_have_the_spec_layout() {
        assert_eq!(
            discovery(),
            hex::decode("4f0ba0000003080000100001005f2f024000").unwrap()
        );
        assert_eq!(key_history(), [0xC1, 1, 0, 0xC2, 1, 0, 0xFE, 0]);
        let cert = certificate(&[0x30, 0x00]);
        assert_eq!(cert, [0x70, 2, 0x30, 0, 0x71, 1, 0, 0xFE, 0]);
        assert_eq!(certificate_der(&cert), Some(&[0x30, 0][..]));
        let chuid = chuid(&[0x11; 16], b"20301231");
        assert_eq!(chuid.len(), 2 + 25 + 2 + 16 + 2 + 8 + 2 + 2);
        assert_eq!(ccc(1).len(), 2 + 21 + 3 + 3 + 2 + 3 + 3 + 2 * 7);
    }
}
