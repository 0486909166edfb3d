//! Signatures per second on one core: the card's RSA-2048 private-key
//! operation and P-256 ECDSA over a digest, against `openssl speed` run in
//! the same run, plus the variants tried to close the gap; and the YubiKey
//! 5.7 key types (RSA-3072 and 4096, Ed25519, X25519) as the applet
//! computes them.
//!
//! Rows: the RustCrypto primitives exactly as the default applet calls
//! them; RustCrypto without blinding (what blinding costs); with the
//! `openssl` feature, the same operations through the `openssl` crate with
//! the key object cached (what the applet does) and converted per call
//! (what caching saves); and GENERAL AUTHENTICATE through
//! `Card::transmit` with the backend this binary was built with.

use std::process::Command;
use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use rsa::RsaPrivateKey;
use vscard_emulator::{CardImage, CardRng};

use crate::apdu::{self, Operation};
use crate::measure::{self, Sample, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture};

fn crypto(error: impl std::fmt::Display) -> BenchError {
    BenchError::Crypto(error.to_string())
}

/// A fixed RSA-2048 key (generation is not what is measured).
pub fn rsa_key() -> Result<RsaPrivateKey, BenchError> {
    let mut rng = CardRng::from_u64(2048);
    RsaPrivateKey::new(&mut rng, 2048).map_err(crypto)
}

/// A fixed P-256 key.
pub fn p256_key() -> Result<SigningKey, BenchError> {
    SigningKey::from_slice(&[0x42; 32]).map_err(crypto)
}

/// The raw RSA private-key operation of PIV GENERAL AUTHENTICATE, as the
/// default applet does it: blinded, result checked.
pub fn rsa_rustcrypto(
    key: &RsaPrivateKey,
    blinded: bool,
    budget: Duration,
) -> Result<Sample, BenchError> {
    let mut rng = CardRng::from_u64(1);
    let input = rsa::BoxedUint::from_be_slice(&apdu::pkcs1_block(), 2048).map_err(crypto)?;
    measure::run(budget, 10, || {
        if blinded {
            rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut rng), &input).map(|_| ())
        } else {
            rsa::hazmat::rsa_decrypt::<CardRng>(None, key, &input).map(|_| ())
        }
        .map_err(crypto)
    })
}

/// ECDSA P-256 over a 32-byte digest with RustCrypto (RFC 6979 nonces).
pub fn p256_rustcrypto(key: &SigningKey, budget: Duration) -> Result<Sample, BenchError> {
    let digest = [0x17u8; 32];
    measure::run(budget, 50, || {
        let signature: Result<p256::ecdsa::Signature, _> = key.sign_prehash(&digest);
        signature.map(|_| ()).map_err(crypto)
    })
}

/// `openssl speed -mr -seconds N ALG`: signatures (or, for ECDH,
/// agreements) per second.
pub fn openssl_speed(algorithm: &str, seconds: u64) -> Result<f64, BenchError> {
    let output = Command::new("openssl")
        .args(["speed", "-mr", "-seconds", &seconds.to_string(), algorithm])
        .output()
        .map_err(|e| BenchError::Openssl(e.to_string()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_openssl_speed(&text)
        .ok_or_else(|| BenchError::Openssl(format!("no result line in: {text}")))
}

/// The rate of `openssl speed -mr` output. Machine-readable result lines:
/// `+F2:i:bits:sign/s:verify/s` (RSA), `+F4:i:bits:sign/s:verify/s`
/// (ECDSA), `+F5:i:bits:op/s:time` (ECDH, X25519),
/// `+F6:i:bits:name:sign/s:verify/s` (EdDSA).
pub fn parse_openssl_speed(text: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let field = match line.get(..4)? {
            "+F2:" | "+F4:" | "+F5:" => 3,
            "+F6:" => 4,
            _ => return None,
        };
        line.split(':').nth(field)?.trim().parse::<f64>().ok()
    })
}

/// The applet tests' fixed RSA key of `bits` (1024 to 4096): generation
/// is not what is measured, and RSA-4096 takes long to make.
pub fn fixed_rsa_key(bits: usize) -> Result<RsaPrivateKey, BenchError> {
    use rsa::pkcs8::DecodePrivateKey as _;
    let der: &[u8] = match bits {
        3072 => include_bytes!("../../applet/tests/data/piv/rsa3072-test-key.pk8.der"),
        4096 => include_bytes!("../../applet/tests/data/piv/rsa4096-test-key.pk8.der"),
        _ => return Err(crypto(format!("no fixed RSA-{bits} key"))),
    };
    RsaPrivateKey::from_pkcs8_der(der).map_err(crypto)
}

/// The applet's raw RSA operation (blinded, checked) for a key of any
/// size, on a block below the modulus.
pub fn rsa_rustcrypto_any(key: &RsaPrivateKey, budget: Duration) -> Result<Sample, BenchError> {
    use rsa::traits::PublicKeyParts as _;
    let mut rng = CardRng::from_u64(1);
    let mut block = vec![0x00, 0x01];
    block.resize(key.size(), 0x5A);
    let input = rsa::BoxedUint::from_be_slice(&block, key.n_bits_precision()).map_err(crypto)?;
    measure::run(budget, 5, || {
        rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut rng), &input)
            .map(|_| ())
            .map_err(crypto)
    })
}

/// Ed25519 over a 32-byte message with ed25519-dalek, as the applet signs.
pub fn ed25519_rustcrypto(budget: Duration) -> Result<Sample, BenchError> {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let message = [0x17u8; 32];
    measure::run(budget, 50, || {
        std::hint::black_box(key.sign(&message));
        Ok(())
    })
}

/// X25519 with x25519-dalek, as the applet agrees (one scalar
/// multiplication with the peer's key).
pub fn x25519_rustcrypto(budget: Duration) -> Result<Sample, BenchError> {
    let key = x25519_dalek::StaticSecret::from([0x42; 32]);
    let peer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([0x24; 32]));
    measure::run(budget, 50, || {
        std::hint::black_box(key.diffie_hellman(&peer));
        Ok(())
    })
}

/// GENERAL AUTHENTICATE through `Card::transmit` (VERIFY first, untimed,
/// for the PIN-once RSA slot).
pub fn card_sign(
    image: &CardImage,
    op: &Operation,
    budget: Duration,
) -> Result<Sample, BenchError> {
    let mut card = fixture::card_from(image)?;
    apdu::perform(
        &mut card,
        &apdu::verify("VERIFY", apdu::DEMO_PIN, 0x9000),
        None,
    )?;
    measure::run(budget, 10, || {
        apdu::perform(&mut card, op, None).map(|_| ())
    })
}

#[cfg(feature = "openssl")]
mod with_openssl {
    //! The `openssl` crate doing what the applet's `openssl` feature does.

    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;
    use openssl::pkey::Private;
    use openssl::rsa::{Padding, Rsa};
    use rsa::RsaPrivateKey;
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};

    use super::crypto;
    use crate::BenchError;

    fn big(value: &rsa::BoxedUint) -> Result<BigNum, BenchError> {
        BigNum::from_slice(&value.to_be_bytes()).map_err(crypto)
    }

    pub fn rsa(key: &RsaPrivateKey) -> Result<Rsa<Private>, BenchError> {
        let [p, q] = key.primes() else {
            return Err(crypto("not two primes"));
        };
        let (Some(dp), Some(dq), Some(qinv)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
            return Err(crypto("no CRT values"));
        };
        Rsa::from_private_components(
            big(key.n().as_ref())?,
            big(key.e())?,
            big(key.d())?,
            big(p)?,
            big(q)?,
            big(dp)?,
            big(dq)?,
            big(&qinv)?,
        )
        .map_err(crypto)
    }

    pub fn rsa_sign(key: &Rsa<Private>, block: &[u8]) -> Result<(), BenchError> {
        let mut out = vec![0u8; key.size() as usize];
        key.private_decrypt(block, &mut out, Padding::NONE)
            .map(|_| ())
            .map_err(crypto)
    }

    pub fn ec(scalar: &[u8]) -> Result<EcKey<Private>, BenchError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(crypto)?;
        let private = BigNum::from_slice(scalar).map_err(crypto)?;
        let mut context = BigNumContext::new().map_err(crypto)?;
        let mut public = EcPoint::new(&group).map_err(crypto)?;
        public
            .mul_generator2(&group, &private, &mut context)
            .map_err(crypto)?;
        EcKey::from_private_components(&group, &private, &public).map_err(crypto)
    }

    pub fn ec_sign(key: &EcKey<Private>, digest: &[u8]) -> Result<(), BenchError> {
        EcdsaSig::sign(digest, key)
            .and_then(|s| s.to_der())
            .map(|_| ())
            .map_err(crypto)
    }
}

/// The variants measured for one algorithm, each against `openssl`.
fn rows(section: &mut Section, name: &str, openssl: f64, variants: Vec<(String, Sample, Goal)>) {
    let baseline = format!("`openssl speed {name}`: {}", rate(openssl));
    for (what, sample, goal) in variants {
        let ours = sample.per_second();
        section.rows.push(Row::new(
            what,
            rate(ours),
            baseline.clone(),
            ratio(ours, openssl),
            goal,
        ));
    }
}

/// The crypto table: each primitive for `seconds`, `openssl speed` for as
/// long.
pub fn run(image: &CardImage, seconds: u64) -> Result<Section, BenchError> {
    let budget = Duration::from_secs(seconds);
    let mut section = Section::new("3. Signatures per second on one core", "vscard / OpenSSL");
    let backend = if cfg!(feature = "openssl") {
        "OpenSSL"
    } else {
        "RustCrypto"
    };

    let key = rsa_key()?;
    let openssl_rsa = openssl_speed("rsa2048", seconds)?;
    let mut variants = vec![
        (
            "RSA-2048: RustCrypto `rsa`, blinded + checked (default applet)".to_owned(),
            rsa_rustcrypto(&key, true, budget)?,
            Goal::AtLeast(0.5),
        ),
        (
            "RSA-2048: RustCrypto, no blinding, no check (tried, not used)".to_owned(),
            rsa_rustcrypto(&key, false, budget)?,
            Goal::None,
        ),
    ];
    #[cfg(feature = "openssl")]
    {
        let block = apdu::pkcs1_block();
        variants.push((
            "RSA-2048: `openssl` crate, key converted per call (tried)".to_owned(),
            measure::run(budget, 10, || {
                with_openssl::rsa_sign(&with_openssl::rsa(&key)?, &block)
            })?,
            Goal::None,
        ));
        let cached = with_openssl::rsa(&key)?;
        variants.push((
            "RSA-2048: `openssl` crate, key object cached (applet `--features openssl`)".to_owned(),
            measure::run(budget, 10, || with_openssl::rsa_sign(&cached, &block))?,
            Goal::AtLeast(0.5),
        ));
    }
    variants.push((
        format!("RSA-2048: GENERAL AUTHENTICATE 9A via `Card::transmit` ({backend})"),
        card_sign(image, &apdu::sign_rsa(), budget)?,
        Goal::AtLeast(0.5),
    ));
    rows(&mut section, "rsa2048", openssl_rsa, variants);

    let ec_key = p256_key()?;
    let openssl_ec = openssl_speed("ecdsap256", seconds)?;
    let mut variants = vec![(
        "P-256 ECDSA: RustCrypto `p256` (default applet)".to_owned(),
        p256_rustcrypto(&ec_key, budget)?,
        Goal::AtLeast(0.5),
    )];
    #[cfg(feature = "openssl")]
    {
        let scalar = ec_key.to_bytes();
        let digest = [0x17u8; 32];
        variants.push((
            "P-256 ECDSA: `openssl` crate, key converted per call (tried)".to_owned(),
            measure::run(budget, 50, || {
                with_openssl::ec_sign(&with_openssl::ec(&scalar)?, &digest)
            })?,
            Goal::None,
        ));
        let cached = with_openssl::ec(&scalar)?;
        variants.push((
            "P-256 ECDSA: `openssl` crate, key object cached (applet `--features openssl`)"
                .to_owned(),
            measure::run(budget, 50, || with_openssl::ec_sign(&cached, &digest))?,
            Goal::AtLeast(0.5),
        ));
    }
    variants.push((
        format!("P-256 ECDSA: GENERAL AUTHENTICATE 9E via `Card::transmit` ({backend})"),
        card_sign(image, &apdu::sign_p256(), budget)?,
        Goal::AtLeast(0.5),
    ));
    rows(&mut section, "ecdsap256", openssl_ec, variants);

    // The YubiKey 5.7 key types, with the primitives the applet uses.
    for bits in [3072, 4096] {
        let key = fixed_rsa_key(bits)?;
        let name = format!("rsa{bits}");
        let openssl = openssl_speed(&name, seconds)?;
        #[allow(unused_mut)] // the `openssl` feature adds a row
        let mut variants = vec![(
            format!("RSA-{bits}: RustCrypto `rsa`, blinded + checked (default applet)"),
            rsa_rustcrypto_any(&key, budget)?,
            Goal::AtLeast(0.5),
        )];
        #[cfg(feature = "openssl")]
        {
            use rsa::traits::PublicKeyParts as _;
            let mut block = vec![0x00, 0x01];
            block.resize(key.size(), 0x5A);
            let cached = with_openssl::rsa(&key)?;
            variants.push((
                format!(
                    "RSA-{bits}: `openssl` crate, key object cached (applet `--features openssl`)"
                ),
                measure::run(budget, 5, || with_openssl::rsa_sign(&cached, &block))?,
                Goal::AtLeast(0.5),
            ));
        }
        rows(&mut section, &name, openssl, variants);
    }
    let openssl_ed25519 = openssl_speed("ed25519", seconds)?;
    rows(
        &mut section,
        "ed25519",
        openssl_ed25519,
        vec![(
            "Ed25519: ed25519-dalek (applet, either backend)".to_owned(),
            ed25519_rustcrypto(budget)?,
            Goal::AtLeast(0.5),
        )],
    );
    let openssl_x25519 = openssl_speed("ecdhx25519", seconds)?;
    rows(
        &mut section,
        "ecdhx25519",
        openssl_x25519,
        vec![(
            "X25519 agreement: x25519-dalek (applet, either backend)".to_owned(),
            x25519_rustcrypto(budget)?,
            Goal::AtLeast(0.5),
        )],
    );
    section.notes.push(format!(
        "One thread each; `openssl speed -seconds {seconds}` runs as a child process right before the rows it is the baseline of."
    ));
    Ok(section)
}
