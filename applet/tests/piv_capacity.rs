//! The card's storage capacity (`vscard_applet::capacity`): PUT DATA and
//! key generation / import answer `6A84` (ISO 7816-4 5.1.3) before changing
//! anything once objects and keys would exceed it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use vscard_applet::capacity::key_cost;
use vscard_applet::{Algorithm, DEFAULT_CAPACITY, PivApplet, PivConfig};
use vscard_emulator::{Applet, FileStore, MemoryStore};

const SW_NOT_ENOUGH_MEMORY: u16 = 0x6A84;
const SW_NOT_FOUND: u16 = 0x6A82;
/// Retired key management certificate containers (SP 800-73-4 Part 1
/// Table 15): free 5Fxxxx objects to fill the card with.
const OBJECTS: [[u8; 3]; 3] = [[0x5F, 0xC1, 0x0D], [0x5F, 0xC1, 0x0E], [0x5F, 0xC1, 0x0F]];

/// An applet with `room` bytes free beyond its own objects.
fn applet_with_room(room: usize) -> PivApplet {
    let used = PivApplet::with_defaults().state().used_bytes();
    let capacity = u32::try_from(used + room).unwrap();
    PivApplet::new(PivConfig::default().with_capacity(capacity)).unwrap()
}

#[test]
fn put_data_past_capacity_is_refused_and_changes_nothing() {
    let store = MemoryStore::new();
    let mut c = Client::new(card_on_store(applet_with_room(7000), store));
    c.authenticate_default();
    assert_eq!(c.put_data(&OBJECTS[0], &[0x11; 3000]), SW_OK);
    assert_eq!(c.put_data(&OBJECTS[1], &[0x22; 3000]), SW_OK);
    // 1000 bytes are left: the third object does not fit.
    assert_eq!(c.put_data(&OBJECTS[2], &[0x33; 3000]), SW_NOT_ENOUGH_MEMORY);
    // Growing an object counts only the difference: +1000 fits, +1001 not.
    assert_eq!(c.put_data(&OBJECTS[1], &[0x22; 4001]), SW_NOT_ENOUGH_MEMORY);
    assert_eq!(c.put_data(&OBJECTS[1], &[0x44; 4000]), SW_OK);
    // After a power cycle (the state reloaded from the store) the refused
    // object is absent and the others are as written.
    c.card().power_off();
    c.card().power_on();
    c.select();
    assert_eq!(c.get_data(&OBJECTS[2]).sw(), SW_NOT_FOUND);
    assert_eq!(c.get_data(&OBJECTS[1]).data, tlv(0x53, &[0x44; 4000]));
    assert_eq!(c.get_data(&OBJECTS[0]).data, tlv(0x53, &[0x11; 3000]));
}

#[test]
fn deleting_an_object_frees_its_space() {
    let mut c = Client::new(card_with(applet_with_room(5000)));
    c.authenticate_default();
    assert_eq!(c.put_data(&OBJECTS[0], &[0x11; 4000]), SW_OK);
    assert_eq!(c.put_data(&OBJECTS[1], &[0x22; 4000]), SW_NOT_ENOUGH_MEMORY);
    // An empty value deletes (SP 800-73-4 Part 2 3.3.2), which always fits.
    assert_eq!(c.put_data(&OBJECTS[0], &[]), SW_OK);
    assert_eq!(c.put_data(&OBJECTS[1], &[0x22; 4000]), SW_OK);
    assert_eq!(c.get_data(&OBJECTS[0]).sw(), SW_NOT_FOUND);
}

#[test]
fn key_import_and_generation_past_capacity_are_refused() {
    let room = key_cost(Algorithm::EccP256) - 1;
    let mut c = Client::new(card_with(applet_with_room(room)));
    c.authenticate_default();
    let empty_slot = c.metadata(0x9A).sw();
    let data = tlv(0x06, &[0x11; 32]);
    assert_eq!(c.send(0xFE, 0x11, 0x9A, &data).sw(), SW_NOT_ENOUGH_MEMORY);
    assert_eq!(c.metadata(0x9A).sw(), empty_slot);
    assert_eq!(
        c.generate(vscard_applet::Slot::AUTHENTICATION, Algorithm::EccP256)
            .sw(),
        SW_NOT_ENOUGH_MEMORY
    );
    assert_eq!(c.metadata(0x9A).sw(), empty_slot);
}

#[test]
fn a_key_fits_exactly_and_replacing_it_counts_the_difference() {
    let room = key_cost(Algorithm::EccP256);
    let mut c = Client::new(card_with(applet_with_room(room)));
    c.authenticate_default();
    let data = tlv(0x06, &[0x11; 32]);
    assert_eq!(c.send(0xFE, 0x11, 0x9A, &data).sw(), SW_OK);
    // The same size again in the same slot: no growth.
    let again = tlv(0x06, &[0x12; 32]);
    assert_eq!(c.send(0xFE, 0x11, 0x9A, &again).sw(), SW_OK);
    // Another slot: no room left.
    assert_eq!(c.send(0xFE, 0x11, 0x9C, &data).sw(), SW_NOT_ENOUGH_MEMORY);
}

#[test]
fn images_without_a_capacity_load_with_the_default() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/piv/golden-state-v1.json");
    let image = FileStore::read(&path).unwrap().unwrap();
    let state = image.applet(&vscard_applet::PIV_AID.to_hex()).unwrap();
    let mut applet = PivApplet::with_defaults();
    applet.load(state).unwrap();
    assert_eq!(applet.state().capacity(), DEFAULT_CAPACITY as usize);
    assert_eq!(applet.state().settings().capacity, DEFAULT_CAPACITY);
}

#[test]
fn a_configured_capacity_survives_save_and_load() {
    let applet = PivApplet::new(PivConfig::default().with_capacity(64 * 1024)).unwrap();
    let saved = applet.save().unwrap();
    let mut loaded = PivApplet::with_defaults();
    loaded.load(&saved).unwrap();
    assert_eq!(loaded.state().capacity(), 64 * 1024);
}
