//! The link protocol end to end on loopback: pairing, pinned reconnects,
//! and every refusal (a wrong, replayed or expired secret, an unknown
//! key, a relay key that is not the URI's), and a tampered or replayed
//! frame dropping the link with no card state change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use vscard_applet::{PivApplet, PivConfig, piv_atr};
use vscard_emulator::Card;
use vscard_link::state::fingerprint;
use vscard_link::{
    CardLinkConfig, CardLinkHandle, Frame, LinkError, LinkState, PairingUri, Target, accept,
    connect,
};
use zeroize::Zeroizing;

struct Ends {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    relay: LinkState,
    card: LinkState,
}

fn ends() -> Ends {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Ends {
        relay: LinkState::new(a.path()),
        card: LinkState::new(b.path()),
        _dirs: (a, b),
    }
}

/// A pairing URI for a pending pairing of `relay` reached at `address`.
fn pairing(relay: &LinkState, address: &str, lifetime: Duration) -> PairingUri {
    let (id, secret) = relay.add_pairing(lifetime).unwrap();
    PairingUri {
        address: address.to_owned(),
        name: "desk".to_owned(),
        fingerprint: fingerprint(relay.identity().unwrap().public()),
        id,
        secret,
    }
}

/// Runs one relay-side handshake on `listener`; its result.
async fn relay_once(
    listener: &TcpListener,
    relay: &LinkState,
) -> Result<vscard_link::Peer, LinkError> {
    let (stream, _) = listener.accept().await.unwrap();
    let identity = relay.identity().unwrap();
    accept(stream, &identity, relay).await.map(|(_, peer)| peer)
}

/// One card-side connection attempt and the relay's view of it.
async fn attempt(
    listener: &TcpListener,
    ends: &Ends,
    target: &Target,
    card: &LinkState,
) -> (Result<(), LinkError>, Result<vscard_link::Peer, LinkError>) {
    let identity = card.identity().unwrap();
    let (card_side, relay_side) = tokio::join!(
        connect(target, &identity, "phone card", card),
        relay_once(listener, &ends.relay)
    );
    (card_side.map(|_| ()), relay_side)
}

fn refused(result: &Result<impl std::fmt::Debug, LinkError>, text: &str) {
    match result {
        Err(LinkError::Refused(reason)) => {
            assert!(
                reason.contains(text),
                "refused for {reason:?}, wanted {text:?}"
            )
        }
        other => panic!("wanted a refusal ({text}), got {other:?}"),
    }
}

#[tokio::test]
async fn pairing_pins_both_keys_then_pinned_keys_only() {
    let ends = ends();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let uri = pairing(&ends.relay, &address, Duration::from_secs(600));
    let (card_side, relay_side) =
        attempt(&listener, &ends, &Target::Pair(uri.clone()), &ends.card).await;
    card_side.unwrap();
    let peer = relay_side.unwrap();
    assert_eq!(peer.name, "phone-card");
    assert!(peer.paired_now);
    assert_eq!(&peer.key, ends.card.identity().unwrap().public());
    let pinned = ends.relay.cards().unwrap();
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0].name, "phone-card");
    // The card side pinned the relay under the URI's name.
    let relay = ends.card.relay("desk").unwrap().unwrap();
    assert_eq!(relay.address, address);
    assert_eq!(
        relay.key,
        hex::encode(ends.relay.identity().unwrap().public())
    );
    // Later: by name or address, pinned keys only.
    for name in ["desk", address.as_str()] {
        let target = Target::resolve(name, &ends.card).unwrap();
        let (card_side, relay_side) = attempt(&listener, &ends, &target, &ends.card).await;
        card_side.unwrap();
        let peer = relay_side.unwrap();
        assert_eq!(peer.name, "phone-card");
        assert!(!peer.paired_now);
    }
    // The secret worked once: the same URI again is refused on both ends.
    let (card_side, relay_side) = attempt(&listener, &ends, &Target::Pair(uri), &ends.card).await;
    refused(&relay_side, "no such pending pairing");
    refused(&card_side, "closed the pairing");
    // Forgotten: refused.
    assert!(ends.relay.forget_card("phone-card").unwrap());
    let target = Target::resolve("desk", &ends.card).unwrap();
    let (card_side, relay_side) = attempt(&listener, &ends, &target, &ends.card).await;
    refused(&relay_side, "unknown card key");
    refused(&card_side, "not pinned");
}

#[tokio::test]
async fn wrong_expired_and_foreign_are_refused() {
    let ends = ends();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // A wrong secret: the relay cannot decrypt the last message; the
    // pending pairing stays for the right one.
    let mut wrong = pairing(&ends.relay, &address, Duration::from_secs(600));
    let right = wrong.secret.clone();
    wrong.secret = Zeroizing::new([0x55; 32]);
    let (card_side, relay_side) =
        attempt(&listener, &ends, &Target::Pair(wrong.clone()), &ends.card).await;
    refused(&relay_side, "wrong pairing secret");
    refused(&card_side, "refused the pairing secret");
    assert!(ends.relay.cards().unwrap().is_empty());
    assert!(ends.card.relays().unwrap().is_empty());
    wrong.secret = right;
    let (card_side, relay_side) = attempt(&listener, &ends, &Target::Pair(wrong), &ends.card).await;
    card_side.unwrap();
    relay_side.unwrap();
    // An expired secret.
    let expired = pairing(&ends.relay, &address, Duration::ZERO);
    let other = ends_card();
    let (card_side, relay_side) = attempt(&listener, &ends, &Target::Pair(expired), &other.0).await;
    refused(&relay_side, "no such pending pairing");
    refused(&card_side, "closed the pairing");
    // A relay whose key is not the URI's: the card stops before it says
    // who it is.
    let mut foreign = pairing(&ends.relay, &address, Duration::from_secs(600));
    foreign.fingerprint = "00".repeat(32);
    let (card_side, relay_side) = attempt(&listener, &ends, &Target::Pair(foreign), &other.0).await;
    refused(&card_side, "not the one in the pairing URI");
    assert!(relay_side.is_err());
    // An unknown key using a pinned relay entry copied from the paired card.
    let copied = ends.card.relay("desk").unwrap().unwrap();
    let (card_side, relay_side) =
        attempt(&listener, &ends, &Target::Pinned(copied), &other.0).await;
    refused(&relay_side, "unknown card key");
    refused(&card_side, "not pinned");
    assert_eq!(ends.relay.cards().unwrap().len(), 1);
}

fn ends_card() -> (LinkState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (LinkState::new(dir.path()), dir)
}

/// What the man in the middle does to the relay's `index`-th message to
/// the card (0: the handshake answer).
#[derive(Clone, Copy)]
enum Meddle {
    Flip(usize),
    Duplicate(usize),
}

/// Forwards bytes between `card` and `relay`, meddling with one message
/// from the relay (messages are a 2-byte length and a body).
async fn middle(card: TcpStream, relay: TcpStream, meddle: Meddle) {
    let (mut card_rd, mut card_wr) = card.into_split();
    let (mut relay_rd, mut relay_wr) = relay.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut card_rd, &mut relay_wr).await;
    };
    let down = async move {
        let mut index = 0;
        loop {
            let mut length = [0u8; 2];
            if relay_rd.read_exact(&mut length).await.is_err() {
                break;
            }
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if relay_rd.read_exact(&mut body).await.is_err() {
                break;
            }
            let mut out = length.to_vec();
            match meddle {
                Meddle::Flip(at) if at == index => {
                    if let Some(last) = body.last_mut() {
                        *last ^= 0x01;
                    }
                    out.extend_from_slice(&body);
                }
                Meddle::Duplicate(at) if at == index => {
                    out.extend_from_slice(&body);
                    out.extend_from_slice(&length);
                    out.extend_from_slice(&body);
                }
                _ => out.extend_from_slice(&body),
            }
            if card_wr.write_all(&out).await.is_err() {
                break;
            }
            index += 1;
        }
    };
    tokio::join!(up, down);
}

fn piv_card() -> Card {
    let applet = PivApplet::new(PivConfig::default().with_pin(b"123456")).unwrap();
    Card::builder()
        .atr(piv_atr())
        .install_default(applet)
        .build()
        .unwrap()
}

const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
const VERIFY_WRONG: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, 0x39, 0x39, 0x39, 0x39, 0x39, 0x39, 0xFF, 0xFF,
];

/// Pairs the card side with the relay state directly (no network).
fn pin_both(ends: &Ends, address: &str) {
    let card_key = *ends.card.identity().unwrap().public();
    ends.relay.pin_card("card", &card_key).unwrap();
    ends.card
        .pin_relay(vscard_link::PinnedRelay {
            name: "desk".to_owned(),
            address: address.to_owned(),
            key: hex::encode(ends.relay.identity().unwrap().public()),
            paired: 0,
        })
        .unwrap();
}

/// The relay's side of a session through the meddling middle: power on,
/// SELECT (answered 9000), VERIFY with a wrong PIN. Returns what the
/// VERIFY got, if anything, and the card given back.
async fn meddled_session(meddle: Meddle) -> (Result<Frame, LinkError>, Card) {
    let ends = ends();
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let middle_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_listener.local_addr().unwrap();
    let middle_addr = middle_listener.local_addr().unwrap().to_string();
    pin_both(&ends, &middle_addr);
    tokio::spawn(async move {
        let (card, _) = middle_listener.accept().await.unwrap();
        let relay = TcpStream::connect(relay_addr).await.unwrap();
        middle(card, relay, meddle).await;
    });
    let target = Target::resolve("desk", &ends.card).unwrap();
    let config = CardLinkConfig {
        label: "card".to_owned(),
        ..CardLinkConfig::default()
    };
    let handle = CardLinkHandle::spawn(piv_card(), target, ends.card.clone(), config).unwrap();
    let (stream, _) = relay_listener.accept().await.unwrap();
    let identity = ends.relay.identity().unwrap();
    let (mut link, peer) = accept(stream, &identity, &ends.relay).await.unwrap();
    assert_eq!(peer.name, "card");
    link.send(&Frame::PowerOn).await.unwrap();
    link.send(&Frame::Apdu(Zeroizing::new(SELECT_PIV.to_vec())))
        .await
        .unwrap();
    let select = link.recv().await;
    let verify = match select {
        Ok(Frame::Response(r)) => {
            assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
            link.send(&Frame::Apdu(Zeroizing::new(VERIFY_WRONG.to_vec())))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(5), link.recv())
                .await
                .expect("the card side must drop the link, not hang")
        }
        other => other,
    };
    let (card, result) = tokio::task::spawn_blocking(move || handle.stop())
        .await
        .unwrap();
    result.unwrap();
    (verify, card.unwrap())
}

/// The PIN tries left, asked in-process (`63Cx`).
fn pin_tries(card: &mut Card) -> Vec<u8> {
    card.power_on();
    let select = card.transmit(&SELECT_PIV).unwrap();
    assert_eq!(select[select.len() - 2..], [0x90, 0x00]);
    card.transmit(&[0x00, 0x20, 0x00, 0x80]).unwrap()
}

#[tokio::test]
async fn untouched_session_counts_the_wrong_pin() {
    // The control: without meddling the wrong PIN is counted (63C2), so
    // the tests below can tell a dropped frame from an ignored one.
    let (verify, mut card) = meddled_session(Meddle::Flip(usize::MAX)).await;
    match verify {
        Ok(Frame::Response(r)) => assert_eq!(r.as_slice(), [0x63, 0xC2]),
        other => panic!("wanted 63C2, got {other:?}"),
    }
    assert_eq!(pin_tries(&mut card), [0x63, 0xC2]);
}

#[tokio::test]
async fn tampered_frame_drops_the_link_and_changes_no_card_state() {
    // Messages from the relay: 0 handshake, 1 PowerOn, 2 SELECT, 3 VERIFY.
    let (verify, mut card) = meddled_session(Meddle::Flip(3)).await;
    assert!(
        matches!(verify, Err(LinkError::Closed(_)) | Err(LinkError::Net(_))),
        "the card side must drop the link, got {verify:?}"
    );
    assert_eq!(pin_tries(&mut card), [0x63, 0xC3]);
}

#[tokio::test]
async fn replayed_frame_drops_the_link_and_changes_no_card_state() {
    // The VERIFY arrives twice: the first is counted (63C2 comes back),
    // the copy fails authentication (its nonce is spent) and is never
    // run, so the count stays at 2 tries left instead of 1.
    let (verify, mut card) = meddled_session(Meddle::Duplicate(3)).await;
    match verify {
        Ok(Frame::Response(r)) => assert_eq!(r.as_slice(), [0x63, 0xC2]),
        other => panic!("wanted 63C2, got {other:?}"),
    }
    assert_eq!(pin_tries(&mut card), [0x63, 0xC2]);
}

/// Records the card side's link events.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<String>>);

impl vscard_link::CardObserver for Events {
    fn connected(&self, relay: &str) {
        self.0.lock().unwrap().push(format!("connected {relay}"));
    }
    fn disconnected(&self, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("disconnected {reason}"));
    }
}

#[tokio::test]
async fn a_silent_relay_is_dropped_after_the_keep_alive_timeout() {
    let ends = ends();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    pin_both(&ends, &address);
    let events = std::sync::Arc::new(Events::default());
    let config = CardLinkConfig {
        keep_alive: vscard_link::KeepAlive {
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(300),
        },
        observer: Some(events.clone()),
        ..CardLinkConfig::default()
    };
    let target = Target::resolve("desk", &ends.card).unwrap();
    let handle = CardLinkHandle::spawn(piv_card(), target, ends.card.clone(), config).unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let identity = ends.relay.identity().unwrap();
    // Authenticated, then silent: the card side's keep-alives arrive, and
    // it drops the link once nothing came back for 300 ms.
    let (mut link, _) = accept(stream, &identity, &ends.relay).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(link.recv().await.unwrap(), Frame::KeepAlive);
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match link.recv().await {
                Ok(Frame::KeepAlive) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the card side must drop a silent relay");
    assert!(end.is_err(), "{end:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let (_, result) = tokio::task::spawn_blocking(move || handle.stop())
        .await
        .unwrap();
    result.unwrap();
    let events = events.0.lock().unwrap().clone();
    assert_eq!(events[0], format!("connected {address}"));
    assert_eq!(events[1], "disconnected peer silent for 300ms");
}

#[tokio::test]
async fn the_relay_forwards_vpcd_frames_and_drops_a_silent_card_as_a_removal() {
    let ends = ends();
    // A stand-in for vpcd (no peer check: it is this test).
    let vpcd = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vpcd_port = vpcd.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    pin_both(&ends, &address);
    let config = vscard_link::RelayConfig {
        vpcd_port,
        peer: vscard_vpcd::PeerPolicy::Any,
        keep_alive: vscard_link::KeepAlive {
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(300),
        },
        ..vscard_link::RelayConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(vscard_link::run_relay(
        listener,
        ends.relay.identity().unwrap(),
        ends.relay.clone(),
        config,
        stopped,
    ));
    let identity = ends.card.identity().unwrap();
    let target = Target::resolve("desk", &ends.card).unwrap();
    let (mut link, _) = connect(&target, &identity, "card", &ends.card)
        .await
        .unwrap();
    // The relay reaches vpcd only for an authenticated card.
    let (mut reader, _) = vpcd.accept().await.unwrap();
    // vpcd: GET ATR (`00 01 04`) -> the card is asked, its ATR comes back.
    reader.write_all(&[0x00, 0x01, 0x04]).await.unwrap();
    let asked = loop {
        match link.recv().await.unwrap() {
            Frame::KeepAlive => continue,
            other => break other,
        }
    };
    assert_eq!(asked, Frame::GetAtr);
    link.send(&Frame::Atr(vec![0x3B, 0x80, 0x80, 0x01, 0x01]))
        .await
        .unwrap();
    let mut answer = [0u8; 7];
    reader.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, [0x00, 0x05, 0x3B, 0x80, 0x80, 0x01, 0x01]);
    // Then the card falls silent: after the keep-alive timeout the relay
    // drops it, and vpcd sees the connection end (the card removed).
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut rest))
        .await
        .expect("the relay must drop a silent card");
    read.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    stop.send(true).unwrap();
    relay.await.unwrap().unwrap();
}

/// Reads one length-delimited message.
async fn read_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut body).await.unwrap();
    let mut message = length.to_vec();
    message.extend_from_slice(&body);
    message
}

#[tokio::test]
async fn a_replayed_first_message_of_a_pinned_card_is_refused() {
    let ends = ends();
    let recorder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = recorder.local_addr().unwrap().to_string();
    pin_both(&ends, &address);
    // Record a genuine card's hello and first handshake message (the
    // recorder never answers; the card gives up when it closes).
    let identity = ends.card.identity().unwrap();
    let target = Target::resolve("desk", &ends.card).unwrap();
    let recording = async {
        let (mut stream, _) = recorder.accept().await.unwrap();
        let mut bytes = read_message(&mut stream).await;
        bytes.extend(read_message(&mut stream).await);
        bytes
    };
    let (recorded, attempt) =
        tokio::join!(recording, connect(&target, &identity, "card", &ends.card));
    assert!(attempt.is_err());
    // Replayed to the relay: it answers the handshake (the message is
    // genuine) but refuses without the card's key confirmation.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = listener.local_addr().unwrap();
    let replay = async {
        let mut stream = TcpStream::connect(relay_addr).await.unwrap();
        stream.write_all(&recorded).await.unwrap();
        let _answer = read_message(&mut stream).await;
        drop(stream);
    };
    let (relay_side, ()) = tokio::join!(relay_once(&listener, &ends.relay), replay);
    refused(&relay_side, "no key confirmation");
}

/// An APDU and a response longer than one Noise message (65,518 bytes of
/// plaintext) cross the relay whole, as fragments: the largest vpcd frame
/// (65,535 bytes) from vpcd to the card, and as long a response back.
#[tokio::test]
async fn apdus_longer_than_a_link_message_cross_the_relay_whole() {
    let ends = ends();
    let vpcd = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vpcd_port = vpcd.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    pin_both(&ends, &address);
    let config = vscard_link::RelayConfig {
        vpcd_port,
        peer: vscard_vpcd::PeerPolicy::Any,
        ..vscard_link::RelayConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(vscard_link::run_relay(
        listener,
        ends.relay.identity().unwrap(),
        ends.relay.clone(),
        config,
        stopped,
    ));
    let identity = ends.card.identity().unwrap();
    let target = Target::resolve("desk", &ends.card).unwrap();
    let (mut link, _) = connect(&target, &identity, "card", &ends.card)
        .await
        .unwrap();
    let (mut vpcd_side, _) = vpcd.accept().await.unwrap();
    let next = async |link: &mut vscard_link::Link| loop {
        match link.recv().await.unwrap() {
            Frame::KeepAlive => continue,
            other => break other,
        }
    };
    // An extended case 3 APDU of 65,535 bytes: header, 00 and a 2-byte
    // Lc, then 65,528 bytes of data.
    let mut apdu = vec![0x00, 0xDB, 0x3F, 0xFF, 0x00, 0xFF, 0xF8];
    apdu.extend((0..65_528u32).map(|i| (i * 7) as u8));
    assert_eq!(apdu.len(), 65_535);
    let mut frame = vec![0xFF, 0xFF];
    frame.extend_from_slice(&apdu);
    vpcd_side.write_all(&frame).await.unwrap();
    match next(&mut link).await {
        Frame::Apdu(received) => assert!(*received == apdu, "the APDU changed on the way"),
        other => panic!("expected the APDU, got {other:?}"),
    }
    // A response of 65,533 data bytes and 90 00.
    let mut response: Vec<u8> = (0..65_533u32).map(|i| (i * 13) as u8).collect();
    response.extend_from_slice(&[0x90, 0x00]);
    link.send(&Frame::Response(Zeroizing::new(response.clone())))
        .await
        .unwrap();
    let mut length = [0u8; 2];
    vpcd_side.read_exact(&mut length).await.unwrap();
    assert_eq!(u16::from_be_bytes(length), 65_535);
    let mut answer = vec![0u8; 65_535];
    vpcd_side.read_exact(&mut answer).await.unwrap();
    assert!(answer == response, "the response changed on the way");
    // Small frames after them still go as one message each.
    vpcd_side.write_all(&[0x00, 0x01, 0x04]).await.unwrap();
    assert_eq!(next(&mut link).await, Frame::GetAtr);
    stop.send(true).unwrap();
    relay.await.unwrap().unwrap();
}
