//! Mutual TLS with the card, as a relying party does it (issue 19 item
//! 5): `openssl s_server -Verify` with the environment's CA bundle and
//! `-crl_check` accepts the card holder, whose client key is used through
//! OpenSC's PKCS#11 module (`openssl s_client` with the pkcs11 engine,
//! through a private pcscd), and sees the subject with the user ID; it
//! refuses the card once its certificate is revoked, and refuses it
//! expired (the relying party's clock, `-attime`, past the certificate's
//! end). The relying party's OCSP check of the same certificate (`openssl
//! ocsp` request and verification, the environment's responder answering)
//! says good, then revoked.

// Tests fail loudly: unwrap and expect are the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use common::{PIN, Served, UUID, serve};
use der::EncodePem;
use vscard_applet::{PivApplet, Slot};
use vscard_issuance::revocation::RevocationReason;
use vscard_issuance::{Environment, Pki};

/// The port `s_server` listens on (the test has a network namespace of
/// its own, so no other process holds it).
const PORT: &str = "4433";

/// A running `openssl s_server`, killed (and waited for) on drop; its
/// output lines arrive on a channel.
struct TlsServer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl TlsServer {
    /// Starts `s_server` verifying client certificates with `verify`
    /// options, and waits until it accepts connections.
    fn start(served: &Served, verify: &[&str]) -> TlsServer {
        let mut child = Command::new("openssl")
            .current_dir(served.work.path())
            .env("HOME", served.work.path())
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{PORT}"),
                "-naccept",
                "1",
            ])
            .args(["-cert", "server.pem", "-key", "server.key", "-Verify", "2"])
            .args(["-CAfile", "chain.pem", "-tls1_2", "-verify_return_error"])
            .args(verify)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    println!("s_server| {line}");
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let server = TlsServer { child, lines };
        server.wait_for("ACCEPT");
        server
    }

    /// Waits (up to 20 s) for a line containing `text`; returns every
    /// line seen until then.
    fn wait_for(&self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("s_server printed no {text:?}; saw {seen:?}"),
            }
        }
    }

    /// Every line printed until the server exits.
    fn rest(mut self) -> String {
        let _ = self.child.stdin.take();
        let _ = self.child.wait();
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_client` with the card's 9A key through the pkcs11 engine
/// (libp11 -> p11-kit -> OpenSC -> pcscd -> vpcd -> the card) and its
/// certificate. TLS 1.2: there the server's refusal ends the handshake,
/// so the client's exit code says it too (under TLS 1.3 the client has
/// finished before the server judges its certificate; the card works
/// there as well).
fn connect(served: &Served) -> common::Run {
    served
        .tool("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{PORT}")])
        .args(["-engine", "pkcs11", "-keyform", "engine", "-key"])
        .args([format!(
            "pkcs11:object=PIV%20AUTH%20key;type=private;pin-value={PIN}"
        )])
        .args(["-cert", "card.pem", "-tls1_2"])
        .args(["-CAfile", "server.pem", "-verify_return_error"])
        .run()
}

/// The work files: the relying party's own key and certificate, the CA
/// bundle, the card's 9A certificate and the current CRL.
fn relying_party(served: &Served) -> (Pki, PathBuf) {
    served
        .tool("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-keyout", "server.key", "-out", "server.pem"])
        .args(["-subj", "/CN=relying party", "-days", "1"])
        .ok();
    let chain = [
        std::fs::read_to_string(&served.issued.root_pem).unwrap(),
        std::fs::read_to_string(&served.issued.sub_pem).unwrap(),
    ]
    .concat();
    served.write("chain.pem", chain);
    let applet = PivApplet::from_saved(&served.issued.state).unwrap();
    let certificate = vscard_issuance::certificate(applet.state(), Slot::AUTHENTICATION)
        .unwrap()
        .unwrap();
    let card = served.write(
        "card.pem",
        certificate.to_pem(der::pem::LineEnding::LF).unwrap(),
    );
    // The fixture's PKI is shared by every test of this binary: work on a
    // copy, so revoking here changes nothing elsewhere.
    let state = served.path("state");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&served.issued.state_dir)
        .arg(&state)
        .status()
        .unwrap();
    assert!(copied.success());
    let pki = Pki::open(&state, &Environment::Sandbox).unwrap();
    write_crl(served, &pki);
    (pki, card)
}

fn write_crl(served: &Served, pki: &Pki) {
    let crl = pki.make_crl(SystemTime::now()).unwrap();
    pki.write_crl(&served.path("crl.pem"), &crl, 0o644).unwrap();
}

/// The relying party's OCSP check of the client certificate: `openssl
/// ocsp` makes the request and checks the answer (signature, responder
/// certificate, status), which the environment's responder gives. No
/// nonce: `-respin` has no request to compare one with (the CLI tests
/// check nonces over HTTP).
fn ocsp_status(served: &Served, pki: &Pki) -> String {
    let sub = served.issued.sub_pem.as_os_str();
    served
        .tool("openssl")
        .args(["ocsp".as_ref(), "-issuer".as_ref(), sub])
        .args(["-cert", "card.pem", "-no_nonce", "-reqout", "request.der"])
        .ok();
    let now = SystemTime::now();
    let answer = pki.ocsp_responder(now).unwrap().respond(
        &served.read("request.der"),
        &pki.index().unwrap(),
        now,
    );
    served.write("response.der", answer);
    let run = served
        .tool("openssl")
        .args(["ocsp", "-respin", "response.der", "-issuer"])
        .args([sub])
        .args(["-cert", "card.pem", "-no_nonce", "-CAfile", "chain.pem"])
        .ok();
    assert!(run.stderr.contains("Response verify OK"), "{run}");
    run.stdout
}

fn not_after(card: &Path) -> String {
    let text = std::fs::read_to_string(card).unwrap();
    let certificate = <x509_cert::Certificate as der::DecodePem>::from_pem(text).unwrap();
    let end = certificate
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time();
    let seconds = end
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (seconds + 24 * 60 * 60).to_string()
}

#[test]
fn a_relying_party_accepts_the_card_over_mutual_tls_and_refuses_it_revoked_or_expired() {
    let Some(served) = serve() else { return };
    let (pki, card) = relying_party(&served);
    let crl_check = ["-crl_check", "-CRL", "crl.pem"];

    // Accepted: the handshake completes and the server shows the holder.
    let server = TlsServer::start(&served, &crl_check);
    let client = connect(&served);
    assert_eq!(client.code, Some(0), "{client}");
    let seen = server.rest();
    assert!(seen.contains(&format!("serialNumber = {UUID}")), "{seen}");
    assert!(seen.contains("CN = Sample Specimen"), "{seen}");
    assert!(!seen.contains("verify error"), "{seen}");
    assert!(ocsp_status(&served, &pki).starts_with("card.pem: good\n"));

    // Expired: the same card, at a time after its certificate ended.
    let end = not_after(&card);
    let server = TlsServer::start(&served, &["-attime", &end]);
    let client = connect(&served);
    assert_ne!(client.code, Some(0), "{client}");
    let seen = server.rest();
    assert!(seen.contains("certificate has expired"), "{seen}");

    // Revoked: the issuer revokes it and publishes a new CRL.
    let applet = PivApplet::from_saved(&served.issued.state).unwrap();
    let certificate = vscard_issuance::certificate(applet.state(), Slot::AUTHENTICATION)
        .unwrap()
        .unwrap();
    let serial = vscard_issuance::revocation::serial_hex(&certificate);
    pki.update_index(|index| {
        index
            .revoke(&serial, SystemTime::now(), RevocationReason::KeyCompromise)
            .map_err(vscard_issuance::PkiError::from)
    })
    .unwrap()
    .unwrap();
    write_crl(&served, &pki);
    let server = TlsServer::start(&served, &crl_check);
    let client = connect(&served);
    assert_ne!(client.code, Some(0), "{client}");
    let seen = server.rest();
    assert!(seen.contains("certificate revoked"), "{seen}");
    let status = ocsp_status(&served, &pki);
    assert!(status.starts_with("card.pem: revoked\n"), "{status}");
    assert!(status.contains("Reason: keyCompromise"), "{status}");
}
