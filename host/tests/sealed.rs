//! Card images and the hosts' link key sealed at rest (a database with a
//! key): no PIN and no private key byte in any row, a wrong key, a
//! missing key, a row in the clear and a row moved to another card or
//! part all refused, and a PIN try still committed (sealed) and kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vscard_applet::{Algorithm, PivApplet, PrivateKey, Slot, piv_atr};
use vscard_emulator::seal::SealKey;
use vscard_emulator::{Card, CardImage, CardRng};
use vscard_host::serve::host_identity;
use vscard_host::{CardOptions, Database, HostError, PostgresStore};
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

fn key(byte: u8) -> SealKey {
    SealKey::from_bytes([byte; 32])
}

/// A card with the default PIN and a P-256 key in 9A, and that key's
/// PKCS#8 DER.
fn card_with_key() -> (CardImage, Vec<u8>) {
    let mut rng = CardRng::from_u64(16);
    let private = PrivateKey::generate(Algorithm::EccP256, &mut rng).unwrap();
    let der = private.to_pkcs8().unwrap().to_vec();
    let mut applet = PivApplet::with_defaults();
    applet.install_key(Slot::AUTHENTICATION, private).unwrap();
    let card = Card::builder()
        .atr(piv_atr())
        .install_default(applet)
        .build()
        .unwrap();
    (card.image().clone(), der)
}

/// Every byte of card `id`'s rows, and their encodings.
fn rows(cluster: &PrivatePostgres, id: &str) -> (Vec<u8>, String) {
    let hex = cluster
        .psql(&format!(
            "SELECT encode(string_agg(value, ''::bytea ORDER BY applet, part), 'hex') FROM card_parts WHERE card_id = '{id}'"
        ))
        .unwrap();
    let encodings = cluster
        .psql(&format!(
            "SELECT string_agg(DISTINCT encoding, ',') FROM card_parts WHERE card_id = '{id}'"
        ))
        .unwrap();
    (
        hex::decode(hex.trim()).unwrap(),
        encodings.trim().to_owned(),
    )
}

/// Whether `haystack` holds `needle` (raw, or as lower- or upper-case
/// hex, as a JSON part stores bytes).
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    let forms = [
        needle.to_vec(),
        hex::encode(needle).into_bytes(),
        hex::encode_upper(needle).into_bytes(),
    ];
    forms.iter().any(|form| {
        haystack
            .windows(form.len())
            .any(|window| window == form.as_slice())
    })
}

/// The secrets a row must not show: the PIN, the whole key, and its last
/// 32 bytes (the P-256 scalar sits at the end of the PKCS#8 of a key
/// without its public part, or before it).
fn shows_a_secret(bytes: &[u8], der: &[u8]) -> bool {
    holds(bytes, b"123456") || holds(bytes, der) || der.windows(32).any(|w| holds(bytes, w))
}

fn open(database: &Database, id: &str, wait: Duration) -> Card {
    let holder = vscard_host::holder_name().unwrap();
    let lease = database
        .acquire_waiting(id, &holder, None, LONG, wait)
        .unwrap();
    let mut card = Card::builder()
        .atr(piv_atr())
        .store(PostgresStore::new(database.clone(), lease))
        .install_default(PivApplet::with_defaults())
        .build()
        .unwrap();
    card.power_on();
    card
}

fn sw(card: &mut Card, apdu: &[u8]) -> String {
    let answer = card.transmit(apdu).unwrap();
    hex::encode_upper(&answer[answer.len() - 2..])
}

#[test]
fn sealed_rows_show_no_secret_and_open_only_where_they_were_sealed() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let plain = Database::connect(&url, 2).unwrap();
    let sealed = Database::connect(&url, 4).unwrap().with_seal_key(key(1));
    let (image, der) = card_with_key();

    // The control: in the clear, the PIN and the key are in the rows.
    plain
        .put_card("clear", &image, CardOptions::default())
        .unwrap();
    let (bytes, encodings) = rows(&cluster, "clear");
    assert_eq!(encodings, "json");
    assert!(holds(&bytes, b"123456") && holds(&bytes, &der));

    sealed
        .put_card("card-a", &image, CardOptions::default())
        .unwrap();
    sealed
        .put_card("card-b", &image, CardOptions::default())
        .unwrap();
    let (bytes, encodings) = rows(&cluster, "card-a");
    assert_eq!(encodings, "aes256gcm");
    assert!(!bytes.is_empty());
    assert!(!shows_a_secret(&bytes, &der));
    assert_eq!(
        PostgresStore::read(&sealed, "card-a").unwrap(),
        Some(image.clone())
    );

    // A wrong key, no key, and a card in the clear under a key.
    let other = Database::connect(&url, 1).unwrap().with_seal_key(key(2));
    let wrong = PostgresStore::read(&other, "card-a").unwrap_err();
    assert!(
        matches!(&wrong, HostError::DamagedPart { card, .. } if card == "card-a")
            && wrong.to_string().contains("wrong key"),
        "{wrong}"
    );
    let needed = PostgresStore::read(&plain, "card-a").unwrap_err();
    assert!(
        matches!(&needed, HostError::KeyNeeded { what } if what == "card card-a"),
        "{needed}"
    );
    assert!(
        needed.to_string().contains("--encrypt-key-file"),
        "{needed}"
    );
    let clear = PostgresStore::read(&sealed, "clear").unwrap_err();
    assert!(matches!(clear, HostError::NotEncrypted { .. }), "{clear}");

    // A row moved to another card, or to another part of the same card,
    // does not open.
    let pin_row = |card: &str| {
        format!("(SELECT value FROM card_parts WHERE card_id = '{card}' AND part = 'pin')")
    };
    cluster
        .psql(&format!(
            "UPDATE card_parts SET value = {} WHERE card_id = 'card-b' AND part = 'pin'",
            pin_row("card-a")
        ))
        .unwrap();
    let moved = PostgresStore::read(&sealed, "card-b").unwrap_err();
    assert!(
        matches!(&moved, HostError::DamagedPart { card, part, .. } if card == "card-b" && part == "pin")
            && moved.to_string().contains("another card or part"),
        "{moved}"
    );
    cluster
        .psql(&format!(
            "UPDATE card_parts SET value = {} WHERE card_id = 'card-a' AND part = 'puk'",
            pin_row("card-a")
        ))
        .unwrap();
    let moved = PostgresStore::read(&sealed, "card-a").unwrap_err();
    assert!(
        matches!(&moved, HostError::DamagedPart { part, .. } if part == "puk"),
        "{moved}"
    );
}

#[test]
fn a_pin_try_is_committed_sealed_and_survives_the_host() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let db = Database::connect(&cluster.url(), 4)
        .unwrap()
        .with_seal_key(key(3));
    let (image, der) = card_with_key();
    db.put_card("tries", &image, CardOptions::default())
        .unwrap();
    let before = cluster
        .psql(
            "SELECT encode(value, 'hex') FROM card_parts WHERE card_id = 'tries' AND part = 'pin'",
        )
        .unwrap();
    let mut card = open(&db, "tries", Duration::ZERO);
    assert_eq!(sw(&mut card, WRONG_PIN), "63C2");
    // The try went out as a new sealed pin row (the one-statement commit).
    let after = cluster
        .psql(
            "SELECT encode(value, 'hex') FROM card_parts WHERE card_id = 'tries' AND part = 'pin'",
        )
        .unwrap();
    assert_ne!(before, after);
    let (bytes, encodings) = rows(&cluster, "tries");
    assert_eq!(encodings, "aes256gcm");
    assert!(!shows_a_secret(&bytes, &der));
    // The host dies; the next one reads the sealed try back.
    drop(card);
    cluster
        .psql("UPDATE leases SET expires_at = clock_timestamp() WHERE card_id = 'tries'")
        .unwrap();
    let mut card = open(&db, "tries", LONG);
    assert_eq!(sw(&mut card, PIN_STATUS), "63C2");
    assert_eq!(sw(&mut card, RIGHT_PIN), "9000");
    assert_eq!(sw(&mut card, PIN_STATUS), "9000");
}

#[test]
fn the_hosts_link_key_is_sealed_and_a_clear_one_is_refused_under_a_key() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let stored_private = || {
        let hex = cluster
            .psql("SELECT encode(private_key, 'hex') FROM host_identity WHERE id = 1")
            .unwrap();
        hex::decode(hex.trim()).unwrap()
    };
    // Made by a host without a key: in the clear (the control).
    let plain = Database::connect(&url, 1).unwrap();
    let first = host_identity(&plain).unwrap();
    let private = first.private_key();
    assert_eq!(stored_private(), private.to_vec());
    // A host with a key neither adopts nor seals it (it may have been
    // planted, and it was readable): refused, the row left as it was.
    let sealed = Database::connect(&url, 1).unwrap().with_seal_key(key(4));
    let refused = host_identity(&sealed).unwrap_err();
    assert!(
        matches!(refused, HostError::HostIdentity(_))
            && refused
                .to_string()
                .contains("its private half is stored in the clear")
            && refused.to_string().contains("DELETE FROM host_identity"),
        "{refused}"
    );
    assert_eq!(stored_private(), private.to_vec());
    // Deleted as the error says: a new pair, sealed from the start.
    cluster.psql("DELETE FROM host_identity").unwrap();
    let again = host_identity(&sealed).unwrap();
    assert_ne!(again.public(), first.public());
    let stored = stored_private();
    assert!(vscard_emulator::seal::is_sealed(&stored));
    assert!(!holds(&stored, again.private_key().as_slice()));
    assert_eq!(
        *host_identity(&sealed).unwrap().private_key(),
        *again.private_key()
    );
    // Now a host without the key, or with another, is refused.
    let needed = host_identity(&plain).unwrap_err();
    assert!(matches!(needed, HostError::KeyNeeded { .. }), "{needed}");
    let other = Database::connect(&url, 1).unwrap().with_seal_key(key(5));
    let wrong = host_identity(&other).unwrap_err();
    assert!(wrong.to_string().contains("wrong key"), "{wrong}");
    // A sealed card part copied over the link key does not open as one.
    let (image, _) = card_with_key();
    sealed
        .put_card("donor", &image, CardOptions::default())
        .unwrap();
    cluster
        .psql(
            "UPDATE host_identity SET private_key = (SELECT value FROM card_parts \
             WHERE card_id = 'donor' AND part = 'pin') WHERE id = 1",
        )
        .unwrap();
    let moved = host_identity(&sealed).unwrap_err();
    assert!(
        moved.to_string().contains("another card or part"),
        "{moved}"
    );
}

#[test]
fn a_public_key_swapped_in_the_database_is_refused() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let sealed = Database::connect(&url, 1).unwrap().with_seal_key(key(7));
    host_identity(&sealed).unwrap();
    // A writer of the database puts its own public key in (the one
    // `host enrol` gives devices to pin): refused, sealed or not.
    let theirs = vscard_link::Identity::generate().unwrap();
    cluster
        .psql(&format!(
            "UPDATE host_identity SET public_key = '\\x{}' WHERE id = 1",
            hex::encode(theirs.public())
        ))
        .unwrap();
    let refused = host_identity(&sealed).unwrap_err();
    assert!(
        matches!(refused, HostError::HostIdentity(_))
            && refused
                .to_string()
                .contains("is not the one its private half makes"),
        "{refused}"
    );
    // The same in the clear (a database without a key).
    cluster.psql("DELETE FROM host_identity").unwrap();
    let plain = Database::connect(&url, 1).unwrap();
    let original = host_identity(&plain).unwrap();
    cluster
        .psql(&format!(
            "UPDATE host_identity SET public_key = '\\x{}' WHERE id = 1",
            hex::encode(theirs.public())
        ))
        .unwrap();
    let refused = host_identity(&plain).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("is not the one its private half makes"),
        "{refused}"
    );
    // The control: the right public half back, the pair is served.
    cluster
        .psql(&format!(
            "UPDATE host_identity SET public_key = '\\x{}' WHERE id = 1",
            hex::encode(original.public())
        ))
        .unwrap();
    assert_eq!(host_identity(&plain).unwrap().public(), original.public());
}

#[test]
fn a_new_link_key_is_sealed_from_the_start() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let sealed = Database::connect(&cluster.url(), 1)
        .unwrap()
        .with_seal_key(key(6));
    let identity = host_identity(&sealed).unwrap();
    let hex = cluster
        .psql("SELECT encode(private_key, 'hex') FROM host_identity WHERE id = 1")
        .unwrap();
    let stored = hex::decode(hex.trim()).unwrap();
    assert!(vscard_emulator::seal::is_sealed(&stored));
    assert!(!holds(&stored, identity.private_key().as_slice()));
    assert_eq!(
        *host_identity(&sealed).unwrap().private_key(),
        *identity.private_key()
    );
}
