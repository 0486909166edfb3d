//! The PIV commands behind the typed helpers: APDUs built and answers
//! parsed without indexing (every length is checked).

use vscard_applet::{PIV_AID, Slot};

use crate::VscardError;

/// `9000`.
pub(crate) const OK: u16 = 0x9000;

/// A PIN or unlock code padded with `FF` to the 8 bytes PIV wants.
pub(crate) fn padded(secret: &str, what: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, VscardError> {
    let bytes = secret.as_bytes();
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(VscardError::argument(format!(
            "the {what} is 1 to 8 characters, not {}",
            bytes.len()
        )));
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(8));
    out.extend_from_slice(bytes);
    out.resize(8, 0xFF);
    Ok(out)
}

/// A short command APDU `CLA INS P1 P2 Lc data` (no Le).
pub(crate) fn command(ins: u8, p1: u8, p2: u8, data: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut apdu = zeroize::Zeroizing::new(Vec::with_capacity(5 + data.len()));
    apdu.extend_from_slice(&[0x00, ins, p1, p2]);
    if !data.is_empty() {
        // Callers send at most 16 bytes here.
        apdu.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        apdu.extend_from_slice(data);
    }
    apdu
}

/// SELECT of the PIV application, Le 00.
pub(crate) fn select_piv() -> Vec<u8> {
    let aid = PIV_AID.as_bytes();
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00];
    apdu.push(u8::try_from(aid.len()).unwrap_or(u8::MAX));
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    apdu
}

/// An extended-length APDU (Lc and Le on two bytes, Le 0000: up to 65536).
pub(crate) fn extended(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, VscardError> {
    let len = u16::try_from(data.len()).map_err(|_| {
        VscardError::argument(format!("{} bytes is too long a command", data.len()))
    })?;
    let mut apdu = Vec::with_capacity(9 + data.len());
    apdu.extend_from_slice(&[0x00, ins, p1, p2, 0x00]);
    apdu.extend_from_slice(&len.to_be_bytes());
    apdu.extend_from_slice(data);
    apdu.extend_from_slice(&[0x00, 0x00]);
    Ok(apdu)
}

/// Splits a response into its data and status word.
pub(crate) fn split(response: &[u8]) -> Result<(&[u8], u16), VscardError> {
    match response.len().checked_sub(2) {
        Some(at) => {
            let (data, sw) = response.split_at(at);
            match sw {
                [sw1, sw2] => Ok((data, u16::from_be_bytes([*sw1, *sw2]))),
                _ => Err(no_status()),
            }
        }
        None => Err(no_status()),
    }
}

fn no_status() -> VscardError {
    VscardError::Card {
        message: "the card answered without a status word".to_owned(),
    }
}

/// A DER length at the start of `bytes`: the length and the bytes after it.
fn ber_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    match first {
        0..=0x7F => Some((usize::from(first), rest)),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            Some((usize::from(len), rest))
        }
        0x82 => {
            let len = rest.get(..2)?;
            let value = usize::from(u16::from_be_bytes([*len.first()?, *len.get(1)?]));
            Some((value, rest.get(2..)?))
        }
        _ => None,
    }
}

/// The value of the one-byte-tag TLV `tag` at the start of `bytes`.
pub(crate) fn tlv(bytes: &[u8], tag: u8) -> Option<&[u8]> {
    let (&found, rest) = bytes.split_first()?;
    if found != tag {
        return None;
    }
    let (len, rest) = ber_length(rest)?;
    rest.get(..len)
}

/// A DER length encoding.
pub(crate) fn length(len: usize) -> Vec<u8> {
    match len {
        0..=0x7F => vec![len as u8],
        0x80..=0xFF => vec![0x81, len as u8],
        _ => {
            let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            vec![0x82, hi, lo]
        }
    }
}

/// The GENERAL AUTHENTICATE request `7C { 82 00, 81 data }`.
pub(crate) fn authenticate_request(data: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x82, 0x00, 0x81];
    inner.extend(length(data.len()));
    inner.extend_from_slice(data);
    let mut out = vec![0x7C];
    out.extend(length(inner.len()));
    out.extend(inner);
    out
}

/// The signature in a GENERAL AUTHENTICATE answer `7C { 82 sig }`.
pub(crate) fn signature(answer: &[u8]) -> Result<Vec<u8>, VscardError> {
    tlv(answer, 0x7C)
        .and_then(|inner| tlv(inner, 0x82))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| VscardError::Card {
            message: "the card's GENERAL AUTHENTICATE answer has no 7C { 82 } signature".to_owned(),
        })
}

/// A slot from its name: `9a`, `9A`, `9c`, `9d`, `9e` (or a retired
/// slot's hex byte, `82` to `95`).
pub(crate) fn slot(name: &str) -> Result<Slot, VscardError> {
    u8::from_str_radix(name, 16)
        .ok()
        .and_then(Slot::new)
        .ok_or_else(|| {
            VscardError::argument(format!(
                "unknown slot {name:?}; the key slots are 9a, 9c, 9d, 9e (and 82 to 95)"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // test code: a panic is a failure
mod tests {
    use super::*;

    #[test]
    fn tlvs_parse_and_refuse_short_input() {
        assert_eq!(
            tlv(&[0x7C, 0x02, 0x82, 0x00], 0x7C),
            Some(&[0x82, 0x00][..])
        );
        assert_eq!(tlv(&[0x7C, 0x05, 0x82], 0x7C), None);
        assert_eq!(tlv(&[0x7C, 0x82, 0x01], 0x7C), None);
        assert_eq!(tlv(&[], 0x7C), None);
        let long = authenticate_request(&[7; 300]);
        let inner = tlv(&long, 0x7C).unwrap();
        assert_eq!(tlv(&inner[2..], 0x81).unwrap().len(), 300);
        assert!(split(&[0x90]).is_err());
        assert_eq!(split(&[1, 0x90, 0x00]).unwrap(), (&[1u8][..], 0x9000));
        assert!(padded("123456789", "PIN").is_err());
        assert_eq!(
            padded("1234", "PIN").unwrap().as_slice(),
            b"1234\xFF\xFF\xFF\xFF"
        );
        assert!(slot("9z").is_err());
        assert_eq!(slot("9C").unwrap(), Slot::SIGNATURE);
    }
}
