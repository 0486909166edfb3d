//! OCSP: responses per second from `vscard ocsp` against `openssl ocsp`
//! as a responder on the same index, in the same run.
//!
//! One PKI with a P-256 card recorded in its index (one certificate
//! revoked); its index is also written as an OpenSSL CA database
//! (`index.txt`), and both responders sign with the same delegated
//! responder certificate. The client sends the same request (one CertID,
//! made by `openssl ocsp -reqout`) to each in turn, one HTTP/1.0 POST per
//! TCP connection (the one mode both servers have), and checks that both
//! answer `good`: once without a nonce (vscard then gives its signed
//! answer again, as RFC 5019 lets a responder; OpenSSL signs each time),
//! once with one (both sign every answer). `openssl ocsp -port` listens on every
//! interface, so this harness runs only inside the private network
//! namespace of the pcscd harness; `vscard ocsp` must have been built
//! beside `vscard-bench` (`cargo build --release -p vscard`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use der::Decode;
use vscard_issuance::revocation::ocsp::{
    BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus,
};
use vscard_issuance::revocation::{CertificateIndex, CertificateStatus, RevocationReason};
use vscard_issuance::{CardProfile, CertificateValidity, Environment, Pki, SlotAlgorithms};

use crate::measure::{self, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, io_error};

/// A child process, killed and waited for on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn issuance(error: impl std::fmt::Display) -> BenchError {
    BenchError::Issuance(error.to_string())
}

/// `2028-12-03T09:01:45Z` as OpenSSL's database writes times,
/// `281203090145Z`.
fn openssl_time(rfc3339: &str) -> String {
    let digits: String = rfc3339.chars().filter(char::is_ascii_digit).collect();
    format!("{}Z", digits.get(2..).unwrap_or_default())
}

/// The index as an OpenSSL CA database (`ca(1)`'s `index.txt`):
/// flag, expiry, revocation (time and reason), serial, file, subject.
fn openssl_index(index: &CertificateIndex) -> String {
    let mut text = String::new();
    for entry in &index.certificates {
        let expiry = openssl_time(&entry.not_after);
        let (flag, revoked) = match &entry.status {
            CertificateStatus::Valid => ("V", String::new()),
            CertificateStatus::Revoked { revoked_at, reason } => {
                let name = match reason {
                    RevocationReason::CaCompromise => "CACompromise",
                    other => other.name(),
                };
                ("R", format!("{},{name}", openssl_time(revoked_at)))
            }
        };
        // Subjects must be unique (`unique_subject`, on by default).
        text.push_str(&format!(
            "{flag}\t{expiry}\t{revoked}\t{serial}\tunknown\t/CN=vscard bench {serial}\n",
            serial = entry.serial
        ));
    }
    text
}

/// POSTs `request` to `address` (one connection) and returns the body.
fn post(address: SocketAddr, request: &[u8]) -> Result<Vec<u8>, BenchError> {
    let failed = io_error(format!("OCSP request to {address}"));
    let mut stream = TcpStream::connect(address).map_err(io_error(format!("connect {address}")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io_error("socket timeout"))?;
    let head = format!(
        "POST / HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
        request.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(request);
    let mut answer = Vec::with_capacity(1024);
    let result = stream
        .write_all(&message)
        .and_then(|()| stream.read_to_end(&mut answer));
    result.map_err(failed)?;
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| BenchError::Openssl(format!("{address}: no HTTP answer")))?;
    if !answer.starts_with(b"HTTP/1.0 200") && !answer.starts_with(b"HTTP/1.1 200") {
        return Err(BenchError::Openssl(format!("{address}: not 200 OK")));
    }
    Ok(answer.split_off(split + 4))
}

/// Checks that `body` is a successful OCSP response saying `good`.
fn assert_good(who: &str, body: &[u8]) -> Result<(), BenchError> {
    let bad = |why: String| BenchError::Openssl(format!("{who}: {why}"));
    let response = OcspResponse::from_der(body).map_err(|e| bad(e.to_string()))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(bad(format!("{:?}", response.response_status)));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| bad("no response bytes".into()))?;
    let basic =
        BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(|e| bad(e.to_string()))?;
    match basic.tbs_response_data.responses.first() {
        Some(single) if matches!(single.cert_status, CertStatus::Good(_)) => Ok(()),
        other => Err(bad(format!("not good: {other:?}"))),
    }
}

fn start_vscard(vscard: &Path, state: &Path) -> Result<(Server, SocketAddr), BenchError> {
    let mut child = Command::new(vscard)
        .arg("--state-dir")
        .arg(state)
        .args([
            "ocsp",
            "--environment",
            "sandbox",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io_error(format!("running {}", vscard.display())))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(io_error("vscard ocsp output"))?;
    }
    let server = Server(child);
    let address = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .ok_or_else(|| BenchError::Openssl(format!("vscard ocsp said {line:?}")))?;
    Ok((server, address))
}

fn start_openssl(pki: &Pki, work: &Path) -> Result<(Server, SocketAddr), BenchError> {
    let free = TcpListener::bind("127.0.0.1:0").map_err(io_error("a free port"))?;
    let address = free.local_addr().map_err(io_error("a free port"))?;
    drop(free);
    let dir = pki.directory();
    let mut child = Command::new("openssl")
        .current_dir(work)
        .args(["ocsp", "-index", "index.txt", "-CA", "sub.pem", "-rsigner"])
        .arg(dir.join(vscard_issuance::revocation::store::RESPONDER_CERT_FILE))
        .arg("-rkey")
        .arg(dir.join(vscard_issuance::revocation::store::RESPONDER_KEY_FILE))
        .args(["-ignore_err", "-port", &address.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error("running openssl ocsp"))?;
    // Readiness: it says so on stderr once it listens (a probe connection
    // would hold the single-threaded responder).
    let stderr = child.stderr.take();
    let server = Server(child);
    let mut lines =
        BufReader::new(stderr.ok_or_else(|| BenchError::Openssl("no stderr".into()))?).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("waiting for OCSP client connections") => break,
            Some(Ok(_)) => {}
            _ => return Err(BenchError::Openssl("openssl ocsp did not start".into())),
        }
    }
    // Keep draining, so a full pipe never blocks it.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((server, address))
}

/// A request for `serial` (one CertID, SHA-1 as `openssl ocsp` makes
/// it), with or without a nonce.
fn make_request(work: &Path, serial: &str, nonce: bool) -> Result<Vec<u8>, BenchError> {
    let name = if nonce { "nonce.der" } else { "plain.der" };
    let status = Command::new("openssl")
        .current_dir(work)
        .args(["ocsp", "-issuer", "sub.pem", "-serial"])
        .arg(format!("0x{serial}"))
        .arg(if nonce { "-nonce" } else { "-no_nonce" })
        .args(["-reqout", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(io_error("openssl ocsp -reqout"))?;
    if !status.success() {
        return Err(BenchError::Openssl(format!("ocsp -reqout: {status}")));
    }
    std::fs::read(work.join(name)).map_err(io_error("request"))
}

/// The OCSP table, or `None` when `vscard` was not built beside this
/// program.
pub fn run(budget: Duration) -> Result<Option<Section>, BenchError> {
    let exe = std::env::current_exe().map_err(io_error("finding vscard-bench"))?;
    let vscard = exe.with_file_name("vscard");
    if !vscard.exists() {
        return Ok(None);
    }
    let work = tempfile::tempdir().map_err(io_error("temporary folder"))?;
    let state = work.path().join("state");
    let mut rng = vscard_emulator::CardRng::from_u64(19);
    let pki = Pki::open_or_create(&state, &Environment::Sandbox, &mut rng).map_err(issuance)?;
    let profile = CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..CardProfile::demo()
    };
    let now = SystemTime::now();
    let validity = CertificateValidity::years_from(now, 2).map_err(issuance)?;
    let issued = vscard_issuance::issue_card(pki.sub(), &profile, validity, &mut rng, |_, _| {})
        .map_err(issuance)?;
    pki.record_issued(
        &work.path().join("card.json"),
        issued.iter().map(|slot| (slot.slot, &slot.certificate)),
    )
    .map_err(issuance)?;
    let index = pki
        .update_index(|index| {
            if let Some(entry) = index.certificates.get(1).map(|e| e.serial.clone()) {
                index.revoke(&entry, now, RevocationReason::KeyCompromise)?;
            }
            Ok(index.clone())
        })
        .map_err(issuance)?;
    pki.ocsp_responder(now).map_err(issuance)?;
    pki.export(work.path()).map_err(issuance)?;
    std::fs::write(work.path().join("index.txt"), openssl_index(&index))
        .map_err(io_error("index.txt"))?;
    let serial = index
        .certificates
        .first()
        .map(|entry| entry.serial.clone())
        .ok_or_else(|| issuance("empty index"))?;
    let plain = make_request(work.path(), &serial, false)?;
    let with_nonce = make_request(work.path(), &serial, true)?;

    let (_ours, ours_at) = start_vscard(&vscard, &state)?;
    let (_theirs, theirs_at) = start_openssl(&pki, work.path())?;
    let mut section = Section::new("7. OCSP", "vscard / OpenSSL (higher is better)");
    for (request, what, goal) in [
        (
            &plain,
            "OCSP responses per second, no nonce (vscard gives its signed answer again, RFC 5019 2.2.1)",
            Goal::AtLeast(1.0),
        ),
        (
            &with_nonce,
            "OCSP responses per second, with a nonce (both sign every answer)",
            Goal::None,
        ),
    ] {
        assert_good("vscard ocsp", &post(ours_at, request)?)?;
        assert_good("openssl ocsp", &post(theirs_at, request)?)?;
        let (ours, theirs) = measure::run_pair(
            budget,
            20,
            || post(ours_at, request).map(drop),
            || post(theirs_at, request).map(drop),
        )?;
        section.rows.push(Row::new(
            what,
            rate(ours.per_second()),
            format!("`openssl ocsp` responder: {}", rate(theirs.per_second())),
            ratio(ours.per_second(), theirs.per_second()),
            goal,
        ));
    }
    Ok(Some(section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_index_lines_are_openssls() {
        assert_eq!(openssl_time("2028-12-03T09:01:45Z"), "281203090145Z");
        let mut index = CertificateIndex::default();
        index
            .certificates
            .push(vscard_issuance::revocation::IndexEntry {
                serial: "40AB".into(),
                subject: "CN=x".into(),
                slot: "9A".into(),
                card: "c".into(),
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2028-01-01T00:00:00Z".into(),
                status: CertificateStatus::Revoked {
                    revoked_at: "2027-02-03T04:05:06Z".into(),
                    reason: RevocationReason::CaCompromise,
                },
            });
        assert_eq!(
            openssl_index(&index),
            "R\t280101000000Z\t270203040506Z,CACompromise\t40AB\tunknown\t/CN=vscard bench 40AB\n"
        );
    }
}
