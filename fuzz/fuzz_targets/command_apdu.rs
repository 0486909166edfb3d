//! `CommandApdu::parse` on arbitrary bytes (ISO 7816-4 5.1).
//!
//! Invariants: parsing never panics; a refusal is `6700` (no valid case
//! encoding) or `6E00` (a class byte the runtime does not support); a
//! parsed command re-encodes to exactly the input bytes (every valid
//! encoding is the one `to_bytes` produces, short or extended as parsed)
//! and its fields respect the limits of the case it was parsed as.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vscard_emulator::{CommandApdu, EXTENDED_NE_MAX, SHORT_NE_MAX, Status};

fuzz_target!(|bytes: &[u8]| {
    match CommandApdu::parse(bytes) {
        Err(status) => assert!(
            matches!(status, Status::WrongLength | Status::ClassNotSupported),
            "unexpected refusal {status:?}"
        ),
        Ok(command) => {
            assert_eq!(command.to_bytes(), bytes, "re-encoding differs");
            let (data_max, ne_max) = if command.extended {
                (65535, EXTENDED_NE_MAX)
            } else {
                (255, SHORT_NE_MAX)
            };
            assert!(command.data.len() <= data_max);
            assert!(command.ne <= ne_max);
            assert_eq!(CommandApdu::parse(&command.to_bytes()), Ok(command));
        }
    }
});
