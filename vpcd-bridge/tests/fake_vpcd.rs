//! The bridge against a fake vpcd in the test: malformed frames, power
//! handling, reconnects, removal, reverse mode, card isolation, and the
//! peer check refusing a vpcd that is not root's pcscd.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use vscard_emulator::Card;
use vscard_testkit::echo::echo_card;
use vscard_vpcd::{
    Backoff, Bridge, BridgeConfig, BridgeError, BridgeHandle, Link, Mode, Observer, PeerError,
    PeerPolicy,
};

const WAIT: Duration = Duration::from_secs(5);
const ECHO_AB: [u8; 7] = [0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00];
const INCREMENT: [u8; 5] = [0x00, 0x02, 0x00, 0x00, 0x00];
const READ_COUNTER: [u8; 5] = [0x00, 0x03, 0x00, 0x00, 0x00];

/// One connection as vpcd would drive it.
struct FakeVpcd {
    stream: TcpStream,
}

impl FakeVpcd {
    /// Sends a frame as vpcd 3.3 does: length and payload in two writes.
    async fn send(&mut self, payload: &[u8]) {
        let length = u16::try_from(payload.len()).unwrap().to_be_bytes();
        self.stream.write_all(&length).await.unwrap();
        self.stream.write_all(payload).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one reply frame.
    async fn recv(&mut self) -> Vec<u8> {
        timeout(WAIT, async {
            let length = self.stream.read_u16().await.unwrap();
            let mut payload = vec![0; usize::from(length)];
            self.stream.read_exact(&mut payload).await.unwrap();
            payload
        })
        .await
        .expect("no reply from the card")
    }

    async fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu).await;
        self.recv().await
    }

    async fn power_on(&mut self) -> Vec<u8> {
        self.send(&[0x01]).await;
        self.send(&[0x04]).await;
        self.recv().await
    }

    /// True when the card closed the connection.
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            timeout(WAIT, self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

async fn accept(listener: &TcpListener) -> FakeVpcd {
    let (stream, _) = timeout(WAIT, listener.accept())
        .await
        .expect("the card did not connect")
        .unwrap();
    FakeVpcd { stream }
}

fn config(mode: Mode) -> BridgeConfig {
    BridgeConfig {
        mode,
        trace: true,
        backoff: Backoff::default(),
        // The fake vpcd is this test process, not root's pcscd.
        peer: PeerPolicy::Any,
        observer: None,
        auto_touch: None,
        touch_timeout: None,
    }
}

fn client(port: u16) -> Mode {
    Mode::Client {
        host: "127.0.0.1".into(),
        port,
    }
}

fn start(cards: Vec<Card>, mode: Mode) -> BridgeHandle {
    Bridge::start(cards, config(mode)).unwrap()
}

/// Two listeners on consecutive loopback ports.
async fn consecutive_listeners() -> (TcpListener, TcpListener) {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        if port == u16::MAX {
            continue;
        }
        if let Ok(second) = TcpListener::bind(("127.0.0.1", port + 1)).await {
            return (first, second);
        }
    }
    panic!("no two consecutive free ports");
}

#[tokio::test]
async fn malformed_frames_are_ignored_and_a_good_apdu_is_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = start(vec![echo_card().unwrap()], client(port));
    let mut vpcd = accept(&listener).await;

    // Before power: an APDU is answered after an implicit cold reset
    // (never silence, which vpcd would wait on, nor 6F00, which OpenSC
    // loops on).
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    assert!(bridge.status(0).unwrap().powered);
    // A zero-length frame and unknown control codes get no answer ...
    vpcd.send_raw(&[0x00, 0x00]).await;
    vpcd.send(&[0x03]).await;
    vpcd.send(&[0xFF]).await;
    // ... so the next reply is the ATR.
    let atr = vpcd.power_on().await;
    assert_eq!(atr, echo_card().unwrap().atr());
    // Length and APDU in one write, then byte by byte.
    vpcd.send_raw(&[0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x00])
        .await;
    assert_eq!(vpcd.recv().await, [0xAB, 0x90, 0x00]);
    for byte in [0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0xCD, 0x00] {
        vpcd.send_raw(&[byte]).await;
    }
    assert_eq!(vpcd.recv().await, [0xCD, 0x90, 0x00]);
    // Two frames in one write.
    vpcd.send_raw(&[0, 1, 4, 0, 7, 0x00, 0x01, 0x00, 0x00, 0x01, 0xEF, 0x00])
        .await;
    assert_eq!(vpcd.recv().await, atr);
    assert_eq!(vpcd.recv().await, [0xEF, 0x90, 0x00]);
    // A response too long for a frame (65535 bytes + SW) gets 6F00.
    assert_eq!(
        vpcd.transmit(&[0x00, 0x05, 0xFF, 0xFF, 0x00, 0x00, 0x00])
            .await,
        [0x6F, 0x00]
    );
    // APDUs the runtime rejects get its status word; the card goes on.
    for bad in [
        &[0x00, 0xA4, 0x04][..],
        &[0x00, 0x01, 0x00, 0x00, 0x05, 0xAB],
    ] {
        let answer = vpcd.transmit(bad).await;
        assert_eq!(answer.len(), 2, "{answer:02X?}");
        assert_ne!(answer, [0x90, 0x00]);
    }
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    // An unknown instruction is the card's answer, passed through.
    assert_eq!(vpcd.transmit(&[0x00, 0x7F, 0x00, 0x00]).await, [0x6D, 0x00]);
    // Reset: no reply, the card stays powered.
    vpcd.send(&[0x02]).await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    // Power off: the card is unpowered until the next APDU powers it up.
    vpcd.send(&[0x00]).await;
    vpcd.send(&[0x04]).await;
    assert_eq!(vpcd.recv().await, echo_card().unwrap().atr());
    let status = bridge.status(0).unwrap();
    assert!(status.is_serving(), "{status}");
    assert!(!status.powered);
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    assert!(bridge.status(0).unwrap().powered);
}

#[tokio::test]
async fn a_frame_cut_short_ends_the_connection_and_the_card_comes_back_unpowered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = start(vec![echo_card().unwrap()], client(port));
    let mut vpcd = accept(&listener).await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&INCREMENT).await, [0, 0, 0, 1, 0x90, 0x00]);
    vpcd.send_raw(&[0x00, 0x10, 0x00, 0xA4]).await;
    drop(vpcd);

    let started = Instant::now();
    let mut vpcd = accept(&listener).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Session state is gone (no power) ...
    assert!(!bridge.status(0).unwrap().powered);
    vpcd.power_on().await;
    // ... persistent state is not.
    assert_eq!(vpcd.transmit(&INCREMENT).await, [0, 0, 0, 2, 0x90, 0x00]);
    assert_eq!(bridge.status(0).unwrap().sessions, 2);
}

#[tokio::test]
async fn the_card_retries_until_vpcd_listens() {
    // Find a free port, then leave it closed for a while.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bridge = start(vec![echo_card().unwrap()], client(port));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let listening = Instant::now();
    let mut vpcd = accept(&listener).await;
    let waited = listening.elapsed();
    assert!(
        waited < Duration::from_millis(400),
        "reconnect took {waited:?}"
    );
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    drop(bridge);
}

#[tokio::test]
async fn removal_closes_the_connection_and_insertion_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = start(vec![echo_card().unwrap()], client(port));
    let mut vpcd = accept(&listener).await;
    vpcd.power_on().await;

    bridge.remove(0).unwrap();
    assert!(vpcd.closed().await);
    bridge
        .wait_for(0, WAIT, |s| {
            !s.inserted && s.link == vscard_vpcd::Link::Removed
        })
        .unwrap();
    // No reconnection while removed.
    assert!(
        timeout(Duration::from_millis(400), listener.accept())
            .await
            .is_err()
    );

    bridge.insert(0).unwrap();
    let mut vpcd = accept(&listener).await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    let cards = bridge.shutdown();
    assert_eq!(cards.len(), 1);
    assert!(!cards[0].is_powered());
}

#[tokio::test]
async fn swap_pulls_the_old_card_out_puts_the_new_one_in_and_gives_the_old_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = start(vec![echo_card().unwrap()], client(port));
    let mut vpcd = accept(&listener).await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);

    // Another card: one without any application, so it answers the echo
    // command as no application selected (ISO 7816-4 5.6: 6A82).
    let other = Card::builder().build().unwrap();
    let mut old = bridge.swap(0, other).unwrap();
    assert!(vpcd.closed().await, "the old card was not pulled out first");
    assert!(!old.is_powered());
    old.power_on();
    assert_eq!(old.transmit(&ECHO_AB).unwrap(), [0xAB, 0x90, 0x00]);

    let mut vpcd = accept(&listener).await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0x6A, 0x82]);
    let status = bridge.status(0).unwrap();
    assert!(status.inserted);
    assert!(matches!(
        bridge.swap(1, echo_card().unwrap()),
        Err(vscard_vpcd::BridgeError::NoSuchCard { index: 1, count: 1 })
    ));
    let cards = bridge.shutdown();
    assert_eq!(cards.len(), 1);
}

#[tokio::test]
async fn a_slow_card_does_not_hold_up_another() {
    let (first, second) = consecutive_listeners().await;
    let port = first.local_addr().unwrap().port();
    let _bridge = start(
        vec![echo_card().unwrap(), echo_card().unwrap()],
        client(port),
    );
    let mut slow = accept(&first).await;
    let mut quick = accept(&second).await;
    slow.power_on().await;
    quick.power_on().await;

    // Card 0 sleeps 800 ms; card 1 answers meanwhile.
    slow.send(&[0x00, 0x04, 80, 0x00]).await;
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(quick.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
    }
    let quick_time = started.elapsed();
    assert_eq!(slow.recv().await, [0x90, 0x00]);
    assert!(
        quick_time < Duration::from_millis(400),
        "card 1 waited for card 0: {quick_time:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[tokio::test]
async fn reverse_mode_listens_and_removal_closes_each_connection() {
    let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let bridge = start(vec![echo_card().unwrap()], Mode::Reverse { listen: addr });
    let connect = || async {
        let deadline = Instant::now() + WAIT;
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => return FakeVpcd { stream },
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("the card does not listen: {e}"),
            }
        }
    };
    let mut vpcd = connect().await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);

    bridge.remove(0).unwrap();
    assert!(vpcd.closed().await);
    bridge.wait_for(0, WAIT, |s| !s.inserted).unwrap();
    // Still listening (Debian's vpcd aborts pcscd when a reverse connect
    // fails), but every connection is closed at once: an empty reader.
    let mut knocking = connect().await;
    assert!(knocking.closed().await);

    bridge.insert(0).unwrap();
    let mut vpcd = connect().await;
    vpcd.power_on().await;
    assert_eq!(vpcd.transmit(&ECHO_AB).await, [0xAB, 0x90, 0x00]);
}

/// Records the peer check's refusals.
#[derive(Default)]
struct Refusals(Mutex<Vec<(usize, String, Option<u32>)>>);

impl Observer for Refusals {
    fn refused(&self, card: usize, error: &PeerError) {
        let pid = match error {
            PeerError::NotPcscd { process, .. } => Some(process.pid),
            _ => None,
        };
        self.0.lock().unwrap().push((card, error.to_string(), pid));
    }
}

#[tokio::test]
async fn the_default_peer_check_refuses_a_fake_vpcd_before_answering_anything() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let refusals = Arc::new(Refusals::default());
    let config = BridgeConfig {
        mode: client(port),
        observer: Some(Arc::clone(&refusals) as Arc<dyn Observer>),
        ..BridgeConfig::default()
    };
    assert_eq!(config.peer, PeerPolicy::Pcscd, "the check is on by default");
    let bridge = Bridge::start(vec![echo_card().unwrap()], config).unwrap();
    let mut vpcd = accept(&listener).await;
    // Power on, GET ATR and a command that would change the card.
    vpcd.send(&[0x01]).await;
    vpcd.send(&[0x04]).await;
    vpcd.send(&INCREMENT).await;
    let mut answer = Vec::new();
    let read = timeout(WAIT, vpcd.stream.read_to_end(&mut answer))
        .await
        .expect("the card kept the connection open");
    assert!(answer.is_empty(), "the card answered {answer:02X?}");
    // A close with our frames unread may arrive as a reset.
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    bridge
        .wait_for(0, WAIT, |s| s.link == Link::Stopped)
        .unwrap();
    // No second try: the card stopped.
    assert!(
        timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err()
    );
    let refused = refusals.0.lock().unwrap().clone();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (card, message, pid) = &refused[0];
    assert_eq!(*card, 0);
    assert_eq!(*pid, Some(std::process::id()), "{message}");
    assert!(
        message.starts_with(&format!("port {port} is held by "))
            && message.ends_with("not by root's pcscd"),
        "{message}"
    );
    // The card's state did not change.
    let mut cards = bridge.shutdown();
    cards[0].power_on();
    assert_eq!(
        cards[0].transmit(&READ_COUNTER).unwrap(),
        [0, 0, 0, 0, 0x90, 0x00]
    );
}

#[test]
fn the_peer_check_refuses_a_remote_vpcd_address_at_start() {
    let remote = Mode::Client {
        host: "192.0.2.7".into(),
        port: 35963,
    };
    let config = BridgeConfig {
        mode: remote.clone(),
        ..BridgeConfig::default()
    };
    match Bridge::start(vec![echo_card().unwrap()], config) {
        Err(BridgeError::Peer {
            index: 0,
            source: PeerError::Remote { addr },
        }) => assert_eq!(addr, "192.0.2.7:35963"),
        other => panic!("{other:?}"),
    }
    // With the check off, the bridge starts (and retries in the background).
    let config = BridgeConfig {
        mode: remote,
        peer: PeerPolicy::Any,
        backoff: Backoff::default(),
        ..BridgeConfig::default()
    };
    assert!(Bridge::start(vec![echo_card().unwrap()], config).is_ok());
}
