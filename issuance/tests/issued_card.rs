//! A card issued from a profile, seen through `Card::transmit`: the
//! certificates read with GET DATA chain to the exported CAs, the identity
//! objects carry the profile, the role profiles need the PIN, renewal keeps
//! the counters, and seeded issuance is reproducible.

// Tests fail loudly: unwrap in helpers is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use der::Decode;
use vscard_applet::{PivApplet, Slot, piv_atr};
use vscard_emulator::{Applet, Card, CardRng};
use vscard_issuance::{
    self, CardProfile, CertificateValidity, Pki, RoleProfile, SecretString, SlotAlgorithms,
    decode_roles, issue_applet, renew_applet, summarize, verify_chain,
};
use vscard_testkit::Client;
use x509_cert::Certificate;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn two_role_profile(slots: SlotAlgorithms) -> CardProfile {
    let mut profile = CardProfile::demo();
    profile.slots = slots;
    profile.seed = Some(SecretString::new("issued-card-tests"));
    profile.roles.push(RoleProfile {
        code: "R8001".into(),
        name: "Nurse Access Role".into(),
        business_functions: vec!["B0360".into()],
        ods_code: "K81003001".into(),
    });
    profile
}

struct Issued {
    _state: tempfile::TempDir,
    pki: Pki,
    profile: CardProfile,
    validity: CertificateValidity,
    applet_state: vscard_emulator::AppletState,
}

/// The demo profile (RSA 9A/9D, P-256 9C/9E) with two roles, issued once.
fn issued() -> &'static Issued {
    static ISSUED: OnceLock<Issued> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let state = tempfile::tempdir().unwrap();
        let profile = two_role_profile(SlotAlgorithms::default());
        let mut rng = profile.seeded_rng().unwrap();
        let pki = Pki::open_or_create(state.path(), &profile.environment, &mut rng).unwrap();
        let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
        let applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
        Issued {
            applet_state: applet.save().unwrap(),
            _state: state,
            pki,
            profile,
            validity,
        }
    })
}

fn card_from(state: &vscard_emulator::AppletState) -> Card {
    let applet = PivApplet::from_saved(state).unwrap();
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(7))
        .install_default(applet)
        .build()
        .unwrap();
    card.power_on();
    card
}

/// Sends `apdu` with the testkit's client (following `61xx`).
fn send(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let reply = Client::new(card).send(apdu).unwrap();
    let sw = reply.sw();
    (reply.data, sw)
}

fn get_data(card: &mut Card, tag: [u8; 3]) -> (Vec<u8>, u16) {
    let reply = Client::new(card).get_data(&tag).unwrap();
    let sw = reply.sw();
    (reply.data, sw)
}

fn verify(card: &mut Card, pin: &str) -> u16 {
    Client::new(card).verify_pin(pin.as_bytes()).unwrap().sw()
}

/// The value of the first `tag` in simple one-byte-tag BER-TLV `data`.
fn find(data: &[u8], tag: u8) -> Option<&[u8]> {
    let mut reader = vscard_applet::tlv::Reader::new(data);
    while let Ok(item) = reader.read() {
        if item.tag == u32::from(tag) {
            return Some(item.value);
        }
    }
    None
}

fn certificate_via_get_data(card: &mut Card, tag: [u8; 3]) -> Certificate {
    let (object, sw) = get_data(card, tag);
    assert_eq!(sw, 0x9000);
    let container = find(&object, 0x53).unwrap();
    Certificate::from_der(find(container, 0x70).unwrap()).unwrap()
}

#[test]
fn certificates_read_from_the_card_chain_to_the_exported_cas() {
    let issued = issued();
    let mut card = card_from(&issued.applet_state);
    let out = tempfile::tempdir().unwrap();
    let [root_pem, sub_pem, _crl, _attestation] = issued.pki.export(out.path()).unwrap();
    let pem = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap();
        use der::DecodePem;
        Certificate::from_pem(text.as_bytes()).unwrap()
    };
    let (root, sub) = (pem(&root_pem), pem(&sub_pem));
    let now = SystemTime::now();
    for tag in [
        [0x5F, 0xC1, 0x05],
        [0x5F, 0xC1, 0x0A],
        [0x5F, 0xC1, 0x0B],
        [0x5F, 0xC1, 0x01],
    ] {
        let certificate = certificate_via_get_data(&mut card, tag);
        verify_chain(&certificate, &sub, &root, now).unwrap();
        let validity = certificate.tbs_certificate().validity();
        let span = validity
            .not_after
            .to_system_time()
            .duration_since(validity.not_before.to_system_time())
            .unwrap();
        assert!(
            span >= 2 * YEAR && span <= 2 * YEAR + Duration::from_secs(2 * 86400),
            "{span:?}"
        );
        let subject = certificate.tbs_certificate().subject().to_string();
        assert!(subject.contains("CN=Sample Specimen"), "{subject}");
        assert!(subject.contains("000123456789"), "{subject}");
    }
    // Outside the window the chain is refused.
    let later = SystemTime::now() + 3 * YEAR;
    let certificate = certificate_via_get_data(&mut card, [0x5F, 0xC1, 0x05]);
    assert!(verify_chain(&certificate, &sub, &root, later).is_err());
}

#[test]
fn the_chuid_guid_carries_the_user_id() {
    let mut card = card_from(&issued().applet_state);
    let (object, sw) = get_data(&mut card, [0x5F, 0xC1, 0x02]);
    assert_eq!(sw, 0x9000);
    let chuid = find(&object, 0x53).unwrap();
    let guid = find(chuid, 0x34).unwrap();
    // OpenSC's PKCS#11 token serial: the last 16 hex digits of the GUID.
    assert_eq!(hex::encode_upper(&guid[8..]), "0000000123456789");
    let expiry = std::str::from_utf8(find(chuid, 0x35).unwrap())
        .unwrap()
        .to_owned();
    let not_after = der::DateTime::from_system_time(issued().validity.not_after()).unwrap();
    assert_eq!(
        expiry,
        format!(
            "{:04}{:02}{:02}",
            not_after.year(),
            not_after.month(),
            not_after.day()
        )
    );
}

#[test]
fn role_profiles_list_every_role_and_need_the_pin() {
    let issued = issued();
    let mut card = card_from(&issued.applet_state);
    assert_eq!(get_data(&mut card, [0x5F, 0xFF, 0x20]), (vec![], 0x6982));
    assert_eq!(get_data(&mut card, [0x5F, 0xC1, 0x09]), (vec![], 0x6982));
    assert_eq!(verify(&mut card, "123456"), 0x9000);
    let (object, sw) = get_data(&mut card, [0x5F, 0xFF, 0x20]);
    assert_eq!(sw, 0x9000);
    let roles = decode_roles(find(&object, 0x53).unwrap()).unwrap();
    assert_eq!(roles, issued.profile.roles);
    assert_eq!(roles.len(), 2);
    let (printed, sw) = get_data(&mut card, [0x5F, 0xC1, 0x09]);
    assert_eq!(sw, 0x9000);
    let printed = find(&printed, 0x53).unwrap();
    assert_eq!(find(printed, 0x01), Some(&b"Sample Specimen"[..]));
    assert_eq!(find(printed, 0x05), Some(&b"000123456789"[..]));
}

#[test]
fn pin_and_unlock_code_come_from_the_profile() {
    let mut card = card_from(&issued().applet_state);
    assert_eq!(verify(&mut card, "111111"), 0x63C2);
    assert_eq!(verify(&mut card, "123456"), 0x9000);
    // RESET RETRY COUNTER with the unlock code 654321.
    let mut apdu = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    apdu.extend_from_slice(b"654321\xFF\xFF");
    apdu.extend_from_slice(b"222222\xFF\xFF");
    assert_eq!(send(&mut card, &apdu).1, 0x9000);
    assert_eq!(verify(&mut card, "222222"), 0x9000);
    // GET SERIAL: the last nine digits of the user ID.
    let (serial, sw) = send(&mut card, &[0x00, 0xF8, 0x00, 0x00, 0x00]);
    assert_eq!(
        (u32::from_be_bytes(serial.try_into().unwrap()), sw),
        (123_456_789, 0x9000)
    );
}

#[test]
fn renewal_extends_the_certificates_and_keeps_the_counters() {
    let issued = issued();
    let mut card = card_from(&issued.applet_state);
    assert_eq!(verify(&mut card, "000000"), 0x63C2);
    let before = certificate_via_get_data(&mut card, [0x5F, 0xC1, 0x05]);
    // The card image after the wrong try, renewed a year later.
    let state = card
        .image()
        .applet(&vscard_applet::PIV_AID.to_hex())
        .unwrap()
        .clone();
    let mut applet = PivApplet::from_saved(&state).unwrap();
    let renewal = CertificateValidity::years_from(SystemTime::now() + YEAR, 2).unwrap();
    let mut rng = CardRng::from_u64(11);
    renew_applet(&mut applet, issued.pki.sub(), renewal, false, &mut rng).unwrap();
    let summary = summarize(applet.state()).unwrap();
    assert_eq!(summary.pin.tries_left, 2, "the wrong try survives renewal");
    assert_eq!(summary.roles.len(), 2);

    let mut renewed = card_from(&applet.save().unwrap());
    let after = certificate_via_get_data(&mut renewed, [0x5F, 0xC1, 0x05]);
    let end = |c: &Certificate| c.tbs_certificate().validity().not_after.to_system_time();
    assert!(end(&after) > end(&before) + YEAR - Duration::from_secs(86400));
    assert_eq!(
        after.tbs_certificate().subject_public_key_info(),
        before.tbs_certificate().subject_public_key_info(),
        "renewal without --new-keys keeps the key"
    );
    assert_eq!(
        after.tbs_certificate().subject(),
        before.tbs_certificate().subject()
    );
    assert_ne!(
        after.tbs_certificate().serial_number(),
        before.tbs_certificate().serial_number()
    );
    assert_eq!(verify(&mut renewed, "000000"), 0x63C1);
    // The card's own expiry moved too: CHUID and Printed Information.
    assert_eq!(verify(&mut renewed, "123456"), 0x9000);
    let not_after = der::DateTime::from_system_time(renewal.not_after()).unwrap();
    let (chuid, _) = get_data(&mut renewed, [0x5F, 0xC1, 0x02]);
    let expiry = find(find(&chuid, 0x53).unwrap(), 0x35).unwrap().to_vec();
    assert_eq!(
        expiry,
        format!(
            "{:04}{:02}{:02}",
            not_after.year(),
            not_after.month(),
            not_after.day()
        )
        .into_bytes()
    );
    let (printed, _) = get_data(&mut renewed, [0x5F, 0xC1, 0x09]);
    let printed_expiry = find(find(&printed, 0x53).unwrap(), 0x04).unwrap();
    assert!(printed_expiry.starts_with(format!("{:04}", not_after.year()).as_bytes()));
    assert!(printed_expiry.ends_with(format!("{:02}", not_after.day()).as_bytes()));
    assert_eq!(
        find(find(&printed, 0x53).unwrap(), 0x01),
        Some(&b"Sample Specimen"[..])
    );
}

#[test]
fn renewal_with_new_keys_replaces_them() {
    let state = tempfile::tempdir().unwrap();
    let profile = two_role_profile(SlotAlgorithms::ALL_P256);
    let mut rng = profile.seeded_rng().unwrap();
    let pki = Pki::open_or_create(state.path(), &profile.environment, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let mut applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
    let old = vscard_issuance::certificate(applet.state(), Slot::SIGNATURE)
        .unwrap()
        .unwrap();
    renew_applet(&mut applet, pki.sub(), validity, true, &mut rng).unwrap();
    let new = vscard_issuance::certificate(applet.state(), Slot::SIGNATURE)
        .unwrap()
        .unwrap();
    assert_ne!(
        old.tbs_certificate().subject_public_key_info(),
        new.tbs_certificate().subject_public_key_info()
    );
    // The card's key matches the new certificate: sign and check.
    let public = applet.public_key(vscard_applet::Slot::SIGNATURE).unwrap();
    let spki = new.tbs_certificate().subject_public_key_info();
    let vscard_applet::PublicKey::P256(key) = public else {
        panic!("P-256 expected")
    };
    assert_eq!(
        spki.subject_public_key.raw_bytes(),
        key.to_sec1_bytes().as_ref()
    );
}

#[test]
fn seeded_issuance_is_reproducible() {
    let issue = || {
        let state = tempfile::tempdir().unwrap();
        let profile = two_role_profile(SlotAlgorithms::ALL_P256);
        let mut rng = profile.seeded_rng().unwrap();
        let pki = Pki::open_or_create(state.path(), &profile.environment, &mut rng).unwrap();
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let validity = CertificateValidity::years_from(not_before, 2).unwrap();
        let mut rng = profile.seeded_rng().unwrap();
        let applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
        serde_json::to_string(&applet.save().unwrap()).unwrap()
    };
    assert_eq!(issue(), issue());
}

#[test]
fn the_summary_shows_no_secret() {
    let issued = issued();
    let applet = PivApplet::from_saved(&issued.applet_state).unwrap();
    let summary = summarize(applet.state()).unwrap();
    assert_eq!(summary.holder, "Sample Specimen");
    assert_eq!(summary.uuid, "000123456789");
    assert_eq!(summary.environment, "sandbox");
    assert_eq!(summary.slots.len(), 4);
    assert!(summary.slots.iter().all(|s| s.certificate.is_some()));
    let text = format!("{summary}\n{}", serde_json::to_string(&summary).unwrap());
    for secret in ["123456\"", "654321", "0102030405060708"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(
        text.contains("R8001 Nurse Access Role at K81003001"),
        "{text}"
    );
}

#[test]
fn profile_errors_name_the_field_and_never_quote_a_secret() {
    // An unlock code the card's PIN rules would refuse is refused by name.
    let mut profile = CardProfile::demo();
    profile.pin_policy.max_length = 6;
    profile.unlock_code = SecretString::new("6543210");
    let err = profile.validate().unwrap_err().to_string();
    assert!(err.starts_with("unlock_code"), "{err}");
    assert!(!err.contains("6543210"), "{err}");
    // A PIN given as a number is a parse error that does not quote it.
    let toml = CardProfile::demo()
        .to_toml()
        .unwrap()
        .replace("pin = \"123456\"", "pin = 987123");
    let err = CardProfile::from_toml(&toml).unwrap_err().to_string();
    assert!(err.contains("pin"), "{err}");
    assert!(!err.contains("987123"), "{err}");
}

#[test]
fn the_profile_capacity_is_the_card_capacity() {
    let state = tempfile::tempdir().unwrap();
    let mut profile = two_role_profile(SlotAlgorithms::ALL_P256);
    profile.capacity = 16 * 1024;
    let mut rng = profile.seeded_rng().unwrap();
    let pki = Pki::open_or_create(state.path(), &profile.environment, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
    assert_eq!(applet.state().capacity(), 16 * 1024);
    let used = applet.state().used_bytes();
    assert!(used < 16 * 1024, "the issued card takes {used} bytes");
    let card = card_from(&applet.save().unwrap());
    let mut client = Client::new(card);
    client.select_piv().unwrap();
    let key = vscard_applet::DEFAULT_MANAGEMENT_KEY;
    // The profile's model decides the default key's type (AES-192 on the
    // default yubikey-5.7, 3DES on the others).
    let algorithm = profile.model.management_algorithm();
    let challenge = vec![0x5A; algorithm.block_len()];
    client
        .authenticate_management_key(algorithm.byte(), &key, &challenge)
        .unwrap()
        .unwrap();
    let tag = [0x5F, 0xC1, 0x0D];
    // What is left, and one byte more (ISO 7816-4 5.1.3: 6A84).
    let left = 16 * 1024 - used;
    let reply = client.put_data(&tag, &vec![0x11; left + 1]).unwrap();
    assert_eq!(reply.sw(), 0x6A84);
    let reply = client.put_data(&tag, &vec![0x11; left]).unwrap();
    assert_eq!(reply.sw(), 0x9000);
}
