//! A hosted card's sessions through a real pcscd and a real PostgreSQL
//! (each the test's own): one session per card whichever host a relay
//! reaches; a session waiting for the holder's approval that its relay
//! left is withdrawn at once; a card that asks per signature.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use support::hosted::{
    HOST_A, HOST_B, PIN_STATUS, SELECT_PIV, host, host_with, hosted_relay, pin_command, relay_to,
    seal_key_file, status_word,
};
use support::{p256_card, run, run_ok, vscard};
use vscard_testkit::postgres::{PrivatePostgres, private_postgres};
use vscard_testkit::{private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const VERIFY_PIN: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF,
];

/// GENERAL AUTHENTICATE with ECC P-256 (`11`) and key `key`:
/// `7C { 82 00, 81 <32-byte digest> }` (SP 800-73-4 Part 2 3.2.4).
fn sign_apdu(key: u8) -> Vec<u8> {
    let mut apdu = vec![
        0x00, 0x87, 0x11, key, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
    ];
    apdu.extend([0x5A; 32]);
    apdu.push(0x00);
    apdu
}

/// A P-256 card put in as `id` with `approval` (`none`, `session`,
/// `signature`), and enrolled devices: `(folder, state, relay keys,
/// approver key)`.
fn hosted_card(
    url: &str,
    id: &str,
    approval: &str,
    relays: usize,
) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>, PathBuf) {
    let (dir, state, card) = p256_card(id);
    let mut import = vscard(&state);
    import
        .args(["host", "import"])
        .arg(&card)
        .args(["--id", id, "--database", url, "--encrypt-key-file"])
        .arg(seal_key_file(dir.path()));
    if approval != "none" {
        import.args(["--require-approval", approval]);
    }
    run_ok(&mut import);
    let enrol = |name: &str, role: &str| {
        let key = dir.path().join(name);
        run_ok(
            vscard(&state)
                .args(["host", "enrol", "--id", id, "--role", role, "--out"])
                .arg(&key)
                .args(["--database", url, "--encrypt-key-file"])
                .arg(seal_key_file(dir.path())),
        );
        key
    };
    let relay_keys = (0..relays)
        .map(|n| enrol(&format!("desk-{n}.key"), "relay"))
        .collect();
    let approver = enrol("phone.key", "approver");
    (dir, state, relay_keys, approver)
}

/// `vscard approve --host HOST_A --device KEY [extra]`.
fn approve(state: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut command = vscard(state);
    command
        .args(["approve", "--host", HOST_A, "--device"])
        .arg(key)
        .args(extra);
    run(&mut command)
}

/// Waits (10 s at most) until `sql` answers `expected`.
fn wait_for(cluster: &PrivatePostgres, sql: &str, expected: &str) {
    let deadline = Instant::now() + 10 * SECOND;
    loop {
        let found = cluster.psql(sql).unwrap();
        if found == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {found:?}, not {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const OPEN_REQUESTS: &str = "SELECT count(*) FROM approvals WHERE decision IS NULL";

#[test]
fn one_session_per_card_whichever_host_a_relay_reaches() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (_dir, state, keys, _) = hosted_card(&url, "card-1", "none", 2);
    let mut host_a = host(&state, &url, HOST_A, "host-a");
    let mut host_b = host(&state, &url, HOST_B, "host-b");
    let mut first = hosted_relay(&state, &keys[0], "card-1");
    first.expect_line(&format!(
        "card card-1 from host {HOST_A}: in the vpcd reader"
    ));
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    host_a.expect_line("card card-1 opened (lease fence 1)");

    // Another relay (the holder's other computer) for the same card, on
    // the same host and on the other one: refused with the reason while
    // the first session lives (after the lease wait: a dead host's lease
    // would have run out by then).
    let mut same_host = hosted_relay(&state, &keys[1], "card-1");
    let mut other_host = relay_to(&state, HOST_B, &keys[1], "card-1");
    for relay in [&mut same_host, &mut other_host] {
        assert_eq!(relay.exit_code(), Some(1));
        assert!(
            relay.seen.iter().any(|l| l
                .contains("card card-1 is in another session (its lease is held by")
                && l.contains("one session per card at a time")),
            "{:?}",
            relay.seen
        );
        assert!(!relay.seen.iter().any(|l| l.contains("in the vpcd reader")));
    }
    host_a.expect_line("card card-1 closed: card card-1 is in another session");
    host_b.expect_line("card card-1 closed: card card-1 is in another session");
    // The first session never noticed.
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C3");
    assert_eq!(
        cluster
            .psql("SELECT fence FROM leases WHERE card_id = 'card-1'")
            .unwrap(),
        "1"
    );

    // Once it ends, the next relay gets the card, from either host.
    first.stop();
    pcscd.wait_for_no_card(0, 10 * SECOND).unwrap();
    let mut next = relay_to(&state, HOST_B, &keys[1], "card-1");
    next.expect_line(&format!(
        "card card-1 from host {HOST_B}: in the vpcd reader"
    ));
    host_b.expect_line("card card-1 opened (lease fence 2)");
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C3");
    next.stop();
    host_a.stop();
    host_b.stop();
}

#[test]
fn an_approval_its_relay_left_is_withdrawn_at_once() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (_dir, state, keys, phone) = hosted_card(&url, "card-2", "session", 1);
    // A long timeout: the request must close long before it.
    let mut host = host_with(
        &state,
        &url,
        HOST_A,
        "host",
        &["--approval-timeout", "120s"],
    );
    let relay = hosted_relay(&state, &keys[0], "card-2");
    wait_for(&cluster, OPEN_REQUESTS, "1");
    let left = Instant::now();
    relay.kill9();
    host.expect_line("card card-2 closed: the relay's link dropped before the card opened");
    wait_for(
        &cluster,
        "SELECT string_agg(id || '=' || decision, ',') FROM approvals",
        "1=expired",
    );
    assert!(left.elapsed() < 10 * SECOND, "{:?}", left.elapsed());
    // Nothing is left to approve, and no lease was taken.
    let late = approve(&state, &phone, &["--wait", "1s"]);
    assert!(!late.status.success(), "{late:?}");
    assert_eq!(
        cluster
            .psql("SELECT fence FROM leases WHERE card_id = 'card-2'")
            .unwrap(),
        "0"
    );

    // The next session is asked for and opens as usual.
    let mut relay = hosted_relay(&state, &keys[0], "card-2");
    wait_for(&cluster, OPEN_REQUESTS, "1");
    let approved = approve(&state, &phone, &[]);
    assert!(
        String::from_utf8_lossy(&approved.stdout).contains("\napproved request 2 for card card-2"),
        "{approved:?}"
    );
    relay.expect_line("card card-2 from host");
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    relay.stop();
    host.stop();
}

#[test]
fn each_signature_waits_for_the_holder() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (_dir, state, keys, phone) = hosted_card(&url, "card-3", "signature", 1);
    // Longer than the link's keep-alive timeout (15 s): the host keeps the
    // link alive while a signature waits.
    let mut host = host_with(&state, &url, HOST_A, "host", &["--approval-timeout", "17s"]);
    // The session is approved first, as for `session`.
    let mut relay = hosted_relay(&state, &keys[0], "card-3");
    wait_for(&cluster, OPEN_REQUESTS, "1");
    assert!(approve(&state, &phone, &[]).status.success());
    relay.expect_line("card card-3 from host");
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    let card = pcscd.connect(0).unwrap();
    assert_eq!(status_word(&transmit(&card, &SELECT_PIV).unwrap()), "9000");
    let decided = "SELECT count(*) FROM approvals";

    // Other keys and commands pass unasked.
    assert_eq!(status_word(&transmit(&card, &VERIFY_PIN).unwrap()), "9000");
    assert_eq!(
        status_word(&transmit(&card, &sign_apdu(0x9A)).unwrap()),
        "9000"
    );
    assert_eq!(cluster.psql(decided).unwrap(), "1");

    // Approved: the card signs.
    let sign = |approval: Option<&'static [&'static str]>| {
        let answer = approval.map(|extra| {
            let (state, phone) = (state.clone(), phone.clone());
            std::thread::spawn(move || approve(&state, &phone, extra))
        });
        assert_eq!(status_word(&transmit(&card, &VERIFY_PIN).unwrap()), "9000");
        let signed = transmit(&card, &sign_apdu(0x9C)).unwrap();
        (signed, answer.map(|thread| thread.join().unwrap()))
    };
    let (signed, answer) = sign(Some(&["--wait", "10s"][..]));
    let answer = answer.unwrap();
    assert_eq!(status_word(&signed), "9000");
    assert!(signed.len() > 64, "{}", hex::encode_upper(&signed));
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("\napproved request 2 for card card-3"),
        "{answer:?}"
    );

    // Refused: 6982 and nothing else, although the PIN was just verified
    // (the card would have signed).
    let (signed, answer) = sign(Some(&["--wait", "10s", "--refuse"][..]));
    let answer = answer.unwrap();
    assert_eq!(hex::encode_upper(&signed), "6982");
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("\nrefused request 3"),
        "{answer:?}"
    );

    // Nobody answers: 6982 after --approval-timeout.
    let asked = Instant::now();
    let (signed, _) = sign(None);
    assert_eq!(hex::encode_upper(&signed), "6982");
    assert!(asked.elapsed() >= 17 * SECOND, "{:?}", asked.elapsed());
    assert_eq!(
        cluster
            .psql("SELECT string_agg(decision, ',' ORDER BY id) FROM approvals")
            .unwrap(),
        "approved,approved,refused,expired"
    );
    // The session lived through it all.
    assert_eq!(status_word(&transmit(&card, &PIN_STATUS).unwrap()), "9000");
    drop(card);
    relay.stop();
    host.expect_line("card card-3 closed");
    host.stop();
}

#[test]
fn a_revoked_device_is_refused_and_its_card_stays() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (_dir, state, keys, _) = hosted_card(&url, "card-4", "none", 2);
    let mut host = host(&state, &url, HOST_A, "host");
    let mut relay = hosted_relay(&state, &keys[0], "card-4");
    relay.expect_line("card card-4 from host");
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();

    // By its key file: the session it holds ends, and it is refused when
    // it dials again.
    let revoked = run_ok(
        vscard(&state)
            .args(["host", "revoke", "--device"])
            .arg(&keys[0])
            .args(["--database", &url]),
    );
    assert!(
        revoked.starts_with("revoked device ") && revoked.contains("(relay) of card card-4"),
        "{revoked}"
    );
    // Its renewal finds the device gone (the fence moved on as well).
    let device = revoked["revoked device ".len()..]
        .split(' ')
        .next()
        .unwrap();
    host.expect_line(&format!(
        "card card-4 closed: card card-4: device {device} is no longer enrolled for it (revoked)"
    ));
    pcscd.wait_for_no_card(0, 10 * SECOND).unwrap();
    assert_eq!(relay.exit_code(), Some(1));
    assert!(
        relay
            .seen
            .iter()
            .any(|l| l.contains("this device is not enrolled for the card")),
        "{:?}",
        relay.seen
    );

    // The card stays, for the devices still enrolled.
    let listed = run_ok(vscard(&state).args(["host", "list", "--database", &url]));
    assert!(
        listed.starts_with("card-4\tidle\tfence 2\tapproval none\tdevices 2"),
        "{listed}"
    );
    let mut other = hosted_relay(&state, &keys[1], "card-4");
    other.expect_line("card card-4 from host");
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C3");

    // Unknown, malformed or missing: refused, nothing changes.
    for (device, error) in [
        (
            "0123456789abcdef",
            "no enrolled device has fingerprint 0123456789abcdef",
        ),
        ("12ab", "\"12ab\" is not a device fingerprint"),
    ] {
        let refused = run(vscard(&state)
            .args(["host", "revoke", "--device", device])
            .args(["--database", &url]));
        assert_eq!(refused.status.code(), Some(1), "{refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(error),
            "{refused:?}"
        );
    }
    let neither = run(vscard(&state).args(["host", "revoke", "--database", &url]));
    assert_eq!(neither.status.code(), Some(2), "{neither:?}");
    assert_eq!(cluster.psql("SELECT count(*) FROM devices").unwrap(), "2");
    other.stop();
    host.stop();
}
