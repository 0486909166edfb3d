//! The link: the demo card served through `vscard relay` and the Noise
//! link (slot 1) against the same card served straight to vpcd (slot 0),
//! in one private pcscd, driven with the `pcsc` crate in turn.
//!
//! Rows: APDU throughput through relay + link over straight to vpcd (one
//! more loopback hop plus the AEAD both ways), the median latency the link
//! adds per APDU, the time from starting the card's side to pcscd
//! reporting the card present (vpcd's poll included), and one pairing
//! (the XXpsk3 handshake plus pinning both keys in their state folders).
//!
//! Must run inside the private namespaces (as the pcscd harness).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use vscard_emulator::CardImage;
use vscard_link::{
    CardLinkConfig, CardLinkHandle, LinkState, PairingUri, PinnedRelay, RelayConfig, Target,
    fingerprint,
};
use vscard_testkit::{pcsc, transmit};
use vscard_vpcd::{Bridge, BridgeConfig, VPCD_PORT};

use crate::measure::{self, human, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture, io_error};

const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

fn link_error(e: vscard_link::LinkError) -> BenchError {
    BenchError::Bridge(format!("link: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("a tokio runtime"))
}

/// One pairing against an in-process relay end (no vpcd): the handshake
/// and both state files. Leaves both ends pinned.
fn pair(relay: &LinkState, card: &LinkState) -> Result<Duration, BenchError> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_error("listen"))?;
        let address = listener.local_addr().map_err(io_error("listen"))?;
        let relay_identity = relay.identity().map_err(link_error)?;
        let card_identity = card.identity().map_err(link_error)?;
        let (id, secret) = relay
            .add_pairing(Duration::from_secs(60))
            .map_err(link_error)?;
        let uri = PairingUri {
            address: address.to_string(),
            name: "bench".to_owned(),
            fingerprint: fingerprint(relay_identity.public()),
            id,
            secret,
        };
        let started = Instant::now();
        let accepting = async {
            let (stream, _) = listener.accept().await.map_err(io_error("accept"))?;
            vscard_link::accept(stream, &relay_identity, relay)
                .await
                .map_err(link_error)
        };
        let connecting = async {
            vscard_link::connect(&Target::Pair(uri), &card_identity, "bench", card)
                .await
                .map_err(link_error)
        };
        let (accepted, connected) = tokio::join!(accepting, connecting);
        accepted?;
        connected?;
        Ok(started.elapsed())
    })
}

/// The link section.
pub fn run(image: &CardImage, budget: Duration) -> Result<Section, BenchError> {
    let pcscd = crate::pcscd::start()?;
    let direct = Bridge::start(
        vec![fixture::card_from(image)?],
        BridgeConfig {
            mode: pcscd.bridge_mode(),
            ..BridgeConfig::default()
        },
    )
    .map_err(|e| BenchError::Bridge(e.to_string()))?;
    pcscd.wait_for_card(0, Duration::from_secs(5))?;

    let dirs = (
        tempfile::tempdir().map_err(io_error("a temporary folder"))?,
        tempfile::tempdir().map_err(io_error("a temporary folder"))?,
    );
    let (relay_state, card_state) = (LinkState::new(dirs.0.path()), LinkState::new(dirs.1.path()));
    let pairing = pair(&relay_state, &card_state)?;

    // The relay on a thread of its own, its cards from vpcd slot 1 on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_error("listen"))?;
    let address: SocketAddr = listener.local_addr().map_err(io_error("listen"))?;
    listener.set_nonblocking(true).map_err(io_error("listen"))?;
    let identity = relay_state.identity().map_err(link_error)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay_thread = {
        let state = relay_state.clone();
        let runtime = runtime()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).map_err(io_error("listen"))?;
                let config = RelayConfig {
                    vpcd_port: VPCD_PORT + 1,
                    ..RelayConfig::default()
                };
                vscard_link::run_relay(listener, identity, state, config, stopped)
                    .await
                    .map_err(link_error)
            })
        })
    };
    let relay = PinnedRelay {
        name: "bench".to_owned(),
        address: address.to_string(),
        key: hex::encode(relay_state.identity().map_err(link_error)?.public()),
        paired: 0,
    };
    let started = Instant::now();
    let linked = CardLinkHandle::spawn(
        fixture::card_from(image)?,
        Target::Pinned(relay),
        card_state.clone(),
        CardLinkConfig::default(),
    )
    .map_err(link_error)?;
    pcscd.wait_for_card(1, Duration::from_secs(5))?;
    let to_present = started.elapsed();

    let (straight, over_link) = (pcscd.connect(0)?, pcscd.connect(1)?);
    let select = |card: &pcsc::Card| -> Result<(), BenchError> {
        let answer = transmit(card, &SELECT_PIV)?;
        if answer.ends_with(&[0x90, 0x00]) {
            Ok(())
        } else {
            Err(BenchError::Bridge(format!(
                "SELECT answered {}",
                hex::encode(answer)
            )))
        }
    };
    let (link_sample, direct_sample) =
        measure::run_pair(budget, 20, || select(&over_link), || select(&straight))?;
    drop((straight, over_link));
    let _ = linked.stop();
    let _ = stop.send(true);
    let _ = relay_thread.join();
    drop(direct.stop());

    // Signed: on a noisy machine the link's median can come out lower.
    let added_us = (link_sample.median.as_secs_f64() - direct_sample.median.as_secs_f64()) * 1e6;
    let mut section = Section::new(
        "8. The link (relay + Noise link vs straight to vpcd, `pcsc` crate)",
        "throughput: link / straight; the other rows: the figure in the goal's unit",
    );
    section.rows.push(Row::new(
        "APDU throughput through relay + link (SELECT PIV)",
        format!(
            "{} (median {})",
            rate(link_sample.per_second()),
            human(link_sample.median)
        ),
        format!(
            "straight to vpcd: {} (median {})",
            rate(direct_sample.per_second()),
            human(direct_sample.median)
        ),
        ratio(link_sample.per_second(), direct_sample.per_second()),
        Goal::AtLeast(0.5),
    ));
    section.rows.push(Row::new(
        "median latency the link adds per APDU (µs)",
        format!("{added_us:.1} µs"),
        format!("straight median {}", human(direct_sample.median)),
        added_us,
        Goal::AtMost(60.0),
    ));
    section.rows.push(Row::new(
        "card's side started -> card present in pcscd (s)",
        human(to_present),
        "vpcd polls every ~400 ms".to_owned(),
        to_present.as_secs_f64(),
        Goal::AtMost(0.6),
    ));
    section.rows.push(Row::new(
        "one pairing: XXpsk3 handshake + both pins written (ms)",
        human(pairing),
        String::new(),
        pairing.as_secs_f64() * 1e3,
        Goal::None,
    ));
    Ok(section)
}
