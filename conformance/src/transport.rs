//! How scenarios reach a card: one [`Transport`] trait, implemented
//! in-process here and over PC/SC in [`crate::pcsc_transport`].
//!
//! A transport moves raw APDUs and nothing else: it never answers 61xx
//! with GET RESPONSE or retries 6Cxx by itself, because those are what the
//! runtime scenarios check.

use vscard_emulator::{Card, CardError};

/// Why a transport could not carry a command.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The card gave no answer (removed, unpowered, power lost).
    #[error("no answer from the card: {0}")]
    NoAnswer(String),
    /// The transport cannot do this (a reader that cannot power-cycle).
    #[error("not supported by this transport: {0}")]
    Unsupported(&'static str),
    /// The middleware refused the command before the card saw it.
    #[error("refused by the middleware: {0}")]
    Refused(String),
}

/// A connection to one card.
pub trait Transport {
    /// A human-readable name (`in-process`, `pcsc: Virtual PCD 00 00`).
    fn name(&self) -> String;

    /// Sends one command APDU and returns the response APDU, data and SW.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Warm reset.
    fn reset(&mut self) -> Result<(), TransportError>;

    /// Power off and on again, when the transport can.
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        Err(TransportError::Unsupported("power cycle"))
    }
}

/// A [`Card`] in this process.
pub struct InProcess {
    card: Card,
}

impl InProcess {
    /// Wraps a card and powers it on.
    pub fn new(mut card: Card) -> Self {
        card.power_on();
        InProcess { card }
    }

    /// The card, for checks that look inside it.
    pub fn card(&mut self) -> &mut Card {
        &mut self.card
    }
}

fn no_answer(error: CardError) -> TransportError {
    TransportError::NoAnswer(error.to_string())
}

impl Transport for InProcess {
    fn name(&self) -> String {
        "in-process".into()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card.transmit(apdu).map_err(no_answer)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.card.reset();
        Ok(())
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.card.power_off();
        self.card.power_on();
        Ok(())
    }
}
