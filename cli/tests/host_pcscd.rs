//! The card host through a real pcscd and a real PostgreSQL (each the
//! test's own: `vscard_testkit::pcscd`, `vscard_testkit::postgres`): a
//! card imported into the database and a device enrolled for it; two
//! `vscard host` processes on the database; `vscard relay --host A,B`
//! puts the card into vpcd's reader, where `pkcs11-tool -L` sees it. A
//! wrong PIN, then kill -9 of the host serving the card: the relay
//! reconnects to the other host (after the dead host's lease ran out),
//! the card is back and the try is still counted. A revoked card is taken
//! out of the reader and refused with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::hosted::{
    HOST_A, HOST_B, PIN_STATUS, SELECT_PIV, assert_pkcs11_lists, enrol_device, host, hosted_relay,
    import_card, pin_command, seal_key_file, status_word,
};
use support::process::Process;
use support::{p256_card, run, run_ok, vscard};
use vscard_testkit::postgres::private_postgres;
use vscard_testkit::{private_pcscd, transmit};

const SECOND: Duration = Duration::from_secs(1);
const WRONG_PIN: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, 0x39, 0x39, 0x39, 0x39, 0x39, 0x39, 0xFF, 0xFF,
];

#[test]
fn a_hosted_card_moves_to_the_other_host_with_its_try_counted() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (dir, state, card) = p256_card("hosted card");
    import_card(&state, dir.path(), &card, "card-1", &url, &[]);
    let (key, enrolled) = enrol_device(&state, dir.path(), "card-1", &url, "device.key", &[]);
    assert!(enrolled.contains("enrolled device"), "{enrolled}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let host_a = host(&state, &url, HOST_A, "host-a");
    let mut host_b = host(&state, &url, HOST_B, "host-b");
    let mut relay_command = vscard(&state);
    relay_command
        .args(["relay", "--host", &format!("{HOST_A},{HOST_B}")])
        .args(["--card", "card-1", "--device-key"])
        .arg(&key);
    let mut relay = Process::start(relay_command, "relay");
    relay.expect_line(&format!(
        "card card-1 from host {HOST_A}: in the vpcd reader"
    ));
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();

    assert_pkcs11_lists(dir.path(), "Pat Example");

    assert_eq!(pin_command(&pcscd, &WRONG_PIN), "63C2");
    let mut host_a = host_a;
    host_a.expect_line("card card-1 opened (lease fence 1)");
    // kill -9 of the serving host: its lease stays in the database until
    // it runs out (2 s); the other host takes the card then.
    host_a.signal(Signal::KILL);
    let _ = host_a.child.wait();
    pcscd.wait_for_no_card(0, 20 * SECOND).unwrap();
    host_b.expect_line_within("card card-1 opened (lease fence 2)", 20 * SECOND);
    pcscd.wait_for_card(0, 20 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C2");
    assert_eq!(pin_command(&pcscd, &WRONG_PIN), "63C1");

    let listed = run_ok(vscard(&state).args(["host", "list", "--json", "--database", &url]));
    let cards: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(cards[0]["id"], "card-1");
    assert_eq!(cards[0]["fence"], 2);
    assert_eq!(cards[0]["devices"], 1);

    // Revoked while served: the host's lease moves, the card leaves the
    // reader, and the relay is refused with the reason.
    run_ok(vscard(&state).args(["host", "revoke", "--id", "card-1", "--database", &url]));
    pcscd.wait_for_no_card(0, 20 * SECOND).unwrap();
    assert_eq!(relay.exit_code(), Some(1));
    assert!(
        relay
            .seen
            .iter()
            .any(|l| l.contains("card card-1 is revoked")),
        "{:?}",
        relay.seen
    );
    host_b.stop();
    // The URL's password (none here) and nothing secret was printed; the
    // host printed where its cards are.
    drop(relay);
}

#[test]
fn approval_approved_refused_and_timed_out() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (dir, state, card) = p256_card("approved card");
    run_ok(
        vscard(&state)
            .args(["host", "import"])
            .arg(&card)
            .arg("--encrypt-key-file")
            .arg(seal_key_file(dir.path()))
            .args([
                "--id",
                "card-2",
                "--require-approval",
                "session",
                "--database",
                &url,
            ]),
    );
    // The computer's key opens sessions; the phone's decides them.
    let (relay_key, desk) = enrol_device(&state, dir.path(), "card-2", &url, "desk.key", &[]);
    let key = dir.path().join("phone.key");
    let enrolled = run_ok(
        vscard(&state)
            .args([
                "host", "enrol", "--id", "card-2", "--role", "approver", "--out",
            ])
            .arg(&key)
            .args(["--database", &url])
            .arg("--encrypt-key-file")
            .arg(seal_key_file(dir.path())),
    );
    assert!(
        enrolled.contains("for card card-2 as approver"),
        "{enrolled}"
    );
    let mut command = vscard(&state);
    command.args([
        "host",
        "--database",
        &url,
        "--listen",
        HOST_A,
        "--approval-timeout",
        "6s",
    ]);
    command
        .arg("--encrypt-key-file")
        .arg(seal_key_file(dir.path()));
    let mut host = Process::start(command, "host");
    host.expect_line(&format!("host listening on {HOST_A}"));
    let approve_with = |device: &Path, extra: &[&str]| {
        let mut command = vscard(&state);
        command
            .args(["approve", "--host", HOST_A, "--device"])
            .arg(device)
            .args(extra);
        run(&mut command)
    };
    let approve = |extra: &[&str]| approve_with(&key, extra);

    // The approver's key cannot open a session.
    let wrong = hosted_relay(&state, &key, "card-2");
    host.expect_line("is enrolled for card \"card-2\" as approver: it may not open sessions");
    drop(wrong);

    // The relay's own key cannot approve its session: refused, and the
    // request stays open.
    let relay = hosted_relay(&state, &relay_key, "card-2");
    let open = "SELECT count(*) FROM approvals WHERE card_id = 'card-2' AND decision IS NULL \
                AND expires_at > clock_timestamp()";
    let asked = Instant::now() + 10 * SECOND;
    while cluster.psql(open).unwrap() != "1" {
        assert!(Instant::now() < asked, "no approval request");
        std::thread::sleep(Duration::from_millis(20));
    }
    let own = approve_with(&relay_key, &["--wait", "1s"]);
    assert_eq!(own.status.code(), Some(1), "{own:?}");
    host.expect_line("is enrolled for card \"card-2\" as relay: it may not decide approvals");
    assert_eq!(cluster.psql(open).unwrap(), "1");
    assert_eq!(
        cluster
            .psql("SELECT count(*) FROM approvals WHERE decision IS NOT NULL")
            .unwrap(),
        "0"
    );

    // Approved by the phone, which is shown who asks first: the card
    // opens and is in the reader.
    let approved = approve(&[]);
    assert!(approved.status.success(), "{approved:?}");
    let desk = desk.strip_prefix("enrolled device ").unwrap();
    let asker = format!(
        "approval 1 for card card-2: device {} through host ",
        &desk[..16]
    );
    let lines: Vec<String> = String::from_utf8_lossy(&approved.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines[0].starts_with(&asker), "{approved:?}");
    assert!(
        lines[1].starts_with("approved request 1 for card card-2"),
        "{approved:?}"
    );
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C3");
    relay.stop();
    pcscd.wait_for_no_card(0, 10 * SECOND).unwrap();

    // Refused: the relay is told why and exits; the card never comes.
    let mut relay = hosted_relay(&state, &relay_key, "card-2");
    let refused = approve(&["--refuse"]);
    assert!(refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("\nrefused request 2"),
        "{refused:?}"
    );
    assert_eq!(relay.exit_code(), Some(1));
    assert!(
        relay
            .seen
            .iter()
            .any(|l| l.contains("the holder refused the session for card card-2")),
        "{:?}",
        relay.seen
    );
    assert!(!relay.seen.iter().any(|l| l.contains("in the vpcd reader")));

    // Nobody answers: refused after --approval-timeout; a late answer
    // finds nothing to decide.
    let mut relay = hosted_relay(&state, &relay_key, "card-2");
    assert_eq!(relay.exit_code(), Some(1));
    assert!(
        relay
            .seen
            .iter()
            .any(|l| l.contains("did not approve the session for card card-2 within 6 s")),
        "{:?}",
        relay.seen
    );
    assert!(!relay.seen.iter().any(|l| l.contains("in the vpcd reader")));
    let late = approve(&["--wait", "1s"]);
    assert!(!late.status.success(), "{late:?}");
    pcscd.wait_for_no_card(0, SECOND).unwrap();
    host.stop();
}

#[test]
fn a_host_paused_past_its_lease_writes_nothing_when_it_wakes() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (dir, state, card) = p256_card("paused host");
    import_card(&state, dir.path(), &card, "card-3", &url, &[]);
    let (key, _) = enrol_device(&state, dir.path(), "card-3", &url, "device.key", &[]);
    let mut host_a = host(&state, &url, HOST_A, "host-a");
    let mut host_b = host(&state, &url, HOST_B, "host-b");
    let mut relay_command = vscard(&state);
    relay_command
        .args(["relay", "--host", &format!("{HOST_A},{HOST_B}")])
        .args(["--card", "card-3", "--device-key"])
        .arg(&key);
    let mut relay = Process::start(relay_command, "relay");
    relay.expect_line(&format!(
        "card card-3 from host {HOST_A}: in the vpcd reader"
    ));
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &WRONG_PIN), "63C2");
    host_a.expect_line("card card-3 opened (lease fence 1)");

    // A PC/SC connection made now, while the host answers.
    let connection = pcscd.connect(0).unwrap();
    assert_eq!(
        status_word(&transmit(&connection, &SELECT_PIV).unwrap()),
        "9000"
    );
    // Paused past its lease (2 s, by the database's clock), while another
    // holder takes the card (the next fence) for a moment.
    host_a.signal(Signal::STOP);
    let expired = Instant::now() + 10 * SECOND;
    while cluster
        .psql("SELECT expires_at < clock_timestamp() FROM leases WHERE card_id = 'card-3'")
        .unwrap()
        != "t"
    {
        assert!(Instant::now() < expired, "the lease never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster
        .psql(
            "UPDATE leases SET fence = fence + 1, holder = 'test', \
             expires_at = clock_timestamp() + interval '3 seconds' WHERE card_id = 'card-3'",
        )
        .unwrap();
    let parts = "SELECT string_agg(part || '=' || md5(value), ',' ORDER BY applet, part) \
                 FROM card_parts WHERE card_id = 'card-3'";
    let before = cluster.psql(parts).unwrap();
    // A wrong PIN sent while it sleeps reaches it when it wakes: it may
    // not count it (6581, the failed write) or it finds its lease gone
    // first and the card leaves the reader; either way nothing is written.
    let wrong = std::thread::spawn(move || transmit(&connection, &WRONG_PIN));
    std::thread::sleep(Duration::from_millis(200));
    host_a.signal(Signal::CONT);
    match wrong.join().unwrap() {
        Ok(answer) => assert_eq!(status_word(&answer), "6581"),
        Err(error) => println!("the card left the reader first: {error}"),
    }
    host_a.expect_line_within(
        "card card-3 closed: card card-3: this host's lease",
        10 * SECOND,
    );
    assert_eq!(cluster.psql(parts).unwrap(), before);
    // The card comes back from the other host once the stand-in's lease
    // ends, with the try counted before the pause and none after.
    host_b.expect_line_within("card card-3 opened (lease fence 3)", 20 * SECOND);
    pcscd.wait_for_card(0, 20 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C2");
    relay.signal(Signal::TERM);
    let _ = relay.exit_code();
    host_a.stop();
    host_b.stop();
}

#[test]
fn host_issue_puts_a_card_in_and_a_password_is_never_printed() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let profile = support::p256_profile(dir.path());
    // The cluster trusts its socket: any password is accepted, and must
    // never be shown.
    let url = cluster
        .url()
        .replace("postgres@", "postgres:s3cret-password@");
    let seal = seal_key_file(dir.path());
    let issued = run(vscard(&state)
        .args(["host", "issue", "--id", "issued-1", "--database", &url])
        .arg("--encrypt-key-file")
        .arg(&seal)
        .args([
            "--profile",
            profile.to_str().unwrap(),
            "--seed",
            "host issue",
        ]));
    assert!(issued.status.success(), "{issued:?}");
    let listed = run_ok(vscard(&state).args(["host", "list", "--database", &url]));
    assert!(
        listed.starts_with("issued-1\tidle\tfence 0\tapproval none\tdevices 0"),
        "{listed}"
    );
    // --out belongs to `vscard issue`.
    let refused = run(vscard(&state).args([
        "host",
        "issue",
        "--id",
        "issued-2",
        "--out",
        "x.json",
        "--database",
        &url,
    ]));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // A per-signature approval is put in as such.
    let signature = run(vscard(&state)
        .args(["host", "issue", "--id", "issued-3", "--database", &url])
        .arg("--encrypt-key-file")
        .arg(&seal)
        .args(["--require-approval", "signature"])
        .args([
            "--profile",
            profile.to_str().unwrap(),
            "--seed",
            "host issue",
        ]));
    assert!(signature.status.success(), "{signature:?}");
    assert!(
        String::from_utf8_lossy(&signature.stdout)
            .contains("put the card in the database as card issued-3 (approval: signature)"),
        "{signature:?}"
    );
    assert!(
        run_ok(vscard(&state).args(["host", "list", "--database", &url]))
            .contains("issued-3\tidle\tfence 0\tapproval signature\tdevices 0")
    );
    // A second card with the same ID, and a bad ID, are refused.
    let again = run(vscard(&state)
        .args(["host", "issue", "--id", "issued-1", "--database", &url])
        .arg("--encrypt-key-file")
        .arg(&seal)
        .args([
            "--profile",
            profile.to_str().unwrap(),
            "--seed",
            "host issue",
        ]));
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("card issued-1 is already in the database"),
        "{again:?}"
    );
    let mut host = Process::start(
        {
            let mut command = vscard(&state);
            command.args(["host", "--database", &url, "--listen", HOST_A]);
            command.arg("--encrypt-key-file").arg(&seal);
            command
        },
        "host",
    );
    let line = host.expect_line("host listening on");
    assert!(line.contains("cards in database postgres on /"), "{line}");
    assert!(!host.seen.iter().any(|l| l.contains("s3cret")));
    host.stop();
    // A TCP host without TLS is refused before anything is sent.
    let plain = run(vscard(&state).args([
        "host",
        "list",
        "--database",
        "postgresql://u:s3cret-password@localhost:1/db",
    ]));
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains(
            "bad database URL database db on localhost:1: a TCP host without required TLS"
        ),
        "{plain:?}"
    );
    // A database that cannot be reached: the message names it redacted.
    let down = run(vscard(&state).args([
        "host",
        "list",
        "--database-insecure",
        "--database",
        "postgresql://u:s3cret-password@localhost:1/db?host=/nonexistent",
    ]));
    assert_eq!(down.status.code(), Some(1));
    for output in [&issued, &refused, &again, &plain, &down] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("database db on localhost:1,/nonexistent"),
        "{down:?}"
    );
}

#[test]
fn a_session_ends_once_its_lease_could_have_expired() {
    let Some(pcscd) = private_pcscd() else {
        return;
    };
    let Some(mut cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (dir, state, card) = p256_card("lapsed lease");
    import_card(&state, dir.path(), &card, "card-4", &url, &[]);
    let (key, _) = enrol_device(&state, dir.path(), "card-4", &url, "device.key", &[]);
    let mut host_a = host(&state, &url, HOST_A, "host-a");
    let mut relay = hosted_relay(&state, &key, "card-4");
    relay.expect_line(&format!(
        "card card-4 from host {HOST_A}: in the vpcd reader"
    ));
    pcscd.wait_for_card(0, 10 * SECOND).unwrap();
    assert_eq!(pin_command(&pcscd, &PIN_STATUS), "63C3");
    host_a.expect_line("card card-4 opened (lease fence 1)");
    // The database goes away: no renewal succeeds, so the session ends
    // (the card leaves the reader) once the 2 s lease could have run out,
    // although nothing it answers needs the database (PIN status).
    cluster.stop().unwrap();
    host_a.expect_line_within(
        "card card-4 closed: card card-4: this host's lease (fencing number 1) was not renewed in time",
        10 * SECOND,
    );
    pcscd.wait_for_no_card(0, 10 * SECOND).unwrap();
    relay.signal(Signal::TERM);
    let _ = relay.exit_code();
    host_a.stop();
}

#[test]
fn host_commands_keep_no_secret_in_the_clear_without_being_told_to() {
    let Some(cluster) = private_postgres() else {
        return;
    };
    let url = cluster.url();
    let (dir, state, card) = p256_card("sealed at rest");
    let seal = seal_key_file(dir.path());
    let import = |id: &str, extra: &[&std::ffi::OsStr]| {
        run(vscard(&state)
            .args(["host", "import"])
            .arg(&card)
            .args(["--id", id, "--database", &url])
            .args(extra))
    };
    // No key: refused as bad input, nothing put in.
    let refused = import("no-key", &[]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("--encrypt-key-file: card images (PINs, private keys) and the hosts' link key are encrypted"),
        "{refused:?}"
    );
    // A key file others can read: refused.
    let open_key = dir.path().join("open.key");
    std::fs::copy(&seal, &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = import(
        "open-key",
        &["--encrypt-key-file".as_ref(), open_key.as_os_str()],
    );
    assert_eq!(open.status.code(), Some(2), "{open:?}");
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("chmod 600"),
        "{open:?}"
    );
    // The key after `host` (the serving host's option) is not taken for
    // a subcommand's.
    let misplaced = run(vscard(&state)
        .arg("host")
        .arg("--encrypt-key-file")
        .arg(&seal)
        .arg("import")
        .arg(&card)
        .args(["--id", "misplaced", "--database", &url]));
    assert_eq!(misplaced.status.code(), Some(2), "{misplaced:?}");

    // With the key: sealed rows, no PIN in them (as a part stores it: the
    // padded PIN in hex); a card file encrypted
    // under the same key imports too.
    let sealed = import("sealed", &["--encrypt-key-file".as_ref(), seal.as_os_str()]);
    assert!(sealed.status.success(), "{sealed:?}");
    let encrypted_card = dir.path().join("encrypted.json");
    support::issue(
        &state,
        &encrypted_card,
        "sealed at rest",
        &[
            "--profile",
            support::p256_profile(dir.path()).to_str().unwrap(),
            "--encrypt-key-file",
            seal.to_str().unwrap(),
        ],
    );
    let from_sealed = run(vscard(&state)
        .args(["host", "import"])
        .arg(&encrypted_card)
        .args([
            "--id",
            "from-sealed",
            "--database",
            &url,
            "--encrypt-key-file",
        ])
        .arg(&seal));
    assert!(from_sealed.status.success(), "{from_sealed:?}");
    let insecure = import("insecure", &["--insecure-plaintext".as_ref()]);
    assert!(insecure.status.success(), "{insecure:?}");
    let rows = |id: &str| {
        cluster
            .psql(&format!(
                "SELECT string_agg(DISTINCT encoding, ','), \
                 position(convert_to('313233343536ffff', 'UTF8') IN string_agg(value, ''::bytea)) > 0 \
                 FROM card_parts WHERE card_id = '{id}'"
            ))
            .unwrap()
    };
    assert_eq!(rows("sealed"), "aes256gcm|f");
    assert_eq!(rows("from-sealed"), "aes256gcm|f");
    // The control: in the clear, the PIN is there to find.
    assert_eq!(rows("insecure"), "json|t");

    // Enrolling makes the hosts' link key: sealed too.
    let enrolled = run(vscard(&state)
        .args(["host", "enrol", "--id", "sealed", "--out"])
        .arg(dir.path().join("device.key"))
        .args(["--database", &url, "--encrypt-key-file"])
        .arg(&seal));
    assert!(enrolled.status.success(), "{enrolled:?}");
    assert_eq!(
        cluster
            .psql("SELECT position('VSCARDSEALED'::bytea IN private_key) FROM host_identity")
            .unwrap(),
        "1"
    );
    // A host without the key cannot read it.
    let keyless = run(vscard(&state)
        .args(["host", "enrol", "--id", "sealed", "--out"])
        .arg(dir.path().join("other.key"))
        .args(["--database", &url, "--insecure-plaintext"]));
    assert_eq!(keyless.status.code(), Some(1), "{keyless:?}");
    assert!(
        String::from_utf8_lossy(&keyless.stderr)
            .contains("the hosts' link key is encrypted: give the key it was encrypted under"),
        "{keyless:?}"
    );
}
