//! PostgresStore and leases against a real PostgreSQL cluster of the
//! test's own (testkit's `private_postgres`): PIN tries survive a host
//! that dies, fencing refuses a host whose lease moved, a database that
//! goes away fails the command with the failed-write status and gives no
//! try back, and the schema refuses a newer database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vscard_applet::{PivApplet, piv_atr};
use vscard_emulator::{Card, CardImage, Store as _};
use vscard_host::{Approval, CardOptions, Database, HostError, PostgresStore, SCHEMA_VERSION};
use vscard_testkit::postgres::{PrivatePostgres, private_postgres};

/// VERIFY with a wrong PIN, and with the default one (`123456`).
const WRONG_PIN: &[u8] = &[
    0x00, 0x20, 0x00, 0x80, 0x08, 0x39, 0x39, 0x39, 0x39, 0x39, 0x39, 0xFF, 0xFF,
];
const RIGHT_PIN: &[u8] = &[
    0x00, 0x20, 0x00, 0x80, 0x08, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF,
];
/// VERIFY with no data: how many tries are left.
const PIN_STATUS: &[u8] = &[0x00, 0x20, 0x00, 0x80];

const LONG: Duration = Duration::from_secs(30);

/// A new card's image (a fresh PIV applet with the default PIN).
fn fresh_image() -> CardImage {
    let card = Card::builder()
        .atr(piv_atr())
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.image().clone()
}

fn database(cluster: &PrivatePostgres) -> Database {
    Database::connect(&cluster.url(), 4).unwrap()
}

/// A host's card: the lease taken (waiting up to `wait`), the card built
/// on the store.
fn open(database: &Database, id: &str, ttl: Duration, wait: Duration) -> (Card, i64) {
    let holder = vscard_host::holder_name().unwrap();
    let lease = database
        .acquire_waiting(id, &holder, None, ttl, wait)
        .unwrap();
    let fence = lease.fence();
    let store = PostgresStore::new(database.clone(), lease);
    let mut card = Card::builder()
        .atr(piv_atr())
        .store(store)
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.power_on();
    (card, fence)
}

fn sw(card: &mut Card, apdu: &[u8]) -> String {
    let answer = card.transmit(apdu).unwrap();
    hex::encode_upper(&answer[answer.len() - 2..])
}

/// The PIV applet's stored parts (for "nothing was written").
fn stored_parts(cluster: &PrivatePostgres, id: &str) -> String {
    cluster
        .psql(&format!(
            "SELECT string_agg(part || '=' || md5(value), ',' ORDER BY applet, part) FROM card_parts WHERE card_id = '{id}'"
        ))
        .unwrap()
}

#[test]
fn a_pin_try_is_committed_and_survives_the_host() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let db = database(&cluster);
    db.put_card("card-1", &fresh_image(), CardOptions::default())
        .unwrap();
    assert!(matches!(
        db.put_card("card-1", &fresh_image(), CardOptions::default()),
        Err(HostError::CardExists(id)) if id == "card-1"
    ));
    let (mut card, fence) = open(&db, "card-1", LONG, Duration::ZERO);
    assert_eq!(fence, 1);
    assert_eq!(sw(&mut card, WRONG_PIN), "63C2");
    // A second host cannot take the card while the lease lives.
    let other = db.acquire("card-1", "other", LONG);
    assert!(
        matches!(&other, Err(HostError::LeaseHeld { card, .. }) if card == "card-1"),
        "{other:?}"
    );
    // The host dies (no release): its lease runs out in the database's
    // time, the next host gets the next fence and the try is still spent.
    drop(card);
    cluster
        .psql("UPDATE leases SET expires_at = clock_timestamp() WHERE card_id = 'card-1'")
        .unwrap();
    let (mut card, fence) = open(&db, "card-1", LONG, LONG);
    assert_eq!(fence, 2);
    assert_eq!(sw(&mut card, PIN_STATUS), "63C2");
    assert_eq!(sw(&mut card, RIGHT_PIN), "9000");
    assert_eq!(sw(&mut card, PIN_STATUS), "9000");
    let rows = db.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, "card-1");
    assert_eq!(rows[0].fence, 2);
    assert!(rows[0].holder.is_some());
    assert!(rows[0].parts > 0);
}

#[test]
fn twenty_deaths_during_a_wrong_pin_storm_regain_no_try() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let db = database(&cluster);
    db.put_card("storm", &fresh_image(), CardOptions::default())
        .unwrap();
    let ttl = Duration::from_millis(300);
    let mut expected_fence = 0;
    for round in 0..20 {
        // Each round a new host takes the card after the last one died
        // holding it (its lease expires by itself: no release).
        let (mut card, fence) = open(&db, "storm", ttl, LONG);
        expected_fence += 1;
        assert_eq!(fence, expected_fence, "round {round}");
        let left = 3 - (round % 3);
        assert_eq!(
            sw(&mut card, PIN_STATUS),
            format!("63C{left}"),
            "round {round}"
        );
        assert_eq!(
            sw(&mut card, WRONG_PIN),
            format!("63C{}", left - 1),
            "round {round}"
        );
        if left == 1 {
            // Blocked now; unblock with the PUK (a new PIN 123456) so the
            // storm goes on: RESET RETRY COUNTER, SP 800-73-4 Part 2 3.2.3.
            let mut reset = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
            reset.extend_from_slice(b"12345678123456\xFF\xFF");
            assert_eq!(sw(&mut card, &reset), "9000", "round {round}");
        }
        drop(card);
    }
}

#[test]
fn a_host_whose_lease_moved_can_never_write() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let db = database(&cluster);
    db.put_card("fenced", &fresh_image(), CardOptions::default())
        .unwrap();
    let (mut paused, old_fence) = open(&db, "fenced", Duration::from_millis(500), Duration::ZERO);
    assert_eq!(sw(&mut paused, WRONG_PIN), "63C2");
    // The paused host's lease expires; another host takes the card.
    let (mut other, new_fence) = open(&db, "fenced", LONG, LONG);
    assert_eq!(new_fence, old_fence + 1);
    assert_eq!(sw(&mut other, PIN_STATUS), "63C2");
    let before = stored_parts(&cluster, "fenced");
    // The paused host wakes: a wrong PIN would be a try, but the commit
    // (under the old fence) is refused, so the card answers as for a
    // failed write and compares nothing.
    assert_eq!(sw(&mut paused, WRONG_PIN), "6581");
    assert_eq!(sw(&mut paused, RIGHT_PIN), "6581");
    assert_eq!(stored_parts(&cluster, "fenced"), before);
    assert_eq!(sw(&mut other, PIN_STATUS), "63C2");
    // Even when nobody takes a card over, a lease that expired writes
    // nothing (a host paused past its lease, then resumed).
    db.put_card("lonely", &fresh_image(), CardOptions::default())
        .unwrap();
    let (mut lonely, _) = open(&db, "lonely", LONG, Duration::ZERO);
    let before = stored_parts(&cluster, "lonely");
    cluster
        .psql("UPDATE leases SET expires_at = clock_timestamp() WHERE card_id = 'lonely'")
        .unwrap();
    assert_eq!(sw(&mut lonely, WRONG_PIN), "6581");
    assert_eq!(stored_parts(&cluster, "lonely"), before);
    // Revoking moves the fence too: the serving host stops writing.
    db.put_card("revoked", &fresh_image(), CardOptions::default())
        .unwrap();
    let (mut revoked, _) = open(&db, "revoked", LONG, Duration::ZERO);
    db.revoke("revoked").unwrap();
    assert_eq!(sw(&mut revoked, WRONG_PIN), "6581");
    let refused = db.acquire("revoked", "h", LONG);
    assert!(
        matches!(&refused, Err(HostError::Revoked(id)) if id == "revoked"),
        "{refused:?}"
    );
    assert!(matches!(
        db.revoke("absent"),
        Err(HostError::NoSuchCard(id)) if id == "absent"
    ));
}

#[test]
fn a_database_that_goes_away_fails_the_command_and_gives_no_try_back() {
    let Some(mut cluster) = private_postgres() else {
        return;
    };
    let db = database(&cluster);
    db.put_card("outage", &fresh_image(), CardOptions::default())
        .unwrap();
    let (mut card, _) = open(&db, "outage", LONG, Duration::ZERO);
    assert_eq!(sw(&mut card, WRONG_PIN), "63C2");
    cluster.stop().unwrap();
    // The try cannot be counted, so the PIN is not compared: the status a
    // failed write gets, for a wrong PIN and a right one alike.
    assert_eq!(sw(&mut card, WRONG_PIN), "6581");
    assert_eq!(sw(&mut card, RIGHT_PIN), "6581");
    cluster.start().unwrap();
    // Back: the same host goes on (the pool reconnects), no try regained
    // and none lost.
    assert_eq!(sw(&mut card, PIN_STATUS), "63C2");
    assert_eq!(sw(&mut card, WRONG_PIN), "63C1");
    drop(card);
    // A fresh host (after this one's lease ran out) reads what was
    // committed: one try left.
    cluster
        .psql("UPDATE leases SET expires_at = clock_timestamp() WHERE card_id = 'outage'")
        .unwrap();
    let (mut card, _) = open(&db, "outage", LONG, Duration::ZERO);
    assert_eq!(sw(&mut card, PIN_STATUS), "63C1");
}

#[test]
fn the_schema_is_migrated_once_and_a_newer_one_is_refused() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let first = database(&cluster);
    let second = database(&cluster);
    drop((first, second));
    assert_eq!(
        cluster
            .psql("SELECT string_agg(version::text, ',') FROM vscard_schema")
            .unwrap(),
        (1..=SCHEMA_VERSION)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    cluster
        .psql(&format!(
            "INSERT INTO vscard_schema VALUES ({})",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    let refused = Database::connect(&cluster.url(), 1).unwrap_err();
    assert!(
        matches!(refused, HostError::FutureSchema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{refused}"
    );
    assert!(refused.to_string().contains("upgrade vscard"), "{refused}");
}

#[test]
fn an_image_reads_back_as_it_was_put_in() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let db = database(&cluster);
    let image = fresh_image();
    db.put_card(
        "round-trip",
        &image,
        CardOptions {
            approval: Approval::Session,
        },
    )
    .unwrap();
    assert_eq!(
        PostgresStore::read(&db, "round-trip").unwrap(),
        Some(image.clone())
    );
    assert_eq!(db.approval("round-trip").unwrap(), Approval::Session);
    let holder = vscard_host::holder_name().unwrap();
    let lease = db.acquire("round-trip", &holder, LONG).unwrap();
    let mut store = PostgresStore::new(db.clone(), lease);
    assert_eq!(store.load().unwrap(), Some(image));
    assert!(matches!(
        db.put_card("bad id!", &CardImage::new(), CardOptions::default()),
        Err(HostError::BadCardId(_))
    ));
    assert_eq!(PostgresStore::read(&db, "absent").unwrap(), None);
}
