//! The middleware matrix for the YubiKey 5.7 RSA sizes, on a
//! `yubikey-5.7` card through a private pcscd: OpenSC 0.23's `pkcs11-tool`
//! signs with an RSA-3072 key in 9A and `pkcs15-crypt` deciphers with an
//! RSA-3072 key in 9D; an RSA-4096 key in 9C is listed, but OpenSC 0.23's
//! PIV driver has no algorithm for 4096-bit keys and refuses to sign
//! (`CKR_FUNCTION_NOT_SUPPORTED`, before any APDU), so the card's 4096-bit
//! signature goes through PC/SC as raw APDUs. Every signature is verified
//! with `openssl` and the certificate read from the card. What OpenSC makes
//! of Ed25519 and X25519 keys is in the README (its PIV driver does not
//! know them).
//!
//! The RSA keys are the applet tests' fixed keys (no RSA-4096 generation
//! in the test); the card is issued inside the private namespaces, so its
//! certificates and CA files belong together.

// Tests fail loudly: unwrap and expect are the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::{IssuedCard, PIN, Served, card};
use der::Encode as _;
use sha2::{Digest as _, Sha256};
use vscard_applet::{Algorithm, Model, PivApplet, Slot};
use vscard_emulator::{Applet as _, CardRng};
use vscard_issuance::{
    CardProfile, CertificateValidity, Pki, SlotAlgorithms, issue_applet, issue_card_certificate,
    private_key_from_pkcs8, public_key_info,
};
use vscard_testkit::{Client, PcscCard, PcscdOptions, PrivatePcscd};
use vscard_vpcd::{Bridge, BridgeConfig};

/// 9A and 9D: RSA-3072 (the same fixed key), 9C: RSA-4096, 9E: P-256.
fn issue(dir: &std::path::Path) -> IssuedCard {
    let profile = CardProfile {
        slots: SlotAlgorithms {
            piv_authentication: Algorithm::Rsa3072,
            digital_signature: Algorithm::Rsa4096,
            key_management: Algorithm::Rsa3072,
            ..SlotAlgorithms::ALL_P256
        },
        model: Model::YubiKey57,
        ..CardProfile::demo()
    };
    let mut rng = CardRng::from_u64(5707);
    let pki = Pki::open_or_create(dir, &profile.environment, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    // Issue with P-256 everywhere (fast), then put the fixed RSA keys and
    // their certificates in 9A, 9C and 9D.
    let p256 = CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..profile.clone()
    };
    let mut applet: PivApplet =
        issue_applet(pki.sub(), &p256, validity, &mut rng, |_, _| {}).unwrap();
    let rsa3072 = include_bytes!("../../applet/tests/data/piv/rsa3072-test-key.pk8.der");
    let rsa4096 = include_bytes!("../../applet/tests/data/piv/rsa4096-test-key.pk8.der");
    let fixed: [(Slot, Algorithm, &[u8]); 3] = [
        (Slot::AUTHENTICATION, Algorithm::Rsa3072, rsa3072),
        (Slot::SIGNATURE, Algorithm::Rsa4096, rsa4096),
        (Slot::KEY_MANAGEMENT, Algorithm::Rsa3072, rsa3072),
    ];
    for (slot, algorithm, der) in fixed {
        let key = private_key_from_pkcs8(algorithm, der).unwrap();
        let info = public_key_info(&key).unwrap();
        let certificate =
            issue_card_certificate(pki.sub(), &info, &profile, slot, validity, &mut rng).unwrap();
        applet.install_key(slot, key).unwrap();
        applet.put_certificate(slot, &certificate.to_der().unwrap());
    }
    let out = dir.join("card");
    pki.export(&out).unwrap();
    IssuedCard {
        state: applet.save().unwrap(),
        root_pem: out.join("root.pem"),
        sub_pem: out.join("sub.pem"),
        state_dir: dir.to_owned(),
    }
}

/// 9A: Ed25519, 9D: X25519, P-256 in 9C and 9E (all generated).
fn issue_curve25519(dir: &std::path::Path) -> IssuedCard {
    let profile = CardProfile {
        slots: SlotAlgorithms {
            piv_authentication: Algorithm::Ed25519,
            key_management: Algorithm::X25519,
            ..SlotAlgorithms::ALL_P256
        },
        model: Model::YubiKey57,
        ..CardProfile::demo()
    };
    let mut rng = CardRng::from_u64(25519);
    let pki = Pki::open_or_create(dir, &profile.environment, &mut rng).unwrap();
    let validity = CertificateValidity::for_profile(&profile, SystemTime::now()).unwrap();
    let applet = issue_applet(pki.sub(), &profile, validity, &mut rng, |_, _| {}).unwrap();
    let out = dir.join("card");
    pki.export(&out).unwrap();
    IssuedCard {
        state: applet.save().unwrap(),
        root_pem: out.join("root.pem"),
        sub_pem: out.join("sub.pem"),
        state_dir: dir.to_owned(),
    }
}

/// The card `issue` makes (inside the private namespaces) in the private
/// pcscd's reader; `None` outside them.
fn serve(issue: fn(&std::path::Path) -> IssuedCard) -> Option<Served> {
    let pcscd =
        PrivatePcscd::enter_named(PcscdOptions::default(), vscard_testkit::DEFAULT_READER_NAME)?;
    let work = tempfile::tempdir().unwrap();
    let issued: &'static IssuedCard = Box::leak(Box::new(issue(work.path())));
    let config = BridgeConfig {
        mode: pcscd.bridge_mode(),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(vec![card(&issued.state)], config).unwrap();
    pcscd.wait_for_card(0, Duration::from_secs(5)).unwrap();
    Some(Served {
        issued,
        bridge,
        pcscd,
        work,
    })
}

fn read_certificate(served: &Served, id: &str) -> PathBuf {
    let path = served.path(&format!("cert{id}.pem"));
    served
        .tool("pkcs15-tool")
        .args(["--read-certificate", id, "--output"])
        .args([&path])
        .ok();
    served.assert_chains_to_the_pki(&path);
    path
}

/// An EMSA-PKCS1-v1_5 block of `len` bytes for the SHA-256 of `data`.
fn pkcs1v15_block(data: &[u8], len: usize) -> Vec<u8> {
    let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
    let t = [prefix, Sha256::digest(data).to_vec()].concat();
    let mut block = vec![0x00, 0x01];
    block.resize(len - t.len() - 1, 0xFF);
    block.push(0x00);
    block.extend(t);
    block
}

#[test]
fn opensc_uses_rsa_3072_and_pcsc_clients_rsa_4096() {
    let Some(served) = serve(issue) else { return };
    let objects = served.tool("pkcs11-tool").args(["--list-objects"]).ok();
    for (needle, count) in [
        ("Public Key Object; RSA 3072 bits", 2),
        ("Public Key Object; RSA 4096 bits", 1),
    ] {
        assert_eq!(objects.count(needle), count, "{needle}\n{objects}");
    }
    let data = served.write("data.txt", b"vscard 5.7 algorithms\n");
    let sign = |id: &str, out: &str| {
        let signature = served.path(out);
        let run = served
            .tool("pkcs11-tool")
            .args(["--sign", "--id", id, "--login", "--pin", PIN])
            .args(["--mechanism", "SHA256-RSA-PKCS"])
            .args(["--input-file".as_ref(), data.as_os_str()])
            .args(["--output-file".as_ref(), signature.as_os_str()])
            .run();
        (run, signature)
    };

    // 9A, RSA-3072 through OpenSC.
    let public = served.public_key_of(&read_certificate(&served, "01"));
    let (run, signature) = sign("01", "rsa3072.sig");
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(std::fs::read(&signature).unwrap().len(), 384);
    served.assert_signature(&public, &signature, &data, &[]);

    // 9C, RSA-4096: OpenSC 0.23 stops before the card.
    let (run, _) = sign("02", "rsa4096-opensc.sig");
    assert_eq!(run.code, Some(1), "{run}");
    run.stderr_has(&["C_SignFinal failed: rv = CKR_FUNCTION_NOT_SUPPORTED"]);
    // The same signature as raw APDUs through pcscd (chained command,
    // 512-byte answer through GET RESPONSE).
    let public = served.public_key_of(&read_certificate(&served, "02"));
    let mut client = Client::new(PcscCard::new(served.pcscd.connect(0).unwrap()));
    assert_eq!(client.select_piv().unwrap().sw(), 0x9000);
    assert_eq!(client.verify_pin(PIN.as_bytes()).unwrap().sw(), 0x9000);
    let block = pkcs1v15_block(b"vscard 5.7 algorithms\n", 512);
    let raw = client
        .authenticate_value(Algorithm::Rsa4096.byte(), 0x9C, 0x81, &block)
        .unwrap()
        .unwrap();
    assert_eq!(raw.len(), 512);
    let signature = served.write("rsa4096.sig", &raw);
    served.assert_signature(&public, &signature, &data, &[]);
    drop(client);

    // 9D, RSA-3072: deciphering what openssl encrypted to its certificate.
    let public = served.public_key_of(&read_certificate(&served, "03"));
    let secret = served.write("secret.txt", b"a session key, say\n");
    let encrypted = served.path("secret.enc");
    served
        .tool("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
        .args([&public])
        .args(["-in".as_ref(), secret.as_os_str()])
        .args(["-out".as_ref(), encrypted.as_os_str()])
        .ok();
    let deciphered = served.path("secret.dec");
    served
        .tool("pkcs15-crypt")
        .args(["--decipher", "--pkcs1", "--key", "03", "--pin", PIN])
        .args(["--input".as_ref(), encrypted.as_os_str()])
        .args(["--output".as_ref(), deciphered.as_os_str()])
        .ok();
    assert_eq!(served.read("secret.dec"), b"a session key, say\n");
}

/// The public key of a certificate as `openssl x509 -text` names it.
fn public_key_algorithm(served: &Served, certificate: &std::path::Path) -> String {
    let text = served
        .tool("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .args([certificate])
        .ok();
    text.stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Public Key Algorithm: "))
        .unwrap_or_else(|| panic!("no public key algorithm\n{text}"))
        .to_owned()
}

#[test]
fn ed25519_and_x25519_through_pcscd_as_openssl_computes_them() {
    let Some(served) = serve(issue_curve25519) else {
        return;
    };
    // OpenSC 0.23 shows the certificates and their public keys, but its
    // PIV driver offers no private key for them (only 9C and 9E, P-256).
    let objects = served
        .tool("pkcs11-tool")
        .args(["--list-objects", "--login", "--pin", PIN])
        .ok();
    for (needle, count) in [
        ("Certificate Object; type = X.509 cert", 4),
        ("Public Key Object; EC_EDWARDS  EC_POINT 255 bits", 1),
        ("Public Key Object; EC_MONTGOMERY  EC_POINT 255 bits", 1),
        ("Private Key Object;", 2),
    ] {
        assert_eq!(objects.count(needle), count, "{needle}\n{objects}");
    }
    let authentication = read_certificate(&served, "01");
    let key_management = read_certificate(&served, "03");
    assert_eq!(public_key_algorithm(&served, &authentication), "ED25519");
    assert_eq!(public_key_algorithm(&served, &key_management), "X25519");

    let mut client = Client::new(PcscCard::new(served.pcscd.connect(0).unwrap()));
    assert_eq!(client.select_piv().unwrap().sw(), 0x9000);
    assert_eq!(client.verify_pin(PIN.as_bytes()).unwrap().sw(), 0x9000);

    // 9A: an Ed25519 signature over the message itself, which openssl
    // verifies with the certificate's key (and not over other data).
    let message = b"vscard ed25519 through pcscd\n";
    let data = served.write("data.txt", message);
    let raw = client
        .authenticate_value(Algorithm::Ed25519.byte(), 0x9A, 0x81, message)
        .unwrap()
        .unwrap();
    assert_eq!(raw.len(), 64);
    let signature = served.write("ed25519.sig", &raw);
    let public = served.public_key_of(&authentication);
    let verify = |data: &std::path::Path| {
        served
            .tool("openssl")
            .args(["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey"])
            .args([&public])
            .args(["-sigfile".as_ref(), signature.as_os_str()])
            .args(["-in".as_ref(), data.as_os_str()])
    };
    verify(&data)
        .ok()
        .stdout_has(&["Signature Verified Successfully"]);
    let other = served.write("other.txt", b"not what the card signed");
    verify(&other).exits(1);

    // 9D: X25519 with a host key openssl made; openssl derives the same
    // secret from the certificate's key.
    let host = served.path("host.pem");
    served
        .tool("openssl")
        .args(["genpkey", "-algorithm", "X25519", "-out"])
        .args([&host])
        .ok();
    let host_public = served.path("host.pub.der");
    served
        .tool("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .args([&host])
        .args(["-out".as_ref(), host_public.as_os_str()])
        .ok();
    let host_public = served.read("host.pub.der");
    // SubjectPublicKeyInfo: a 12-byte header, then the raw 32 bytes.
    assert_eq!(host_public.len(), 44);
    let shared = client
        .authenticate_value(Algorithm::X25519.byte(), 0x9D, 0x85, &host_public[12..])
        .unwrap()
        .unwrap();
    let derived = served.path("shared.bin");
    served
        .tool("openssl")
        .args(["pkeyutl", "-derive", "-inkey"])
        .args([&host])
        .args([
            "-peerkey".as_ref(),
            served.public_key_of(&key_management).as_os_str(),
        ])
        .args(["-out".as_ref(), derived.as_os_str()])
        .ok();
    assert_eq!(shared.len(), 32);
    assert_eq!(shared, served.read("shared.bin"));
}
