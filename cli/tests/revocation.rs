//! Revocation as a relying party meets it (issue 19): `vscard revoke`, the
//! CRL `export-ca` and `crl` write (checked by `openssl verify
//! -crl_check`), the CRL and OCSP URLs in the certificates (`openssl x509
//! -text`), the OCSP responder (`openssl ocsp`), and renewal's
//! `--revoke-old`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use der::EncodePem;
use support::{p256_card, run, run_ok, vscard};
use vscard_applet::Slot;
use vscard_issuance::cards::read_applet;

/// Writes the certificate of `slot` of `card` as PEM into `dir`.
fn slot_pem(card: &Path, slot: Slot, dir: &Path) -> PathBuf {
    let applet = read_applet(card).unwrap();
    let certificate = vscard_issuance::certificate(applet.state(), slot)
        .unwrap()
        .unwrap();
    let path = dir.join(format!("{slot}.pem"));
    std::fs::write(&path, certificate.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
    path
}

/// `openssl verify -crl_check` of `cert` with the exported chain and CRL.
fn verify_with_crl(ca: &Path, cert: &Path) -> std::process::Output {
    run(Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(ca.join("root.pem"))
        .arg("-untrusted")
        .arg(ca.join("sub.pem"))
        .arg("-CRLfile")
        .arg(ca.join("crl.pem"))
        .arg(cert))
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn a_revoked_certificate_fails_the_crl_check_and_the_others_pass() {
    let (dir, state, card) = p256_card("revoke-crl");
    let ca = dir.path().join("ca");
    let exported = run_ok(vscard(&state).args(["export-ca", "--out"]).arg(&ca));
    assert!(exported.contains("crl.pem"), "{exported}");
    let auth = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    let signature = slot_pem(&card, Slot::SIGNATURE, dir.path());
    for cert in [&auth, &signature] {
        let output = verify_with_crl(&ca, cert);
        assert!(output.status.success());
        assert!(stdout(&output).trim_end().ends_with(": OK"));
    }

    let revoked = run_ok(vscard(&state).arg("revoke").arg(&card).args([
        "--slot",
        "9a",
        "--reason",
        "keyCompromise",
    ]));
    assert!(
        revoked.starts_with("revoked 9A certificate ") && revoked.contains("(keyCompromise)"),
        "{revoked}"
    );
    // The exported CRL is the one from before: still good until `crl`.
    assert!(verify_with_crl(&ca, &auth).status.success());
    let written = run_ok(
        vscard(&state)
            .args(["crl", "--environment", "sandbox", "--out"])
            .arg(&ca),
    );
    assert!(written.contains(&ca.join("crl.pem").display().to_string()));
    let output = verify_with_crl(&ca, &auth);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("certificate revoked"),
        "{output:?}"
    );
    assert!(verify_with_crl(&ca, &signature).status.success());

    let text = run_ok(
        Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(ca.join("crl.pem")),
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Next Update"), "{text}");
    // export-ca made CRL 1, revoke 2, crl 3: numbers only grow.
    assert!(
        text.contains("X509v3 CRL Number: \n                3"),
        "{text}"
    );

    // A second revocation keeps the first reason.
    let again = run_ok(
        vscard(&state)
            .arg("revoke")
            .arg(&card)
            .args(["--reason", "cessationOfOperation"]),
    );
    assert!(
        again.contains("9A certificate") && again.contains("was already revoked (keyCompromise)"),
        "{again}"
    );
    assert!(again.contains("revoked 9C certificate"), "{again}");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("pki/sandbox/index.json")).unwrap(),
    )
    .unwrap();
    let entries = index["certificates"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["slot"], "9A");
    assert_eq!(entries[0]["reason"], "keyCompromise");
    assert_eq!(entries[1]["reason"], "cessationOfOperation");
    assert!(entries.iter().all(|entry| entry["status"] == "revoked"));
}

#[test]
fn bad_revocations_are_bad_input() {
    let (dir, state, card) = p256_card("revoke-bad");
    let output = run(vscard(&state)
        .arg("revoke")
        .arg(&card)
        .args(["--reason", "lost"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).contains("keyCompromise"));
    let output = run(vscard(&state)
        .arg("revoke")
        .arg(&card)
        .args(["--slot", "9b"]));
    assert_eq!(output.status.code(), Some(2));
    // Another state directory has another PKI: it cannot revoke this card.
    let other = dir.path().join("other");
    let output = run(vscard(&other).arg("revoke").arg(&card));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("no test PKI"), "{output:?}");
    let output = run(vscard(&state).args(["crl", "--environment", "integration"]));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn certificates_carry_the_environments_crl_and_ocsp_urls() {
    let (dir, state, card) = p256_card("revoke-urls");
    let auth = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&auth),
    );
    assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
    assert!(text.contains("URI:http://127.0.0.1:8090/crl.der"), "{text}");
    assert!(text.contains("OCSP - URI:http://127.0.0.1:8090/"), "{text}");

    let set = run_ok(vscard(&state).args([
        "pki",
        "config",
        "--environment",
        "sandbox",
        "--crl-url",
        "http://crl.example.test/sandbox.crl",
        "--ocsp-url",
        "http://ocsp.example.test/",
    ]));
    assert_eq!(
        set,
        "environment sandbox: CRL http://crl.example.test/sandbox.crl, OCSP http://ocsp.example.test/\n"
    );
    let output = run(vscard(&state).args(["pki", "config", "--crl-url", "ftp://x/"]));
    assert_eq!(output.status.code(), Some(2));
    run_ok(vscard(&state).arg("renew").arg(&card));
    let renewed = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&renewed),
    );
    assert!(
        text.contains("URI:http://crl.example.test/sandbox.crl"),
        "{text}"
    );
    assert!(
        text.contains("OCSP - URI:http://ocsp.example.test/"),
        "{text}"
    );
}

/// A running `vscard ocsp`, stopped (and waited for) on drop.
struct Responder {
    child: Child,
    url: String,
}

impl Responder {
    fn start(state: &Path) -> Responder {
        let mut child = vscard(state)
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
            .unwrap();
        // The line is printed once the socket is bound: the readiness
        // signal (no sleep, no port race with port 0).
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        println!("vscard ocsp| {line}");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap()
            .to_owned();
        Responder { child, url }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` from the responder (HTTP/1.0, std only): the status line and
/// the body.
fn http_get(responder: &Responder, path: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let address = responder
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, answer[split + 4..].to_vec())
}

/// `openssl ocsp` for `cert` (or `-serial`) against the responder.
fn ocsp_query(responder: &Responder, ca: &Path, target: &[&str]) -> String {
    let output = run(Command::new("openssl")
        .arg("ocsp")
        .arg("-issuer")
        .arg(ca.join("sub.pem"))
        .args(target)
        .args(["-url", &responder.url, "-CAfile"])
        .arg(ca.join("chain.pem"))
        .args(["-timeout", "10"]));
    assert!(output.status.success(), "{output:?}");
    stdout(&output)
}

#[test]
fn the_ocsp_responder_answers_good_revoked_and_unknown() {
    let (dir, state, card) = p256_card("revoke-ocsp");
    let ca = dir.path().join("ca");
    run_ok(vscard(&state).args(["export-ca", "--out"]).arg(&ca));
    let chain = [
        std::fs::read_to_string(ca.join("root.pem")).unwrap(),
        std::fs::read_to_string(ca.join("sub.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(ca.join("chain.pem"), chain).unwrap();
    let auth = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    let auth_arg = auth.to_str().unwrap();
    let responder = Responder::start(&state);

    let good = ocsp_query(&responder, &ca, &["-cert", auth_arg]);
    assert!(good.contains("Response verify OK"), "{good}");
    assert!(good.contains(&format!("{auth_arg}: good")), "{good}");
    // openssl sends a nonce and warns when it does not come back.
    assert!(!good.contains("nonce"), "{good}");

    run_ok(vscard(&state).arg("revoke").arg(&card).args([
        "--slot",
        "9A",
        "--reason",
        "cessationOfOperation",
    ]));
    let revoked = ocsp_query(&responder, &ca, &["-cert", auth_arg]);
    assert!(
        revoked.contains(&format!("{auth_arg}: revoked")),
        "{revoked}"
    );
    assert!(
        revoked.contains("Reason: cessationOfOperation"),
        "{revoked}"
    );
    assert!(revoked.contains("Revocation Time:"), "{revoked}");

    let unknown = ocsp_query(
        &responder,
        &ca,
        &["-serial", "0x4000000000000000000000000000abcd"],
    );
    assert!(unknown.contains(": unknown"), "{unknown}");

    // The CRL is served too, DER, as the distribution point says.
    let (status, body) = http_get(&responder, "/crl.der");
    assert_eq!(status, "HTTP/1.0 200 OK");
    let fetched = dir.path().join("fetched.der");
    std::fs::write(&fetched, body).unwrap();
    let text = run_ok(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&fetched),
    );
    assert!(text.contains("Cessation Of Operation"), "{text}");

    // OCSP over GET (RFC 6960 A.1.1), as Windows and NSS send small
    // requests: the same answer.
    let request = dir.path().join("request.der");
    run_ok(
        Command::new("openssl")
            .arg("ocsp")
            .arg("-issuer")
            .arg(ca.join("sub.pem"))
            .args(["-cert", auth_arg, "-no_nonce", "-reqout"])
            .arg(&request),
    );
    let encoded =
        <base64ct::Base64 as base64ct::Encoding>::encode_string(&std::fs::read(&request).unwrap())
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
    let (status, body) = http_get(&responder, &format!("/{encoded}"));
    assert_eq!(status, "HTTP/1.0 200 OK");
    let response = dir.path().join("response.der");
    std::fs::write(&response, body).unwrap();
    let output = run(Command::new("openssl")
        .arg("ocsp")
        .arg("-respin")
        .arg(&response)
        .arg("-issuer")
        .arg(ca.join("sub.pem"))
        .args(["-cert", auth_arg, "-CAfile"])
        .arg(ca.join("chain.pem")));
    let text = stdout(&output);
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!("{auth_arg}: revoked")), "{text}");
    let (status, _) = http_get(&responder, "/%%%");
    assert_eq!(status, "HTTP/1.0 400 Bad Request");
    drop(responder);
}

#[test]
fn renew_revoke_old_supersedes_and_a_cancelled_card_is_not_renewed() {
    let (dir, state, card) = p256_card("revoke-renew");
    let old = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    let old_text = std::fs::read_to_string(&old).unwrap();
    std::fs::rename(&old, dir.path().join("old.pem")).unwrap();
    let renewed = run_ok(vscard(&state).arg("renew").arg(&card).arg("--revoke-old"));
    assert!(
        renewed
            .trim_end()
            .ends_with("; the old certificates are revoked as superseded"),
        "{renewed}"
    );
    let ca = dir.path().join("ca");
    run_ok(vscard(&state).args(["export-ca", "--out"]).arg(&ca));
    let output = verify_with_crl(&ca, &dir.path().join("old.pem"));
    assert!(
        stdout(&output).contains("certificate revoked"),
        "{output:?}"
    );
    let new = slot_pem(&card, Slot::AUTHENTICATION, dir.path());
    assert_ne!(std::fs::read_to_string(&new).unwrap(), old_text);
    assert!(verify_with_crl(&ca, &new).status.success());
    let crl = run_ok(
        Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(ca.join("crl.pem")),
    );
    assert_eq!(crl.matches("Superseded").count(), 4, "{crl}");

    run_ok(
        vscard(&state)
            .arg("revoke")
            .arg(&card)
            .args(["--reason", "cessationOfOperation"]),
    );
    let output = run(vscard(&state).arg("renew").arg(&card));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).contains("revoked (cessationOfOperation)"),
        "{output:?}"
    );
    assert!(stdout(&output).contains("issue a new card"), "{output:?}");
}

#[test]
fn an_expiring_soon_card_is_inside_the_renewal_window_until_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("soon.json");
    let profile = support::p256_profile(dir.path());
    support::issue(
        &state,
        &card,
        "soon",
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--state",
            "expiring-soon",
        ],
    );
    let text = run_ok(vscard(&state).arg("inspect").arg(&card));
    assert!(
        text.ends_with(
            "renewal:      DUE (60-day window): 9A ends in 29 days, 9C ends in 29 days, \
             9D ends in 29 days, 9E ends in 29 days\n"
        ),
        "{text}"
    );
    let narrow = run_ok(
        vscard(&state)
            .arg("inspect")
            .arg(&card)
            .args(["--renewal-window", "29"]),
    );
    assert!(
        narrow.ends_with("renewal:      not due (29-day window)\n"),
        "{narrow}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_ok(
        vscard(&state).arg("inspect").arg(&card).arg("--json"),
    ))
    .unwrap();
    assert_eq!(json["renewal"]["window_days"], 60);
    assert_eq!(json["renewal"]["due"][0]["slot"], "9A");
    assert_eq!(json["renewal"]["due"][0]["days_left"], 29);
    assert_eq!(json["renewal"]["due"].as_array().unwrap().len(), 4);

    run_ok(vscard(&state).arg("renew").arg(&card));
    let renewed = run_ok(vscard(&state).arg("inspect").arg(&card));
    assert!(
        renewed.ends_with("renewal:      not due (60-day window)\n"),
        "{renewed}"
    );
    // An expired card is due too.
    let old = dir.path().join("old.json");
    support::issue(
        &state,
        &old,
        "old",
        &["--profile", profile.to_str().unwrap(), "--state", "expired"],
    );
    let text = run_ok(vscard(&state).arg("inspect").arg(&old));
    assert!(
        text.contains("9A ended 1 day ago, 9C ended 1 day ago"),
        "{text}"
    );
}

#[test]
fn a_windows_logon_profile_puts_the_upn_in_the_9a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = support::p256_profile(dir.path());
    let mut text = std::fs::read_to_string(&profile).unwrap();
    text.push_str("\n[windows_logon]\nupn = \"pat.example@example.nhs.uk\"\n");
    let logon = dir.path().join("logon.toml");
    std::fs::write(&logon, text).unwrap();
    let card = dir.path().join("logon.json");
    support::issue(
        &state,
        &card,
        "logon",
        &["--profile", logon.to_str().unwrap()],
    );
    let x509_text = |pem: &Path| {
        run_ok(
            Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(pem),
        )
    };
    let auth = x509_text(&slot_pem(&card, Slot::AUTHENTICATION, dir.path()));
    for expected in [
        "X509v3 Extended Key Usage: \n                TLS Web Client Authentication, Microsoft Smartcard Login",
        "X509v3 Key Usage: critical\n                Digital Signature",
        "X509v3 Subject Alternative Name: \n                othername: UPN::pat.example@example.nhs.uk",
        "X509v3 CRL Distribution Points",
    ] {
        assert!(auth.contains(expected), "{expected:?} not in {auth}");
    }
    // Only 9A is the logon certificate.
    let signature = x509_text(&slot_pem(&card, Slot::SIGNATURE, dir.path()));
    assert!(!signature.contains("UPN"), "{signature}");
    // Renewal keeps it.
    run_ok(vscard(&state).arg("renew").arg(&card).arg("--new-keys"));
    let renewed = x509_text(&slot_pem(&card, Slot::AUTHENTICATION, dir.path()));
    assert!(
        renewed.contains("othername: UPN::pat.example@example.nhs.uk"),
        "{renewed}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&logon)
            .unwrap()
            .replace("pat.example@example.nhs.uk", "pat example"),
    )
    .unwrap();
    let output = run(vscard(&state)
        .args(["issue", "--out"])
        .arg(dir.path().join("bad.json"))
        .arg("--profile")
        .arg(&bad));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).contains("windows_logon.upn: must be a User Principal Name"),
        "{output:?}"
    );
}
