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
];

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
