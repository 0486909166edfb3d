//! Properties of the vpcd frame codec.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use proptest::prelude::*;
use vscard_vpcd::VpcdRequest;
use vscard_vpcd::codec::{DecodeError, FrameDecoder, decode_stream, encode_frame};

fn request() -> impl Strategy<Value = VpcdRequest> {
    prop_oneof![
        Just(VpcdRequest::PowerOff),
        Just(VpcdRequest::PowerOn),
        Just(VpcdRequest::Reset),
        Just(VpcdRequest::GetAtr),
        proptest::collection::vec(any::<u8>(), 2..600).prop_map(VpcdRequest::Apdu),
    ]
}

proptest! {
    /// Any byte stream decodes into requests and errors, never a panic, and
    /// only the last item can be a truncation.
    #[test]
    fn any_stream_decodes_or_errors(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let items = decode_stream(&bytes);
        for (i, item) in items.iter().enumerate() {
            if matches!(item, Err(DecodeError::Truncated { .. })) {
                prop_assert_eq!(i, items.len() - 1);
            }
        }
    }

    /// Encoded requests decode to themselves, however the stream is cut
    /// into reads.
    #[test]
    fn encode_decode_round_trip(
        requests in proptest::collection::vec(request(), 0..20),
        cut in 1usize..64,
    ) {
        let mut stream = Vec::new();
        for request in &requests {
            stream.extend(encode_frame(&request.to_payload()).unwrap());
        }
        let mut decoder = FrameDecoder::new();
        let mut decoded = Vec::new();
        for piece in stream.chunks(cut) {
            decoder.extend(piece);
            while let Some(item) = decoder.next_request() {
                decoded.push(item.unwrap());
            }
        }
        prop_assert_eq!(decoder.finish(), Ok(()));
        prop_assert_eq!(decoded, requests);
    }

    /// A frame is its length, big-endian, then the payload, in one buffer.
    #[test]
    fn frames_carry_their_length(payload in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        match encode_frame(&payload) {
            Ok(frame) => {
                prop_assert!(payload.len() <= 0xFFFF);
                prop_assert_eq!(usize::from(u16::from_be_bytes([frame[0], frame[1]])), payload.len());
                prop_assert_eq!(&frame[2..], &payload[..]);
            }
            Err(e) => {
                prop_assert!(payload.len() > 0xFFFF);
                prop_assert_eq!(e.0, payload.len());
            }
        }
    }
}

#[test]
fn only_get_atr_and_apdus_expect_a_reply() {
    assert!(VpcdRequest::GetAtr.expects_reply());
    assert!(VpcdRequest::Apdu(vec![0, 0xA4]).expects_reply());
    assert!(!VpcdRequest::PowerOn.expects_reply());
    assert!(!VpcdRequest::PowerOff.expects_reply());
    assert!(!VpcdRequest::Reset.expects_reply());
}
