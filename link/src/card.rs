//! The card side: serves one [`Card`] over the link to a relay,
//! reconnecting with capped backoff. The same code serves `vscard serve
//! --link`, the bindings (a phone) and a card host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vscard_emulator::{Card, CardError};
use zeroize::Zeroizing;

use crate::KeepAlive;
use crate::error::LinkError;
use crate::frame::Frame;
use crate::handshake::{Target, connect};
use crate::noise::Link;
use crate::state::{Identity, LinkState, PinnedRelay};

const TARGET: &str = "vscard::link";

/// `6F00`: the answer when the card cannot answer at all.
const NO_PRECISE_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// Hears what the card side does.
pub trait CardObserver: Send + Sync {
    /// The link is up (the relay puts the card into a reader).
    fn connected(&self, relay: &str) {
        let _ = relay;
    }
    /// This connection paired with the relay; it is pinned from now on.
    fn paired(&self, relay: &PinnedRelay) {
        let _ = relay;
    }
    /// The link ended (the card left the reader); it reconnects.
    fn disconnected(&self, reason: &str) {
        let _ = reason;
    }
}

/// The card side's settings.
#[derive(Clone)]
pub struct CardLinkConfig {
    /// How the relay knows this card at pairing (the relay names it so).
    pub label: String,
    /// Keep-alive pacing.
    pub keep_alive: KeepAlive,
    /// First retry delay after a failure.
    pub backoff_initial: Duration,
    /// Longest retry delay (a relay restart brings the card back within
    /// this plus one vpcd poll).
    pub backoff_max: Duration,
    /// Who hears about the link.
    pub observer: Option<Arc<dyn CardObserver>>,
}

impl Default for CardLinkConfig {
    fn default() -> CardLinkConfig {
        CardLinkConfig {
            label: "card".to_owned(),
            keep_alive: KeepAlive::default(),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(250),
            observer: None,
        }
    }
}

/// Serves `card` over the link until `shutdown` turns true. A refusal by
/// the relay (an unknown key, a wrong, used or expired pairing secret, a
/// relay key that is not the one expected) ends it with the error; a
/// network failure or a dropped link is retried with capped backoff.
pub async fn serve_card(
    card: &mut Card,
    target: Target,
    identity: &Identity,
    state: &LinkState,
    config: &CardLinkConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let mut target = target;
    let mut delay = config.backoff_initial;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let connected = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            connected = connect(&target, identity, &config.label, state) => connected,
        };
        match connected {
            Ok((link, pinned)) => {
                delay = config.backoff_initial;
                if let Some(pinned) = pinned {
                    if let Some(observer) = &config.observer {
                        observer.paired(&pinned);
                    }
                    // The secret is used up: pinned keys from now on.
                    target = Target::Pinned(pinned);
                }
                if let Some(observer) = &config.observer {
                    observer.connected(target.address());
                }
                let end = serve_link(card, link, config.keep_alive, &mut shutdown).await;
                // As a card pulled from its reader: power gone, the
                // persistent state already committed.
                card.power_off();
                let reason = match end {
                    Ok(None) => return Ok(()),
                    Ok(Some(reason)) => reason,
                    Err(e) => e.to_string(),
                };
                tracing::info!(target: TARGET, %reason, "link ended");
                if let Some(observer) = &config.observer {
                    observer.disconnected(&reason);
                }
            }
            Err(e @ (LinkError::Refused(_) | LinkError::NotPaired(_) | LinkError::BadUri(_))) => {
                return Err(e);
            }
            Err(e) => {
                tracing::debug!(target: TARGET, error = %e, "relay not reached; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(config.backoff_max);
    }
}

/// Serves one link; `Ok(None)` on shutdown, `Ok(Some(reason))` when the
/// relay closed it.
async fn serve_link(
    card: &mut Card,
    mut link: Link,
    keep_alive: KeepAlive,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<String>, LinkError> {
    let mut tick = tokio::time::interval(keep_alive.interval.min(Duration::from_secs(1)));
    let mut last_received = Instant::now();
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                link.close("card stopping").await;
                return Ok(None);
            }
            frame = link.recv() => {
                last_received = Instant::now();
                let frame = frame?;
                if let Frame::Close(reason) = frame {
                    return Ok(Some(format!("the relay closed the link: {reason}")));
                }
                if let Some(answer) =
                    answer_frame(card, frame).map_err(|e| LinkError::Protocol(e.to_string()))?
                {
                    link.send(&answer).await?;
                    last_sent = Instant::now();
                }
            }
            _ = tick.tick() => {
                if last_received.elapsed() > keep_alive.timeout {
                    return Err(LinkError::Silent(keep_alive.timeout));
                }
                if last_sent.elapsed() >= keep_alive.interval {
                    link.send(&Frame::KeepAlive).await?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// Why [`answer_frame`] could not answer a frame.
#[derive(Debug, thiserror::Error)]
pub enum UnansweredFrame {
    /// The card failed (not an answer it gives: the session should end).
    #[error("the card failed: {0}")]
    CardFailed(CardError),
    /// A frame the card's side never gets from a relay.
    #[error("unexpected {0} from the relay")]
    Unexpected(String),
}

/// The card's answer to one frame from the relay (only after the frame
/// was authenticated: a frame that fails never gets here): `None` for
/// the frames that have no answer (power, reset, a keep-alive). The one
/// copy of the card's side of the protocol: [`serve_card`] and a card
/// host both answer through it.
pub fn answer_frame(card: &mut Card, frame: Frame) -> Result<Option<Frame>, UnansweredFrame> {
    Ok(match frame {
        Frame::PowerOn => {
            card.power_on();
            None
        }
        Frame::PowerOff => {
            card.power_off();
            None
        }
        Frame::Reset => {
            card.reset();
            None
        }
        Frame::GetAtr => Some(Frame::Atr(card.atr().to_vec())),
        Frame::Apdu(command) => {
            if !card.is_powered() {
                // As the vpcd bridge does: pcscd may send an APDU to a card
                // another client's disconnect powered down.
                card.power_on();
            }
            match card.transmit(&command) {
                Ok(response) => Some(Frame::Response(Zeroizing::new(response))),
                Err(CardError::NotPowered) => Some(Frame::Response(Zeroizing::new(
                    NO_PRECISE_DIAGNOSIS.to_vec(),
                ))),
                Err(e) => return Err(UnansweredFrame::CardFailed(e)),
            }
        }
        Frame::KeepAlive => None,
        other => return Err(UnansweredFrame::Unexpected(format!("{other:?}"))),
    })
}

/// A card served over the link on a thread of its own (with its own
/// runtime): for callers without tokio (the bindings, a card host).
pub struct CardLinkHandle {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<(Card, Result<(), LinkError>)>,
}

impl CardLinkHandle {
    /// Starts serving `card` to `target`.
    pub fn spawn(
        mut card: Card,
        target: Target,
        state: LinkState,
        config: CardLinkConfig,
    ) -> Result<CardLinkHandle, LinkError> {
        let identity = state.identity()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("vscard-link".to_owned())
            .spawn(move || {
                let result = runtime.block_on(serve_card(
                    &mut card, target, &identity, &state, &config, stopped,
                ));
                card.power_off();
                (card, result)
            })?;
        Ok(CardLinkHandle { stop, thread })
    }

    /// True once serving ended by itself (a refusal).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops (closing the link) and gives the card back, with how serving
    /// ended.
    pub fn stop(self) -> (Option<Card>, Result<(), LinkError>) {
        let _ = self.stop.send(true);
        match self.thread.join() {
            Ok((card, result)) => (Some(card), result),
            Err(_) => (
                None,
                Err(LinkError::Protocol("the link thread panicked".to_owned())),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_without_an_answer_and_frames_a_relay_never_sends() {
        let mut card = Card::builder().build().unwrap();
        assert_eq!(answer_frame(&mut card, Frame::PowerOn).unwrap(), None);
        assert_eq!(answer_frame(&mut card, Frame::KeepAlive).unwrap(), None);
        assert_eq!(
            answer_frame(&mut card, Frame::GetAtr).unwrap(),
            Some(Frame::Atr(card.atr().to_vec()))
        );
        // A powered-down card is powered by an APDU (as the vpcd bridge).
        answer_frame(&mut card, Frame::PowerOff).unwrap();
        let select = Frame::Apdu(Zeroizing::new(vec![0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0]));
        assert!(matches!(
            answer_frame(&mut card, select).unwrap(),
            Some(Frame::Response(_))
        ));
        assert!(card.is_powered());
        let error = answer_frame(&mut card, Frame::Paired("x".to_owned())).unwrap_err();
        assert_eq!(error.to_string(), "unexpected Paired(\"x\") from the relay");
    }
}
