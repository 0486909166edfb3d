//! The YubiKey Management application beside PIV: SELECT answers with the
//! firmware version, READ CONFIG (`00 1D`) with the device information
//! yubikit parses, selecting it ends PIV's authentication (libykpiv's
//! "deauthenticate"), and a plain PIV card has none.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::PIN;
use vscard_applet::{MANAGEMENT_AID, ManagementApplet, Model, PivApplet, PivConfig, piv_atr};
use vscard_emulator::{Card, CardRng};

fn card(model: Model) -> Card {
    let applet = PivApplet::new(PivConfig::for_model(model).with_serial(0x00C0_FFEE)).unwrap();
    let mut builder = Card::builder().atr(piv_atr()).rng(CardRng::from_u64(7));
    if let Some(management) = ManagementApplet::for_card(applet.state()) {
        builder = builder.install(management);
    }
    let mut card = builder.install_default(applet).build().unwrap();
    card.power_on();
    card
}

fn select_management() -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    apdu.extend_from_slice(MANAGEMENT_AID.as_bytes());
    apdu
}

#[test]
fn a_yubikey_5_7_answers_select_and_read_config() {
    let mut card = card(Model::YubiKey57);
    let answer = card.transmit(&select_management()).unwrap();
    assert_eq!(answer, b"vscard mgr - FW version 5.7.1\x90\x00");
    let info = card.transmit(&[0x00, 0x1D, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(
        hex::encode_upper(info),
        "19010200100204\
         00C0FFEE\
         030200100401010503050701\
         0A01009000"
    );
    // Page 1 does not exist (page 0 has no "more data" tag): empty.
    assert_eq!(
        card.transmit(&[0x00, 0x1D, 0x01, 0x00, 0x00]).unwrap(),
        [0x00, 0x90, 0x00]
    );
    // The configuration cannot be written; a proprietary class is refused.
    assert_eq!(
        card.transmit(&[0x00, 0x1C, 0x00, 0x00, 0x01, 0x00])
            .unwrap(),
        [0x6D, 0x00]
    );
    assert_eq!(
        card.transmit(&[0x80, 0x1D, 0x00, 0x00, 0x00]).unwrap(),
        [0x6E, 0x00]
    );
}

#[test]
fn a_yubikey_5_4_reports_its_version() {
    let mut card = card(Model::YubiKey54);
    let answer = card.transmit(&select_management()).unwrap();
    assert_eq!(answer, b"vscard mgr - FW version 5.4.3\x90\x00");
    let info = card.transmit(&[0x00, 0x1D, 0x00, 0x00, 0x00]).unwrap();
    assert!(
        hex::encode_upper(&info).contains("0503050403"),
        "{info:02X?}"
    );
}

#[test]
fn selecting_management_ends_the_pin_verification() {
    let mut card = card(Model::YubiKey57);
    let select_piv = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
    assert!(card.transmit(&select_piv).unwrap().ends_with(&[0x90, 0x00]));
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(&vscard_testkit::piv::pad(PIN));
    assert_eq!(card.transmit(&verify).unwrap(), [0x90, 0x00]);
    let status = [0x00, 0x20, 0x00, 0x80];
    assert_eq!(card.transmit(&status).unwrap(), [0x90, 0x00]);
    // libykpiv: SELECT Management, then PIV again: no longer verified.
    assert!(
        card.transmit(&select_management())
            .unwrap()
            .ends_with(&[0x90, 0x00])
    );
    card.transmit(&select_piv).unwrap();
    assert_eq!(card.transmit(&status).unwrap(), [0x63, 0xC3]);
}

#[test]
fn a_plain_piv_card_has_no_management_application() {
    let applet = PivApplet::new(PivConfig::for_model(Model::Piv)).unwrap();
    assert!(ManagementApplet::for_card(applet.state()).is_none());
    let mut card = card(Model::Piv);
    assert_eq!(card.transmit(&select_management()).unwrap(), [0x6A, 0x82]);
}
