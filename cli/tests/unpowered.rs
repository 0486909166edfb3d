//! A PC/SC client that leaves with "unpower card" (pyscard's default)
//! while OpenSC's PKCS#11 module holds a session on the same card: pcscd
//! 1.9.9 then sends OpenSC's next APDUs to a card it powered down. The
//! bridge gives the card an implicit cold reset first (answering `6F00`
//! made OpenSC 0.23 loop for ever in `C_Login`), so the login and a
//! signature go through, and the signature verifies with the certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Serve, issue};
use vscard_testkit::private_pcscd;
use vscard_testkit::python::python_with;

/// Opens a PyKCS11 session, lets a second client connect and leave with
/// SCARD_UNPOWER_CARD, then logs in and signs; writes the signature and
/// the 9A certificate for openssl.
const SCRIPT: &str = r#"
import os, sys
import PyKCS11
from smartcard.scard import (SCardEstablishContext, SCardListReaders, SCardConnect,
    SCardDisconnect, SCardReleaseContext, SCARD_SCOPE_USER, SCARD_SHARE_SHARED,
    SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_UNPOWER_CARD, SCARD_S_SUCCESS)

out = sys.argv[1]
lib = PyKCS11.PyKCS11Lib()
lib.load("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
slot = lib.getSlotList(tokenPresent=True)[0]
session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
print("session open", flush=True)

rv, context = SCardEstablishContext(SCARD_SCOPE_USER)
assert rv == SCARD_S_SUCCESS, rv
rv, readers = SCardListReaders(context, [])
assert rv == SCARD_S_SUCCESS, rv
rv, card, protocol = SCardConnect(context, readers[0], SCARD_SHARE_SHARED,
                                  SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1)
assert rv == SCARD_S_SUCCESS, rv
rv = SCardDisconnect(card, SCARD_UNPOWER_CARD)
assert rv == SCARD_S_SUCCESS, rv
SCardReleaseContext(context)
print("second client left with SCARD_UNPOWER_CARD", flush=True)

session.login(os.environ["VSCARD_PIN"])
key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_ID, (1,))])[0]
signature = bytes(session.sign(key, b"after unpower", PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)))
cert = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE), (PyKCS11.CKA_ID, (1,))])[0]
der = bytes(session.getAttributeValue(cert, [PyKCS11.CKA_VALUE])[0])
session.logout()
session.closeSession()
open(os.path.join(out, "data.bin"), "wb").write(b"after unpower")
open(os.path.join(out, "signature.bin"), "wb").write(signature)
open(os.path.join(out, "certificate.der"), "wb").write(der)
print("logged in and signed", flush=True)
"#;

#[test]
fn opensc_logs_in_after_another_client_unpowered_the_card() {
    let Some(pcscd) = private_pcscd() else { return };
    let Some(python) = python_with(
        "opensc_logs_in_after_another_client_unpowered_the_card",
        &["PyKCS11", "smartcard"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    issue(&state, &card, "unpowered", &[]);
    let mut args = vec![card.to_str().unwrap().to_owned(), "--trace".to_owned()];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Serve::start(&state, &args);
    pcscd.wait_for_card(0, Duration::from_secs(10)).unwrap();

    let script = dir.path().join("unpowered.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("VSCARD_PIN", "123456")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hang is the failure this test is about: give it 60 s, then kill.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("second client left with SCARD_UNPOWER_CARD"),
        "{stdout}"
    );
    let status = status.expect("the login hung after the card was unpowered");
    assert!(status.success(), "{output:?}");
    assert!(stdout.contains("logged in and signed"), "{stdout}");

    let public = Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "DER",
            "-in",
            "certificate.der",
            "-pubkey",
            "-noout",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(public.status.success(), "{public:?}");
    std::fs::write(dir.path().join("public.pem"), &public.stdout).unwrap();
    let verify = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "public.pem",
            "-signature",
            "signature.bin",
            "data.bin",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&verify.stdout).trim(),
        "Verified OK",
        "{verify:?}"
    );
    serve.stop();
}
