//! The README's Java and Python snippets (`examples/languages/`) run
//! against `vscard serve` through a private pcscd: `javax.smartcardio`,
//! SunPKCS11 with OpenSC's module and a keytool truststore, pyscard and
//! PyKCS11. Each asserts what the card did (tries left, a signature that
//! verifies with the certificate's public key, a chain to the exported CA).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{Serve, issue, run_ok, vscard};
use vscard_testkit::python::python_with;
use vscard_testkit::{PrivatePcscd, private_pcscd};

const PCSCLITE: &str = "/usr/lib/x86_64-linux-gnu/libpcsclite.so.1";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/languages")
}

/// A seeded default card (RSA in 9A), served in slot 0 of `pcscd`.
struct Served {
    dir: tempfile::TempDir,
    state: PathBuf,
    serve: Option<Serve>,
}

impl Served {
    fn start(pcscd: &PrivatePcscd) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let card = dir.path().join("card.json");
        issue(&state, &card, "languages", &[]);
        let mut args = vec![card.to_str().unwrap().to_owned()];
        args.extend(pcscd.serve_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let serve = Serve::start(&state, &args);
        pcscd.wait_for_card(0, Duration::from_secs(10)).unwrap();
        Served {
            dir,
            state,
            serve: Some(serve),
        }
    }

    /// `program` in the fixture's folder with HOME there (OpenSC's cache
    /// stays in the test) and the PIN in the environment.
    fn run(&self, program: &Path, pin: &str, args: &[&str]) -> Output {
        let output = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("VSCARD_PIN", pin)
            .output()
            .unwrap();
        println!(
            "$ {} {}\n-> {}\n{}{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(serve) = self.serve.take() {
            serve.stop();
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn java() -> PathBuf {
    PathBuf::from("java")
}

#[test]
fn java_smartcardio_verifies_the_pin_and_counts_a_wrong_one() {
    let Some(pcscd) = private_pcscd() else { return };
    let served = Served::start(&pcscd);
    let source = examples().join("java/PivSmartcardIo.java");
    let library = format!("-Dsun.security.smartcardio.library={PCSCLITE}");
    let args = [library.as_str(), source.to_str().unwrap()];

    let wrong = served.run(&java(), "000000", &args);
    assert!(!wrong.status.success());
    assert!(stdout(&wrong).contains("PIN tries left: 3"), "{wrong:?}");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("VERIFY PIN: status 63C2"),
        "{wrong:?}"
    );

    let right = served.run(&java(), "123456", &args);
    assert!(right.status.success(), "{right:?}");
    let text = stdout(&right);
    assert!(text.contains("reader: Virtual PCD 00 00"), "{text}");
    assert!(text.contains("PIN tries left: 2"), "{text}");
    assert!(text.contains("PIN verified"), "{text}");
}

#[test]
fn java_sunpkcs11_signs_and_the_certificate_chains_to_the_keytool_truststore() {
    let Some(pcscd) = private_pcscd() else { return };
    let served = Served::start(&pcscd);
    let ca = served.path("ca");
    run_ok(vscard(&served.state).args(["export-ca", "--out"]).arg(&ca));
    let truststore = served.path("truststore.p12");
    let keytool = served.run(
        Path::new("keytool"),
        "",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "vscard-root",
            "-file",
            ca.join("root.pem").to_str().unwrap(),
            "-keystore",
            truststore.to_str().unwrap(),
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
    );
    assert!(keytool.status.success(), "{keytool:?}");

    let source = examples().join("java/PivPkcs11.java");
    let output = served.run(
        &java(),
        "123456",
        &[
            source.to_str().unwrap(),
            truststore.to_str().unwrap(),
            "changeit",
            ca.join("sub.pem").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("UID=000123456789") || text.contains("000123456789"),
        "{text}"
    );
    assert!(
        text.contains("signature verified (SHA256withRSA)"),
        "{text}"
    );
    assert!(
        text.contains("certificate chains to the trusted Root CA"),
        "{text}"
    );

    // Another environment's CA is not trusted: the chain check refuses.
    let other = served.path("other-ca");
    run_ok(
        vscard(&served.state)
            .args([
                "export-ca",
                "--environment",
                "elsewhere",
                "--create",
                "--out",
            ])
            .arg(&other),
    );
    let output = served.run(
        &java(),
        "123456",
        &[
            source.to_str().unwrap(),
            truststore.to_str().unwrap(),
            "changeit",
            other.join("sub.pem").to_str().unwrap(),
        ],
    );
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("CertPathValidatorException"),
        "{output:?}"
    );
}

#[test]
fn python_pyscard_verifies_the_pin() {
    let Some(pcscd) = private_pcscd() else { return };
    let Some(python) = python_with("python_pyscard_verifies_the_pin", &["smartcard"]) else {
        return;
    };
    let served = Served::start(&pcscd);
    let script = examples().join("python/pyscard_pin.py");
    let output = served.run(&python, "123456", &[script.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("reader: Virtual PCD 00 00"), "{text}");
    assert!(text.contains("PIN tries left: 3"), "{text}");
    assert!(text.contains("PIN verified"), "{text}");

    let wrong = served.run(&python, "999999", &[script.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("VERIFY PIN: status 63C2"),
        "{wrong:?}"
    );
}

#[test]
fn python_pykcs11_signs_and_openssl_verifies_with_the_certificate() {
    let Some(pcscd) = private_pcscd() else { return };
    let Some(python) = python_with(
        "python_pykcs11_signs_and_openssl_verifies_with_the_certificate",
        &["PyKCS11"],
    ) else {
        return;
    };
    let served = Served::start(&pcscd);
    let script = examples().join("python/pykcs11_sign.py");
    let out = served.path("out");
    std::fs::create_dir(&out).unwrap();
    let output = served.run(
        &python,
        "123456",
        &[script.to_str().unwrap(), out.to_str().unwrap()],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("256-byte signature"), "{output:?}");

    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&out)
            .output()
            .unwrap();
        println!("$ openssl {} -> {output:?}", args.join(" "));
        output
    };
    let public = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "certificate.der",
        "-pubkey",
        "-noout",
    ]);
    assert!(public.status.success());
    std::fs::write(out.join("public.pem"), &public.stdout).unwrap();
    let verify = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "public.pem",
        "-signature",
        "signature.bin",
        "data.bin",
    ]);
    assert!(verify.status.success(), "{verify:?}");
    assert_eq!(
        String::from_utf8_lossy(&verify.stdout).trim(),
        "Verified OK"
    );

    // The same signature over other data does not verify.
    std::fs::write(out.join("data.bin"), b"something else").unwrap();
    let verify = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "public.pem",
        "-signature",
        "signature.bin",
        "data.bin",
    ]);
    assert!(!verify.status.success(), "{verify:?}");
}
