//! The link through a real pcscd (see `vscard_testkit::pcscd`): `vscard
//! relay` puts a card served by `vscard serve --link` into vpcd's reader.
//! Pairing with the URI of `relay pair`, then pinned keys; OpenSC and
//! yubico-piv-tool use the card; the PIN counter survives a kill -9 of
//! either end; a capture of the link's port during VERIFY holds no PIN
//! (while the vpcd hop on loopback does); a used secret and a foreign key
//! are refused while the first card keeps being served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::process::Process;
use support::{issue, p256_profile, run, run_ok, vscard};
use vscard_testkit::{PrivatePcscd, private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const LINK_PORT: u16 = 35950;
const VPCD_PORT: u16 = 35963;
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];
/// The PIN as VERIFY carries it.
const PIN_BYTES: [u8; 8] = [0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF];
/// VERIFY's header with its length byte: a plaintext APDU header.
const VERIFY_HEADER: [u8; 5] = [0x00, 0x20, 0x00, 0x80, 0x08];
const READER: &str = "Virtual PCD";

fn relay(state: &Path) -> Process {
    let mut command = vscard(state);
    command.args(["relay", "--listen", &format!("127.0.0.1:{LINK_PORT}")]);
    let mut relay = Process::start(command, "relay");
    relay.expect_line(&format!("relay listening on 127.0.0.1:{LINK_PORT}"));
    relay
}

fn serve_link(state: &Path, card: &Path, link: &[&str]) -> Process {
    let mut command = vscard(state);
    command.arg("serve").arg(card).args(link);
    Process::start(command, "serve")
}

fn tool_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).env("HOME", dir);
    run(&mut command)
}

fn success(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

fn pin_status(pcscd: &PrivatePcscd) -> Vec<u8> {
    let card = pcscd.connect(0).unwrap();
    let select = transmit(&card, &SELECT_PIV).unwrap();
    assert_eq!(select[select.len() - 2..], [0x90, 0x00]);
    transmit(&card, &PIN_STATUS).unwrap()
}

fn verify(pcscd: &PrivatePcscd, pin: &[u8; 8]) -> Vec<u8> {
    let card = pcscd.connect(0).unwrap();
    transmit(&card, &SELECT_PIV).unwrap();
    let mut apdu = VERIFY_HEADER.to_vec();
    apdu.extend_from_slice(pin);
    transmit(&card, &apdu).unwrap()
}

/// A capture of loopback traffic on the link's and vpcd's ports.
struct Capture {
    process: Process,
    file: PathBuf,
}

impl Capture {
    fn start(dir: &Path) -> Capture {
        let file = dir.join("lo.pcap");
        let mut command = Command::new("tcpdump");
        // Packets to stdout (a file this test owns: tcpdump drops to its
        // own user for files it opens), unbuffered, whole packets.
        command
            .args(["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", "-"])
            .arg(format!("tcp port {LINK_PORT} or tcp port {VPCD_PORT}"));
        let out = std::fs::File::create(&file).unwrap();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (Debian package tcpdump, .ci/install-deps)");
        let err = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                println!("tcpdump| {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Process {
            child,
            lines,
            seen: Vec::new(),
        };
        process.expect_line("listening on lo");
        Capture { process, file }
    }

    /// Stops the capture once it holds `expected` on the vpcd hop (or
    /// after 5 s); the TCP payloads by port (link, vpcd).
    fn finish(mut self, expected: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let deadline = Instant::now() + 5 * SECOND;
        while Instant::now() < deadline {
            let bytes = std::fs::read(&self.file).unwrap();
            if bytes.len() >= 24 && contains(&payloads(&bytes).1, expected) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.process.signal(Signal::INT);
        let _ = self.process.child.wait();
        let bytes = std::fs::read(&self.file).unwrap();
        let (link, vpcd) = payloads(&bytes);
        println!(
            "capture: {} bytes of pcap, {} of link payload, {} of vpcd payload",
            bytes.len(),
            link.len(),
            vpcd.len()
        );
        (link, vpcd)
    }
}

/// Reads a pcap file (Ethernet or Linux cooked link layer, IPv4 TCP) and
/// concatenates the TCP payloads of each port: (link port, vpcd port).
fn payloads(pcap: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert!(pcap.len() >= 24, "no pcap header");
    let little = pcap[0..4] == [0xD4, 0xC3, 0xB2, 0xA1];
    let u32_at = |b: &[u8], at: usize| {
        let v: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let link_type = u32_at(pcap, 20);
    let l2 = match link_type {
        1 => 14,   // Ethernet (Linux lo)
        113 => 16, // Linux cooked
        other => panic!("link type {other}"),
    };
    let (mut link, mut vpcd) = (Vec::new(), Vec::new());
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let length = u32_at(pcap, at + 8) as usize;
        let packet = &pcap[at + 16..(at + 16 + length).min(pcap.len())];
        at += 16 + length;
        let Some(ip) = packet.get(l2..) else { continue };
        if ip.first().map(|b| b >> 4) != Some(4) || ip.get(9) != Some(&6) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        let Some(tcp) = ip.get(ihl..) else { continue };
        if tcp.len() < 20 {
            continue;
        }
        let source = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dest = u16::from_be_bytes([tcp[2], tcp[3]]);
        let offset = usize::from(tcp[12] >> 4) * 4;
        let data = tcp.get(offset..).unwrap_or_default();
        if source == LINK_PORT || dest == LINK_PORT {
            link.extend_from_slice(data);
        } else if source == VPCD_PORT || dest == VPCD_PORT {
            vpcd.extend_from_slice(data);
        }
    }
    (link, vpcd)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Signs with the 9A key through PKCS#11 and verifies with openssl.
fn sign_and_verify(dir: &Path) {
    std::fs::write(dir.join("data.txt"), b"a clinical record\n").unwrap();
    success(tool_in(
        dir,
        "pkcs11-tool",
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "--id",
            "01",
            "-m",
            "ECDSA-SHA256",
            "--signature-format",
            "openssl",
            "-i",
            "data.txt",
            "-o",
            "signature",
        ],
    ));
    let pem = success(tool_in(dir, "pkcs15-tool", &["--read-certificate", "01"]));
    let begin = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    std::fs::write(dir.join("cert.pem"), &pem[begin..]).unwrap();
    let public = success(tool_in(
        dir,
        "openssl",
        &["x509", "-in", "cert.pem", "-pubkey", "-noout"],
    ));
    std::fs::write(dir.join("public.pem"), public).unwrap();
    let ok = success(tool_in(
        dir,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "public.pem",
            "-signature",
            "signature",
            "data.txt",
        ],
    ));
    assert!(ok.contains("Verified OK"), "{ok}");
    std::fs::write(dir.join("other.txt"), b"another record\n").unwrap();
    let other = tool_in(
        dir,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "public.pem",
            "-signature",
            "signature",
            "other.txt",
        ],
    );
    assert!(
        !other.status.success(),
        "a signature of other data verified"
    );
}

#[test]
fn a_paired_card_over_the_link_is_a_card_in_pcscd() {
    let Some(pcscd) = private_pcscd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (relay_state, card_state) = (home.join("relay"), home.join("state"));
    let card = home.join("card.json");
    let profile = p256_profile(home);
    issue(
        &card_state,
        &card,
        "link",
        &["--profile", profile.to_str().unwrap()],
    );

    let mut relay_process = relay(&relay_state);
    let uri_file = home.join("pair.uri");
    let paired = run_ok(
        vscard(&relay_state)
            .args(["relay", "pair", "--expires", "10m", "--out"])
            .arg(&uri_file),
    );
    let uri = std::fs::read_to_string(&uri_file).unwrap();
    assert!(
        uri.starts_with(&format!("vscard-pair://127.0.0.1:{LINK_PORT}?")),
        "{uri}"
    );
    assert!(paired.contains(uri.trim()), "the URI is printed");
    // The QR code: rows of half-block characters.
    assert!(
        paired.lines().filter(|l| l.contains('█')).count() > 10,
        "{paired}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&uri_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // First connection: pairing with the URI from the file.
    let link_file = ["--link-file", uri_file.to_str().unwrap()];
    let started = Instant::now();
    let mut serve = serve_link(&card_state, &card, &link_file);
    serve.expect_line("paired with relay");
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    println!(
        "card present {:?} after serve --link started",
        started.elapsed()
    );
    relay_process.expect_line("card card paired and connected: in the vpcd reader on port 35963");
    assert!(
        run_ok(vscard(&relay_state).args(["relay", "list"])).starts_with("card\tkey "),
        "relay list names the card"
    );

    let token = success(tool_in(home, "pkcs11-tool", &["-L"]));
    assert!(token.contains("000123456789"), "{token}");
    sign_and_verify(home);

    // VERIFY under capture: the PIN crosses the vpcd hop in the clear
    // (proving the capture saw it), never the link.
    let capture = Capture::start(home);
    assert_eq!(verify(&pcscd, &PIN_BYTES), [0x90, 0x00]);
    assert_eq!(verify(&pcscd, b"000000\xFF\xFF"), [0x63, 0xC2]);
    let (link_bytes, vpcd_bytes) = capture.finish(b"000000\xFF\xFF");
    assert!(
        contains(&vpcd_bytes, &PIN_BYTES),
        "the capture missed the VERIFY"
    );
    assert!(link_bytes.len() > 100, "the capture missed the link");
    assert!(
        !contains(&link_bytes, &PIN_BYTES),
        "the PIN crossed the link in the clear"
    );
    assert!(
        !contains(&link_bytes, &VERIFY_HEADER),
        "an APDU header crossed the link in the clear"
    );
    assert!(
        !contains(&link_bytes, &SELECT_PIV[5..]),
        "the PIV AID crossed the link in the clear"
    );

    let status = success(tool_in(
        home,
        "yubico-piv-tool",
        &["-r", READER, "-a", "status"],
    ));
    assert!(status.contains("PIN tries left:\t2"), "{status}");

    // kill -9 of the card's end: card removal; pinned keys bring it back
    // (by the relay's address: the secret is used up).
    serve.kill9();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
    relay_process.expect_line("card card left the vpcd reader on port 35963");
    let address = format!("127.0.0.1:{LINK_PORT}");
    let serve = serve_link(&card_state, &card, &["--link", &address]);
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    assert_eq!(pin_status(&pcscd), [0x63, 0xC2], "after kill -9 of serve");

    // kill -9 of the relay: removal; the card comes back within a second
    // of the relay listening again.
    relay_process.kill9();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
    let mut relay_process = relay(&relay_state);
    let back = pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    println!("card back {back:?} after the relay listened again");
    assert!(back < SECOND, "card back after {back:?}");
    assert_eq!(
        pin_status(&pcscd),
        [0x63, 0xC2],
        "after kill -9 of the relay"
    );

    // A second card with the used secret is refused, and so is one that
    // knows the relay but has another key; the first card stays served.
    let other_state = home.join("other");
    let other = home.join("other.json");
    issue(
        &other_state,
        &other,
        "other",
        &["--profile", profile.to_str().unwrap()],
    );
    let mut replayed = serve_link(&other_state, &other, &link_file);
    assert_eq!(replayed.exit_code(), Some(1));
    relay_process.expect_line("refused a link from 127.0.0.1");
    relay_process.expect_line("no such pending pairing");
    std::fs::create_dir_all(other_state.join("link")).unwrap();
    std::fs::copy(
        card_state.join("link/relays.json"),
        other_state.join("link/relays.json"),
    )
    .unwrap();
    let mut foreign = serve_link(&other_state, &other, &["--link", &address]);
    foreign.expect_line("not pinned there");
    assert_eq!(foreign.exit_code(), Some(1));
    relay_process.expect_line("unknown card key");
    assert_eq!(
        pin_status(&pcscd),
        [0x63, 0xC2],
        "the first card is still served"
    );

    // Forgotten: the live link ends at once (a removal), and the card's
    // key is refused when it comes back, so serve stops.
    let forgot = run_ok(vscard(&relay_state).args(["relay", "forget", "card"]));
    assert_eq!(forgot, "forgot card: its key is refused from now on\n");
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
    relay_process.expect_line("card card left the vpcd reader on port 35963: forgotten");
    let mut serve = serve;
    serve.expect_line("not pinned there");
    assert_eq!(serve.exit_code(), Some(1));
    relay_process.stop();
}
