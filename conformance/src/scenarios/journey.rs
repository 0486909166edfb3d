//! The healthcare worker's journey with an NHS-style card: insert, enter
//! the PIN, choose a role, authenticate, lock the card by mistake, unlock
//! it with the Registration Authority's unlock code. Issuing, renewal and
//! expiry happen outside the card and are driven by the runner's tests
//! (`conformance/tests/journey.rs`) around these scenarios.

use std::time::SystemTime;

use crate::facts::{pad_pin, verify_pin};
use crate::piv::{self, find, slot};
use crate::scenario::{Group, Outcome, Scenario, ScenarioFn};
use crate::session::{Failure, Session, ensure, fail};

/// The role profiles object vscard issues (PIN-protected).
pub const ROLES_OBJECT: [u8; 3] = [0x5F, 0xFF, 0x20];

const fn step(
    name: &'static str,
    clause: &'static str,
    destructive: bool,
    run: ScenarioFn,
) -> Scenario {
    Scenario {
        group: Group::Journey,
        name,
        clause,
        destructive,
        run,
    }
}

/// The group.
pub const SCENARIOS: &[Scenario] = &[
    step(
        "insert the card and enter the PIN",
        "NHS smartcard: PIN entry",
        false,
        enter_pin,
    ),
    step(
        "read the role profiles and choose a role",
        "NHS smartcard: role selection",
        false,
        choose_role,
    ),
    step(
        "authenticate with 9A, checked against the certificate",
        "NHS smartcard: authentication",
        false,
        authenticate,
    ),
    step(
        "certificates are within their validity",
        "NHS PKI: two-year certificates",
        false,
        certificates_valid,
    ),
    step(
        "lock with wrong PINs, unlock with the unlock code",
        "NHS smartcard: self-service unlock",
        true,
        lock_and_unlock,
    ),
];

fn enter_pin(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::verify(session)?;
    Ok(Outcome::Passed)
}

/// One role: code, name, business functions, organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// `R` code.
    pub code: String,
    /// Role name.
    pub name: String,
    /// `B` codes.
    pub business_functions: Vec<String>,
    /// ODS organisation code.
    pub ods_code: String,
}

/// Reads and decodes the role profiles object (after VERIFY).
pub fn read_roles(session: &mut Session<'_>) -> Result<Result<Vec<Role>, u16>, Failure> {
    let value = match piv::get_object(session, ROLES_OBJECT)? {
        Ok(value) => value,
        Err(sw) => return Ok(Err(sw)),
    };
    let templates = piv::parse_tlvs(&value).ok_or_else(|| fail("role profiles", "not BER-TLV"))?;
    let mut roles = Vec::new();
    for (tag, template) in templates {
        ensure(tag == 0xA0, "role profiles", || {
            format!("unexpected tag {tag:X}")
        })?;
        let text = |t: u32| {
            find(template, t)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .ok_or_else(|| fail("role template", format!("no {t:02X}")))
        };
        roles.push(Role {
            code: text(0x80)?,
            name: text(0x81)?,
            business_functions: text(0x82)?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ods_code: text(0x83)?,
        });
    }
    Ok(Ok(roles))
}

fn choose_role(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let before = piv::get_object(session, ROLES_OBJECT)?;
    if before == Err(0x6A82) {
        return Ok(Outcome::Unsupported(
            "the card has no role profiles object".into(),
        ));
    }
    ensure(before == Err(0x6982), "role profiles before VERIFY", || {
        format!("expected 6982 (PIN-protected), got {before:02X?}")
    })?;
    piv::verify(session)?;
    let roles = read_roles(session)?.map_err(|sw| fail("role profiles", format!("{sw:04X}")))?;
    ensure(roles.len() >= 2, "role profiles", || {
        format!("the journey card has two roles, found {}", roles.len())
    })?;
    // The holder picks the second role, as the credential software lets them.
    let chosen = &roles[1];
    ensure(
        chosen.code.starts_with('R') && !chosen.ods_code.is_empty() && !chosen.name.is_empty(),
        "chosen role",
        || format!("incomplete role {chosen:?}"),
    )?;
    Ok(Outcome::Passed)
}

fn authenticate(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::verify(session)?;
    let certificate = piv::certificate(session, slot::AUTHENTICATION)?;
    let mut challenge = [0u8; 32];
    let mut rng =
        vscard_emulator::CardRng::from_os().map_err(|e| fail("challenge", e.to_string()))?;
    rand_core::Rng::fill_bytes(&mut rng, &mut challenge);
    piv::sign_and_verify(session, slot::AUTHENTICATION, &certificate, &challenge)?
        .map_err(|sw| fail("sign the challenge", format!("{sw:04X}")))?;
    Ok(Outcome::Passed)
}

fn certificates_valid(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let now = SystemTime::now();
    for key in [
        slot::AUTHENTICATION,
        slot::SIGNATURE,
        slot::KEY_MANAGEMENT,
        slot::CARD_AUTHENTICATION,
    ] {
        let certificate = piv::certificate(session, key)?;
        let validity = certificate.tbs_certificate().validity();
        let (from, to) = (
            validity.not_before.to_system_time(),
            validity.not_after.to_system_time(),
        );
        ensure(from <= now && now <= to, "validity", || {
            format!(
                "{key:02X}: {} to {} does not contain now",
                validity.not_before, validity.not_after
            )
        })?;
    }
    Ok(Outcome::Passed)
}

fn lock_and_unlock(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let pin = session.facts.pin.clone();
    let puk = session.facts.puk.clone();
    let mut wrong = pin.clone();
    if let Some(last) = wrong.last_mut() {
        *last = if *last == b'9' { b'8' } else { b'9' };
    }
    for left in (0..session.facts.pin_tries).rev() {
        session.expect(
            "mistyped PIN",
            &verify_pin(&wrong),
            0x63C0 | u16::from(left),
        )?;
    }
    session.expect("the card is locked", &verify_pin(&pin), 0x6983)?;
    // Self-service unlock: the unlock code from the RA and a new PIN.
    let new_pin = b"583920".to_vec();
    let mut unlock = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    unlock.extend_from_slice(&pad_pin(&puk));
    unlock.extend_from_slice(&pad_pin(&new_pin));
    session.expect("unlock with the unlock code", &unlock, 0x9000)?;
    session.expect("the new PIN works", &verify_pin(&new_pin), 0x9000)?;
    // Put the original PIN back for the scenarios that follow.
    let mut change = vec![0x00, 0x24, 0x00, 0x80, 0x10];
    change.extend_from_slice(&pad_pin(&new_pin));
    change.extend_from_slice(&pad_pin(&pin));
    session.expect("restore the PIN", &change, 0x9000)?;
    Ok(Outcome::Passed)
}
