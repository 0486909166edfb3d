//! The YubiKey Management application (AID `A0 00 00 05 27 47 11 17`),
//! installed beside PIV on the YubiKey models.
//!
//! Contract: middleware reads a YubiKey's identity here. yubikit's
//! `ManagementSession` parses the firmware version out of the SELECT
//! answer (a text that contains `major.minor.patch`), then reads the device
//! information with READ CONFIG (`00 1D`, P1 = page): one length byte and
//! a flat list of TLVs (yubikit `management.py`: `01` USB supported and
//! `03` USB enabled applications, two-byte bit masks where PIV is `0010`;
//! `02` serial, four bytes; `04` form factor; `05` version; `0A` config
//! lock). libykpiv selects the application to end a PIV session's PIN and
//! management key authentication (selecting it deselects PIV, whose
//! security status is cleared on deselection).
//!
//! Only PIV exists on this card, over USB only (no NFC tags, so yubikit
//! reports no NFC transport). The configuration cannot be changed: every
//! other instruction, WRITE CONFIG (`1C`) among them, is `6D00`. The
//! applet keeps no persistent state: what it reports is fixed when the card
//! is built, from the PIV state ([`ManagementApplet::for_card`]).

use vscard_emulator::{
    Aid, Applet, AppletState, CommandApdu, Context, Response, StateError, Status,
};

use crate::state::PivState;
use crate::tlv::Writer;

/// The AID of the YubiKey Management application.
pub const MANAGEMENT_AID: Aid = Aid::from_array([0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17]);

/// READ CONFIG: the device information, page P1.
const INS_READ_CONFIG: u8 = 0x1D;

/// yubikit `CAPABILITY.PIV`.
const CAPABILITY_PIV: u16 = 0x0010;

/// yubikit `FORM_FACTOR.USB_A_KEYCHAIN`.
pub const FORM_FACTOR_USB_A_KEYCHAIN: u8 = 0x01;

/// What the Management application tells about the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The serial number (the PIV GET SERIAL value).
    pub serial: u32,
    /// The firmware version (the PIV GET VERSION value).
    pub version: [u8; 3],
    /// The form factor byte (yubikit `FORM_FACTOR`).
    pub form_factor: u8,
}

impl DeviceInfo {
    /// Page 0 of READ CONFIG: a length byte, then the TLVs.
    pub fn encode(&self) -> Vec<u8> {
        let capabilities = CAPABILITY_PIV.to_be_bytes();
        let tlvs = Writer::new()
            .put(0x01, &capabilities)
            .put(0x02, &self.serial.to_be_bytes())
            .put(0x03, &capabilities)
            .put(0x04, &[self.form_factor])
            .put(0x05, &self.version)
            .put(0x0A, &[0x00])
            .finish();
        // Far below 255 bytes: seven short TLVs.
        let mut page = Vec::with_capacity(tlvs.len() + 1);
        page.push(u8::try_from(tlvs.len()).unwrap_or(u8::MAX));
        page.extend_from_slice(&tlvs);
        page
    }

    /// The SELECT answer: a text with the version, as a YubiKey's.
    pub fn select_answer(&self) -> Vec<u8> {
        let [major, minor, patch] = self.version;
        format!("vscard mgr - FW version {major}.{minor}.{patch}").into_bytes()
    }
}

/// The Management application.
#[derive(Clone, Debug)]
pub struct ManagementApplet {
    info: DeviceInfo,
}

impl ManagementApplet {
    /// An application that reports `info`.
    pub fn new(info: DeviceInfo) -> ManagementApplet {
        ManagementApplet { info }
    }

    /// The application for a card holding `state`: `None` for a model
    /// without it (a plain PIV card, which answers `6A82` to its SELECT).
    pub fn for_card(state: &PivState) -> Option<ManagementApplet> {
        let settings = state.settings();
        settings.model.has_management_application().then(|| {
            ManagementApplet::new(DeviceInfo {
                serial: settings.serial,
                version: settings.version,
                form_factor: FORM_FACTOR_USB_A_KEYCHAIN,
            })
        })
    }

    /// What it reports.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }
}

impl Applet for ManagementApplet {
    fn aid(&self) -> Aid {
        MANAGEMENT_AID
    }

    fn name(&self) -> &str {
        "Management"
    }

    /// The whole AID: its RID is Yubico's, shared with OTP and OATH.
    fn min_select_len(&self) -> usize {
        MANAGEMENT_AID.as_bytes().len()
    }

    fn select(
        &mut self,
        _ctx: &mut Context<'_>,
        _command: Option<&CommandApdu<'_>>,
    ) -> Result<Response, Status> {
        Ok(Response::ok(self.info.select_answer()))
    }

    fn process(
        &mut self,
        _ctx: &mut Context<'_>,
        command: &CommandApdu<'_>,
    ) -> Result<Response, Status> {
        if command.class.is_proprietary() {
            return Err(Status::ClassNotSupported);
        }
        match (command.ins, command.p1, command.p2) {
            (INS_READ_CONFIG, 0x00, 0x00) => Ok(Response::ok(self.info.encode())),
            // Further pages exist only when page 0 says so (tag `10`).
            (INS_READ_CONFIG, _, 0x00) => Ok(Response::ok(vec![0x00])),
            (INS_READ_CONFIG, _, _) => Err(Status::IncorrectP1P2),
            _ => Err(Status::InstructionNotSupported),
        }
    }

    fn describe(&self, command: &CommandApdu<'_>) -> Option<String> {
        (command.ins == INS_READ_CONFIG).then(|| format!("READ CONFIG page {}", command.p1))
    }

    fn save(&self) -> Result<AppletState, StateError> {
        Ok(AppletState::new())
    }

    fn load(&mut self, _state: &AppletState) -> Result<(), StateError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_info_is_a_length_and_tlvs() {
        let info = DeviceInfo {
            serial: 0x0102_0304,
            version: [5, 7, 1],
            form_factor: FORM_FACTOR_USB_A_KEYCHAIN,
        };
        assert_eq!(
            hex::encode_upper(info.encode()),
            "19010200100204010203040302001004010105030507010A0100"
        );
        assert_eq!(info.select_answer(), b"vscard mgr - FW version 5.7.1");
    }
}
