//! The 5.7 key-type scenario on each model, in this process: a YubiKey 5.7
//! generates and uses Ed25519 and X25519 keys, a 5.4 refuses them (`6A80`),
//! a plain PIV card has no Yubico extensions (unsupported).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vscard_applet::{Model, PivApplet, PivConfig, piv_atr};
use vscard_conformance::{CardFacts, InProcess, run_one, scenarios};
use vscard_emulator::{Card, CardRng};

#[test]
fn the_curve25519_scenario_follows_the_model() {
    let scenario = scenarios::all()
        .into_iter()
        .find(|s| s.name == "GENERATE Ed25519 and X25519 (YubiKey 5.7)")
        .unwrap();
    for (model, expected) in [
        (Model::YubiKey57, "passed"),
        (Model::YubiKey54, "passed"),
        (Model::Piv, "unsupported"),
    ] {
        let card = Card::builder()
            .atr(piv_atr())
            .rng(CardRng::from_u64(57))
            .install_default(PivApplet::new(PivConfig::for_model(model)).unwrap())
            .build()
            .unwrap();
        let facts = CardFacts {
            management_algorithm: model.management_algorithm().byte(),
            ..CardFacts::default()
        };
        let result = run_one(&scenario, &mut InProcess::new(card), &facts);
        assert_eq!(result.result, expected, "{model}: {}", result.detail);
    }
}
