//! What scenarios may assume about the card under test.

use vscard_testkit::client::short_apdu;
use vscard_testkit::piv::tag_list;

/// The card's secrets and shape, as issued. The defaults are those of
/// vscard's demo card; for a physical card pass its own values.
#[derive(Clone, Debug)]
pub struct CardFacts {
    /// The PIN (ASCII digits).
    pub pin: Vec<u8>,
    /// The unlock code (PIV PUK).
    pub puk: Vec<u8>,
    /// The PIV card application management key (9B).
    pub management_key: Vec<u8>,
    /// Its algorithm reference (03 = 3DES, 08/0A/0C = AES-128/192/256).
    pub management_algorithm: u8,
    /// PIN tries before the PIN blocks.
    pub pin_tries: u8,
    /// The user's 12-digit unique identifier, when known.
    pub uuid: Option<String>,
}

impl Default for CardFacts {
    fn default() -> Self {
        CardFacts {
            pin: b"123456".to_vec(),
            puk: b"654321".to_vec(),
            management_key: DEFAULT_MANAGEMENT_KEY.to_vec(),
            management_algorithm: 0x03,
            pin_tries: 3,
            uuid: Some("000123456789".into()),
        }
    }
}

/// The well-known default PIV management key (3DES).
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// The PIV AID (SP 800-73-4 Part 1 2.2), as the applet declares it.
pub fn piv_aid() -> &'static [u8] {
    vscard_applet::PIV_AID.as_bytes()
}

/// SELECT by DF name with Le = 00 (the testkit's).
pub use vscard_testkit::piv::select_apdu as select;

/// VERIFY PIN (key reference 80) with the PIN padded with FF to 8 bytes.
pub fn verify_pin(pin: &[u8]) -> Vec<u8> {
    short_apdu([0x00, 0x20, 0x00, 0x80], &pad_pin(pin), false)
}

/// A PIN padded with FF to 8 bytes (SP 800-73-4 Part 2 2.4.3).
pub fn pad_pin(pin: &[u8]) -> [u8; 8] {
    let mut padded = [0xFF; 8];
    for (slot, byte) in padded.iter_mut().zip(pin) {
        *slot = *byte;
    }
    padded
}

/// GET DATA for a 3-byte PIV object tag (`5F C1 xx`), short Le = 00.
pub fn get_data(tag: [u8; 3]) -> Vec<u8> {
    short_apdu([0x00, 0xCB, 0x3F, 0xFF], &tag_list(&tag), true)
}

/// GET DATA for a 3-byte PIV object tag with extended Le = 0000.
pub fn get_data_extended(tag: [u8; 3]) -> Vec<u8> {
    vec![
        0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x05, 0x5C, 0x03, tag[0], tag[1], tag[2], 0x00, 0x00,
    ]
}

/// PIV object tags (SP 800-73-4 Part 1 table 3).
pub mod tag {
    /// Card Capability Container.
    pub const CCC: [u8; 3] = [0x5F, 0xC1, 0x07];
    /// Card Holder Unique Identifier.
    pub const CHUID: [u8; 3] = [0x5F, 0xC1, 0x02];
    /// X.509 certificate for PIV authentication (9A).
    pub const CERT_9A: [u8; 3] = [0x5F, 0xC1, 0x05];
    /// X.509 certificate for digital signature (9C).
    pub const CERT_9C: [u8; 3] = [0x5F, 0xC1, 0x0A];
    /// X.509 certificate for key management (9D).
    pub const CERT_9D: [u8; 3] = [0x5F, 0xC1, 0x0B];
    /// X.509 certificate for card authentication (9E).
    pub const CERT_9E: [u8; 3] = [0x5F, 0xC1, 0x01];
    /// Printed information.
    pub const PRINTED_INFORMATION: [u8; 3] = [0x5F, 0xC1, 0x09];
    /// Key history.
    pub const KEY_HISTORY: [u8; 3] = [0x5F, 0xC1, 0x0C];
}
