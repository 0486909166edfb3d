//! Keys in an external custody ([`vscard_applet::custody`]), through the
//! in-memory custody: GENERATE, IMPORT, signatures, ECDH, DELETE, RESET of
//! the applet's commands, no key material in the image, PIN semantics
//! untouched by custody failures, and tearing around GENERATE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use vscard_applet::{
    Algorithm, KeyCustody, MemoryCustody, PIV_AID, PivApplet, PivConfig, PivState, Slot,
};
use vscard_emulator::{Card, CardError, CutPoint, FaultPlan, MemoryStore, Part};

/// A card whose new keys go to `custody` (named `card-1` there).
fn custody_card(custody: &Arc<MemoryCustody>) -> Client {
    let mut applet = PivApplet::new(PivConfig::default()).unwrap();
    applet
        .state_mut()
        .set_custody(Some(MemoryCustody::target("card-1")));
    let applet = applet.with_custody(Arc::clone(custody) as Arc<dyn KeyCustody>);
    Client::new(card_with(applet))
}

/// The P-256 point at the end of a GENERATE answer or a metadata `04`.
fn point(data: &[u8]) -> p256::ecdsa::VerifyingKey {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&data[data.len() - 65..]).unwrap()
}

fn verify(public: &p256::ecdsa::VerifyingKey, digest: &[u8], der: &[u8]) {
    let signature = p256::ecdsa::Signature::from_der(der).unwrap();
    public.verify_prehash(digest, &signature).unwrap();
}

/// The PIV part of the card's image.
fn piv_state(card: &Card) -> PivState {
    PivState::from_saved(card.image().applet(&PIV_AID.to_hex()).unwrap()).unwrap()
}

/// The `keys` part of the image as JSON.
fn keys_json(card: &Card) -> serde_json::Value {
    let state = card.image().applet(&PIV_AID.to_hex()).unwrap();
    state.get(Part::<serde_json::Value>::new("keys")).unwrap()
}

/// GENERAL AUTHENTICATE `7C { 82 00, 85 point }` with a P-256 key: the
/// `82` value, or the status word.
fn agree(c: &mut Client, slot: u8, point: &[u8]) -> Result<Vec<u8>, u16> {
    let data = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, point)].concat());
    let answer = c.send(0x87, 0x11, slot, &data);
    if answer.sw() != SW_OK {
        return Err(answer.sw());
    }
    Ok(unwrap_template(&answer.data))
}

#[test]
fn a_generated_key_lives_in_the_custody_and_signs() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    let answer = c.generate(Slot::SIGNATURE, Algorithm::EccP256);
    assert_eq!(answer.sw(), SW_OK);
    let public = point(&answer.data);
    assert_eq!(custody.ids(), ["card-1-9C-1"]);
    assert_eq!(c.verify(PIN), SW_OK);
    let digest = [0x42; 32];
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    verify(&public, &digest, &der);
    // The image holds the reference and the public key, no key material.
    let keys = keys_json(c.card());
    let key = &keys["9C"];
    assert!(key.get("pkcs8").is_none(), "{key}");
    assert_eq!(key["custody"]["custody"], "memory");
    assert_eq!(key["custody"]["id"], "card-1-9C-1");
    let spki = hex::decode(key["public"].as_str().unwrap()).unwrap();
    assert_eq!(spki.len(), 91, "a P-256 SubjectPublicKeyInfo");
    let state = piv_state(c.card());
    assert_eq!(
        state.key_reference(Slot::SIGNATURE).unwrap().id,
        "card-1-9C-1"
    );
    // GET METADATA reads the stored public key.
    let meta = c.metadata(0x9C);
    assert_eq!(meta.sw(), SW_OK);
    assert_eq!(point(&meta.data), public);
}

#[test]
fn a_new_key_replaces_the_old_one_in_the_custody_after_the_commit() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    assert_eq!(custody.ids(), ["card-1-9A-2"]);
    // DELETE KEY destroys it in the custody.
    assert_eq!(c.send(0xF6, 0xFF, 0x9A, &[]).sw(), SW_OK);
    assert!(custody.ids().is_empty());
    assert_eq!(c.metadata(0x9A).sw(), 0x6A88);
}

/// A restored backup of an image (the same card name, older keys) served
/// beside the live card's custody: the live card's current key is not
/// destroyed, and the live card still signs with it.
#[test]
fn a_restored_backup_does_not_destroy_the_live_card_s_keys() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    let backup = c.card().image().applet(&PIV_AID.to_hex()).unwrap().clone();
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    assert_eq!(custody.ids(), ["card-1-9C-2"]);
    let restored = PivApplet::from_saved(&backup)
        .unwrap()
        .with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>);
    let strays = restored.reconcile_custody().unwrap();
    assert_eq!(strays.len(), 1);
    assert_eq!(strays[0].id, "card-1-9C-2");
    assert_eq!(custody.ids(), ["card-1-9C-2"]);
    assert_eq!(c.verify(PIN), SW_OK);
    assert!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &[0x42; 32])
            .is_ok()
    );
}

/// An image naming another card's key in a shared custody (a copied
/// reference, the card's own name in its target): the custody refuses to
/// sign with it (`6F00`) and DELETE KEY does not destroy it.
#[test]
fn another_card_s_key_is_neither_used_nor_destroyed() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    assert_eq!(custody.ids(), ["card-1-9C-1"]);
    let saved = c.card().image().applet(&PIV_AID.to_hex()).unwrap().clone();
    let mut applet = PivApplet::from_saved(&saved).unwrap();
    applet
        .state_mut()
        .set_custody(Some(MemoryCustody::target("card-2")));
    let mut other = Client::new(card_with(
        applet.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>),
    ));
    other.authenticate_default();
    assert_eq!(other.verify(PIN), SW_OK);
    assert_eq!(
        other.sign(Algorithm::EccP256, Slot::SIGNATURE, &[0x42; 32]),
        Err(0x6F00)
    );
    assert_eq!(other.send(0xF6, 0xFF, 0x9C, &[]).sw(), SW_OK);
    assert_eq!(custody.ids(), ["card-1-9C-1"]);
    // The owner still signs with it.
    assert_eq!(c.verify(PIN), SW_OK);
    assert!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &[0x42; 32])
            .is_ok()
    );
}

#[test]
fn ecdh_and_import_go_through_the_custody() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    // IMPORT KEY of a P-256 scalar into 9D: the custody takes it.
    let scalar = [0x33u8; 32];
    assert_eq!(c.send(0xFE, 0x11, 0x9D, &tlv(0x06, &scalar)).sw(), SW_OK);
    assert_eq!(custody.ids(), ["card-1-9D-1"]);
    assert!(keys_json(c.card())["9D"].get("pkcs8").is_none());
    let peer = p256::SecretKey::from_slice(&[0x44; 32]).unwrap();
    let peer_point = peer.public_key().to_sec1_bytes();
    assert_eq!(c.verify(PIN), SW_OK);
    let answer = agree(&mut c, 0x9D, &peer_point).unwrap();
    let ours = p256::SecretKey::from_slice(&scalar).unwrap();
    let expected =
        p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.public_key().as_affine());
    assert_eq!(answer, expected.raw_secret_bytes().to_vec());
    // A point off the curve is refused before the custody is asked.
    let mut bad = peer_point.to_vec();
    bad[10] ^= 1;
    assert_eq!(agree(&mut c, 0x9D, &bad), Err(0x6A80));
}

#[test]
fn a_custody_failure_answers_6f00_and_changes_no_pin_state() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    assert_eq!(c.verify(b"000000"), 0x63C2, "one wrong try before");
    assert_eq!(c.verify(PIN), SW_OK);
    custody.set_available(false);
    let digest = [0x17; 32];
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6F00)
    );
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6F00)
    );
    // Counters as VERIFY left them; the PIN is still verified; GET DATA
    // and GENERATE of a new key (6F00 too, the old key stays) behave.
    assert_eq!(c.counters(), (3, 3));
    assert_eq!(c.verify_status(), SW_OK);
    assert_eq!(c.get_data(&[0x5F, 0xC1, 0x07]).sw(), SW_OK);
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), 0x6F00);
    custody.set_available(true);
    // The PIN-always permission of 9C was not spent by the failures.
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    verify(&point(&c.metadata(0x9C).data), &digest, &der);
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6982),
        "spent by the successful signature"
    );
    assert_eq!(c.counters(), (3, 3));
}

#[test]
fn a_key_in_a_custody_that_is_not_attached_answers_6f00() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    let image = c.card().image().clone();
    // The same image served without a custody.
    let store = MemoryStore::with_image(image);
    let mut bare = Client::new(card_on_store(PivApplet::with_defaults(), store));
    assert_eq!(bare.verify(PIN), SW_OK);
    assert_eq!(
        bare.sign(Algorithm::EccP256, Slot::AUTHENTICATION, &[1; 32]),
        Err(0x6F00)
    );
    assert_eq!(bare.metadata(0x9A).sw(), SW_OK);
    assert_eq!(bare.counters(), (3, 3));
}

#[test]
fn software_keys_keep_their_stored_form() {
    let mut c = Client::new(default_card());
    let keys = keys_json(c.card());
    for slot in ["9A", "9C", "9D", "9E"] {
        let mut fields: Vec<&str> = keys[slot]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["algorithm", "origin", "pin_policy", "pkcs8"],
            "{slot}"
        );
    }
    assert!(
        c.card()
            .image()
            .applet(&PIV_AID.to_hex())
            .unwrap()
            .part_names()
            .all(|name| name != "custody")
    );
}

#[test]
fn generate_with_a_custody_is_old_or_new_after_a_cut_and_strays_are_reported() {
    const POINTS: [CutPoint; 2] = [CutPoint::BeforeWrite, CutPoint::AfterWrite];
    let mut cuts = 0;
    for cut in POINTS {
        for k in 1.. {
            let custody = Arc::new(MemoryCustody::new());
            let mut c = custody_card(&custody);
            c.authenticate_default();
            let old = c.generate(Slot::AUTHENTICATION, Algorithm::EccP256);
            assert_eq!(old.sw(), SW_OK);
            let old = point(&old.data);
            c.card().set_fault_plan(FaultPlan::cut_at_write(k, cut));
            let data = tlv(0xAC, &tlv(0x80, &[0x11]));
            let result = c.try_send(0x47, 0x00, 0x9A, &data);
            if c.card().fault_pending() {
                c.card().set_fault_plan(FaultPlan::none());
                assert_eq!(result.unwrap().sw(), SW_OK);
                break;
            }
            assert!(matches!(result, Err(CardError::PowerLost)), "k={k} {cut:?}");
            cuts += 1;
            // Both keys are in the custody: the cut came before the old
            // one could be destroyed.
            assert_eq!(custody.ids().len(), 2, "k={k} {cut:?}");
            c.card().power_on();
            let meta = c.metadata(0x9A);
            let now = point(&meta.data);
            let new_committed = cut == CutPoint::AfterWrite;
            assert_eq!(now == old, !new_committed, "k={k} {cut:?}");
            // The next start: the old key, recorded as pending in the
            // commit that replaced it, is destroyed; a new key the card
            // never committed (this custody names keys only when it makes
            // them: no write-ahead) is reported and left, never destroyed
            // by the card's name.
            let state = c.card().image().applet(&PIV_AID.to_hex()).unwrap().clone();
            let served = PivApplet::from_saved(&state)
                .unwrap()
                .with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>);
            let strays = served.reconcile_custody().unwrap();
            let referenced = served.state().key_reference(Slot::AUTHENTICATION).unwrap();
            assert!(!strays.contains(referenced));
            assert!(custody.ids().contains(&referenced.id));
            if new_committed {
                assert_eq!(strays, [], "k={k} {cut:?}");
                assert_eq!(custody.ids(), std::slice::from_ref(&referenced.id));
            } else {
                assert_eq!(strays.len(), 1, "k={k} {cut:?}");
                assert_eq!(custody.ids().len(), 2, "k={k} {cut:?}");
            }
            // And the key the card refers to signs.
            assert_eq!(c.verify(PIN), SW_OK);
            let digest = [0x24; 32];
            let der = c
                .sign(Algorithm::EccP256, Slot::AUTHENTICATION, &digest)
                .unwrap();
            verify(&now, &digest, &der);
        }
    }
    assert_eq!(cuts, 2, "one write, cut before and after");
}

/// A phone keystore in the test: P-256 keys by alias, signing the digest
/// the card passes, answering raw `r || s` as some keystores do.
struct Keystore {
    keys: std::sync::Mutex<Vec<p256::SecretKey>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl vscard_applet::ExternalSigner for Keystore {
    fn generate(
        &self,
        card: &str,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<vscard_applet::ExternalKey, vscard_applet::SignerRefusal> {
        use p256::pkcs8::EncodePublicKey as _;
        if algorithm != Algorithm::EccP256 {
            return Err(vscard_applet::SignerRefusal::Unsupported(format!(
                "{algorithm:?}"
            )));
        }
        let mut keys = self.keys.lock().unwrap();
        let key = p256::SecretKey::from_slice(&[0x50 + keys.len() as u8; 32]).unwrap();
        let spki = key.public_key().to_public_key_der().unwrap();
        keys.push(key);
        Ok(vscard_applet::ExternalKey {
            id: format!("{card}/{slot}/{}", keys.len() - 1),
            public_key_spki: spki.as_bytes().to_vec(),
        })
    }

    fn sign(
        &self,
        card: &str,
        id: &str,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, vscard_applet::SignerRefusal> {
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        // The card's own keys only (their aliases start with its name).
        if !id.starts_with(&format!("{card}/")) {
            return Err(vscard_applet::SignerRefusal::Unavailable(format!(
                "{id} is not a key of {card}"
            )));
        }
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(vscard_applet::SignerRefusal::Refused(
                "prompt cancelled".into(),
            ));
        }
        assert_eq!(algorithm, Algorithm::EccP256);
        assert_eq!(input.len(), 32, "the card passes a field-size digest");
        let index: usize = id.rsplit('/').next().unwrap().parse().unwrap();
        let key = self.keys.lock().unwrap()[index].clone();
        let signature: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(key)
            .sign_prehash(input)
            .unwrap();
        Ok(signature.to_bytes().to_vec())
    }
}

#[test]
fn a_9c_signature_made_by_a_callback_verifies() {
    let keystore = Keystore {
        keys: std::sync::Mutex::new(Vec::new()),
        refuse: std::sync::atomic::AtomicBool::new(false),
    };
    let keystore = Arc::new(keystore);
    struct Shared(Arc<Keystore>);
    impl vscard_applet::ExternalSigner for Shared {
        fn generate(
            &self,
            card: &str,
            slot: Slot,
            algorithm: Algorithm,
        ) -> Result<vscard_applet::ExternalKey, vscard_applet::SignerRefusal> {
            self.0.generate(card, slot, algorithm)
        }
        fn sign(
            &self,
            card: &str,
            id: &str,
            algorithm: Algorithm,
            input: &[u8],
        ) -> Result<Vec<u8>, vscard_applet::SignerRefusal> {
            self.0.sign(card, id, algorithm, input)
        }
    }
    let custody = vscard_applet::CallbackCustody::new(Box::new(Shared(Arc::clone(&keystore))));
    let mut applet = PivApplet::new(PivConfig::default()).unwrap();
    applet
        .state_mut()
        .set_custody(Some(vscard_applet::CallbackCustody::target("phone-1")));
    let mut c = Client::new(card_with(
        applet.with_custody(Arc::new(custody) as Arc<dyn KeyCustody>),
    ));
    c.authenticate_default();
    let answer = c.generate(Slot::SIGNATURE, Algorithm::EccP256);
    assert_eq!(answer.sw(), SW_OK);
    let public = point(&answer.data);
    // The keystore cannot make RSA keys: a clear 6A81.
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::Rsa2048).sw(),
        0x6A81
    );
    assert_eq!(keys_json(c.card())["9C"]["custody"]["id"], "phone-1/9C/0");
    assert_eq!(c.verify(PIN), SW_OK);
    // A longer digest is truncated to the field by the card.
    let digest = [0x5Eu8; 48];
    keystore
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        c.sign(Algorithm::EccP256, Slot::SIGNATURE, &digest),
        Err(0x6985)
    );
    keystore
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let der = c
        .sign(Algorithm::EccP256, Slot::SIGNATURE, &digest)
        .unwrap();
    verify(&public, &digest[..32], &der);
    assert_eq!(c.counters(), (3, 3));
}

#[test]
fn reset_destroys_the_custody_keys_after_the_commit() {
    let custody = Arc::new(MemoryCustody::new());
    let mut c = custody_card(&custody);
    c.authenticate_default();
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    assert_eq!(c.generate(Slot::SIGNATURE, Algorithm::EccP256).sw(), SW_OK);
    assert_eq!(custody.ids().len(), 2);
    for _ in 0..3 {
        c.verify(b"000000");
    }
    for _ in 0..3 {
        c.unblock(b"00000000", b"111111");
    }
    assert_eq!(c.counters(), (0, 0));
    assert_eq!(c.send(0xFB, 0x00, 0x00, &[]).sw(), SW_OK);
    assert!(custody.ids().is_empty());
    assert_eq!(c.metadata(0x9A).sw(), 0x6A88);
    // The card still makes new keys in the custody (RESET brought the
    // model's default management key, AES-192 on a YubiKey 5.7).
    assert_eq!(
        c.authenticate_management_key(Algorithm::Aes192, &MGMT),
        SW_OK
    );
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::EccP256).sw(),
        SW_OK
    );
    assert_eq!(custody.ids().len(), 1);
}

/// A custody that answers wrong signatures (for the card's check of
/// every external answer against the public key).
#[derive(Debug)]
struct Tampering {
    inner: MemoryCustody,
    /// What to do to the answer: 0 nothing, 1 flip a bit, 2 one byte
    /// more, 3 one byte less.
    mode: std::sync::atomic::AtomicU8,
}

impl KeyCustody for Tampering {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    fn generate(
        &self,
        target: &vscard_applet::CustodyTarget,
        slot: Slot,
        algorithm: Algorithm,
    ) -> Result<(vscard_applet::KeyReference, vscard_applet::PublicKey), vscard_applet::CustodyError>
    {
        self.inner.generate(target, slot, algorithm)
    }

    fn sign(
        &self,
        target: &vscard_applet::CustodyTarget,
        reference: &vscard_applet::KeyReference,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, vscard_applet::CustodyError> {
        let mut answer = self.inner.sign(target, reference, algorithm, input)?;
        match self.mode.load(std::sync::atomic::Ordering::SeqCst) {
            1 => {
                let last = answer.len() - 1;
                answer[last] ^= 1;
            }
            2 => answer.push(0),
            3 => {
                answer.remove(0);
            }
            _ => {}
        }
        Ok(answer)
    }

    fn ecdh(
        &self,
        target: &vscard_applet::CustodyTarget,
        reference: &vscard_applet::KeyReference,
        algorithm: Algorithm,
        peer: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, vscard_applet::CustodyError> {
        self.inner.ecdh(target, reference, algorithm, peer)
    }

    fn delete(
        &self,
        target: &vscard_applet::CustodyTarget,
        reference: &vscard_applet::KeyReference,
    ) -> Result<(), vscard_applet::CustodyError> {
        self.inner.delete(target, reference)
    }
}

#[test]
fn a_custody_signature_that_does_not_verify_answers_6f00() {
    let custody = Arc::new(Tampering {
        inner: MemoryCustody::new(),
        mode: std::sync::atomic::AtomicU8::new(0),
    });
    let mut applet = PivApplet::new(PivConfig::default()).unwrap();
    applet
        .state_mut()
        .set_custody(Some(MemoryCustody::target("card-1")));
    let mut c = Client::new(card_with(
        applet.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>),
    ));
    c.authenticate_default();
    assert_eq!(
        c.generate(Slot::AUTHENTICATION, Algorithm::Rsa2048).sw(),
        SW_OK
    );
    assert_eq!(
        c.generate(Slot::CARD_AUTHENTICATION, Algorithm::EccP256)
            .sw(),
        SW_OK
    );
    assert_eq!(c.verify(PIN), SW_OK);
    let mut block = vec![0x00, 0x01];
    block.resize(256 - 33, 0xFF);
    block.push(0x00);
    block.extend([0x5A; 32]);
    let digest = [0x42; 32];
    let set = |mode: u8| {
        custody
            .mode
            .store(mode, std::sync::atomic::Ordering::SeqCst)
    };
    set(0);
    assert_eq!(
        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block)
            .unwrap()
            .len(),
        256
    );
    assert!(
        c.sign(Algorithm::EccP256, Slot::CARD_AUTHENTICATION, &digest)
            .is_ok()
    );
    for mode in [1, 2, 3] {
        set(mode);
        assert_eq!(
            c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block),
            Err(0x6F00),
            "RSA, mode {mode}"
        );
        // An ECDSA key's answers are verified until one verifies (that
        // the custody's key is the card's; a random-nonce ECDSA answer
        // gone wrong gives nothing away): a new key is checked again.
        set(0);
        assert_eq!(
            c.generate(Slot::CARD_AUTHENTICATION, Algorithm::EccP256)
                .sw(),
            SW_OK
        );
        set(mode);
        assert_eq!(
            c.sign(Algorithm::EccP256, Slot::CARD_AUTHENTICATION, &digest),
            Err(0x6F00),
            "ECDSA, mode {mode}"
        );
    }
    assert_eq!(c.counters(), (3, 3));
}
