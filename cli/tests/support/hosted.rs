//! The card host's tests' shared pieces: a `vscard host` on the
//! database, a `vscard relay --host` for a card, and PIV commands sent
//! through the private pcscd.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::process::Process;
use super::{run_ok, vscard};
use vscard_testkit::{PrivatePcscd, transmit};

pub const HOST_A: &str = "127.0.0.1:35971";
pub const HOST_B: &str = "127.0.0.1:35972";
pub const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
pub const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

/// The key the database's card images and link key are sealed under
/// (64 hex digits, mode 0600), in `dir`.
pub fn seal_key_file(dir: &Path) -> PathBuf {
    let path = dir.join("host.key");
    std::fs::write(&path, format!("{}\n", "5e".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `vscard host import CARD --id ID` on `url`, sealed under
/// [`seal_key_file`] of `dir`, with `extra` options; what it printed.
pub fn import_card(
    state: &Path,
    dir: &Path,
    card: &Path,
    id: &str,
    url: &str,
    extra: &[&str],
) -> String {
    run_ok(
        vscard(state)
            .args(["host", "import"])
            .arg(card)
            .arg("--encrypt-key-file")
            .arg(seal_key_file(dir))
            .args(["--id", id, "--database", url])
            .args(extra),
    )
}

/// `vscard host enrol --id ID --out DIR/NAME` on `url`, sealed under
/// [`seal_key_file`] of `dir`, with `extra` options (`--role approver`):
/// the device key's path and what it printed.
pub fn enrol_device(
    state: &Path,
    dir: &Path,
    id: &str,
    url: &str,
    name: &str,
    extra: &[&str],
) -> (PathBuf, String) {
    let key = dir.join(name);
    let printed = run_ok(
        vscard(state)
            .args(["host", "enrol", "--id", id, "--out"])
            .arg(&key)
            .args(["--database", url])
            .arg("--encrypt-key-file")
            .arg(seal_key_file(dir))
            .args(extra),
    );
    (key, printed)
}

/// `vscard host` on `url`, listening on `listen`, with a 2 s lease, the
/// database sealed under [`seal_key_file`] of the state folder's parent,
/// and `extra` options; returned once it listens.
pub fn host_with(
    state: &Path,
    url: &str,
    listen: &str,
    name: &'static str,
    extra: &[&str],
) -> Process {
    let mut command = vscard(state);
    command.args([
        "host",
        "--database",
        url,
        "--listen",
        listen,
        "--lease",
        "2s",
    ]);
    command
        .arg("--encrypt-key-file")
        .arg(seal_key_file(state.parent().unwrap()));
    command.args(extra);
    let mut host = Process::start(command, name);
    host.expect_line(&format!("host listening on {listen}"));
    host
}

/// [`host_with`] without more options.
pub fn host(state: &Path, url: &str, listen: &str, name: &'static str) -> Process {
    host_with(state, url, listen, name, &[])
}

/// `vscard relay --host HOSTS --card CARD --device-key KEY`.
pub fn relay_to(state: &Path, hosts: &str, key: &Path, card: &str) -> Process {
    let mut command = vscard(state);
    command
        .args(["relay", "--host", hosts, "--card", card, "--device-key"])
        .arg(key);
    Process::start(command, "relay")
}

/// [`relay_to`] host A.
pub fn hosted_relay(state: &Path, key: &Path, card: &str) -> Process {
    relay_to(state, HOST_A, key, card)
}

/// `pkcs11-tool -L` through OpenSC (its HOME in `home`) lists a token
/// labelled `label`.
pub fn assert_pkcs11_lists(home: &Path, label: &str) {
    let listed = super::run(
        std::process::Command::new("pkcs11-tool")
            .args([
                "--module",
                "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
                "-L",
            ])
            .env("HOME", home),
    );
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && text.contains(&format!("token label        : {label}")),
        "{text}"
    );
}

/// The status word of a response, in upper-case hex.
pub fn status_word(response: &[u8]) -> String {
    hex::encode_upper(&response[response.len() - 2..])
}

/// SELECT PIV, then `apdu`, on a new connection; the status word.
pub fn pin_command(pcscd: &PrivatePcscd, apdu: &[u8]) -> String {
    let card = pcscd.connect(0).unwrap();
    let select = transmit(&card, &SELECT_PIV).unwrap();
    assert_eq!(status_word(&select), "9000");
    status_word(&transmit(&card, apdu).unwrap())
}
