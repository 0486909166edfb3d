//! The PIV commands the tests send again and again, on the [`Client`]
//! (SP 800-73-4 Part 2 3), with the applet's own BER-TLV codec
//! ([`vscard_applet::tlv`]) so no test writes one more.
//!
//! These helpers build the commands and take the answers apart; whether an
//! answer is right is for the caller to assert.

use vscard_applet::tlv::{self, Reader, Writer};
use vscard_emulator::Status;

use crate::client::{Client, ClientError, Reply, Transport, short_apdu};

/// `SELECT` by DF name (ISO 7816-4 11.2.2), first or only occurrence,
/// with `Le = 00`.
pub fn select_apdu(aid: &[u8]) -> Vec<u8> {
    short_apdu([0x00, 0xA4, 0x04, 0x00], aid, true)
}

/// A PIN or PUK padded with `FF` to 8 bytes (SP 800-73-4 Part 2 2.4.3);
/// longer values are left as they are, for tests that send them.
pub fn pad(value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    out.resize(8.max(value.len()), 0xFF);
    out
}

/// The `5C` tag list of GET DATA / PUT DATA (SP 800-73-4 Part 2 3.1.2).
pub fn tag_list(tag: &[u8]) -> Vec<u8> {
    tlv::encode(0x5C, tag)
}

/// `7C { 82 value }` (a GENERAL AUTHENTICATE response) -> `value`.
pub fn response_value(data: &[u8]) -> Result<Vec<u8>, ClientError> {
    let template = tlv::single(data, 0x7C).map_err(malformed("7C template"))?;
    let value = Reader::new(template)
        .expect(0x82)
        .map_err(malformed("82 response"))?;
    Ok(value.to_vec())
}

fn malformed(what: &'static str) -> impl Fn(tlv::TlvError) -> ClientError {
    move |error| ClientError::Malformed(format!("{what}: {error}"))
}

impl<T: Transport> Client<T> {
    /// SELECT the PIV application by its full AID
    /// ([`vscard_applet::PIV_AID`]).
    pub fn select_piv(&mut self) -> Result<Reply, ClientError> {
        self.send(&select_apdu(vscard_applet::PIV_AID.as_bytes()))
    }

    /// SELECT an application by (part of) its AID.
    pub fn select(&mut self, aid: &[u8]) -> Result<Reply, ClientError> {
        self.send(&select_apdu(aid))
    }

    /// VERIFY the PIN (`00 20 00 80`), padded with `FF`: a case 3
    /// command, no Le (SP 800-73-4 Part 2 3.2.1).
    pub fn verify_pin(&mut self, pin: &[u8]) -> Result<Reply, ClientError> {
        self.send(&short_apdu([0x00, 0x20, 0x00, 0x80], &pad(pin), false))
    }

    /// GET DATA of the object `tag` (`00 CB 3F FF 5C tag`), the answer as
    /// it comes (the object still in its `53` wrapper).
    pub fn get_data(&mut self, tag: &[u8]) -> Result<Reply, ClientError> {
        self.command([0x00, 0xCB, 0x3F, 0xFF], &tag_list(tag))
    }

    /// GET DATA of `tag`: the value inside its `53` wrapper, or the status
    /// word when it is not `9000`.
    pub fn get_object(&mut self, tag: &[u8]) -> Result<Result<Vec<u8>, Status>, ClientError> {
        let reply = self.get_data(tag)?;
        if reply.status != Status::Success {
            return Ok(Err(reply.status));
        }
        let value = Reader::new(&reply.data).expect(0x53).map_err(|error| {
            ClientError::Malformed(format!(
                "no 53 wrapper in {}: {error}",
                hex::encode_upper(&reply.data)
            ))
        })?;
        Ok(Ok(value.to_vec()))
    }

    /// PUT DATA of `value` into the object `tag`, wrapped in `53`.
    pub fn put_data(&mut self, tag: &[u8], value: &[u8]) -> Result<Reply, ClientError> {
        let data = Writer::new().put(0x5C, tag).put(0x53, value).finish();
        self.command([0x00, 0xDB, 0x3F, 0xFF], &data)
    }

    /// GENERAL AUTHENTICATE (`00 87 algorithm key`) with the dynamic
    /// authentication template `7C { 82 00, tag input }` (SP 800-73-4
    /// Part 2 3.2.4): `tag` is `81` to sign or decrypt, `85` for key
    /// agreement. Chained when long (an RSA-2048 block).
    pub fn general_authenticate(
        &mut self,
        algorithm: u8,
        key: u8,
        tag: u32,
        input: &[u8],
    ) -> Result<Reply, ClientError> {
        let data = Writer::new()
            .nest(0x7C, |w| {
                w.put(0x82, &[]).put(tag, input);
            })
            .finish();
        self.command([0x00, 0x87, algorithm, key], &data)
    }

    /// [`Client::general_authenticate`] and unwrap `7C { 82 }`: the value
    /// on `9000`, the status word otherwise.
    pub fn authenticate_value(
        &mut self,
        algorithm: u8,
        key: u8,
        tag: u32,
        input: &[u8],
    ) -> Result<Result<Vec<u8>, Status>, ClientError> {
        let reply = self.general_authenticate(algorithm, key, tag, input)?;
        if reply.status != Status::Success {
            return Ok(Err(reply.status));
        }
        response_value(&reply.data).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn commands_have_the_sp_800_73_shape() {
        assert_eq!(pad(b"1234"), b"1234\xFF\xFF\xFF\xFF");
        assert_eq!(
            select_apdu(&[0xA0, 0x00, 0x00, 0x03, 0x08]),
            [
                0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00
            ]
        );
        assert_eq!(
            tag_list(&[0x5F, 0xC1, 0x02]),
            [0x5C, 0x03, 0x5F, 0xC1, 0x02]
        );
        assert_eq!(
            response_value(&[0x7C, 0x04, 0x82, 0x02, 0xAB, 0xCD]).unwrap(),
            [0xAB, 0xCD]
        );
        assert!(matches!(
            response_value(&[0x7C, 0x02, 0x81, 0x00]),
            Err(ClientError::Malformed(_))
        ));
    }
}
