//! Every exchange is a tracing event; secrets never are.

// Integration tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::*;
use vscard_emulator::{Card, CardRng};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn exchanges_are_traced_without_secrets() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        // No timestamps: their digits could spell a secret (09:37:57.712345).
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut card = Card::builder()
            .rng(CardRng::from_u64(5))
            .install_default(TestApplet::a())
            .build()
            .unwrap();
        card.power_on();
        // Wrong PIN 7351, then the right one 1234.
        send(
            &mut card,
            &[0x00, ins::VERIFY, 0, 0, 4, b'7', b'3', b'5', b'1'],
        );
        send(
            &mut card,
            &[0x00, ins::VERIFY, 0, 0, 4, b'1', b'2', b'3', b'4'],
        );
        send(&mut card, &[0x01, ins::ECHO, 0, 0]);
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains(r#"direction="in" channel=0 command=VERIFY"#),
        "{log}"
    );
    assert!(log.contains(r#"direction="out""#), "{log}");
    assert!(log.contains("sw=63C2 (2 tries left)"), "{log}");
    assert!(log.contains("micros="), "{log}");
    assert!(log.contains("channel=1"), "{log}");
    assert!(log.contains("6881"), "{log}");
    for secret in ["7351", "37333531", "1234", "31323334"] {
        assert!(!log.contains(secret), "secret {secret} in the trace: {log}");
    }
}
