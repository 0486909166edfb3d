//! `vscard serve` and who may be its reader (issue 12): a fake vpcd (a
//! listener in this test process, not root's pcscd) is refused before the
//! card answers anything, `--vpcd-peer any` serves it, a remote `--vpcd`
//! address is refused at once, and reverse mode binds loopback only and
//! says so. No pcscd needed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Serve, p256_card, serve_fails};

/// VERIFY of the PIV card PIN with a wrong PIN: it would cost a try.
const WRONG_PIN: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, b'0', b'0', b'0', b'0', b'0', b'0', 0xFF, 0xFF,
];

fn card() -> (tempfile::TempDir, PathBuf, PathBuf) {
    p256_card("vpcd-peer")
}

/// A vpcd frame: 2-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// Accepts one connection and drives it as vpcd would: power on, GET ATR,
/// a wrong PIN; returns every byte the card sent until it closed.
fn drive_fake_vpcd(listener: TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut stream = accept_within(&listener, Duration::from_secs(10));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for payload in [&[0x01][..], &[0x04], &WRONG_PIN] {
            // The card may already have closed: later writes can fail.
            let _ = stream.write_all(&frame(payload));
        }
        let mut answer = Vec::new();
        // A close with our frames unread may arrive as a reset: the bytes
        // read before it are what counts.
        let _ = stream.read_to_end(&mut answer);
        answer
    })
}

/// The first connection to `listener`, or a failure after `wait` (never
/// a test hanging on a card that does not come).
fn accept_within(listener: &TcpListener, wait: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("no connection from the card: {e}"),
        }
    }
}

/// This test process's name as `/proc` shows it (what the refusal names).
fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim_end()
        .to_owned()
}

fn free_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_fake_vpcd_is_refused_before_the_card_answers_and_the_card_is_unchanged() {
    let (_dir, state, card) = card();
    let before = std::fs::read(&card).unwrap();
    let (listener, port) = free_listener();
    let fake = drive_fake_vpcd(listener);
    let vpcd = format!("127.0.0.1:{port}");
    let (code, stderr) = serve_fails(&state, &[arg(&card), "--vpcd", &vpcd]);
    assert_eq!(code, 1, "{stderr}");
    let expected = format!(
        "vscard: refusing vpcd: port {port} is held by {} (pid {}, uid ",
        own_comm(),
        std::process::id()
    );
    assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
    assert!(stderr.contains("not by root's pcscd"), "{stderr}");
    assert!(stderr.contains("--vpcd-peer any"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let answer = fake.join().unwrap();
    assert!(answer.is_empty(), "the card answered {answer:02X?}");
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "the card image changed"
    );
}

#[test]
fn with_vpcd_peer_any_the_same_listener_is_served() {
    let (_dir, state, card) = card();
    let (listener, port) = free_listener();
    let vpcd = format!("127.0.0.1:{port}");
    let mut serve = Serve::start(&state, &[arg(&card), "--vpcd", &vpcd, "--vpcd-peer", "any"]);
    let mut stream = accept_within(&listener, Duration::from_secs(10));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&frame(&[0x01])).unwrap();
    stream.write_all(&frame(&[0x04])).unwrap();
    let atr = read_frame(&mut stream);
    assert_eq!(atr.first(), Some(&0x3B), "{atr:02X?}");
    stream.write_all(&frame(&WRONG_PIN)).unwrap();
    // The PIV applet is selected by default: 63C2, two tries left.
    assert_eq!(read_frame(&mut stream), [0x63, 0xC2]);
    serve.expect_line(&format!("is in vpcd 127.0.0.1:{port}"));
    drop(stream);
    serve.stop();
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn a_remote_vpcd_address_is_refused_unless_the_check_is_off() {
    let (_dir, state, card) = card();
    let (code, stderr) = serve_fails(&state, &[arg(&card), "--vpcd", "192.0.2.7:35963"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "refusing to connect: card 0: vpcd at 192.0.2.7:35963 is not a loopback address"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--vpcd-peer any"), "{stderr}");
    // With the check off it keeps trying (192.0.2.0/24 never answers).
    let mut serve = Serve::start(
        &state,
        &[
            arg(&card),
            "--vpcd",
            "192.0.2.7:35963",
            "--vpcd-peer",
            "any",
        ],
    );
    serve.expect_line("connecting to vpcd at 192.0.2.7:35963");
    std::thread::sleep(Duration::from_millis(300));
    assert!(serve.child.try_wait().unwrap().is_none(), "serve exited");
    serve.stop();
}

#[test]
fn reverse_mode_binds_loopback_only_and_says_so() {
    let (_dir, state, card) = card();
    let (probe, port) = free_listener();
    drop(probe);
    let port_arg = port.to_string();
    let mut serve = Serve::start(&state, &[arg(&card), "--listen", &port_arg]);
    serve.expect_line(&format!(
        "waiting for vpcd to connect to 127.0.0.1:{port} (loopback only"
    ));
    // Wait until the card listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() > deadline => panic!("the card does not listen: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    drop(stream);
    // Another loopback address on the same port is free: the card did not
    // bind the wildcard address (all interfaces).
    let other = TcpListener::bind(("127.0.0.2", port));
    assert!(other.is_ok(), "{other:?}");
    serve.stop();
}

#[test]
fn vpcd_peer_is_for_client_mode_only() {
    let (_dir, state, card) = card();
    let output = support::run(support::vscard(&state).args([
        "serve",
        arg(&card),
        "--listen",
        "4000",
        "--vpcd-peer",
        "any",
    ]));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
