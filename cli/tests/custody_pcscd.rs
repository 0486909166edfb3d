//! A card whose four keys are in a SoftHSM2 token (`vscard issue --custody
//! pkcs11`), served to a private pcscd (see `vscard_testkit::pcscd`) and
//! used by the real middleware: OpenSC PKCS#11 signatures verified with
//! openssl and the certificates' public keys, `pkcs15-crypt` deciphering,
//! `yubico-piv-tool` generating a new key (made in the token, the old one
//! destroyed). `pkcs11-tool` on the token shows each private key sensitive
//! and never extractable; the card image and its journal hold no private
//! key (a software-custody control card does); a wrong token PIN makes
//! signatures fail while the card's PIN counter stays.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Serve, issue, run_ok, sign_and_verify, success, tool_in, vscard};
use vscard_testkit::softhsm::SoftHsm;
use vscard_testkit::{PcscdOptions, PrivatePcscd, private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
const READER: &str = "Virtual PCD";

/// Every file of the card (image, journal, lock) as bytes.
fn card_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.starts_with("card"))
        })
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn mentions(files: &[(PathBuf, Vec<u8>)], needle: &str) -> bool {
    files
        .iter()
        .any(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// The private key objects in `pkcs11-tool -O`'s listing, one block each.
fn private_keys(listing: &str) -> Vec<String> {
    listing
        .split("Private Key Object")
        .skip(1)
        .map(|block| {
            block
                .split("Public Key Object")
                .next()
                .unwrap_or(block)
                .to_owned()
        })
        .collect()
}

/// PIN tries left through PC/SC (VERIFY without data).
fn pin_status(pcscd: &PrivatePcscd) -> Vec<u8> {
    let card = pcscd.connect(0).unwrap();
    let select = transmit(&card, &SELECT_PIV).unwrap();
    assert_eq!(select[select.len() - 2..], [0x90, 0x00]);
    transmit(&card, &[0x00, 0x20, 0x00, 0x80]).unwrap()
}

#[test]
fn a_card_whose_keys_are_in_softhsm_works_with_the_middleware() {
    let Some(pcscd) = private_pcscd() else { return };
    let hsm = SoftHsm::new("cards").unwrap();
    let pin_file = hsm.pin_file().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card_dir = dir.path().join("card");
    std::fs::create_dir(&card_dir).unwrap();
    let card = card_dir.join("card.json");
    let card_path = card.clone();
    let conf = hsm.conf();
    let env: [(&str, &OsStr); 1] = [("SOFTHSM2_CONF", conf.as_os_str())];
    // yubikey-5.4: Debian 12's yubico-piv-tool speaks 3DES management keys.
    run_ok(
        vscard(&state)
            .envs(env)
            .args(["issue", "--model", "yubikey-5.4", "--out"])
            .arg(&card)
            .args(["--custody", "pkcs11", "--pkcs11-module"])
            .arg(hsm.module())
            .args(["--pkcs11-token", "cards", "--pkcs11-pin-file"])
            .arg(&pin_file),
    );
    let inspect = run_ok(vscard(&state).arg("inspect").arg(&card));
    for slot in ["9A", "9C", "9D", "9E"] {
        assert!(
            inspect.contains(&format!(
                "key {slot}: pkcs11 token cards id vscard/000123456789-"
            )),
            "{inspect}"
        );
    }

    // (b) the token: four private keys, each sensitive, never extractable.
    let listing = hsm.list_objects().unwrap();
    let keys = private_keys(&listing);
    assert_eq!(keys.len(), 4, "{listing}");
    for key in &keys {
        assert!(key.contains("never extractable"), "{key}");
        assert!(key.contains("sensitive"), "{key}");
    }

    let mut args = vec![card.to_str().unwrap().to_owned()];
    args.extend(pcscd.serve_args());
    args.extend([
        "--pkcs11-pin-file".to_owned(),
        pin_file.to_str().unwrap().to_owned(),
        "--pkcs11-module".to_owned(),
        hsm.module().to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Serve::start_with_env(&state, &args, &env);
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();

    // (a) OpenSC signatures, checked by openssl with the certificates' keys.
    let work = dir.path();
    std::fs::write(work.join("data.txt"), b"a clinical record\n").unwrap();
    std::fs::write(work.join("other.txt"), b"another record\n").unwrap();
    sign_and_verify(work, "01", "SHA256-RSA-PKCS");
    sign_and_verify(work, "01", "RSA-PKCS");
    sign_and_verify(work, "02", "ECDSA-SHA256");
    sign_and_verify(work, "04", "ECDSA-SHA256");

    // pkcs15-crypt deciphers, with 9D, what openssl encrypted to 9D's
    // certificate.
    let pem = success(tool_in(work, "pkcs15-tool", &["--read-certificate", "03"]));
    let begin = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    std::fs::write(work.join("km.pem"), &pem[begin..]).unwrap();
    let public = success(tool_in(
        work,
        "openssl",
        &["x509", "-in", "km.pem", "-pubkey", "-noout"],
    ));
    std::fs::write(work.join("km.pub"), public).unwrap();
    std::fs::write(work.join("secret.txt"), b"a session key, say\n").unwrap();
    success(tool_in(
        work,
        "openssl",
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "km.pub",
            "-in",
            "secret.txt",
            "-out",
            "secret.enc",
        ],
    ));
    success(tool_in(
        work,
        "pkcs15-crypt",
        &[
            "--decipher",
            "--pkcs1",
            "--key",
            "03",
            "--pin",
            "123456",
            "--input",
            "secret.enc",
            "--output",
            "secret.out",
        ],
    ));
    assert_eq!(
        std::fs::read(work.join("secret.out")).unwrap(),
        b"a session key, say\n"
    );

    // yubico-piv-tool generates a new 9E key: in the token, and the old
    // one destroyed once the card committed the new one.
    let before = private_keys(&hsm.list_objects().unwrap());
    let generated = success(tool_in(
        work,
        "yubico-piv-tool",
        &[
            "-r",
            READER,
            "-a",
            "generate",
            "-s",
            "9e",
            "-A",
            "ECCP256",
            "-o",
            "new9e.pem",
        ],
    ));
    println!("{generated}");
    let after = private_keys(&hsm.list_objects().unwrap());
    assert_eq!(after.len(), 4, "{after:?}");
    assert_ne!(before, after, "the 9E key was replaced in the token");
    let status = success(tool_in(
        work,
        "yubico-piv-tool",
        &["-r", READER, "-a", "status"],
    ));
    println!("{status}");
    assert_eq!(pin_status(&pcscd)[..], [0x63, 0xC3]);
    serve.stop();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();

    // (c) no private key in the image or its journal; a software card has
    // them (the check can find them).
    let files = card_files(&card_dir);
    assert!(!files.is_empty());
    for needle in ["pkcs8", "PRIVATE KEY", "private_key"] {
        assert!(!mentions(&files, needle), "{needle} in the card's files");
    }
    // The image: certificates, references and public keys (a software
    // card of the same profile is larger by its four PKCS#8 keys).
    let image = std::fs::metadata(&card).unwrap().len();
    assert!(image < 16_000, "{image} bytes");
    let control_dir = dir.path().join("control");
    std::fs::create_dir(&control_dir).unwrap();
    let control = control_dir.join("card.json");
    issue(&state, &control, "control", &["--model", "yubikey-5.4"]);
    assert!(mentions(&card_files(&control_dir), "pkcs8"));
    let software = std::fs::metadata(&control).unwrap().len();
    assert!(software > image + 2_000, "{software} vs {image} bytes");

    // (e) a wrong token PIN: the key operations fail, the card's PIN
    // counter and the rest of the card do not change.
    let wrong = dir.path().join("wrong.pin");
    std::fs::write(&wrong, "999999\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut args = vec![card.to_str().unwrap().to_owned()];
    args.extend(pcscd.serve_args());
    args.extend([
        "--pkcs11-pin-file".to_owned(),
        wrong.to_str().unwrap().to_owned(),
        "--pkcs11-module".to_owned(),
        hsm.module().to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start_with_env(&state, &args, &env);
    // Said at start, loudly: the login is tried once and not again.
    let notice = serve.expect_line("key operations answer 6F00");
    assert!(notice.contains("login to token cards refused"), "{notice}");
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    let signed = tool_in(
        work,
        "pkcs11-tool",
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "--id",
            "02",
            "-m",
            "ECDSA-SHA256",
            "-i",
            "data.txt",
            "-o",
            "refused.sig",
        ],
    );
    assert!(!signed.status.success());
    let card = pcscd.connect(0).unwrap();
    transmit(&card, &SELECT_PIV).unwrap();
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    assert_eq!(transmit(&card, &verify).unwrap(), [0x90, 0x00]);
    // GENERAL AUTHENTICATE 9E P-256 over a digest: 6F00.
    let mut sign = vec![
        0x00, 0x87, 0x11, 0x9E, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
    ];
    sign.extend([0x42; 32]);
    sign.push(0x00);
    assert_eq!(transmit(&card, &sign).unwrap(), [0x6F, 0x00]);
    assert_eq!(
        transmit(&card, &[0x00, 0x20, 0x00, 0x80]).unwrap(),
        [0x90, 0x00]
    );
    let get_ccc = [
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x07, 0x00,
    ];
    let ccc = transmit(&card, &get_ccc).unwrap();
    assert_eq!(ccc[ccc.len() - 2..], [0x90, 0x00]);
    drop(card);
    assert_eq!(pin_status(&pcscd)[..], [0x63, 0xC3]);
    serve.stop();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();

    // No token PIN at all: the card is served all the same, says why its
    // keys are unusable, and answers 6F00 to a key operation.
    let module = hsm.module().to_str().unwrap().to_owned();
    let mut args = vec![card_path.to_str().unwrap().to_owned()];
    args.extend(pcscd.serve_args());
    args.extend(["--pkcs11-module".to_owned(), module.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start_with_env(&state, &args, &env);
    let notice = serve.expect_line("key operations answer 6F00");
    assert!(notice.contains("VSCARD_PKCS11_PIN"), "{notice}");
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    let card = pcscd.connect(0).unwrap();
    transmit(&card, &SELECT_PIV).unwrap();
    assert_eq!(transmit(&card, &verify).unwrap(), [0x90, 0x00]);
    assert_eq!(transmit(&card, &sign).unwrap(), [0x6F, 0x00]);
    drop(card);
    serve.stop();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();

    // The module comes from the operator, never from the image: a card
    // whose image names another module (here a copy of SoftHSM2, which
    // would work if loaded) is served, that module is not loaded, and its
    // key operations answer 6F00; without --pkcs11-module, the same.
    let copy = dir.path().join("other-module.so");
    std::fs::copy(hsm.module(), &copy).unwrap();
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = other_dir.join("card.json");
    run_ok(
        vscard(&state)
            .envs(env)
            .args(["issue", "--model", "yubikey-5.4", "--out"])
            .arg(&other)
            .args(["--custody", "pkcs11", "--pkcs11-module"])
            .arg(&copy)
            .args(["--pkcs11-token", "cards", "--pkcs11-pin-file"])
            .arg(&pin_file),
    );
    let first_card = card_path.clone();
    let card_path = other;
    for extra in [
        vec!["--pkcs11-module", &module],
        vec![
            "--pkcs11-module",
            copy.to_str().unwrap(),
            "--pkcs11-module",
            &module,
        ],
        vec![],
    ] {
        let with_copy = extra.len() == 4;
        let mut args = vec![card_path.to_str().unwrap().to_owned()];
        args.extend(pcscd.serve_args());
        args.extend([
            "--pkcs11-pin-file".to_owned(),
            pin_file.to_str().unwrap().to_owned(),
        ]);
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut serve = Serve::start_with_env(&state, &args, &env);
        if !with_copy {
            let notice = serve.expect_line("key operations answer 6F00");
            assert!(
                notice.contains("was not given with --pkcs11-module"),
                "{notice}"
            );
            assert!(notice.contains("other-module.so"), "{notice}");
        }
        pcscd.wait_for_card(0, 5 * SECOND).unwrap();
        let card = pcscd.connect(0).unwrap();
        transmit(&card, &SELECT_PIV).unwrap();
        assert_eq!(transmit(&card, &verify).unwrap(), [0x90, 0x00]);
        let answer = transmit(&card, &sign).unwrap();
        if with_copy {
            // The operator named the copy: it is loaded, and it works.
            assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
        } else {
            assert_eq!(answer, [0x6F, 0x00]);
        }
        drop(card);
        serve.stop();
        pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
    }

    // The same through the control socket: `insert` of the image naming
    // the copy does not load it; the inserted card's key operations
    // answer 6F00, and the log says why.
    let socket = dir.path().join("control.sock");
    let mut args = vec![
        first_card.to_str().unwrap().to_owned(),
        "--control".to_owned(),
        socket.to_str().unwrap().to_owned(),
        "--pkcs11-pin-file".to_owned(),
        pin_file.to_str().unwrap().to_owned(),
        "--pkcs11-module".to_owned(),
        module.clone(),
    ];
    args.extend(pcscd.serve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start_with_env(&state, &args, &env);
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    let answer = run_ok(
        std::process::Command::new(support::VSCARD)
            .arg("ctl")
            .arg(&socket)
            .args(["insert", "--card", "0"])
            .arg(&card_path),
    );
    assert!(answer.starts_with("card 0: "), "{answer}");
    // (The reason is logged on stderr, which this harness does not read.)
    serve.expect_line("is back in Virtual PCD 00 00");
    let deadline = std::time::Instant::now() + 3 * SECOND;
    let answer = loop {
        let attempt = pcscd.connect(0).ok().and_then(|card| {
            transmit(&card, &SELECT_PIV).ok()?;
            let verified = transmit(&card, &verify).ok()?;
            (verified == [0x90, 0x00]).then_some(())?;
            transmit(&card, &sign).ok()
        });
        match attempt {
            Some(answer) => break answer,
            None if std::time::Instant::now() < deadline => std::thread::sleep(SECOND / 10),
            None => panic!("the inserted card is not answering through pcscd"),
        }
    };
    assert_eq!(answer, [0x6F, 0x00]);
    serve.stop();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
}

/// ykman (a YubiKey 5.7: GENERATE, key info, MOVE and DELETE KEY) on a
/// card whose keys are in the token: new keys are made there, a moved key
/// keeps its token key, a deleted one is destroyed in the token.
#[test]
fn ykman_generates_moves_and_deletes_keys_in_the_token() {
    let test = "ykman_generates_moves_and_deletes_keys_in_the_token";
    let Some(python) = vscard_testkit::python::python_with(test, &["ykman"]) else {
        return;
    };
    // ykman takes only readers whose name says YubiKey (it reads the USB
    // product from it), as on a real YubiKey 5.
    let Some(pcscd) = PrivatePcscd::enter_named(PcscdOptions::default(), "Yubico YubiKey CCID")
    else {
        return;
    };
    let ykman = python.with_file_name("ykman");
    let hsm = SoftHsm::new("cards").unwrap();
    let pin_file = hsm.pin_file().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let conf = hsm.conf();
    let env: [(&str, &OsStr); 1] = [("SOFTHSM2_CONF", conf.as_os_str())];
    run_ok(
        vscard(&state)
            .envs(env)
            .args(["issue", "--out"])
            .arg(&card)
            .args(["--custody", "pkcs11", "--pkcs11-module"])
            .arg(hsm.module())
            .args(["--pkcs11-token", "cards", "--pkcs11-pin-file"])
            .arg(&pin_file),
    );
    let mut args = vec![card.to_str().unwrap().to_owned()];
    args.extend(pcscd.serve_args());
    args.extend([
        "--pkcs11-pin-file".to_owned(),
        pin_file.to_str().unwrap().to_owned(),
        "--pkcs11-module".to_owned(),
        hsm.module().to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Serve::start_with_env(&state, &args, &env);
    pcscd.wait_for_card(0, 5 * SECOND).unwrap();
    let reader = pcscd.reader(0);
    let key = "010203040506070801020304050607080102030405060708";
    let ykman_ok = |args: &[&str]| -> String {
        let mut command = std::process::Command::new(&ykman);
        command.args(["--reader", &reader]).args(args);
        let output = command
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .output()
            .unwrap();
        success(output)
    };
    let tokens = || private_keys(&hsm.list_objects().unwrap()).len();
    assert_eq!(tokens(), 4);
    ykman_ok(&[
        "piv", "keys", "generate", "-m", key, "-a", "ECCP384", "9d", "9d.pem",
    ]);
    let info = ykman_ok(&["piv", "keys", "info", "9d"]);
    assert!(
        info.contains("ECCP384") && info.contains("GENERATED"),
        "{info}"
    );
    assert_eq!(tokens(), 4, "the old 9D key was destroyed in the token");
    ykman_ok(&["piv", "keys", "move", "-m", key, "9d", "82"]);
    assert_eq!(tokens(), 4, "a move keeps the token key");
    let moved = ykman_ok(&["piv", "keys", "info", "82"]);
    assert!(moved.contains("ECCP384"), "{moved}");
    ykman_ok(&["piv", "keys", "delete", "-m", key, "82"]);
    assert_eq!(tokens(), 3, "a deleted key is destroyed in the token");
    serve.stop();
    pcscd.wait_for_no_card(0, 5 * SECOND).unwrap();
}

/// An issue that fails after its keys were made in the token (here a
/// known state the card cannot take) leaves no key behind there.
#[test]
fn an_issue_that_fails_late_leaves_no_key_in_the_token() {
    let Ok(hsm) = SoftHsm::new("cards") else {
        eprintln!("SKIPPED: no SoftHSM2");
        return;
    };
    let pin_file = hsm.pin_file().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let card = dir.path().join("card.json");
    let conf = hsm.conf();
    let output = support::run(
        vscard(&state)
            .env("SOFTHSM2_CONF", &conf)
            .args(["issue", "--state", "pin-tries=9", "--out"])
            .arg(&card)
            .args(["--custody", "pkcs11", "--pkcs11-module"])
            .arg(hsm.module())
            .args(["--pkcs11-token", "cards", "--pkcs11-pin-file"])
            .arg(&pin_file),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pin-tries=9"), "{stderr}");
    assert!(!card.exists());
    let listing = hsm.list_objects().unwrap();
    assert_eq!(private_keys(&listing).len(), 0, "{listing}");
    assert!(!listing.contains("Public Key Object"), "{listing}");
}
