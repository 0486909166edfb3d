//! Tearing: power is cut at every persistent write of VERIFY, CHANGE
//! REFERENCE DATA, RESET RETRY COUNTER, GENERATE and PUT DATA, before and
//! after the write reaches the store. After each cut the card is powered
//! on again and must hold the old or the new state (never a mix) and must
//! never have given a PIN or PUK try back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use vscard_applet::{Algorithm, Slot};
use vscard_emulator::{CardError, CutPoint, FaultPlan};

const POINTS: [CutPoint; 2] = [CutPoint::BeforeWrite, CutPoint::AfterWrite];

/// Runs `command` on a fresh card from `setup` with a cut at write `k`
/// for k = 1, 2, ... until the plan no longer fires; `check` inspects the
/// card after each cut (powered on again). Returns how many writes the
/// command makes.
fn tear(
    setup: impl Fn() -> Client,
    command: impl Fn(&mut Client) -> Result<Answer, CardError>,
    check: impl Fn(&mut Client, u64, CutPoint),
) -> u64 {
    let mut writes = 0;
    for point in POINTS {
        for k in 1.. {
            let mut c = setup();
            c.card().set_fault_plan(FaultPlan::cut_at_write(k, point));
            let result = command(&mut c);
            if c.card().fault_pending() {
                c.card().set_fault_plan(FaultPlan::none());
                assert!(result.is_ok(), "no cut, an answer");
                writes = k - 1;
                break;
            }
            assert!(
                matches!(result, Err(CardError::PowerLost)),
                "k={k} {point:?}"
            );
            c.card().power_on();
            check(&mut c, k, point);
        }
    }
    assert!(writes > 0, "the command writes at least once");
    writes
}

/// Tries left after a cut at write `k` of a check that counts (write 1)
/// and then, for a right value, resets (write 2).
fn expected_tries(before: u8, limit: u8, k: u64, point: CutPoint, right: bool) -> u8 {
    match (k, point) {
        (1, CutPoint::BeforeWrite) => before,
        (1, CutPoint::AfterWrite) | (2, CutPoint::BeforeWrite) => before - 1,
        _ if right => limit,
        _ => before - 1,
    }
}

fn one_wrong_try() -> Client {
    let mut c = Client::new(default_card());
    assert_eq!(c.verify(b"000000"), 0x63C2);
    c
}

#[test]
fn verify_right_pin() {
    let writes = tear(
        one_wrong_try,
        |c| c.try_send(0x20, 0x00, 0x80, &pad(PIN)),
        |c, k, point| {
            let (pin, puk) = c.counters();
            assert_eq!(pin, expected_tries(2, 3, k, point, true), "k={k} {point:?}");
            assert_eq!(puk, 3);
            assert_eq!(
                c.verify_status(),
                0x63C0 | u16::from(pin),
                "power loss forgets VERIFY"
            );
        },
    );
    assert_eq!(writes, 2);
}

#[test]
fn verify_wrong_pin() {
    let writes = tear(
        one_wrong_try,
        |c| c.try_send(0x20, 0x00, 0x80, &pad(b"111111")),
        |c, k, point| {
            assert_eq!(c.counters(), (expected_tries(2, 3, k, point, false), 3));
        },
    );
    assert_eq!(writes, 1);
}

#[test]
fn change_pin() {
    let writes = tear(
        one_wrong_try,
        |c| {
            let data = [pad(PIN), pad(b"654321")].concat();
            c.try_send(0x24, 0x00, 0x80, &data)
        },
        |c, k, point| {
            let (pin, _) = c.counters();
            assert_eq!(pin, expected_tries(2, 3, k, point, true), "k={k} {point:?}");
            // The default flag is committed with the value: it says which
            // one the card holds, and that one must verify.
            let default = c.metadata(0x80).data[5] == 1;
            let new = k > 3 || (k == 3 && point == CutPoint::AfterWrite);
            assert_eq!(default, !new, "k={k} {point:?}");
            let value: &[u8] = if default { PIN } else { b"654321" };
            assert_eq!(c.verify(value), SW_OK, "k={k} {point:?}");
        },
    );
    assert_eq!(writes, 3);
}

#[test]
fn change_puk() {
    let writes = tear(
        || Client::new(default_card()),
        |c| {
            let data = [pad(PUK), pad(b"87654321")].concat();
            c.try_send(0x24, 0x00, 0x81, &data)
        },
        |c, k, point| {
            let (_, puk) = c.counters();
            assert_eq!(puk, expected_tries(3, 3, k, point, true), "k={k} {point:?}");
            let new = k == 3 && point == CutPoint::AfterWrite;
            let value: &[u8] = if new { b"87654321" } else { PUK };
            assert_eq!(c.metadata(0x81).data[5] == 1, !new);
            assert_eq!(c.unblock(value, b"111111"), SW_OK, "k={k} {point:?}");
        },
    );
    assert_eq!(writes, 3);
}

#[test]
fn reset_retry_counter() {
    let blocked = || {
        let mut c = Client::new(default_card());
        for _ in 0..3 {
            c.verify(b"000000");
        }
        assert_eq!(c.unblock(b"00000000", b"111111"), 0x63C2);
        c
    };
    let writes = tear(
        blocked,
        |c| {
            let data = [pad(PUK), pad(b"654321")].concat();
            c.try_send(0x2C, 0x00, 0x80, &data)
        },
        |c, k, point| {
            let (pin, puk) = c.counters();
            assert_eq!(puk, expected_tries(2, 3, k, point, true), "k={k} {point:?}");
            let new = k == 3 && point == CutPoint::AfterWrite;
            if new {
                assert_eq!(pin, 3);
                assert_eq!(c.verify(b"654321"), SW_OK);
            } else {
                assert_eq!(pin, 0, "still blocked: no PIN try came back");
                assert_eq!(c.verify(PIN), 0x6983);
            }
        },
    );
    assert_eq!(writes, 3);
}

#[test]
fn generate_replaces_the_key_atomically() {
    let authenticated = || {
        let mut c = Client::new(default_card());
        c.authenticate_default();
        c
    };
    let writes = tear(
        authenticated,
        |c| {
            let data = tlv(0xAC, &tlv(0x80, &[0x11]));
            c.try_send(0x47, 0x00, 0x9A, &data)
        },
        |c, _, point| {
            let meta = c.metadata(0x9A);
            assert_eq!(meta.sw(), SW_OK);
            assert_eq!(c.verify(PIN), SW_OK);
            let digest = [0x42; 32];
            match (point, meta.data[2]) {
                (CutPoint::BeforeWrite, 0x07) => {
                    let mut block = vec![0x00, 0x01];
                    block.resize(256, 0x33);
                    assert!(
                        c.sign(Algorithm::Rsa2048, Slot::AUTHENTICATION, &block)
                            .is_ok()
                    );
                }
                (CutPoint::AfterWrite, 0x11) => {
                    let der = c
                        .sign(Algorithm::EccP256, Slot::AUTHENTICATION, &digest)
                        .unwrap();
                    let point = &meta.data[meta.data.len() - 65..];
                    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
                    let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
                    public.verify_prehash(&digest, &signature).unwrap();
                }
                other => panic!("unexpected state after a cut: {other:?}"),
            }
        },
    );
    assert_eq!(writes, 1);
}

#[test]
fn put_data_is_old_or_new() {
    let tag = [0x5F, 0xC1, 0x05];
    let old = vscard_applet::objects::certificate(&[0x30, 0x00]);
    let new = vscard_applet::objects::certificate(&vec![0x5A; 1500]);
    let writes = tear(
        || {
            let mut c = Client::new(default_card());
            c.authenticate_default();
            assert_eq!(c.put_data(&tag, &old), SW_OK);
            c
        },
        |c| {
            let mut data = vec![0x5C, 0x03];
            data.extend_from_slice(&tag);
            data.extend(tlv(0x53, &new));
            c.try_send(0xDB, 0x3F, 0xFF, &data)
        },
        |c, _, point| {
            let expected = if point == CutPoint::AfterWrite {
                &new
            } else {
                &old
            };
            assert_eq!(c.get_data(&tag).data, tlv(0x53, expected));
            assert_eq!(c.counters(), (3, 3));
        },
    );
    assert_eq!(writes, 1);
}
