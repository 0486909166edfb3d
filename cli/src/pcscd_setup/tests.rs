//! `pcscd-setup` on temporary folders: what it writes, idempotency, undo.

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    setup: Setup,
}

fn fixture(package_entry: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir.path().join("libifdvpcd.so");
    std::fs::write(&driver, b"\x7fELF a driver").unwrap();
    let conf_dir = dir.path().join("reader.conf.d");
    std::fs::create_dir(&conf_dir).unwrap();
    if package_entry {
        std::fs::write(
            conf_dir.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x8C7B\nLIBPATH      {}\nCHANNELID    0x8C7B\n",
                driver.display()
            ),
        )
        .unwrap();
    }
    let setup = Setup {
        conf_dir,
        driver_dir: dir.path().join("drivers"),
        driver,
    };
    Fixture { _dir: dir, setup }
}

/// Every file under the fixture, with its contents.
fn snapshot(setup: &Setup) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in [&setup.conf_dir, &setup.driver_dir] {
        for path in list(dir).unwrap() {
            let bytes = std::fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files
}

fn slots(setup: &Setup) -> Vec<(u16, Option<String>)> {
    reader_conf::listening_slots(&reader_conf::read_dir(&setup.conf_dir).unwrap())
        .into_iter()
        .map(|slot| (slot.port, slot.reader))
        .collect()
}

#[test]
fn four_readers_are_the_package_entry_and_one_copy_and_a_rerun_changes_nothing() {
    let Fixture { _dir, setup } = fixture(true);
    let before = snapshot(&setup);
    let report = setup.apply(4).unwrap();
    let conf = setup.conf_dir.join("vscard-vpcd-1");
    let copy = setup.driver_dir.join("libifdvpcd-vscard-1.so");
    assert_eq!(report.written, vec![copy.clone(), conf.clone()]);
    assert!(report.removed.is_empty());
    assert_eq!(std::fs::read(&copy).unwrap(), b"\x7fELF a driver");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        format!(
            "{MARKER}: vpcd reader \"Virtual PCD 1\", ports 35965 and 35966.\n\
             # `vscard pcscd-setup --undo` removes it; pcscd loads it when it starts.\n\
             FRIENDLYNAME \"Virtual PCD 1\"\nDEVICENAME   /dev/null:0x8C7D\n\
             LIBPATH      {}\nCHANNELID    0x8C7D\n",
            copy.display()
        )
    );
    assert_eq!(
        slots(&setup),
        vec![
            (35963, Some("Virtual PCD 00 00".into())),
            (35964, Some("Virtual PCD 00 01".into())),
            (35965, Some("Virtual PCD 1 00 00".into())),
            (35966, Some("Virtual PCD 1 00 01".into())),
        ]
    );
    let text = report.render(Some(4));
    assert!(
        text.contains(
            "4 vpcd readers configured for 4 cards:\n  Virtual PCD 00 00 (vpcd port 35963)\n"
        ),
        "{text}"
    );
    assert!(text.contains("restart it"), "{text}");

    // Idempotent: nothing written the second time, the files unchanged.
    let after = snapshot(&setup);
    let again = setup.apply(4).unwrap();
    assert_eq!((again.written.len(), again.removed.len()), (0, 0));
    assert_eq!(snapshot(&setup), after);
    assert!(again.render(Some(4)).ends_with("nothing to change\n"));

    // Undo leaves exactly what was there before.
    let undone = setup.undo().unwrap();
    assert_eq!(undone.removed, vec![conf, copy]);
    assert_eq!(snapshot(&setup), before);
    assert!(!setup.driver_dir.exists());
    assert_eq!(setup.undo().unwrap(), Report::default());
}

#[test]
fn fewer_readers_remove_only_the_extra_copies() {
    let Fixture { _dir, setup } = fixture(true);
    setup.apply(6).unwrap();
    assert_eq!(slots(&setup).len(), 6);
    let report = setup.apply(3).unwrap();
    assert!(report.written.is_empty());
    assert_eq!(
        report.removed,
        vec![
            setup.conf_dir.join("vscard-vpcd-2"),
            setup.driver_dir.join("libifdvpcd-vscard-2.so")
        ]
    );
    // 3 readers round up to 2 instances: 4 slots.
    assert_eq!(slots(&setup).len(), 4);
}

#[test]
fn without_the_package_entry_vscard_writes_the_first_one_too() {
    let Fixture { _dir, setup } = fixture(false);
    let report = setup.apply(2).unwrap();
    assert_eq!(report.written, vec![setup.conf_dir.join("vscard-vpcd-0")]);
    assert_eq!(
        slots(&setup),
        vec![
            (35963, Some("Virtual PCD 00 00".into())),
            (35964, Some("Virtual PCD 00 01".into()))
        ]
    );
    setup.undo().unwrap();
    assert!(snapshot(&setup).is_empty());
}

#[test]
fn foreign_files_are_never_removed_and_collisions_are_refused() {
    let Fixture { _dir, setup } = fixture(true);
    // A file of the right name without the marker is not vscard's.
    let lookalike = setup.conf_dir.join("vscard-vpcd-7");
    std::fs::write(&lookalike, "# mine\n").unwrap();
    setup.apply(2).unwrap();
    setup.undo().unwrap();
    assert!(lookalike.exists());
    std::fs::write(
        setup.conf_dir.join("other"),
        "FRIENDLYNAME \"Other\"\nDEVICENAME /dev/null:35966\nLIBPATH /opt/libifdvpcd-x.so\n",
    )
    .unwrap();
    let error = setup.apply(4).unwrap_err().to_string();
    assert!(
        error.contains("already configures a vpcd reader on port 35966"),
        "{error}"
    );
    assert!(!setup.conf_dir.join("vscard-vpcd-1").exists());
    // A second entry of the installed driver is the collision:
    // said, and left alone.
    let twin = setup.conf_dir.join("other");
    std::fs::write(
        &twin,
        format!(
            "FRIENDLYNAME \"Twin\"\nDEVICENAME /dev/null:0x9000\nLIBPATH {}\n",
            setup.driver.display()
        ),
    )
    .unwrap();
    let report = setup.apply(2).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.render(Some(2)).starts_with(&format!(
            "warning: {} configures another reader of {}, already used by {}:",
            twin.display(),
            setup.driver.display(),
            setup.conf_dir.join("vpcd").display()
        )),
        "{}",
        report.render(Some(2))
    );
    assert!(twin.exists());
}

#[test]
fn a_missing_driver_is_said() {
    let Fixture { _dir, mut setup } = fixture(true);
    setup.driver = setup.conf_dir.join("nope.so");
    let error = setup.apply(4).unwrap_err().to_string();
    assert!(error.contains("vsmartcard-vpcd"), "{error}");
}

#[test]
fn a_driver_folder_others_may_write_is_refused_and_nothing_is_written() {
    use std::os::unix::fs::PermissionsExt;
    let Fixture { _dir, setup } = fixture(true);
    std::fs::create_dir(&setup.driver_dir).unwrap();
    std::fs::set_permissions(&setup.driver_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = setup.apply(4).unwrap_err().to_string();
    assert!(
        error.contains("is writable by others (mode 0777)"),
        "{error}"
    );
    assert!(list(&setup.driver_dir).unwrap().is_empty());
    assert!(!setup.conf_dir.join("vscard-vpcd-1").exists());
    // The same for the reader configuration folder.
    std::fs::set_permissions(&setup.driver_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&setup.conf_dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let error = setup.apply(4).unwrap_err().to_string();
    assert!(error.contains("(mode 0775)"), "{error}");
}

#[test]
fn a_new_driver_folder_is_0755_and_a_planted_link_with_the_same_bytes_is_replaced() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Fixture { _dir, setup } = fixture(true);
    setup.apply(4).unwrap();
    let mode = std::fs::metadata(&setup.driver_dir).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    // A link at the copy's name to a file with the same bytes: the rerun
    // does not keep it (pcscd would load whatever the link points to).
    let copy = setup.driver_dir.join("libifdvpcd-vscard-1.so");
    let elsewhere = _dir.path().join("elsewhere.so");
    std::fs::copy(&copy, &elsewhere).unwrap();
    std::fs::remove_file(&copy).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &copy).unwrap();
    let report = setup.apply(4).unwrap();
    assert_eq!(report.written, vec![copy.clone()]);
    let meta = std::fs::symlink_metadata(&copy).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
}
