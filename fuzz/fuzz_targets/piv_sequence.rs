//! A PIV card driven by a program of APDUs, authentications and power
//! cuts (SP 800-73-4 Part 2 3.2, 3.3; ISO 7816-4 for the runtime).
//!
//! Every input starts from the same card image: the applet with the
//! default PIN `123456`, PUK `12345678` and 3DES management key, an RSA-2048
//! key in 9A (the applet tests' committed key) and P-256 keys in 9C, 9D,
//! 9E, built once per process. The runtime's panic catcher is off, so an
//! applet panic is a crash, not `6F00`.
//!
//! Input: a sequence of operations, each an opcode byte (modulo 10) and its
//! operands (see `Op` below and fuzz/README.md); at most 48 run.
//!
//! Invariants, checked after every operation (the keys: at the end)
//! against the committed image (what a power cut leaves, read with the
//! applet's own state accessors):
//! - no panic; every answer is at least a status word; the card reports
//!   `PowerLost` only when a planned power cut was pending; the committed
//!   image always loads back into a PIV applet;
//! - the PIN tries left go up only in an operation whose command was a
//!   VERIFY (of the PIN, with data), CHANGE REFERENCE DATA of the PIN, RESET
//!   RETRY COUNTER, or Yubico SET PIN RETRIES / RESET, answered `9000` (or
//!   cut by a power failure after its write, when the answer is lost);
//! - the PUK tries left likewise, for CHANGE REFERENCE DATA of the PUK,
//!   RESET RETRY COUNTER, SET PIN RETRIES and RESET;
//! - except that a CHANGE REFERENCE DATA (of the PIN or the PUK) or RESET
//!   RETRY COUNTER (the PUK) answered `6A80` may also have reset the
//!   counter of the secret it proved before refusing the new value (the
//!   order applet/tests/piv_pin.rs specifies);
//! - the public keys of 9A, 9C, 9D and 9E change only after a GENERAL
//!   AUTHENTICATE of the management key (9B) completed with `9000` earlier
//!   in the sequence, or in a Yubico RESET (which needs PIN and PUK
//!   blocked; it wipes the keys).
//!
//! RSA key generation (GENERATE ASYMMETRIC KEY PAIR with algorithm `07`)
//! is skipped: it takes a second, which would stall the fuzzer; the applet
//! tests cover it.

#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use vscard_applet::management::ManagementKey;
use vscard_applet::{
    Algorithm, PIV_AID, PIV_AID_SHORT, PivApplet, PrivateKey, PublicKey, Slot, piv_atr,
};
use vscard_emulator::{
    Card, CardError, CardImage, CardRng, CommandApdu, CutPoint, FaultPlan, ResponseApdu,
};
use vscard_fuzz::Input;

const PIN: &[u8] = b"123456";
const PUK: &[u8] = b"12345678";
const MAX_OPS: usize = 48;
const SLOTS: [Slot; 4] = [
    Slot::AUTHENTICATION,
    Slot::SIGNATURE,
    Slot::KEY_MANAGEMENT,
    Slot::CARD_AUTHENTICATION,
];
/// Instructions the structured command operation picks from: the PIV and
/// Yubico instructions the applet knows, GET RESPONSE, SELECT, and one it
/// does not know.
const INSTRUCTIONS: [u8; 18] = [
    0x20, 0x24, 0x2C, 0xCB, 0xDB, 0x87, 0x47, 0xFD, 0xF8, 0xF7, 0xFF, 0xFB, 0xFE, 0xFA, 0xC0, 0xA4,
    0x70, 0x00,
];

/// The starting image, personalised once per process (key setup is the
/// slow part).
fn initial_image() -> &'static CardImage {
    static IMAGE: OnceLock<CardImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut applet = PivApplet::with_defaults();
        let rsa = PrivateKey::from_pkcs8(
            Algorithm::Rsa2048,
            include_bytes!("../../applet/tests/data/piv/rsa2048-test-key.pk8.der"),
        );
        let mut rng = CardRng::from_u64(7);
        let keys = [
            rsa,
            PrivateKey::generate(Algorithm::EccP256, &mut rng),
            PrivateKey::generate(Algorithm::EccP256, &mut rng),
            PrivateKey::generate(Algorithm::EccP256, &mut rng),
        ];
        for (slot, key) in SLOTS.into_iter().zip(keys) {
            let key = key.unwrap_or_else(|e| panic!("test key for {slot:?}: {e}"));
            if let Err(e) = applet.install_key(slot, key) {
                panic!("installing the test key in {slot:?}: {e}");
            }
        }
        match Card::builder()
            .rng(CardRng::from_u64(0))
            .install_default(applet)
            .build()
        {
            Ok(card) => card.image().clone(),
            Err(e) => panic!("personalised card: {e}"),
        }
    })
}

/// The public keys of [`initial_image`].
fn initial_keys() -> &'static [Option<PublicKey>; 4] {
    static KEYS: OnceLock<[Option<PublicKey>; 4]> = OnceLock::new();
    KEYS.get_or_init(|| keys(&mut PivApplet::with_defaults(), initial_image()))
}

/// A card on `image` (a fresh one when `None`), powered on.
fn build(image: Option<&CardImage>, seed: u64) -> Card {
    let mut builder = Card::builder()
        .atr(piv_atr())
        .rng(CardRng::from_u64(seed))
        .catch_panics(false)
        .install_default(PivApplet::with_defaults());
    if let Some(image) = image {
        builder = builder.image(image.clone());
    }
    match builder.build() {
        Ok(mut card) => {
            card.power_on();
            card
        }
        Err(e) => panic!("a committed image failed to build a card: {e}"),
    }
}

/// Loads the committed image into `observer`, the applet's own view of it.
fn load<'a>(observer: &'a mut PivApplet, image: &CardImage) -> &'a vscard_applet::PivState {
    let Some(state) = image.applet(&PIV_AID.to_hex()) else {
        panic!("the committed image lost the PIV applet");
    };
    if let Err(e) = observer.state_mut().load(state) {
        panic!("the committed image does not load: {e}");
    }
    observer.state()
}

/// PIN and PUK tries left in the committed image.
fn counters(observer: &mut PivApplet, image: &CardImage) -> (u8, u8) {
    let state = load(observer, image);
    (state.pin_tries_left(), state.puk_tries_left())
}

/// The public keys of the four slots in the committed image. Deriving a
/// P-256 public key is the costliest part of a run, so keys are compared
/// once, at the end: the permission for them (a management-key
/// authentication or a RESET) lasts for the whole sequence anyway.
fn keys(observer: &mut PivApplet, image: &CardImage) -> [Option<PublicKey>; 4] {
    let state = load(observer, image);
    SLOTS.map(|slot| state.public_key(slot))
}

/// What one operation's commands were allowed to change.
#[derive(Default)]
struct Permits {
    pin: bool,
    puk: bool,
}

struct Run {
    card: Card,
    /// A management-key authentication completed in this sequence.
    management: bool,
    /// A Yubico RESET succeeded (or was cut after its write) in this
    /// sequence.
    reset: bool,
    permits: Permits,
    builds: u64,
}

impl Run {
    /// Sends one command and records what it permits; `None` when power
    /// was cut during it.
    fn send(&mut self, command: &[u8]) -> Option<ResponseApdu> {
        let parsed = CommandApdu::parse(command).ok();
        if let Some(c) = &parsed
            && c.ins == 0x47
            && c.data.windows(3).any(|w| w == [0x80, 0x01, 0x07])
        {
            return None;
        }
        let armed = self.card.fault_pending();
        let result = self.card.transmit(command);
        if tracing() {
            eprintln!("> {command:02X?}\n< {result:02X?}");
        }
        match result {
            Ok(bytes) => {
                let Some(response) = ResponseApdu::parse(&bytes) else {
                    panic!("answer without a status word: {bytes:02X?}");
                };
                if let Some(c) = &parsed {
                    match response.status.to_u16() {
                        0x9000 => self.permit(c, Some(&response)),
                        0x6A80 => self.permit_proven(c),
                        _ => {}
                    }
                }
                Some(response)
            }
            Err(CardError::PowerLost) => {
                assert!(armed, "power lost without a planned cut");
                // The write may have landed before the cut: the command may
                // have succeeded without anyone seeing its answer.
                if let Some(c) = &parsed {
                    self.permit(c, None);
                }
                self.card.power_on();
                None
            }
            Err(e) => panic!("transmit failed: {e}"),
        }
    }

    fn permit(&mut self, c: &CommandApdu<'_>, response: Option<&ResponseApdu>) {
        match (c.ins, c.p2) {
            (0x20, 0x80) if !c.data.is_empty() => self.permits.pin = true,
            (0x24, 0x80) => self.permits.pin = true,
            (0x24, 0x81) => self.permits.puk = true,
            (0x2C, _) | (0xFA, _) => {
                self.permits.pin = true;
                self.permits.puk = true;
            }
            (0xFB, _) => {
                self.permits.pin = true;
                self.permits.puk = true;
                self.reset = true;
            }
            // Step 2 of external (empty answer) or mutual (`7C .. 82 ..`)
            // authentication; step 1 answers with a witness or challenge.
            (0x87, 0x9B) => {
                if let Some(r) = response
                    && (r.data.is_empty() || r.data.get(2) == Some(&0x82))
                {
                    self.management = true;
                }
            }
            _ => {}
        }
    }

    /// A CHANGE REFERENCE DATA or RESET RETRY COUNTER refused with `6A80`
    /// may have proven the old PIN or the PUK first (resetting its counter)
    /// and refused only the new value: applet/tests/piv_pin.rs specifies
    /// that order.
    fn permit_proven(&mut self, c: &CommandApdu<'_>) {
        match (c.ins, c.p2) {
            (0x24, 0x80) => self.permits.pin = true,
            (0x24, 0x81) | (0x2C, _) => self.permits.puk = true,
            _ => {}
        }
    }

    fn apdu(&mut self, header: [u8; 4], data: &[u8]) -> Option<ResponseApdu> {
        let mut command = header.to_vec();
        if !data.is_empty() {
            command.push(data.len() as u8);
            command.extend_from_slice(data);
        }
        command.push(0x00);
        self.send(&command)
    }

    /// External authentication with the default management key
    /// (SP 800-73-4 Part 2 Appendix A.1): a challenge, then its encryption.
    fn authenticate_management(&mut self) {
        let Some(answer) = self.apdu([0x00, 0x87, 0x03, 0x9B], &[0x7C, 0x02, 0x81, 0x00]) else {
            return;
        };
        let challenge = match answer.data.as_slice() {
            [0x7C, 0x0A, 0x81, 0x08, challenge @ ..] if challenge.len() == 8 => challenge,
            _ => return,
        };
        let Some(response) = ManagementKey::default_tdes().encrypt_block(challenge) else {
            return;
        };
        let mut data = vec![0x7C, 0x0A, 0x82, 0x08];
        data.extend_from_slice(&response);
        self.apdu([0x00, 0x87, 0x03, 0x9B], &data);
    }

    fn rebuild(&mut self) {
        self.builds += 1;
        let image = self.card.image().clone();
        self.card = build(Some(&image), self.builds);
    }
}

/// `PIV_TRACE=1` prints each exchange and the counters after each
/// operation, to read a reproducer.
fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PIV_TRACE").is_some())
}

fn pad(secret: &[u8]) -> Vec<u8> {
    let mut padded = secret.to_vec();
    padded.resize(8, 0xFF);
    padded
}

/// Runs one operation read from `input`.
fn step(run: &mut Run, input: &mut Input<'_>) {
    match input.byte() % 10 {
        // Raw bytes, up to 255.
        0 => {
            let len = usize::from(input.byte());
            let bytes = input.take(len).to_vec();
            run.send(&bytes);
        }
        // A command: channel, instruction (from the list), P1, P2, data.
        1 => {
            let cla = input.byte() & 0x13;
            let ins = INSTRUCTIONS[usize::from(input.byte()) % INSTRUCTIONS.len()];
            let (p1, p2) = (input.byte(), input.byte());
            let len = usize::from(input.byte());
            let data = input.take(len).to_vec();
            run.apdu([cla, ins, p1, p2], &data);
        }
        // VERIFY the PIN: the right one, or a wrong one.
        2 => {
            let wrong = input.byte();
            let pin = if wrong & 1 == 0 {
                pad(PIN)
            } else {
                pad(&[b'0' + (wrong >> 1) % 10; 6])
            };
            run.apdu([0x00, 0x20, 0x00, 0x80], &pin);
        }
        3 => run.authenticate_management(),
        // RESET RETRY COUNTER: the right PUK or a wrong one, new PIN 123456.
        4 => {
            let wrong = input.byte() & 1 == 1;
            let mut data = pad(if wrong { b"87654321" } else { PUK });
            data.extend_from_slice(&pad(PIN));
            run.apdu([0x00, 0x2C, 0x00, 0x80], &data);
        }
        // Plan a power cut at one of the next persistent writes.
        5 => {
            let plan = input.byte();
            let point = if plan & 0x80 == 0 {
                CutPoint::BeforeWrite
            } else {
                CutPoint::AfterWrite
            };
            run.card
                .set_fault_plan(FaultPlan::cut_at_write(u64::from(plan & 3) + 1, point));
        }
        // Pull the card and put it back: a new card from the committed image.
        6 => run.rebuild(),
        7 => {
            run.card.power_off();
            run.card.power_on();
        }
        8 => {
            run.apdu([0x00, 0xC0, 0x00, 0x00], &[]);
        }
        _ => {
            run.apdu([0x00, 0xA4, 0x04, 0x00], &PIV_AID_SHORT);
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut input = Input::new(bytes);
    // One observer per process: it keeps the keys it decoded (RSA key
    // decoding is the slow part), and decodes again only what changed.
    static OBSERVER: Mutex<Option<PivApplet>> = Mutex::new(None);
    let mut guard = OBSERVER.lock().unwrap_or_else(|e| e.into_inner());
    let observer = guard.get_or_insert_with(PivApplet::with_defaults);
    let mut run = Run {
        card: build(Some(initial_image()), 0),
        management: false,
        reset: false,
        permits: Permits::default(),
        builds: 0,
    };
    let mut before = counters(observer, run.card.image());
    // Loading the image is the slow part of a check; most operations
    // commit nothing, and an unchanged image has unchanged counters.
    let mut seen = run.card.image().clone();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        run.permits = Permits::default();
        step(&mut run, &mut input);
        if tracing() {
            eprintln!("  image now: {:?}", counters(observer, run.card.image()));
        }
        if *run.card.image() == seen {
            continue;
        }
        seen = run.card.image().clone();
        let after = counters(observer, &seen);
        assert!(
            after.0 <= before.0 || run.permits.pin,
            "PIN tries went up from {} to {} without VERIFY or a reset",
            before.0,
            after.0
        );
        assert!(
            after.1 <= before.1 || run.permits.puk,
            "PUK tries went up from {} to {} without a reset",
            before.1,
            after.1
        );
        before = after;
    }
    if !(run.management || run.reset) {
        assert!(
            keys(observer, run.card.image()) == *initial_keys(),
            "keys changed without management authentication"
        );
    }
});
