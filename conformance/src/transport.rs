//! How scenarios reach a card: the testkit's [`Transport`] trait,
//! implemented in-process here and over PC/SC in
//! [`crate::pcsc_transport`].
//!
//! A transport moves raw APDUs and nothing else: it never answers 61xx
//! with GET RESPONSE or retries 6Cxx by itself, because those are what the
//! runtime scenarios check.

use vscard_emulator::Card;
pub use vscard_testkit::{Transport, TransportError};

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

impl Transport for InProcess {
    fn name(&self) -> String {
        Transport::name(&self.card)
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Transport::transmit(&mut self.card, apdu)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        Transport::reset(&mut self.card)
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        Transport::power_cycle(&mut self.card)
    }
}
