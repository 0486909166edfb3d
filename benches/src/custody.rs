//! A signature with the key in a PKCS#11 token: GENERAL AUTHENTICATE
//! through `Card::transmit` on a card whose 9E key is in the token
//! (`vscard-pkcs11`), against a direct `C_Sign` (`CKM_ECDSA`) with the same
//! token key, in the same run. Goal: the card reaches 0.8 of the direct
//! rate (what the card adds: APDU parsing, the key lookup, DER encoding).
//!
//! The token module reads its configuration when it is initialised: the
//! caller sets `SOFTHSM2_CONF` (the harness re-runs itself with it, see
//! `vscard-bench`) and names an initialised token.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use vscard_applet::{KeyCustody, PivApplet, PivConfig, piv_atr};
use vscard_emulator::{Card, CardRng};
use vscard_pkcs11::{Pkcs11Custody, TokenPin};

use crate::BenchError;
use crate::measure::{self, rate, ratio};
use crate::report::{Goal, Row, Section};

fn failed(what: &str) -> impl Fn(String) -> BenchError + '_ {
    move |error| BenchError::Crypto(format!("{what}: {error}"))
}

/// GENERAL AUTHENTICATE 9E P-256 over a 32-byte digest.
fn sign_apdu(digest: &[u8; 32]) -> Vec<u8> {
    let mut apdu = vec![
        0x00, 0x87, 0x11, 0x9E, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
    ];
    apdu.extend_from_slice(digest);
    apdu.push(0x00);
    apdu
}

/// The card with its 9E key generated in the token `label` of `module`.
fn card(module: &Path, label: &str, pin: &str) -> Result<(Card, Arc<Pkcs11Custody>), BenchError> {
    let pin = TokenPin::new(pin).map_err(|e| failed("PIN")(e.to_string()))?;
    let custody =
        Arc::new(Pkcs11Custody::open(module, pin).map_err(|e| failed("module")(e.to_string()))?);
    let mut applet =
        PivApplet::new(PivConfig::default()).map_err(|e| failed("applet")(e.to_string()))?;
    applet
        .state_mut()
        .set_custody(Some(custody.target(label, "bench")));
    let mut card = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(9))
        .install_default(applet.with_custody(Arc::clone(&custody) as Arc<dyn KeyCustody>))
        .build()?;
    card.power_on();
    let mut client = vscard_testkit::Client::new(card);
    let challenge = [0x11u8; 8];
    client
        .authenticate_management_key(0x03, &vscard_applet::DEFAULT_MANAGEMENT_KEY, &challenge)
        .map_err(|e| failed("management key")(e.to_string()))?
        .map_err(|sw| failed("management key")(sw.to_string()))?;
    let generate = vscard_applet::tlv::encode(0xAC, &vscard_applet::tlv::encode(0x80, &[0x11]));
    let reply = client
        .command([0x00, 0x47, 0x00, 0x9E], &generate)
        .map_err(|e| failed("GENERATE")(e.to_string()))?;
    if reply.sw() != 0x9000 {
        return Err(BenchError::Status {
            command: "GENERATE 9E in the token".to_owned(),
            sw: reply.sw(),
        });
    }
    Ok((client.into_transport(), custody))
}

/// The section: one row, card vs direct `C_Sign`.
pub fn run(module: &Path, label: &str, pin: &str, budget: Duration) -> Result<Section, BenchError> {
    let mut section = Section::new(
        "9. A signature with the key in a PKCS#11 token (SoftHSM2)",
        "vscard / direct C_Sign (rates)",
    );
    let (mut card, custody) = card(module, label, pin)?;
    let reference = custody
        .keys_of(&custody.target(label, "bench"))
        .map_err(|e| failed("listing keys")(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| failed("listing keys")("no key".to_owned()))?;
    let id = hex::decode(&reference.id).map_err(|e| failed("key ID")(e.to_string()))?;
    // The direct path: the same module (initialised already by the
    // custody), one session, the key handle found once.
    let direct = Pkcs11::new(module).map_err(|e| failed("module")(e.to_string()))?;
    match direct.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => return Err(failed("initialize")(e.to_string())),
    }
    let slot = direct
        .get_slots_with_token()
        .map_err(|e| failed("slots")(e.to_string()))?
        .into_iter()
        .find(|slot| {
            direct
                .get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == label)
        })
        .ok_or_else(|| failed("token")(label.to_owned()))?;
    let session = direct
        .open_ro_session(slot)
        .map_err(|e| failed("session")(e.to_string()))?;
    match session.login(UserType::User, Some(&AuthPin::from(pin.to_owned()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(failed("login")(e.to_string())),
    }
    let key = session
        .find_objects(&[
            Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
            Attribute::Id(id),
        ])
        .map_err(|e| failed("find")(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| failed("find")("no key".to_owned()))?;
    let digest = [0x42u8; 32];
    let apdu = sign_apdu(&digest);
    // Interleaved halves, so drift hits both alike.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..2 {
        ours.push(measure::run(budget / 4, 5, || {
            let answer = card.transmit(&apdu)?;
            if answer.ends_with(&[0x90, 0x00]) {
                Ok(())
            } else {
                Err(BenchError::Status {
                    command: "GENERAL AUTHENTICATE 9E".to_owned(),
                    sw: u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]]),
                })
            }
        })?);
        theirs.push(measure::run(budget / 4, 5, || {
            session
                .sign(&Mechanism::Ecdsa, key, &digest)
                .map(|_| ())
                .map_err(|e| failed("C_Sign")(e.to_string()))
        })?);
    }
    let per_second = |samples: &[measure::Sample]| {
        let count: u64 = samples.iter().map(|s| s.count).sum();
        let elapsed: f64 = samples.iter().map(|s| s.elapsed.as_secs_f64()).sum();
        if elapsed > 0.0 {
            count as f64 / elapsed
        } else {
            0.0
        }
    };
    let (ours, theirs) = (per_second(&ours), per_second(&theirs));
    section.rows.push(Row::new(
        "ECDSA P-256, 9E key in the token: GENERAL AUTHENTICATE through Card::transmit",
        rate(ours),
        format!("C_Sign CKM_ECDSA on the same key: {}", rate(theirs)),
        ratio(ours, theirs),
        Goal::AtLeast(0.8),
    ));
    // The custody's sessions close before the direct context finalises
    // the module.
    drop(session);
    drop(card);
    drop(custody);
    Ok(section)
}
