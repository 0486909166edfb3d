//! ISO/IEC 7816-4 runtime behaviour, seen through the PIV application (the
//! one application every card under test has): APDU cases, extended
//! length, GET RESPONSE and 6Cxx, command chaining, SELECT rules, logical
//! channels, and what reset and power loss clear.

use crate::facts::{get_data, get_data_extended, pad_pin, piv_aid, select, tag, verify_pin};
use crate::scenario::{Group, Outcome, Scenario};
use crate::session::{Failure, Reply, Session, ensure, expect_sw, fail};

/// VERIFY with P1 = FF: reset the PIN's security status (SP 800-73-4 Part 2 3.2.1).
const LOG_OUT: [u8; 4] = [0x00, 0x20, 0xFF, 0x80];
/// VERIFY with no data: the PIN's status.
const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

const fn scenario(
    name: &'static str,
    clause: &'static str,
    run: crate::scenario::ScenarioFn,
) -> Scenario {
    Scenario {
        group: Group::Iso7816,
        name,
        clause,
        destructive: false,
        run,
    }
}

/// The group.
pub const SCENARIOS: &[Scenario] = &[
    scenario("case 1: no data, no Le", "ISO 7816-4 5.1", case_1),
    scenario("case 2: Le only", "ISO 7816-4 5.1", case_2),
    scenario("case 3: data only", "ISO 7816-4 5.1", case_3),
    scenario("case 4: data and Le", "ISO 7816-4 5.1", case_4),
    scenario(
        "extended length (case 4E)",
        "ISO 7816-4 5.1",
        extended_length,
    ),
    scenario(
        "61xx and GET RESPONSE",
        "ISO 7816-4 5.3.4, 7.6.1",
        get_response,
    ),
    scenario(
        "6Cxx for a wrong Le",
        "ISO 7816-3 10.3.4, 7816-4 5.6",
        wrong_le,
    ),
    scenario("command chaining", "ISO 7816-4 5.1.1.1", chaining),
    scenario("interrupted chain", "ISO 7816-4 5.1.1.1", interrupted_chain),
    scenario("wrong length", "ISO 7816-4 5.6", wrong_length),
    scenario("unknown instruction", "ISO 7816-4 5.6", unknown_instruction),
    scenario("SELECT by full AID", "ISO 7816-4 11.1.1", select_full),
    scenario(
        "SELECT by truncated AID",
        "ISO 7816-4 11.1.1",
        select_truncated,
    ),
    scenario(
        "SELECT unknown AID keeps state",
        "ISO 7816-4 11.1.1",
        select_unknown,
    ),
    scenario(
        "logical channels",
        "ISO 7816-4 5.1.1, 11.1.2",
        logical_channels,
    ),
    scenario(
        "reset clears security status",
        "ISO 7816-3 6.2",
        reset_clears_security,
    ),
    scenario(
        "power cycle clears security status",
        "ISO 7816-3 6.1",
        power_cycle_clears_security,
    ),
];

fn select_piv(session: &mut Session<'_>) -> Result<Vec<u8>, Failure> {
    session.collect_ok("SELECT PIV", &select(piv_aid()))
}

fn verify(session: &mut Session<'_>) -> Result<(), Failure> {
    let apdu = verify_pin(&session.facts.pin);
    session.expect("VERIFY PIN", &apdu, 0x9000).map(|_| ())
}

fn expect_not_verified(session: &mut Session<'_>, step: &str) -> Result<(), Failure> {
    let reply = session.send(step, &PIN_STATUS)?;
    ensure(
        reply.sw() & 0xFFF0 == 0x63C0 && reply.sw() != 0x63C0,
        step,
        || {
            format!(
                "expected 63Cx (not verified, tries left), got {:04X}",
                reply.sw()
            )
        },
    )
}

fn case_1(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    session.expect("VERIFY log out (case 1)", &LOG_OUT, 0x9000)?;
    Ok(Outcome::Passed)
}

fn case_2(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let reply = session.send(
        "VERIFY status with Le (case 2)",
        &[0x00, 0x20, 0x00, 0x80, 0x00],
    )?;
    ensure(
        reply.sw() & 0xFFF0 == 0x63C0 || reply.sw() == 0x9000,
        "case 2",
        || format!("expected 63Cx or 9000, got {:04X}", reply.sw()),
    )?;
    Ok(Outcome::Passed)
}

fn case_3(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    verify(session)?;
    session.expect("PIN status after VERIFY", &PIN_STATUS, 0x9000)?;
    Ok(Outcome::Passed)
}

fn case_4(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let chuid = session.collect_ok("GET DATA CHUID", &get_data(tag::CHUID))?;
    ensure(chuid.first() == Some(&0x53), "GET DATA CHUID", || {
        format!("expected a 53 template, got {}", hex::encode_upper(&chuid))
    })?;
    Ok(Outcome::Passed)
}

/// Reads the 9A certificate object with short APDUs and GET RESPONSE.
fn read_certificate_short(session: &mut Session<'_>) -> Result<Vec<u8>, Failure> {
    session.collect_ok("GET DATA 9A certificate", &get_data(tag::CERT_9A))
}

fn extended_length(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let reply = session.send("GET DATA extended", &get_data_extended(tag::CERT_9A))?;
    if matches!(reply.sw(), 0x6700 | 0x6D00 | 0x6E00) {
        return Ok(Outcome::Unsupported(format!(
            "extended APDU answered {:04X}",
            reply.sw()
        )));
    }
    expect_sw("GET DATA extended", &reply, 0x9000)?;
    ensure(reply.data.len() > 256, "GET DATA extended", || {
        format!(
            "expected more than 256 bytes in one response, got {}",
            reply.data.len()
        )
    })?;
    let short = read_certificate_short(session)?;
    ensure(
        short == reply.data,
        "short and extended reads agree",
        || "the object read with GET RESPONSE differs from the extended read".into(),
    )?;
    Ok(Outcome::Passed)
}

/// The declared length of a BER-TLV object, header included, from its
/// first piece.
fn tlv_total_length(object: &[u8]) -> Option<usize> {
    let mut reader = vscard_applet::tlv::Reader::new(object);
    let (_, length) = reader.header().ok()?;
    let header = object.len() - reader.remaining().len();
    header.checked_add(length)
}

fn get_response(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let first = session.send("GET DATA 9A, Le 00", &get_data(tag::CERT_9A))?;
    ensure(
        first.sw1() == 0x61 && first.data.len() == 256,
        "first piece",
        || {
            format!(
                "expected 256 bytes and 61xx, got {} bytes and {:04X}",
                first.data.len(),
                first.sw()
            )
        },
    )?;
    let mut object = first.data.clone();
    let mut reply = first;
    while reply.sw1() == 0x61 {
        let le = reply.sw2();
        reply = session.send("GET RESPONSE", &[0x00, 0xC0, 0x00, 0x00, le])?;
        let expected = if le == 0 { 256 } else { usize::from(le) };
        ensure(reply.data.len() == expected, "GET RESPONSE", || {
            format!("asked for {expected} bytes, got {}", reply.data.len())
        })?;
        object.extend_from_slice(&reply.data);
    }
    expect_sw("last GET RESPONSE", &reply, 0x9000)?;
    let declared = tlv_total_length(&object);
    ensure(
        object.first() == Some(&0x53) && declared == Some(object.len()),
        "reassembled object",
        || {
            format!(
                "expected a 53 object of its declared length, got {} bytes declaring {declared:?}",
                object.len()
            )
        },
    )?;
    Ok(Outcome::Passed)
}

fn wrong_le(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let mut reply = session.send("GET DATA 9A, Le 00", &get_data(tag::CERT_9A))?;
    // Take 16-byte pieces until 1 to 254 bytes are left, so that Le + 1 is
    // still a one-byte Le (an object may split evenly into 256-byte pieces).
    for _ in 0..512 {
        match reply.sw() {
            0x6101..=0x61FE => break,
            sw if sw >> 8 == 0x61 => {
                reply = session.send("GET RESPONSE 16 bytes", &[0x00, 0xC0, 0x00, 0x00, 0x10])?;
            }
            sw => return Err(fail("drain", format!("expected 61xx, got {sw:04X}"))),
        }
    }
    if !(0x6101..=0x61FE).contains(&reply.sw()) {
        return Err(fail(
            "drain",
            format!("expected 61xx with 0 < xx < FF, got {:04X}", reply.sw()),
        ));
    }
    let left = reply.sw2();
    let too_many = session.send(
        "GET RESPONSE, Le too large",
        &[0x00, 0xC0, 0x00, 0x00, left + 1],
    )?;
    if too_many.sw() == 0x9000 && too_many.data.len() == usize::from(left) {
        return Ok(Outcome::Unsupported(
            "the card returns what is left instead of 6Cxx".into(),
        ));
    }
    expect_sw(
        "GET RESPONSE, Le too large",
        &too_many,
        0x6C00 | u16::from(left),
    )?;
    let rest: Reply = session.send("GET RESPONSE, exact Le", &[0x00, 0xC0, 0x00, 0x00, left])?;
    expect_sw("GET RESPONSE, exact Le", &rest, 0x9000)?;
    ensure(rest.data.len() == usize::from(left), "exact Le", || {
        format!("expected {left} bytes, got {}", rest.data.len())
    })?;
    Ok(Outcome::Passed)
}

fn chaining(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    session.expect("log out", &LOG_OUT, 0x9000)?;
    let pin = pad_pin(&session.facts.pin);
    let (head, tail) = pin.split_at(4);
    let mut first = vec![0x10, 0x20, 0x00, 0x80, 0x04];
    first.extend_from_slice(head);
    let reply = session.send("VERIFY, first link", &first)?;
    if reply.sw() == 0x6884 || reply.sw() == 0x6E00 {
        return Ok(Outcome::Unsupported(format!(
            "chaining answered {:04X}",
            reply.sw()
        )));
    }
    expect_sw("VERIFY, first link", &reply, 0x9000)?;
    let mut last = vec![0x00, 0x20, 0x00, 0x80, 0x04];
    last.extend_from_slice(tail);
    session.expect("VERIFY, last link", &last, 0x9000)?;
    session.expect("PIN status", &PIN_STATUS, 0x9000)?;
    Ok(Outcome::Passed)
}

fn interrupted_chain(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let pin = pad_pin(&session.facts.pin);
    let mut first = vec![0x10, 0x20, 0x00, 0x80, 0x04];
    first.extend_from_slice(&pin[..4]);
    session.expect("VERIFY, first link", &first, 0x9000)?;
    let reply = session.send("another command", &get_data(tag::CHUID))?;
    if reply.sw() != 0x6883 {
        return Ok(Outcome::Unsupported(format!(
            "a different command in a chain answered {:04X}",
            reply.sw()
        )));
    }
    // The chain is gone; the card answers normally again.
    session.collect_ok("GET DATA CHUID", &get_data(tag::CHUID))?;
    Ok(Outcome::Passed)
}

fn wrong_length(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    // Lc = 5 but only 2 data bytes follow.
    let reply = session.send(
        "Lc larger than the data",
        &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03],
    );
    match reply {
        Ok(reply) => expect_sw("Lc larger than the data", &reply, 0x6700)?,
        Err(failure) if failure.message.contains("refused") => {
            return Ok(Outcome::Unsupported(failure.message));
        }
        Err(failure) => return Err(failure),
    }
    Ok(Outcome::Passed)
}

fn unknown_instruction(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    session.expect(
        "APPEND RECORD (not a PIV command)",
        &[0x00, 0xE2, 0x00, 0x00],
        0x6D00,
    )?;
    Ok(Outcome::Passed)
}

fn select_full(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    let template = select_piv(session)?;
    ensure(template.first() == Some(&0x61), "SELECT PIV", || {
        format!(
            "expected an application property template (61), got {}",
            hex::encode_upper(&template)
        )
    })?;
    Ok(Outcome::Passed)
}

fn select_truncated(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    let full = select_piv(session)?;
    let truncated = session.collect_ok("SELECT A0 00 00 03 08", &select(&piv_aid()[..5]))?;
    ensure(full == truncated, "SELECT truncated", || {
        "the truncated SELECT answered differently from the full one".into()
    })?;
    Ok(Outcome::Passed)
}

fn select_unknown(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    verify(session)?;
    session.expect(
        "SELECT unknown AID",
        &select(&[0xA0, 0x00, 0x00, 0x05, 0x27, 0x99, 0x99]),
        0x6A82,
    )?;
    session.expect("PIN still verified", &PIN_STATUS, 0x9000)?;
    session.collect_ok("PIV still selected", &get_data(tag::CHUID))?;
    Ok(Outcome::Passed)
}

fn logical_channels(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    let reply = session.send("MANAGE CHANNEL open", &[0x00, 0x70, 0x00, 0x00, 0x01])?;
    if matches!(reply.sw(), 0x6881 | 0x6A81 | 0x6D00 | 0x6E00) {
        return Ok(Outcome::Unsupported(format!(
            "MANAGE CHANNEL answered {:04X}",
            reply.sw()
        )));
    }
    expect_sw("MANAGE CHANNEL open", &reply, 0x9000)?;
    let channel = match reply.data.as_slice() {
        [n] if (1..=3).contains(n) => *n,
        other => {
            return Err(fail(
                "MANAGE CHANNEL open",
                format!("expected one channel number 1..3, got {other:02X?}"),
            ));
        }
    };
    session.expect("MANAGE CHANNEL close", &[0x00, 0x70, 0x80, channel], 0x9000)?;
    session.expect(
        "command on the closed channel",
        &[
            channel, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00,
        ],
        0x6881,
    )?;
    session.collect_ok("basic channel unaffected", &get_data(tag::CHUID))?;
    Ok(Outcome::Passed)
}

fn reset_clears_security(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    verify(session)?;
    session.reset("warm reset")?;
    select_piv(session)?;
    expect_not_verified(session, "PIN status after reset")?;
    Ok(Outcome::Passed)
}

fn power_cycle_clears_security(session: &mut Session<'_>) -> Result<Outcome, Failure> {
    select_piv(session)?;
    verify(session)?;
    if let Err(failure) = session.power_cycle("power cycle") {
        if failure.message.contains("not supported") {
            return Ok(Outcome::Unsupported(failure.message));
        }
        return Err(failure);
    }
    select_piv(session)?;
    expect_not_verified(session, "PIN status after power cycle")?;
    Ok(Outcome::Passed)
}
