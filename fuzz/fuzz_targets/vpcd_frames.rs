//! The vpcd frame decoder (`vscard_vpcd::codec::FrameDecoder`) on an
//! arbitrary byte stream arriving in arbitrary pieces.
//!
//! Input: byte 0 is the piece size (0: the whole stream at once), the rest
//! is the stream. Invariants: no panic; the decoder's results do not depend
//! on how the stream was cut (same as `decode_stream` on the whole); each
//! decoded request re-encodes (`encode_frame(to_payload())`) to exactly the
//! bytes of its frame; each error matches its frame (length 0: empty frame;
//! one unknown byte: unknown control code); what is left at the end is a
//! frame cut short, reported by `finish` with the right byte counts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vscard_fuzz::Input;
use vscard_vpcd::codec::{DecodeError, FrameDecoder, decode_stream, encode_frame};

fuzz_target!(|bytes: &[u8]| {
    let mut input = Input::new(bytes);
    let piece = usize::from(input.byte());
    let stream = input.rest();

    let mut decoder = FrameDecoder::new();
    let mut results = Vec::new();
    let pieces: Vec<&[u8]> = if piece == 0 {
        vec![stream]
    } else {
        stream.chunks(piece).collect()
    };
    for chunk in pieces {
        decoder.extend(chunk);
        while let Some(result) = decoder.next_request() {
            results.push(result);
        }
    }
    let finished = decoder.finish();

    // Walk the frames by hand: a 16-bit big-endian length, then the payload.
    let mut offset = 0;
    for result in &results {
        let length = usize::from(u16::from_be_bytes([stream[offset], stream[offset + 1]]));
        let frame = &stream[offset..offset + 2 + length];
        let payload = &frame[2..];
        match result {
            Ok(request) => {
                assert_eq!(
                    encode_frame(&request.to_payload()).ok().as_deref(),
                    Some(frame)
                );
            }
            Err(DecodeError::EmptyFrame) => assert!(payload.is_empty()),
            Err(DecodeError::UnknownControl(code)) => {
                assert_eq!(payload, [*code]);
                assert!(![0x00, 0x01, 0x02, 0x04].contains(code));
            }
            Err(other) => panic!("unexpected error for a whole frame: {other}"),
        }
        offset += 2 + length;
    }
    let left = stream.len() - offset;
    assert_eq!(decoder.pending(), left);
    match finished {
        Ok(()) => assert_eq!(left, 0),
        Err(DecodeError::Truncated { expected, got }) => {
            assert_eq!(got, left);
            assert!(got < expected, "a whole frame was left undecoded");
        }
        Err(other) => panic!("unexpected end-of-stream error: {other}"),
    }

    let mut whole = results;
    if let Err(error) = finished {
        whole.push(Err(error));
    }
    assert_eq!(whole, decode_stream(stream), "results depend on the pieces");
});
