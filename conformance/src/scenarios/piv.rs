//! NIST SP 800-73-4 Part 2 PIV commands, data objects and security status,
//! plus the Yubico extensions middleware probes for.

use crate::facts::{pad_pin, tag, verify_pin};
use crate::piv::{self, alg, find, slot};
use crate::scenario::{Group, Outcome, Scenario, ScenarioFn};
use crate::session::{Failure, Session, ensure, expect_sw, fail};

const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];
const LOG_OUT: [u8; 4] = [0x00, 0x20, 0xFF, 0x80];

const fn safe(name: &'static str, clause: &'static str, run: ScenarioFn) -> Scenario {
    Scenario {
        group: Group::Piv,
        name,
        clause,
        destructive: false,
        run,
    }
}

const fn destructive(name: &'static str, clause: &'static str, run: ScenarioFn) -> Scenario {
    Scenario {
        group: Group::Piv,
        name,
        clause,
        destructive: true,
        run,
    }
}

/// The group.
pub const SCENARIOS: &[Scenario] = &[
    safe(
        "SELECT: application property template",
        "SP 800-73-4 Part 2 3.1.1",
        select_template,
    ),
    safe(
        "GET DATA: CHUID with the user's GUID",
        "SP 800-73-4 Part 1 3.1.2",
        chuid,
    ),
    safe(
        "GET DATA: CCC, Discovery, Key History",
        "SP 800-73-4 Part 1 3.1.1, 3.3.2, 3.3.3",
        mandatory_objects,
    ),
    safe(
        "GET DATA: four key certificates",
        "SP 800-73-4 Part 1 3.1.3",
        certificates,
    ),
    safe(
        "GET DATA: missing object",
        "SP 800-73-4 Part 2 3.1.2",
        missing_object,
    ),
    safe(
        "GET DATA: Printed Information needs the PIN",
        "SP 800-73-4 Part 1 3.1.6",
        printed_information,
    ),
    safe(
        "VERIFY: counts down, right PIN resets",
        "SP 800-73-4 Part 2 3.2.1",
        verify_counter,
    ),
    safe(
        "VERIFY: malformed PIN",
        "SP 800-73-4 Part 2 3.2.1",
        verify_malformed,
    ),
    safe(
        "VERIFY: P1 FF logs out",
        "SP 800-73-4 Part 2 3.2.1",
        verify_log_out,
    ),
    safe(
        "sign 9A: PIN once per session",
        "SP 800-73-4 Part 1 3.2, Part 2 3.2.4",
        sign_9a,
    ),
    safe(
        "sign 9C: PIN before every signature",
        "SP 800-73-4 Part 1 3.2",
        sign_9c,
    ),
    safe(
        "sign 9D: PIN once per session",
        "SP 800-73-4 Part 1 3.2",
        sign_9d,
    ),
    safe("sign 9E: no PIN", "SP 800-73-4 Part 1 3.2", sign_9e),
    safe(
        "GENERAL AUTHENTICATE: challenge",
        "SP 800-73-4 Part 2 3.2.4",
        challenge,
    ),
    safe(
        "management key: mutual authentication",
        "SP 800-73-4 Part 2 Appendix A.2",
        management_key,
    ),
    safe(
        "management key: a wrong key is refused",
        "SP 800-73-4 Part 2 Appendix A.2",
        wrong_management_key,
    ),
    safe(
        "GENERATE and PUT DATA need the management key",
        "SP 800-73-4 Part 2 3.3",
        admin_needs_management_key,
    ),
    safe(
        "Yubico: GET VERSION, GET SERIAL, GET METADATA",
        "Yubico PIV extensions",
        yubico_extensions,
    ),
    safe(
        "Yubico: external authentication after a mutual one",
        "SP 800-73-4 Part 2 Appendix A.1; YubiKey 5",
        external_after_mutual,
    ),
    safe(
        "Yubico: an algorithm that does not fit the slot's key is 6A80",
        "SP 800-73-4 Part 2 3.2.4; YubiKey 5",
        algorithm_mismatch,
    ),
    destructive(
        "GENERATE ASYMMETRIC KEY PAIR P-256",
        "SP 800-73-4 Part 2 3.3.2",
        generate_p256,
    ),
    destructive(
        "GENERATE Ed25519 and X25519 (YubiKey 5.7)",
        "Yubico PIV extensions, firmware 5.7",
        generate_curve25519,
    ),
    destructive(
        "PUT DATA then GET DATA",
        "SP 800-73-4 Part 2 3.3.1",
        put_data,
    ),
    destructive(
        "PIN lockout and unlock with the PUK",
        "SP 800-73-4 Part 2 3.2.2, 3.2.3",
        lockout_and_unblock,
    ),
    destructive(
        "CHANGE REFERENCE DATA: PIN and PUK",
        "SP 800-73-4 Part 2 3.2.2",
        change_reference_data,
    ),
];

fn select_template(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    let answer = piv::select_piv(session)?;
    let template = find(&answer, 0x61).ok_or_else(|| fail("SELECT", "no 61 template"))?;
    let authority = find(template, 0x79).and_then(|t| find(t, 0x4F));
    ensure(
        authority == Some(&[0xA0, 0x00, 0x00, 0x03, 0x08][..]),
        "79 { 4F }",
        || {
            format!(
                "coexistent tag allocation authority should be the NIST RID, got {authority:02X?}"
            )
        },
    )?;
    let algorithms =
        find(template, 0xAC).ok_or_else(|| fail("SELECT", "no AC (cryptographic algorithms)"))?;
    let entries = piv::parse_tlvs(algorithms).ok_or_else(|| fail("AC", "not BER-TLV"))?;
    // SP 800-73-4 Part 2 Table 3: the list ends with the object identifier
    // tag 06 whose value is 00.
    ensure(
        entries.last() == Some(&(0x06u32, &[0x00][..])),
        "AC",
        || "the list must end with 06 01 00".into(),
    )?;
    let listed: Vec<u8> = entries
        .iter()
        .filter(|(t, _)| *t == 0x80)
        .filter_map(|(_, v)| v.first().copied())
        .collect();
    for needed in [alg::RSA_2048, alg::P256] {
        ensure(listed.contains(&needed), "AC", || {
            format!("algorithm {needed:02X} not listed in {listed:02X?}")
        })?;
    }
    Ok(Outcome::Passed)
}

fn chuid(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let chuid = piv::get_object(session, tag::CHUID)?
        .map_err(|sw| fail("GET DATA CHUID", format!("{sw:04X}")))?;
    let guid = find(&chuid, 0x34).ok_or_else(|| fail("CHUID", "no GUID (34)"))?;
    ensure(
        guid.len() == 16 && guid.iter().any(|b| *b != 0),
        "GUID",
        || {
            format!(
                "expected 16 non-zero bytes, got {}",
                hex::encode_upper(guid)
            )
        },
    )?;
    if let Some(uuid) = session.facts.uuid.clone() {
        // PKCS#11 token serial = the last 16 hex digits of the GUID (OpenSC).
        let serial = hex::encode_upper(&guid[8..]);
        ensure(
            serial == format!("0000{uuid}"),
            "GUID carries the UUID",
            || format!("token serial would be {serial}, expected 0000{uuid}"),
        )?;
    }
    let fascn = find(&chuid, 0x30).ok_or_else(|| fail("CHUID", "no FASC-N (30)"))?;
    // Agency code 9999: middleware prefers the GUID (SP 800-73-4 Part 1 3.1.2).
    ensure(
        fascn.len() == 25 && fascn.starts_with(&[0xD4, 0xE7, 0x39]),
        "FASC-N",
        || {
            format!(
                "expected a 25-byte FASC-N with agency code 9999, got {}",
                hex::encode_upper(fascn)
            )
        },
    )?;
    ensure(
        find(&chuid, 0x35).is_some_and(|d| d.len() == 8),
        "CHUID",
        || "no 8-digit expiration date (35)".into(),
    )?;
    Ok(Outcome::Passed)
}

fn mandatory_objects(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::get_object(session, tag::CCC)?.map_err(|sw| fail("GET DATA CCC", format!("{sw:04X}")))?;
    piv::get_object(session, tag::KEY_HISTORY)?
        .map_err(|sw| fail("GET DATA Key History", format!("{sw:04X}")))?;
    let discovery = session.collect_ok(
        "GET DATA Discovery",
        &[0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E, 0x00],
    )?;
    let inner = find(&discovery, 0x7E).ok_or_else(|| fail("Discovery", "no 7E template"))?;
    let aid = find(inner, 0x4F).ok_or_else(|| fail("Discovery", "no 4F (AID)"))?;
    ensure(
        aid.starts_with(&[0xA0, 0x00, 0x00, 0x03, 0x08]),
        "Discovery AID",
        || hex::encode_upper(aid),
    )?;
    let policy = find(inner, 0x5F2F);
    ensure(policy.is_some(), "Discovery", || {
        "no PIN usage policy (5F2F)".into()
    })?;
    Ok(Outcome::Passed)
}

fn certificates(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    for key in [
        slot::AUTHENTICATION,
        slot::SIGNATURE,
        slot::KEY_MANAGEMENT,
        slot::CARD_AUTHENTICATION,
    ] {
        let tag = piv::certificate_tag(key).ok_or_else(|| fail("slot", "unknown"))?;
        let object = piv::get_object(session, tag)?
            .map_err(|sw| fail("GET DATA certificate", format!("{key:02X}: {sw:04X}")))?;
        ensure(find(&object, 0x71) == Some(&[0x00][..]), "CertInfo", || {
            format!("{key:02X}: expected 71 01 00")
        })?;
        ensure(
            find(&object, 0xFE) == Some(&[][..]),
            "error detection code",
            || format!("{key:02X}: expected FE 00"),
        )?;
        piv::certificate(session, key)?;
    }
    Ok(Outcome::Passed)
}

fn missing_object(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    // Retired key management certificate 20 (5FC120) is never issued.
    let result = piv::get_object(session, [0x5F, 0xC1, 0x20])?;
    ensure(result == Err(0x6A82), "GET DATA retired 20", || {
        format!("expected 6A82, got {result:02X?}")
    })?;
    Ok(Outcome::Passed)
}

fn printed_information(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let before = piv::get_object(session, tag::PRINTED_INFORMATION)?;
    ensure(before == Err(0x6982), "before VERIFY", || {
        format!("expected 6982, got {before:02X?}")
    })?;
    piv::verify(session)?;
    let printed = piv::get_object(session, tag::PRINTED_INFORMATION)?
        .map_err(|sw| fail("after VERIFY", format!("{sw:04X}")))?;
    ensure(
        find(&printed, 0x01).is_some(),
        "Printed Information",
        || "no name (01)".into(),
    )?;
    Ok(Outcome::Passed)
}

fn tries_left(session: &mut Session<'_>, step: &str) -> Result<u8, Failure> {
    let reply = session.send(step, &PIN_STATUS)?;
    match reply.sw() {
        sw if sw & 0xFFF0 == 0x63C0 => Ok((sw & 0x0F) as u8),
        sw => Err(fail(step, format!("expected 63Cx, got {sw:04X}"))),
    }
}

fn verify_counter(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let start = tries_left(session, "status")?;
    ensure(start >= 2, "status", || {
        format!("needs at least 2 tries left, has {start}")
    })?;
    let wrong = wrong_pin(&session.facts.pin);
    let reply = session.send("wrong PIN", &verify_pin(&wrong))?;
    expect_sw("wrong PIN", &reply, 0x63C0 | u16::from(start - 1))?;
    piv::verify(session)?;
    session.expect("status after the right PIN", &PIN_STATUS, 0x9000)?;
    session.expect("log out", &LOG_OUT, 0x9000)?;
    let back = tries_left(session, "status after log out")?;
    ensure(back == start, "counter reset", || {
        format!("expected {start} tries, got {back}")
    })?;
    Ok(Outcome::Passed)
}

fn wrong_pin(pin: &[u8]) -> Vec<u8> {
    let mut wrong = pin.to_vec();
    if let Some(last) = wrong.last_mut() {
        *last = if *last == b'0' { b'1' } else { b'0' };
    }
    wrong
}

fn verify_malformed(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let start = tries_left(session, "status")?;
    // Seven bytes: not a padded 8-byte PIN.
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, 0x07];
    apdu.extend_from_slice(&pad_pin(&session.facts.pin)[..7]);
    let reply = session.send("7-byte PIN", &apdu)?;
    ensure(matches!(reply.sw(), 0x6A80 | 0x6700), "7-byte PIN", || {
        format!("expected 6A80, got {:04X}", reply.sw())
    })?;
    let after = tries_left(session, "status")?;
    ensure(after == start, "no try spent", || {
        format!("{start} tries before, {after} after")
    })?;
    Ok(Outcome::Passed)
}

fn verify_log_out(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::verify(session)?;
    session.expect("log out", &LOG_OUT, 0x9000)?;
    tries_left(session, "status after log out")?;
    Ok(Outcome::Passed)
}

fn sign(session: &mut Session<'_>, key: u8, message: &[u8]) -> Result<Result<(), u16>, Failure> {
    let certificate = piv::certificate(session, key)?;
    piv::sign_and_verify(session, key, &certificate, message)
}

fn must_sign(session: &mut Session<'_>, key: u8, step: &str) -> Result<(), Failure> {
    sign(session, key, step.as_bytes())?
        .map_err(|sw| fail(step, format!("signing answered {sw:04X}")))
}

fn must_refuse(session: &mut Session<'_>, key: u8, step: &str) -> Result<(), Failure> {
    let result = sign(session, key, step.as_bytes())?;
    ensure(result == Err(0x6982), step, || {
        format!("expected 6982, got {result:04X?}")
    })
}

fn sign_9a(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    must_refuse(session, slot::AUTHENTICATION, "9A before VERIFY")?;
    piv::verify(session)?;
    must_sign(session, slot::AUTHENTICATION, "9A first signature")?;
    must_sign(session, slot::AUTHENTICATION, "9A second signature")?;
    Ok(Outcome::Passed)
}

fn sign_9c(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    must_refuse(session, slot::SIGNATURE, "9C before VERIFY")?;
    piv::verify(session)?;
    must_sign(session, slot::SIGNATURE, "9C after VERIFY")?;
    must_refuse(session, slot::SIGNATURE, "9C again without VERIFY")?;
    piv::verify(session)?;
    must_sign(session, slot::SIGNATURE, "9C after a new VERIFY")?;
    Ok(Outcome::Passed)
}

fn sign_9d(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    must_refuse(session, slot::KEY_MANAGEMENT, "9D before VERIFY")?;
    piv::verify(session)?;
    must_sign(session, slot::KEY_MANAGEMENT, "9D after VERIFY")?;
    Ok(Outcome::Passed)
}

fn sign_9e(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    must_sign(session, slot::CARD_AUTHENTICATION, "9E without PIN")?;
    Ok(Outcome::Passed)
}

fn challenge(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let apdu = [0x00, 0x87, 0x00, 0x9B, 0x04, 0x7C, 0x02, 0x81, 0x00, 0x00];
    let first = session.collect_ok("challenge", &apdu)?;
    let second = session.collect_ok("challenge", &apdu)?;
    let a = find(&first, 0x7C)
        .and_then(|t| find(t, 0x81))
        .ok_or_else(|| fail("challenge", "no 7C { 81 }"))?;
    let b = find(&second, 0x7C)
        .and_then(|t| find(t, 0x81))
        .ok_or_else(|| fail("challenge", "no 7C { 81 }"))?;
    ensure(a.len() >= 8 && a != b, "challenge", || {
        "expected two different challenges of 8+ bytes".into()
    })?;
    Ok(Outcome::Passed)
}

fn management_key(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("mutual authentication", format!("{sw:04X}")))?;
    Ok(Outcome::Passed)
}

fn wrong_management_key(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let mut facts = session.facts.clone();
    if let Some(first) = facts.management_key.first_mut() {
        *first ^= 0xFF;
    }
    let mut transport = SessionTransport(session);
    let mut wrong = Session::new(&mut transport, &facts);
    let result = piv::authenticate_management_key(&mut wrong)?;
    ensure(result == Err(0x6982), "wrong key", || {
        format!("expected 6982, got {result:04X?}")
    })?;
    Ok(Outcome::Passed)
}

/// Lets a scenario run a nested session (with other facts) on its own
/// connection.
struct SessionTransport<'s, 'a>(&'s mut Session<'a>);

impl crate::transport::Transport for SessionTransport<'_, '_> {
    fn name(&self) -> String {
        self.0.transport_name()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
        let reply = self
            .0
            .send("nested", apdu)
            .map_err(|f| crate::transport::TransportError::NoAnswer(f.to_string()))?;
        let sw = reply.sw();
        let mut bytes = reply.data;
        bytes.extend_from_slice(&sw.to_be_bytes());
        Ok(bytes)
    }
    fn reset(&mut self) -> Result<(), crate::transport::TransportError> {
        self.0
            .reset("nested reset")
            .map_err(|f| crate::transport::TransportError::NoAnswer(f.to_string()))
    }
}

const GENERATE_P256_9A: [u8; 11] = [
    0x00, 0x47, 0x00, 0x9A, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00,
];

fn admin_needs_management_key(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::verify(session)?;
    session.expect(
        "GENERATE without the management key",
        &GENERATE_P256_9A,
        0x6982,
    )?;
    let put = put_data_apdu([0x5F, 0xC1, 0x0D], b"vscard");
    session.expect("PUT DATA without the management key", &put, 0x6982)?;
    Ok(Outcome::Passed)
}

fn yubico_extensions(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    if let Some(outcome) = unless_yubico(session)? {
        return Ok(outcome);
    }
    let version = session.expect("GET VERSION", &[0x00, 0xFD, 0x00, 0x00, 0x00], 0x9000)?;
    ensure(version.len() >= 3, "GET VERSION", || {
        format!("{} bytes", version.len())
    })?;
    let serial = session.expect("GET SERIAL", &[0x00, 0xF8, 0x00, 0x00, 0x00], 0x9000)?;
    ensure(serial.len() == 4, "GET SERIAL", || {
        format!("{} bytes", serial.len())
    })?;
    let metadata = session.expect("GET METADATA PIN", &[0x00, 0xF7, 0x00, 0x80, 0x00], 0x9000)?;
    let retries =
        find(&metadata, 0x06).ok_or_else(|| fail("GET METADATA PIN", "no 06 (retries)"))?;
    ensure(
        retries.len() == 2 && retries[0] == session.facts.pin_tries,
        "GET METADATA PIN",
        || {
            format!(
                "retries {retries:02X?}, expected [{:02X}, x]",
                session.facts.pin_tries
            )
        },
    )?;
    // yubikit's RESET probes the Bio reference 96 and ykman lists keys slot
    // by slot: a YubiKey 5 answers 6A88 for both when there is nothing.
    session.expect("GET METADATA Bio", &[0x00, 0xF7, 0x00, 0x96, 0x00], 0x6A88)?;
    // The management key's type is the model's default (AES-192 since
    // 5.7, 3DES before), as the card facts say.
    let management = session.expect("GET METADATA 9B", &[0x00, 0xF7, 0x00, 0x9B, 0x00], 0x9000)?;
    ensure(
        find(&management, 0x01) == Some(&[session.facts.management_algorithm][..]),
        "GET METADATA 9B",
        || {
            format!(
                "algorithm {:02X?}, expected {:02X}",
                find(&management, 0x01),
                session.facts.management_algorithm
            )
        },
    )?;
    for retired in 0x82..=0x95u8 {
        let reply = session.send("GET METADATA retired", &[0x00, 0xF7, 0x00, retired, 0x00])?;
        ensure(
            matches!(reply.sw(), 0x9000 | 0x6A88),
            "GET METADATA retired",
            || {
                format!(
                    "slot {retired:02X}: {:04X}, expected 9000 or 6A88",
                    reply.sw()
                )
            },
        )?;
    }
    Ok(Outcome::Passed)
}

/// `Some(Unsupported)` when the card has no Yubico extensions.
fn unless_yubico(session: &mut Session<'_>) -> Result<Option<Outcome>, Failure> {
    let version = session.send("GET VERSION", &[0x00, 0xFD, 0x00, 0x00, 0x00])?;
    if version.sw() == 0x6D00 {
        return Ok(Some(Outcome::Unsupported(
            "not a Yubico-compatible card".into(),
        )));
    }
    expect_sw("GET VERSION", &version, 0x9000)?;
    Ok(None)
}

/// Middleware authenticates again in a session already authenticated; a
/// YubiKey answers the new external authentication with 9000.
fn external_after_mutual(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    if let Some(outcome) = unless_yubico(session)? {
        return Ok(outcome);
    }
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("mutual authentication", format!("{sw:04X}")))?;
    let algorithm = session.facts.management_algorithm;
    let key = session.facts.management_key.clone();
    let request = [
        0x00, 0x87, algorithm, 0x9B, 0x04, 0x7C, 0x02, 0x81, 0x00, 0x00,
    ];
    let reply = session.collect_ok("challenge", &request)?;
    let challenge = find(&reply, 0x7C)
        .and_then(|t| find(t, 0x81))
        .ok_or_else(|| fail("challenge", "no 7C { 81 }"))?;
    let response = vscard_testkit::management::apply(algorithm, &key, challenge, true)
        .ok_or_else(|| fail("challenge", "not one block of the key's algorithm"))?;
    let data = piv::tlv(0x7C, &piv::tlv(0x82, &response));
    let length = u8::try_from(data.len()).map_err(|_| fail("response", "too long"))?;
    let mut apdu = vec![0x00, 0x87, algorithm, 0x9B, length];
    apdu.extend_from_slice(&data);
    session.expect("external authentication", &apdu, 0x9000)?;
    Ok(Outcome::Passed)
}

/// GENERAL AUTHENTICATE naming another algorithm than the key in 9A has:
/// 6A80 on a YubiKey 5.
fn algorithm_mismatch(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    if let Some(outcome) = unless_yubico(session)? {
        return Ok(outcome);
    }
    let metadata = session.collect_ok(
        "GET METADATA 9A",
        &[0x00, 0xF7, 0x00, slot::AUTHENTICATION, 0x00],
    )?;
    let actual = find(&metadata, 0x01).and_then(<[u8]>::first).copied();
    // P-256 for any other key, P-384 for a P-256 key (SP 800-78-4 Table 6-2).
    let (other, digest_len) = if actual == Some(alg::P256) {
        (0x14, 48)
    } else {
        (alg::P256, 32)
    };
    piv::verify(session)?;
    let inner = [piv::tlv(0x82, &[]), piv::tlv(0x81, &vec![0x5A; digest_len])].concat();
    let data = piv::tlv(0x7C, &inner);
    let length = u8::try_from(data.len()).map_err(|_| fail("sign", "too long"))?;
    let mut apdu = vec![0x00, 0x87, other, slot::AUTHENTICATION, length];
    apdu.extend_from_slice(&data);
    apdu.push(0x00);
    session.expect("sign with another algorithm", &apdu, 0x6A80)?;
    Ok(Outcome::Passed)
}

fn generate_p256(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    let answer = session.collect_ok("GENERATE P-256 in 9A", &GENERATE_P256_9A)?;
    let point = find(&answer, 0x7F49)
        .and_then(|template| find(template, 0x86))
        .ok_or_else(|| {
            fail(
                "GENERATE",
                format!(
                    "expected 7F49 {{ 86 point }}, got {}",
                    hex::encode_upper(&answer)
                ),
            )
        })?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|e| fail("GENERATE", format!("bad point: {e}")))?;
    piv::verify(session)?;
    let digest = [0x42u8; 32];
    let signature = piv::general_authenticate(session, alg::P256, slot::AUTHENTICATION, &digest)?
        .map_err(|sw| fail("sign with the new key", format!("{sw:04X}")))?;
    let signature = p256::ecdsa::Signature::from_der(&signature)
        .map_err(|e| fail("signature", e.to_string()))?;
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    key.verify_prehash(&digest, &signature)
        .map_err(|e| fail("signature", format!("does not verify: {e}")))?;
    Ok(Outcome::Passed)
}

/// The `86` key of a GENERATE answer `7F49 { 86 key }`.
fn generated_point<'a>(step: &str, answer: &'a [u8]) -> Result<&'a [u8], Failure> {
    find(answer, 0x7F49)
        .and_then(|template| find(template, 0x86))
        .ok_or_else(|| {
            fail(
                step,
                format!(
                    "expected 7F49 {{ 86 key }}, got {}",
                    hex::encode_upper(answer)
                ),
            )
        })
}

/// On a YubiKey 5.7 (GET VERSION 5.7 or later): GENERATE Ed25519 in 9A and
/// X25519 in 9D answer the raw 32-byte key in `86`; the Ed25519 signature
/// of a message verifies (ed25519-dalek) and the X25519 agreement equals
/// the host's (x25519-dalek). Before 5.7 the card does not know them:
/// GENERATE answers `6A80`.
fn generate_curve25519(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    const GENERATE_ED25519_9A: [u8; 11] = [
        0x00,
        0x47,
        0x00,
        0x9A,
        0x05,
        0xAC,
        0x03,
        0x80,
        0x01,
        alg::ED25519,
        0x00,
    ];
    const GENERATE_X25519_9D: [u8; 11] = [
        0x00,
        0x47,
        0x00,
        0x9D,
        0x05,
        0xAC,
        0x03,
        0x80,
        0x01,
        alg::X25519,
        0x00,
    ];
    piv::select_piv(session)?;
    if let Some(outcome) = unless_yubico(session)? {
        return Ok(outcome);
    }
    let version = session.expect("GET VERSION", &[0x00, 0xFD, 0x00, 0x00, 0x00], 0x9000)?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    if version.get(..2).is_some_and(|v| (v[0], v[1]) < (5, 7)) {
        session.expect("GENERATE Ed25519 before 5.7", &GENERATE_ED25519_9A, 0x6A80)?;
        session.expect("GENERATE X25519 before 5.7", &GENERATE_X25519_9D, 0x6A80)?;
        return Ok(Outcome::Passed);
    }

    let answer = session.collect_ok("GENERATE Ed25519 in 9A", &GENERATE_ED25519_9A)?;
    let point: [u8; 32] = generated_point("GENERATE Ed25519", &answer)?
        .try_into()
        .map_err(|_| fail("GENERATE Ed25519", "the key is not 32 bytes"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&point)
        .map_err(|e| fail("GENERATE Ed25519", format!("bad key: {e}")))?;
    piv::verify(session)?;
    let message = b"vscard conformance: Ed25519 signs the message itself";
    let signature =
        piv::general_authenticate(session, alg::ED25519, slot::AUTHENTICATION, message)?
            .map_err(|sw| fail("sign with the Ed25519 key", format!("{sw:04X}")))?;
    let signature = ed25519_dalek::Signature::from_slice(&signature)
        .map_err(|e| fail("Ed25519 signature", e.to_string()))?;
    key.verify_strict(message, &signature)
        .map_err(|e| fail("Ed25519 signature", format!("does not verify: {e}")))?;

    let answer = session.collect_ok("GENERATE X25519 in 9D", &GENERATE_X25519_9D)?;
    let point: [u8; 32] = generated_point("GENERATE X25519", &answer)?
        .try_into()
        .map_err(|_| fail("GENERATE X25519", "the key is not 32 bytes"))?;
    let host = x25519_dalek::StaticSecret::from([0x5Au8; 32]);
    let host_public = x25519_dalek::PublicKey::from(&host);
    let data = piv::tlv(
        0x7C,
        &[piv::tlv(0x82, &[]), piv::tlv(0x85, host_public.as_bytes())].concat(),
    );
    let reply = session.chained(
        "GENERAL AUTHENTICATE X25519",
        [0x00, 0x87, alg::X25519, slot::KEY_MANAGEMENT],
        &data,
    )?;
    expect_sw("GENERAL AUTHENTICATE X25519", &reply, 0x9000)?;
    let shared = find(&reply.data, 0x7C)
        .and_then(|template| find(template, 0x82))
        .ok_or_else(|| fail("GENERAL AUTHENTICATE X25519", "no 7C { 82 }"))?;
    let expected = host.diffie_hellman(&x25519_dalek::PublicKey::from(point));
    ensure(shared == expected.as_bytes(), "X25519 agreement", || {
        "the card's shared secret is not the host's".to_owned()
    })?;
    Ok(Outcome::Passed)
}

fn put_data_apdu(tag: [u8; 3], value: &[u8]) -> Vec<u8> {
    let data = [piv::tlv(0x5C, &tag), piv::tlv(0x53, value)].concat();
    let mut apdu = vec![0x00, 0xDB, 0x3F, 0xFF, data.len() as u8];
    apdu.extend_from_slice(&data);
    apdu
}

fn put_data(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    let value: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let data = [piv::tlv(0x5C, &[0x5F, 0xC1, 0x0D]), piv::tlv(0x53, &value)].concat();
    let reply = session.chained("PUT DATA (chained)", [0x00, 0xDB, 0x3F, 0xFF], &data)?;
    expect_sw("PUT DATA", &reply, 0x9000)?;
    let read = piv::get_object(session, [0x5F, 0xC1, 0x0D])?
        .map_err(|sw| fail("GET DATA", format!("{sw:04X}")))?;
    ensure(read == value, "read back", || {
        "GET DATA returned other bytes than PUT DATA wrote".into()
    })?;
    Ok(Outcome::Passed)
}

fn reset_retry_counter(puk: &[u8], new_pin: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    apdu.extend_from_slice(&pad_pin(puk));
    apdu.extend_from_slice(&pad_pin(new_pin));
    apdu
}

fn change_reference(key: u8, old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x24, 0x00, key, 0x10];
    apdu.extend_from_slice(&pad_pin(old));
    apdu.extend_from_slice(&pad_pin(new));
    apdu
}

fn lockout_and_unblock(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let pin = session.facts.pin.clone();
    let puk = session.facts.puk.clone();
    let wrong = wrong_pin(&pin);
    let mut left = tries_left(session, "status")?;
    while left > 0 {
        left -= 1;
        session.expect("wrong PIN", &verify_pin(&wrong), 0x63C0 | u16::from(left))?;
    }
    session.expect("wrong PIN when blocked", &verify_pin(&wrong), 0x6983)?;
    session.expect("right PIN when blocked", &verify_pin(&pin), 0x6983)?;
    let temporary = b"246810".to_vec();
    session.expect(
        "RESET RETRY COUNTER",
        &reset_retry_counter(&puk, &temporary),
        0x9000,
    )?;
    session.expect(
        "old PIN no longer works",
        &verify_pin(&pin),
        0x63C0 | u16::from(session.facts.pin_tries - 1),
    )?;
    session.expect("new PIN", &verify_pin(&temporary), 0x9000)?;
    session.expect(
        "back to the original PIN",
        &change_reference(0x80, &temporary, &pin),
        0x9000,
    )?;
    piv::verify(session)?;
    Ok(Outcome::Passed)
}

fn change_reference_data(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    piv::select_piv(session)?;
    let pin = session.facts.pin.clone();
    let puk = session.facts.puk.clone();
    let new_pin = b"135790".to_vec();
    session.expect(
        "CHANGE PIN",
        &change_reference(0x80, &pin, &new_pin),
        0x9000,
    )?;
    session.expect(
        "old PIN",
        &verify_pin(&pin),
        0x63C0 | u16::from(session.facts.pin_tries - 1),
    )?;
    session.expect("new PIN", &verify_pin(&new_pin), 0x9000)?;
    // A new PIN that is not 6 to 8 digits is refused, and spends no try of the old one.
    session.expect(
        "CHANGE PIN to 5 digits",
        &change_reference(0x80, &new_pin, b"12345"),
        0x6A80,
    )?;
    session.expect(
        "CHANGE PIN back",
        &change_reference(0x80, &new_pin, &pin),
        0x9000,
    )?;
    let new_puk = b"97531864".to_vec();
    session.expect(
        "CHANGE PUK",
        &change_reference(0x81, &puk, &new_puk),
        0x9000,
    )?;
    // SP 800-73-4 Part 2 2.4.3: the PUK may hold any byte values (only
    // the PIN is digits); RESET RETRY COUNTER then takes it.
    let any_bytes = b"Pk-\x00\x7F#z9".to_vec();
    session.expect(
        "CHANGE PUK to non-digits",
        &change_reference(0x81, &new_puk, &any_bytes),
        0x9000,
    )?;
    let mut unblock = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    unblock.extend_from_slice(&pad_pin(&any_bytes));
    unblock.extend_from_slice(&pad_pin(&pin));
    session.expect("RESET RETRY COUNTER with it", &unblock, 0x9000)?;
    session.expect(
        "CHANGE PUK back",
        &change_reference(0x81, &any_bytes, &puk),
        0x9000,
    )?;
    piv::verify(session)?;
    Ok(Outcome::Passed)
}
