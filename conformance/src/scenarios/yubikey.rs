//! The YubiKey 5.7 additions middleware uses: the Management application
//! beside PIV (ykman, libykpiv) and MOVE / DELETE KEY (`F6`). A card that
//! does not say it is a YubiKey (GET VERSION `6D00`), or an older one for
//! MOVE KEY, is "unsupported", not failed.

use crate::piv::{self, find};
use crate::scenario::{Group, Outcome, Scenario};
use crate::session::{Failure, Session, ensure, fail};

/// SELECT of the Management application (yubikit `AID.MANAGEMENT`).
const SELECT_MANAGEMENT: [u8; 14] = [
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17, 0x00,
];

/// The group.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        group: Group::Piv,
        name: "Yubico: Management application, version and device info",
        clause: "YubiKey 5 (yubikit management.py)",
        destructive: false,
        run: management_application,
    },
    Scenario {
        group: Group::Piv,
        name: "Yubico: MOVE KEY and DELETE KEY",
        clause: "YubiKey 5.7 (yubikit piv.py move_key, delete_key)",
        destructive: true,
        run: move_and_delete,
    },
    Scenario {
        group: Group::Piv,
        name: "Yubico: ATTEST a generated key, chained to 5FFF01",
        clause: "YubiKey 4.3+ (yubikit piv.py attest_key)",
        destructive: true,
        run: attest,
    },
    Scenario {
        group: Group::Piv,
        name: "Yubico: touch policy ALWAYS, no touch answers 6982",
        clause: "YubiKey 4+ (yubikit TOUCH_POLICY)",
        destructive: true,
        run: touch_always,
    },
    Scenario {
        group: Group::Piv,
        name: "Yubico: GENERATE RSA-1024 and IMPORT P-256",
        clause: "YubiKey 5 (yubikit piv.py generate_key, put_key)",
        destructive: true,
        run: generate_and_import,
    },
    Scenario {
        group: Group::Piv,
        name: "Yubico: SET PIN RETRIES, then RESET back to 3 / 3",
        clause: "YubiKey 5 (yubikit piv.py set_pin_attempts, reset)",
        destructive: true,
        run: retries_then_reset,
    },
];

/// GENERATE P-256 in `slot` with the touch policy `touch` (tag `AB`).
fn generate_p256(slot: u8, touch: u8) -> [u8; 14] {
    [
        0x00, 0x47, 0x00, slot, 0x08, 0xAC, 0x06, 0x80, 0x01, 0x11, 0xAB, 0x01, touch, 0x00,
    ]
}

/// A key generated in the retired slot 84 is attested: the certificate's
/// issuer is the attestation certificate's subject, its signature verifies
/// with that certificate's P-256 key, its key is the generated one, and it
/// carries the firmware version GET VERSION reports and the serial GET
/// SERIAL does; the card's own keys (imported at issuance) are not
/// attested (`6A80`).
fn attest(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    use der::{Decode as _, Encode as _};
    use p256::ecdsa::signature::Verifier as _;
    let Some(version) = version(session)? else {
        return Ok(not_a_yubikey());
    };
    let serial = session.expect("GET SERIAL", &[0x00, 0xF8, 0x00, 0x00, 0x00], 0x9000)?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    let answer = session.collect_ok("GENERATE P-256 in 84", &generate_p256(0x84, 0x01))?;
    let point = find(&answer, 0x7F49)
        .and_then(|template| find(template, 0x86))
        .ok_or_else(|| fail("GENERATE P-256", "no 7F49 { 86 point }"))?
        .to_vec();
    let attested = session.collect_ok("ATTEST 84", &[0x00, 0xF9, 0x84, 0x00, 0x00])?;
    let attested = x509_cert::Certificate::from_der(&attested)
        .map_err(|e| fail("ATTEST 84", format!("not a DER certificate: {e}")))?;
    let object = piv::get_object(session, [0x5F, 0xFF, 0x01])?
        .map_err(|sw| fail("GET DATA 5FFF01", format!("answered {sw:04X}")))?;
    let device = find(&object, 0x70)
        .ok_or_else(|| fail("5FFF01", "no 70 (certificate) tag"))
        .and_then(|der| {
            x509_cert::Certificate::from_der(der)
                .map_err(|e| fail("5FFF01", format!("not a DER certificate: {e}")))
        })?;
    let tbs = attested.tbs_certificate();
    ensure(
        tbs.issuer() == device.tbs_certificate().subject(),
        "ATTEST 84",
        || "its issuer is not 5FFF01's subject".into(),
    )?;
    let device_key = device
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .and_then(|bytes| p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).ok())
        .ok_or_else(|| fail("5FFF01", "its key is not P-256"))?;
    let signature = p256::ecdsa::DerSignature::try_from(attested.signature().raw_bytes())
        .map_err(|e| fail("ATTEST 84", format!("signature: {e}")))?;
    let signed = tbs
        .to_der()
        .map_err(|e| fail("ATTEST 84", format!("TBS: {e}")))?;
    device_key.verify(&signed, &signature).map_err(|_| {
        fail(
            "ATTEST 84",
            "the signature does not verify with 5FFF01's key",
        )
    })?;
    ensure(
        tbs.subject_public_key_info().subject_public_key.as_bytes() == Some(&point[..]),
        "ATTEST 84",
        || "the certified key is not the generated one".into(),
    )?;
    let extension = |oid: &str| {
        tbs.extensions()
            .and_then(|all| all.iter().find(|e| e.extn_id.to_string() == oid))
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    ensure(
        extension("1.3.6.1.4.1.41482.3.3") == Some(version.to_vec()),
        "ATTEST 84",
        || "the firmware extension is not GET VERSION's".into(),
    )?;
    let serial = u32::from_be_bytes(
        serial
            .try_into()
            .map_err(|_| fail("GET SERIAL", "not 4 bytes"))?,
    );
    let serial_der = serial
        .to_der()
        .map_err(|e| fail("GET SERIAL", e.to_string()))?;
    ensure(
        extension("1.3.6.1.4.1.41482.3.7") == Some(serial_der),
        "ATTEST 84",
        || "the serial extension is not GET SERIAL's".into(),
    )?;
    ensure(
        extension("1.3.6.1.4.1.41482.3.8").is_some_and(|policy| policy.get(1) == Some(&0x01)),
        "ATTEST 84",
        || "the policy extension does not say touch never".into(),
    )?;
    session.expect(
        "ATTEST an empty slot",
        &[0x00, 0xF9, 0x83, 0x00, 0x00],
        0x6A88,
    )?;
    session
        .expect("DELETE KEY 84", &[0x00, 0xF6, 0xFF, 0x84], 0x9000)
        .or_else(|failure| {
            // Before 5.7 there is no DELETE KEY: the key stays in 84.
            if version < [5, 7, 0] {
                Ok(Vec::new())
            } else {
                Err(failure)
            }
        })?;
    Ok(Outcome::Passed)
}

/// A key generated with touch policy ALWAYS says so in GET METADATA
/// (`02` second byte of tag `02`), and a signature with it, no touch
/// coming, answers `6982` once the card stops waiting (a YubiKey after
/// 15 s; the test transports wait less).
fn touch_always(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    if version(session)?.is_none() {
        return Ok(not_a_yubikey());
    }
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    session.collect_ok(
        "GENERATE P-256 in 85, touch always",
        &generate_p256(0x85, 0x02),
    )?;
    let metadata = session.collect_ok("GET METADATA 85", &[0x00, 0xF7, 0x00, 0x85, 0x00])?;
    ensure(
        find(&metadata, 0x02) == Some(&[0x02, 0x02][..]),
        "GET METADATA 85",
        || {
            format!(
                "policy {:02X?}, expected PIN once, touch always",
                find(&metadata, 0x02)
            )
        },
    )?;
    piv::verify(session)?;
    let signed = piv::general_authenticate(session, 0x11, 0x85, &[0x5A; 32])?;
    ensure(signed == Err(0x6982), "sign without a touch", || {
        format!("answered {signed:02X?}, expected 6982")
    })?;
    Ok(Outcome::Passed)
}

/// GENERATE RSA-1024 (every model has it) in 86, then IMPORT a P-256
/// scalar into 87 (Yubico `FE`, origin "imported" in GET METADATA).
fn generate_and_import(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    if version(session)?.is_none() {
        return Ok(not_a_yubikey());
    }
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    let generate = [
        0x00, 0x47, 0x00, 0x86, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x06, 0x00,
    ];
    let answer = session.collect_ok("GENERATE RSA-1024 in 86", &generate)?;
    let modulus = find(&answer, 0x7F49)
        .and_then(|template| find(template, 0x81))
        .ok_or_else(|| fail("GENERATE RSA-1024", "no 7F49 { 81 modulus }"))?;
    ensure(modulus.len() == 128, "GENERATE RSA-1024", || {
        format!("a modulus of {} bytes", modulus.len())
    })?;
    let mut import = vec![0x00, 0xFE, 0x11, 0x87, 0x22, 0x06, 0x20];
    import.extend_from_slice(&[0x3C; 32]);
    session.expect("IMPORT P-256 into 87", &import, 0x9000)?;
    let metadata = session.collect_ok("GET METADATA 87", &[0x00, 0xF7, 0x00, 0x87, 0x00])?;
    ensure(
        find(&metadata, 0x01) == Some(&[0x11][..]) && find(&metadata, 0x03) == Some(&[0x02][..]),
        "GET METADATA 87",
        || "not a P-256 key of origin imported".into(),
    )?;
    Ok(Outcome::Passed)
}

/// SET PIN RETRIES 5 / 6 (needs the management key and the PIN), then,
/// PIN and PUK blocked, RESET: the card is new again, 3 / 3 tries and the
/// model's default management key. The last scenario: it wipes the card.
fn retries_then_reset(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    if version(session)?.is_none() {
        return Ok(not_a_yubikey());
    }
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    piv::verify(session)?;
    session.expect("SET PIN RETRIES 5 6", &[0x00, 0xFA, 0x05, 0x06], 0x9000)?;
    for (reference, tries) in [(0x80u8, 0x05u8), (0x81, 0x06)] {
        let metadata = session.collect_ok("GET METADATA", &[0x00, 0xF7, 0x00, reference, 0x00])?;
        ensure(
            find(&metadata, 0x06) == Some(&[tries, tries][..]),
            "GET METADATA after SET PIN RETRIES",
            || {
                format!(
                    "{reference:02X}: retries {:02X?}, expected {tries} / {tries}",
                    find(&metadata, 0x06)
                )
            },
        )?;
    }
    session.expect(
        "RESET while the PIN works",
        &[0x00, 0xFB, 0x00, 0x00],
        0x6985,
    )?;
    let wrong_pin = [
        0x00, 0x20, 0x00, 0x80, 0x08, b'0', b'0', b'0', b'0', b'0', b'0', 0xFF, 0xFF,
    ];
    for _ in 0..5 {
        session.send("VERIFY a wrong PIN", &wrong_pin)?;
    }
    let mut wrong_puk = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    wrong_puk.extend_from_slice(b"00000000000000");
    wrong_puk.extend_from_slice(&[0xFF, 0xFF]);
    for _ in 0..6 {
        session.send("RESET RETRY COUNTER with a wrong PUK", &wrong_puk)?;
    }
    session.expect("VERIFY status (blocked)", &[0x00, 0x20, 0x00, 0x80], 0x6983)?;
    session.expect("RESET", &[0x00, 0xFB, 0x00, 0x00], 0x9000)?;
    session.expect(
        "VERIFY status after RESET",
        &[0x00, 0x20, 0x00, 0x80],
        0x63C3,
    )?;
    let puk = session.collect_ok("GET METADATA 81", &[0x00, 0xF7, 0x00, 0x81, 0x00])?;
    ensure(
        find(&puk, 0x06) == Some(&[0x03, 0x03][..]),
        "GET METADATA 81",
        || format!("PUK retries {:02X?}, expected 03 03", find(&puk, 0x06)),
    )?;
    let management = session.collect_ok("GET METADATA 9B", &[0x00, 0xF7, 0x00, 0x9B, 0x00])?;
    ensure(
        find(&management, 0x01) == Some(&[session.facts.management_algorithm][..])
            && find(&management, 0x05) == Some(&[0x01][..]),
        "GET METADATA 9B",
        || "not the model's default management key".into(),
    )?;
    Ok(Outcome::Passed)
}

/// GET VERSION, or `None` on a card without the Yubico extensions.
fn version(session: &mut Session<'_>) -> Result<Option<[u8; 3]>, Failure> {
    piv::select_piv(session)?;
    let reply = session.send("GET VERSION", &[0x00, 0xFD, 0x00, 0x00, 0x00])?;
    if reply.sw() == 0x6D00 {
        return Ok(None);
    }
    match reply.data.as_slice() {
        [major, minor, patch, ..] if reply.sw() == 0x9000 => Ok(Some([*major, *minor, *patch])),
        _ => Err(fail("GET VERSION", format!("answered {:04X}", reply.sw()))),
    }
}

fn not_a_yubikey() -> Outcome {
    Outcome::Unsupported("not a Yubico-compatible card".into())
}

/// SELECT answers a text with the version GET VERSION reports; READ
/// CONFIG is a length byte and TLVs whose serial (`02`) and version
/// (`05`) are the PIV application's.
fn management_application(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    let Some([major, minor, patch]) = version(session)? else {
        return Ok(not_a_yubikey());
    };
    let serial = session.expect("GET SERIAL", &[0x00, 0xF8, 0x00, 0x00, 0x00], 0x9000)?;
    let text = session.collect_ok("SELECT Management", &SELECT_MANAGEMENT)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let expected = format!("{major}.{minor}.{patch}");
    ensure(text.contains(&expected), "SELECT Management", || {
        format!("{text:?} does not name version {expected}")
    })?;
    let info = session.collect_ok("READ CONFIG", &[0x00, 0x1D, 0x00, 0x00, 0x00])?;
    let (length, tlvs) = info
        .split_first()
        .ok_or_else(|| fail("READ CONFIG", "empty"))?;
    ensure(usize::from(*length) == tlvs.len(), "READ CONFIG", || {
        format!("length byte {length}, {} bytes follow", tlvs.len())
    })?;
    ensure(find(tlvs, 0x02) == Some(&serial[..]), "READ CONFIG", || {
        "the serial (02) is not GET SERIAL's".into()
    })?;
    ensure(
        find(tlvs, 0x05) == Some(&[major, minor, patch][..]),
        "READ CONFIG",
        || "the version (05) is not GET VERSION's".into(),
    )?;
    // Back to PIV: the Management application deselected it.
    piv::select_piv(session)?;
    Ok(Outcome::Passed)
}

/// Moves the 9A key to the retired slot 95 and back, so the card ends as
/// it began; deletes a key generated in 94 for the purpose.
fn move_and_delete(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    match version(session)? {
        None => return Ok(not_a_yubikey()),
        Some(version) if version < [5, 7, 0] => {
            session.expect("MOVE KEY before 5.7", &[0x00, 0xF6, 0x95, 0x9A], 0x6D00)?;
            return Ok(Outcome::Unsupported(format!(
                "MOVE KEY needs 5.7, the card is {}.{}.{}",
                version[0], version[1], version[2]
            )));
        }
        Some(_) => {}
    }
    session.expect(
        "MOVE KEY without the management key",
        &[0x00, 0xF6, 0x95, 0x9A],
        0x6982,
    )?;
    piv::authenticate_management_key(session)?
        .map_err(|sw| fail("management key", format!("{sw:04X}")))?;
    let before = session.collect_ok("GET METADATA 9A", &[0x00, 0xF7, 0x00, 0x9A, 0x00])?;
    session.expect(
        "GET METADATA 95 (empty)",
        &[0x00, 0xF7, 0x00, 0x95, 0x00],
        0x6A88,
    )?;
    session.expect("MOVE KEY 9A -> 95", &[0x00, 0xF6, 0x95, 0x9A], 0x9000)?;
    session.expect(
        "GET METADATA 9A (moved)",
        &[0x00, 0xF7, 0x00, 0x9A, 0x00],
        0x6A88,
    )?;
    let moved = session.collect_ok("GET METADATA 95", &[0x00, 0xF7, 0x00, 0x95, 0x00])?;
    ensure(moved == before, "GET METADATA 95", || {
        "the metadata did not follow the key".into()
    })?;
    session.expect(
        "MOVE KEY from an empty slot",
        &[0x00, 0xF6, 0x94, 0x9A],
        0x6A88,
    )?;
    session.expect("MOVE KEY 95 -> 9A", &[0x00, 0xF6, 0x9A, 0x95], 0x9000)?;
    let generate = [
        0x00, 0x47, 0x00, 0x94, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00,
    ];
    session.collect_ok("GENERATE P-256 in 94", &generate)?;
    session.expect(
        "MOVE KEY to an occupied slot",
        &[0x00, 0xF6, 0x9A, 0x94],
        0x6A80,
    )?;
    session.expect("DELETE KEY 94", &[0x00, 0xF6, 0xFF, 0x94], 0x9000)?;
    session.expect("DELETE KEY 94 again", &[0x00, 0xF6, 0xFF, 0x94], 0x6A88)?;
    let after = session.collect_ok("GET METADATA 9A (back)", &[0x00, 0xF7, 0x00, 0x9A, 0x00])?;
    ensure(after == before, "GET METADATA 9A (back)", || {
        "the key came back changed".into()
    })?;
    Ok(Outcome::Passed)
}
