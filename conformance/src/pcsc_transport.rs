//! The PC/SC transport: any reader pcscd knows, the vpcd virtual reader
//! included, chosen by (part of) its name.

use std::ffi::CString;

use vscard_testkit::PcscCard;
use vscard_testkit::pcsc::{self, Context, Disposition, Protocols, Scope, ShareMode};

use crate::transport::{Transport, TransportError};

/// A connection to the card in one PC/SC reader: the testkit's PC/SC
/// transport, with the reader found by name and reset by reconnecting.
pub struct Pcsc {
    _context: Context,
    card: PcscCard<pcsc::Card>,
    reader: String,
}

fn pcsc_error(error: pcsc::Error) -> TransportError {
    TransportError::from(error)
}

impl Pcsc {
    /// Connects (shared, T=1 or T=0) to the card in the first reader whose
    /// name contains `reader`.
    pub fn connect(reader: &str) -> Result<Pcsc, TransportError> {
        let context = Context::establish(Scope::User).map_err(pcsc_error)?;
        let names = context.list_readers_owned().map_err(pcsc_error)?;
        let name = names
            .into_iter()
            .find(|name| name.to_string_lossy().contains(reader))
            .ok_or_else(|| TransportError::NoAnswer(format!("no reader matching {reader:?}")))?;
        let card = context
            .connect(&name, ShareMode::Shared, Protocols::ANY)
            .map_err(pcsc_error)?;
        Ok(Pcsc {
            _context: context,
            card: PcscCard::new(card),
            reader: name.to_string_lossy().into_owned(),
        })
    }

    /// The names of the readers pcscd knows.
    pub fn readers() -> Result<Vec<String>, TransportError> {
        let context = Context::establish(Scope::User).map_err(pcsc_error)?;
        let names: Vec<CString> = context.list_readers_owned().map_err(pcsc_error)?;
        Ok(names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    fn reconnect(&mut self, disposition: Disposition) -> Result<(), TransportError> {
        self.card
            .card_mut()
            .reconnect(ShareMode::Shared, Protocols::ANY, disposition)
            .map_err(pcsc_error)
    }
}

impl Transport for Pcsc {
    fn name(&self) -> String {
        format!("pcsc: {}", self.reader)
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card.transmit(apdu)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.reconnect(Disposition::ResetCard)
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.reconnect(Disposition::UnpowerCard)
    }
}
