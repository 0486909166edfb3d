//! The PKCS#11 custody against a real SoftHSM2 token (testkit's throwaway
//! token): a card whose four keys are generated in the token signs, agrees
//! and decrypts through it; the token shows each key sensitive and not
//! extractable; the image holds no key material; strays are reconciled; a
//! missing token or a refused login is `6F00` with the PIN state
//! unchanged.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, and the
//! module is opened once per process: each test re-runs this test binary
//! as a child with the variable set (setting it in this process would need
//! `unsafe`), and the child does the work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use vscard_applet::{KeyCustody, PIV_AID, PivApplet, PivConfig, Slot, piv_atr};
use vscard_emulator::{Card, CardRng, MemoryStore, Part};
use vscard_pkcs11::{Pkcs11Custody, TokenPin};
use vscard_testkit::softhsm::SoftHsm;
use vscard_testkit::{Client, Reply};

const CHILD: &str = "VSCARD_SOFTHSM_CHILD";

/// Runs test `name` in a child with `SOFTHSM2_CONF` of a new token; in the
/// child, returns the token's module and label instead.
fn in_child(name: &str) -> Option<(std::path::PathBuf, String)> {
    if let Ok(label) = std::env::var(CHILD) {
        return Some((SoftHsm::module_path().unwrap(), label));
    }
    let hsm = SoftHsm::new("vscard-test").unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", hsm.conf())
        .env(CHILD, hsm.label())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {name}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The parent checks the token the child left.
    if name == "four_keys_in_the_token" {
        let objects = hsm.list_objects().unwrap();
        let private: Vec<&str> = objects
            .split("Private Key Object")
            .skip(1)
            .map(|block| block.split("Public Key Object").next().unwrap_or(block))
            .collect();
        assert_eq!(private.len(), 4, "{objects}");
        for block in private {
            let access = block
                .lines()
                .find(|line| line.trim_start().starts_with("Access:"))
                .unwrap_or_else(|| panic!("no access line: {block}"));
            assert!(access.contains("sensitive"), "{access}");
            assert!(access.contains("never extractable"), "{access}");
            assert!(!access.contains(" extractable,") || access.contains("never extractable"));
            assert!(block.contains("label:      vscard card-A "), "{block}");
        }
    }
    None
}

const MGMT: [u8; 24] = vscard_applet::DEFAULT_MANAGEMENT_KEY;

fn client(applet: PivApplet) -> Client<Card> {
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(5))
        .store(MemoryStore::new())
        .install_default(applet)
        .build()
        .unwrap();
    card.power_on();
    Client::new(card)
}

fn authenticate(c: &mut Client<Card>) {
    let challenge = [0x5Au8; 8];
    c.authenticate_management_key(0x03, &MGMT, &challenge)
        .unwrap()
        .unwrap();
}

fn generate(c: &mut Client<Card>, slot: u8, algorithm: u8) -> Reply {
    let data = vscard_applet::tlv::encode(0xAC, &vscard_applet::tlv::encode(0x80, &[algorithm]));
    c.command([0x00, 0x47, 0x00, slot], &data).unwrap()
}

fn verify_pin(c: &mut Client<Card>, pin: &[u8]) -> u16 {
    c.verify_pin(pin).unwrap().sw()
}

/// The `7F49` answer's `tag` value.
fn template_value(data: &[u8], tag: u32) -> Vec<u8> {
    let outer = vscard_applet::tlv::Reader::new(data).read().unwrap();
    vscard_applet::tlv::Reader::new(outer.value)
        .read_all()
        .unwrap()
        .into_iter()
        .find(|o| o.tag == tag)
        .unwrap()
        .value
        .to_vec()
}

fn general_authenticate(
    c: &mut Client<Card>,
    alg: u8,
    slot: u8,
    tag: u32,
    input: &[u8],
) -> Result<Vec<u8>, u16> {
    let reply = c.general_authenticate(alg, slot, tag, input).unwrap();
    if reply.sw() != 0x9000 {
        return Err(reply.sw());
    }
    Ok(vscard_testkit::piv::response_value(&reply.data).unwrap())
}

fn pin_tries(c: &mut Client<Card>) -> u8 {
    let reply = c.command([0x00, 0xF7, 0x00, 0x80], &[]).unwrap();
    let objects = vscard_applet::tlv::Reader::new(&reply.data)
        .read_all()
        .unwrap();
    objects.iter().find(|o| o.tag == 0x06).unwrap().value[1]
}

#[test]
fn four_keys_in_the_token() {
    let Some((module, label)) = in_child("four_keys_in_the_token") else {
        return;
    };
    let custody =
        Arc::new(Pkcs11Custody::open(&module, TokenPin::new(SoftHsm::USER_PIN).unwrap()).unwrap());
    let mut applet = PivApplet::new(PivConfig::default()).unwrap();
    applet
        .state_mut()
        .set_custody(Some(custody.target(&label, "card-A")));
    let mut c = client(applet.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>));
    authenticate(&mut c);
    let rsa = generate(&mut c, 0x9A, 0x07);
    assert_eq!(rsa.sw(), 0x9000);
    let sig = generate(&mut c, 0x9C, 0x11);
    assert_eq!(sig.sw(), 0x9000);
    let kmk = generate(&mut c, 0x9D, 0x14);
    assert_eq!(kmk.sw(), 0x9000);
    let cak = generate(&mut c, 0x9E, 0x11);
    assert_eq!(cak.sw(), 0x9000);
    // Ed25519 is not a SoftHSM mechanism here: a clear 6A81.
    assert_eq!(generate(&mut c, 0x9E, 0xE0).sw(), 0x6A81);
    assert_eq!(verify_pin(&mut c, b"123456"), 0x9000);

    // RSA-2048: a PKCS#1 v1.5 block signed raw, checked with the public key.
    let n = template_value(&rsa.data, 0x81);
    let e = template_value(&rsa.data, 0x82);
    let public = rsa::RsaPublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap();
    let digest: [u8; 32] = [0x3C; 32];
    let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
    let mut block = vec![0x00, 0x01];
    block.resize(256 - prefix.len() - 32 - 1, 0xFF);
    block.push(0x00);
    block.extend(&prefix);
    block.extend(digest);
    let signature = general_authenticate(&mut c, 0x07, 0x9A, 0x81, &block).unwrap();
    assert_eq!(signature.len(), 256);
    public
        .verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &digest,
            &signature,
        )
        .unwrap();

    // P-256 in 9C (PIN-always: VERIFY was just done) and 9E.
    for (slot, answer) in [(0x9C, &sig), (0x9E, &cak)] {
        let point = template_value(&answer.data, 0x86);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let der = general_authenticate(&mut c, 0x11, slot, 0x81, &digest).unwrap();
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        key.verify_prehash(&digest, &signature).unwrap();
    }
    // 9C again without VERIFY: PIN-always is the card's, not the token's.
    assert_eq!(
        general_authenticate(&mut c, 0x11, 0x9C, 0x81, &digest),
        Err(0x6982)
    );

    // ECDH with the P-384 key in 9D.
    let point = template_value(&kmk.data, 0x86);
    let ours = p384::PublicKey::from_sec1_bytes(&point).unwrap();
    let peer = p384::SecretKey::from_slice(&[0x21; 48]).unwrap();
    let shared =
        general_authenticate(&mut c, 0x14, 0x9D, 0x85, &peer.public_key().to_sec1_bytes()).unwrap();
    use p384::elliptic_curve::point::AffineCoordinates as _;
    let expected = (ours.to_projective() * *peer.to_nonzero_scalar())
        .to_affine()
        .x();
    assert_eq!(shared, expected.to_vec());

    // The image: references and public keys, no PKCS#8.
    let card = c.transport();
    let state = card.image().applet(&PIV_AID.to_hex()).unwrap();
    let keys = state.get(Part::<serde_json::Value>::new("keys")).unwrap();
    for slot in ["9A", "9C", "9D", "9E"] {
        assert!(keys[slot].get("pkcs8").is_none(), "{slot}: {}", keys[slot]);
        assert_eq!(keys[slot]["custody"]["custody"], "pkcs11");
        assert_eq!(keys[slot]["custody"]["location"]["token"], label.as_str());
        let id = hex::decode(keys[slot]["custody"]["id"].as_str().unwrap()).unwrap();
        assert!(id.starts_with(format!("vscard/card-A/{slot}/").as_bytes()));
    }

    // A key made in the token but never committed is found and reported,
    // not destroyed (the card's name does not make it this image's); the
    // four the card refers to stay.
    let stray = custody
        .generate(
            &custody.target(&label, "card-A"),
            Slot::AUTHENTICATION,
            vscard_applet::Algorithm::EccP256,
        )
        .unwrap()
        .0;
    let served = PivApplet::from_saved(state)
        .unwrap()
        .with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>);
    assert_eq!(
        served.reconcile_custody().unwrap(),
        std::slice::from_ref(&stray)
    );
    assert_eq!(
        served.reconcile_custody().unwrap(),
        std::slice::from_ref(&stray)
    );
    assert_eq!(
        custody
            .keys_of(&custody.target(&label, "card-A"))
            .unwrap()
            .len(),
        5
    );
    custody
        .delete(&custody.target(&label, "card-A"), &stray)
        .unwrap();

    // Another card's image naming card-A's keys: the custody refuses to
    // sign with them or destroy them; an ID vscard did not make (another
    // application's object, an empty ID) is refused the same way.
    let target_a = custody.target(&label, "card-A");
    let target_b = custody.target(&label, "card-B");
    let theirs = served
        .state()
        .key_reference(Slot::SIGNATURE)
        .unwrap()
        .clone();
    let p256 = vscard_applet::Algorithm::EccP256;
    assert!(custody.sign(&target_a, &theirs, p256, &digest).is_ok());
    let refused = custody.sign(&target_b, &theirs, p256, &digest).unwrap_err();
    assert!(refused.to_string().contains("another card's"), "{refused}");
    assert!(custody.ecdh(&target_b, &theirs, p256, &[4; 65]).is_err());
    assert!(custody.delete(&target_b, &theirs).is_err());
    let mut bad = theirs.clone();
    for id in [
        String::new(),
        hex::encode_upper(b"other-app-key"),
        hex::encode_upper(b"vscard/card-A/9C/0123"),
        hex::encode_upper(b"vscard/card-A/9C/0123456789abcdef/x"),
        hex::encode_upper(b"vscard//9C/0123456789abcdef"),
    ] {
        bad.id = id;
        assert!(
            custody.sign(&target_a, &bad, p256, &digest).is_err(),
            "{bad}"
        );
        assert!(custody.delete(&target_a, &bad).is_err(), "{bad}");
    }
    // The token's serial is recorded; a card whose keys are in a token
    // of another serial (the same label reused) is refused.
    assert!(target_a.location.contains_key(vscard_pkcs11::SERIAL));
    let mut other_serial = target_a.clone();
    other_serial
        .location
        .insert(vscard_pkcs11::SERIAL.to_owned(), "0000".to_owned());
    let mut moved = theirs.clone();
    moved.location = other_serial.location.clone();
    let error = custody
        .sign(&other_serial, &moved, p256, &digest)
        .unwrap_err();
    assert!(error.to_string().contains("serial"), "{error}");
    // Another token's location in the reference: refused too.
    let mut elsewhere = theirs.clone();
    elsewhere
        .location
        .insert(vscard_pkcs11::TOKEN.to_owned(), "other".to_owned());
    assert!(custody.sign(&target_a, &elsewhere, p256, &digest).is_err());
    assert_eq!(custody.keys_of(&target_a).unwrap().len(), 4);
    // A card name with a '/' (whose keys would share card-A's prefix
    // with `card-A/x`) or an empty one is refused.
    for card in ["card-A/x", ""] {
        assert!(
            custody
                .generate(&custody.target(&label, card), Slot::SIGNATURE, p256)
                .is_err()
        );
    }
    assert_eq!(custody.keys_of(&target_a).unwrap().len(), 4);

    // A card whose token is not there: GENERATE answers 6F00, the rest works.
    let mut other = PivApplet::new(PivConfig::default()).unwrap();
    other
        .state_mut()
        .set_custody(Some(custody.target("no-such-token", "card-B")));
    let mut b = client(other.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>));
    authenticate(&mut b);
    assert_eq!(generate(&mut b, 0x9A, 0x11).sw(), 0x6F00);
    assert_eq!(verify_pin(&mut b, b"123456"), 0x9000);
    assert_eq!(b.get_data(&[0x5F, 0xC1, 0x07]).unwrap().sw(), 0x9000);
}

#[test]
fn a_refused_login_is_6f00_and_leaves_the_pin_alone() {
    let Some((module, label)) = in_child("a_refused_login_is_6f00_and_leaves_the_pin_alone") else {
        return;
    };
    // Keys made with the right PIN...
    let image = {
        let custody = Arc::new(
            Pkcs11Custody::open(&module, TokenPin::new(SoftHsm::USER_PIN).unwrap()).unwrap(),
        );
        let mut applet = PivApplet::new(PivConfig::default()).unwrap();
        applet
            .state_mut()
            .set_custody(Some(custody.target(&label, "card-C")));
        let mut c = client(applet.with_custody(custody as Arc<dyn KeyCustody>));
        authenticate(&mut c);
        assert_eq!(generate(&mut c, 0x9C, 0x11).sw(), 0x9000);
        c.transport().image().clone()
    };
    // ...used by a custody whose PIN is wrong (the same process: the
    // module is initialised already).
    let custody = Arc::new(Pkcs11Custody::open(&module, TokenPin::new("999999").unwrap()).unwrap());
    let wrong = Arc::clone(&custody);
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(6))
        .store(MemoryStore::with_image(image))
        .install_default(PivApplet::with_defaults().with_custody(custody as Arc<dyn KeyCustody>))
        .build()
        .unwrap();
    card.power_on();
    let mut c = Client::new(card);
    // The refused login is not tried again (a wrong PIN would otherwise use
    // up the token's retry counter): the second failure says so.
    let error = wrong.check_login(&label).unwrap_err().to_string();
    assert!(error.contains("refused"), "{error}");
    assert!(wrong.login_refused(&label));
    let again = wrong.check_login(&label).unwrap_err().to_string();
    assert!(again.contains("not retried"), "{again}");
    assert_eq!(verify_pin(&mut c, b"000000"), 0x63C2);
    assert_eq!(verify_pin(&mut c, b"123456"), 0x9000);
    assert_eq!(
        general_authenticate(&mut c, 0x11, 0x9C, 0x81, &[7; 32]),
        Err(0x6F00)
    );
    assert_eq!(pin_tries(&mut c), 3);
    // Still verified, GET DATA works, and the PIN-always permission stands.
    assert_eq!(
        c.command([0x00, 0x20, 0x00, 0x80], &[]).unwrap().sw(),
        0x9000
    );
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x07]).unwrap().sw(), 0x9000);
    assert_eq!(
        general_authenticate(&mut c, 0x11, 0x9C, 0x81, &[7; 32]),
        Err(0x6F00)
    );
    assert_eq!(pin_tries(&mut c), 3);
}

/// The P-256 point of the key in `slot` (GET METADATA tag `04`).
fn metadata_point(c: &mut Client<Card>, slot: u8) -> Vec<u8> {
    let reply = c.command([0x00, 0xF7, 0x00, slot], &[]).unwrap();
    assert_eq!(reply.sw(), 0x9000);
    let objects = vscard_applet::tlv::Reader::new(&reply.data)
        .read_all()
        .unwrap();
    let public = objects.iter().find(|o| o.tag == 0x04).unwrap().value;
    let inner = vscard_applet::tlv::Reader::new(public).read().unwrap();
    inner.value.to_vec()
}

#[test]
fn a_cut_during_generate_leaves_the_old_or_the_new_token_key_and_strays_are_reported() {
    use vscard_emulator::{CardError, CutPoint, FaultPlan};
    let Some((module, label)) = in_child(
        "a_cut_during_generate_leaves_the_old_or_the_new_token_key_and_strays_are_reported",
    ) else {
        return;
    };
    let custody =
        Arc::new(Pkcs11Custody::open(&module, TokenPin::new(SoftHsm::USER_PIN).unwrap()).unwrap());
    let mut cuts = 0;
    for cut in [CutPoint::BeforeWrite, CutPoint::AfterWrite] {
        for k in 1.. {
            let card_name = format!("tear-{cut:?}-{k}");
            let target = custody.target(&label, &card_name);
            let mut applet = PivApplet::new(PivConfig::default()).unwrap();
            applet.state_mut().set_custody(Some(target.clone()));
            let mut c = client(applet.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>));
            authenticate(&mut c);
            assert_eq!(generate(&mut c, 0x9A, 0x11).sw(), 0x9000);
            let old = metadata_point(&mut c, 0x9A);
            c.transport()
                .set_fault_plan(FaultPlan::cut_at_write(k, cut));
            let data = vscard_applet::tlv::encode(0xAC, &vscard_applet::tlv::encode(0x80, &[0x11]));
            let result = c.transport().transmit(
                &[
                    &[0x00, 0x47, 0x00, 0x9A, data.len() as u8][..],
                    &data,
                    &[0x00],
                ]
                .concat(),
            );
            if c.transport().fault_pending() {
                c.transport().set_fault_plan(FaultPlan::none());
                assert!(result.is_ok());
                // No cut: the old token key is gone, the new one stays.
                assert_eq!(custody.keys_of(&target).unwrap().len(), 1);
                break;
            }
            assert!(matches!(result, Err(CardError::PowerLost)), "k={k} {cut:?}");
            cuts += 1;
            // Write 1 records the new key's ID (write-ahead), before the
            // token makes it; write 2 commits the key.
            let held = if k == 1 { 1 } else { 2 };
            assert_eq!(
                custody.keys_of(&target).unwrap().len(),
                held,
                "k={k} {cut:?}"
            );
            c.transport().power_on();
            let now = metadata_point(&mut c, 0x9A);
            let new_committed = k == 2 && cut == CutPoint::AfterWrite;
            assert_eq!(now == old, !new_committed, "k={k} {cut:?}");
            let pending =
                PivApplet::from_saved(c.transport().image().applet(&PIV_AID.to_hex()).unwrap())
                    .unwrap()
                    .state()
                    .pending_custody_keys()
                    .len();
            assert_eq!(
                pending,
                usize::from(!(k == 1 && cut == CutPoint::BeforeWrite)),
                "k={k} {cut:?}"
            );
            // The next start: the key the image recorded and does not
            // refer to goes (the new one never committed, or the old one
            // replaced); nothing is left to report.
            let state = c
                .transport()
                .image()
                .applet(&PIV_AID.to_hex())
                .unwrap()
                .clone();
            let served = PivApplet::from_saved(&state)
                .unwrap()
                .with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>);
            let strays = served.reconcile_custody().unwrap();
            assert_eq!(strays, [], "k={k} {cut:?}");
            let referenced = served
                .state()
                .key_reference(Slot::AUTHENTICATION)
                .unwrap()
                .clone();
            assert_eq!(
                custody.keys_of(&target).unwrap(),
                [referenced],
                "k={k} {cut:?}"
            );
            // And the key the card refers to signs, with that public key.
            assert_eq!(verify_pin(&mut c, b"123456"), 0x9000);
            let digest = [0x61; 32];
            let der = general_authenticate(&mut c, 0x11, 0x9A, 0x81, &digest).unwrap();
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&now).unwrap();
            key.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap())
                .unwrap();
        }
    }
    assert_eq!(
        cuts, 4,
        "GENERATE writes twice (write-ahead, then the key): cut before and after each"
    );
}
