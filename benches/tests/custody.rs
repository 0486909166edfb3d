//! The PKCS#11 custody row with a tiny budget on a throwaway SoftHSM2
//! token (not a benchmark: nothing is compared). SoftHSM reads
//! `SOFTHSM2_CONF` when the module is initialised, so the test re-runs
//! this binary as a child with it set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use std::time::Duration;

use vscard_testkit::softhsm::SoftHsm;

const CHILD: &str = "VSCARD_BENCH_SOFTHSM_CHILD";

#[test]
fn the_custody_row_compares_the_card_with_a_direct_c_sign() {
    if let Ok(label) = std::env::var(CHILD) {
        let module = SoftHsm::module_path().unwrap();
        let section = vscard_benches::custody::run(
            &module,
            &label,
            SoftHsm::USER_PIN,
            Duration::from_millis(40),
        )
        .unwrap();
        assert_eq!(section.rows.len(), 1);
        let row = &section.rows[0];
        println!(
            "{} | {} | {} | {:.2}",
            row.what, row.ours, row.baseline, row.ratio
        );
        assert!(row.ratio > 0.0);
        assert!(row.baseline.starts_with("C_Sign CKM_ECDSA"));
        return;
    }
    let hsm = SoftHsm::new("bench").unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_custody_row_compares_the_card_with_a_direct_c_sign",
            "--nocapture",
        ])
        .env("SOFTHSM2_CONF", hsm.conf())
        .env(CHILD, hsm.label())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
}
