//! A scenario's view of the card: send APDUs, check status words, and keep
//! a transcript for the report when something fails.

use std::fmt;

pub use vscard_testkit::Reply;
use vscard_testkit::client::{Client, ClientError, chain};

use crate::facts::CardFacts;
use crate::transport::{Transport, TransportError};

/// Why a scenario failed: the step and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step that failed.
    pub step: String,
    /// What was expected and what came.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// A failed step.
pub fn fail(step: &str, message: impl Into<String>) -> Failure {
    Failure {
        step: step.to_owned(),
        message: message.into(),
    }
}

/// Checks a condition of a step.
pub fn ensure(
    condition: bool,
    step: &str,
    message: impl FnOnce() -> String,
) -> Result<(), Failure> {
    if condition {
        Ok(())
    } else {
        Err(fail(step, message()))
    }
}

/// The transport of a session: every exchange goes into the transcript.
struct Recorder<'a> {
    inner: &'a mut dyn Transport,
    transcript: Vec<String>,
}

impl Transport for Recorder<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.transcript
            .push(format!(">> {}", hex::encode_upper(apdu)));
        let response = self.inner.transmit(apdu)?;
        self.transcript
            .push(format!("<< {}", hex::encode_upper(&response)));
        Ok(response)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.transcript.push("-- reset".into());
        self.inner.reset()
    }

    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.transcript.push("-- power cycle".into());
        self.inner.power_cycle()
    }
}

/// One scenario's connection to the card: the testkit's client over the
/// transport, with the transcript kept for the report.
pub struct Session<'a> {
    client: Client<Recorder<'a>>,
    /// What the scenario may assume about the card.
    pub facts: &'a CardFacts,
}

impl<'a> Session<'a> {
    /// A session over `transport`.
    pub fn new(transport: &'a mut dyn Transport, facts: &'a CardFacts) -> Self {
        Session {
            client: Client::new(Recorder {
                inner: transport,
                transcript: Vec::new(),
            }),
            facts,
        }
    }

    /// The exchanges so far, as `>> C-APDU` / `<< R-APDU` hex lines (PIN
    /// data included: scenarios only use test PINs).
    pub fn transcript(&self) -> &[String] {
        &self.client.transport_ref().transcript
    }

    /// The transport's name.
    pub fn transport_name(&self) -> String {
        self.client.transport_ref().name()
    }

    /// Sends one APDU as is.
    pub fn send(&mut self, step: &str, apdu: &[u8]) -> Result<Reply, Failure> {
        self.client
            .transmit(apdu)
            .map_err(|e| client_failure(step, e))
    }

    /// Sends one APDU and requires status word `sw`; returns the data.
    pub fn expect(&mut self, step: &str, apdu: &[u8], sw: u16) -> Result<Vec<u8>, Failure> {
        let reply = self.send(step, apdu)?;
        expect_sw(step, &reply, sw)?;
        Ok(reply.data)
    }

    /// Sends one APDU and follows `61xx` with GET RESPONSE (and a first
    /// `6Cxx` with the corrected Le, ISO 7816-4 5.3.4) until the final
    /// status word; returns all data.
    pub fn collect(&mut self, step: &str, apdu: &[u8]) -> Result<Reply, Failure> {
        let mut reply = self.send(step, apdu)?;
        if reply.sw1() == 0x6C {
            let mut again = apdu.to_vec();
            if let Some(le) = again.last_mut() {
                *le = reply.sw2();
            }
            let mut corrected = self.send(step, &again)?;
            reply.data.append(&mut corrected.data);
            reply.status = corrected.status;
        }
        self.client
            .follow(reply)
            .map_err(|e| client_failure(step, e))
    }

    /// [`Session::collect`] and require `9000`.
    pub fn collect_ok(&mut self, step: &str, apdu: &[u8]) -> Result<Vec<u8>, Failure> {
        let reply = self.collect(step, apdu)?;
        expect_sw(step, &reply, 0x9000)?;
        Ok(reply.data)
    }

    /// Sends `data` after `header` as a command chain when longer than
    /// 255 bytes (the testkit's [`chain`]): every piece but the last must
    /// answer `9000`; the last is collected (following `61xx`).
    pub fn chained(&mut self, step: &str, header: [u8; 4], data: &[u8]) -> Result<Reply, Failure> {
        let apdus = chain(header, data);
        let Some((last, pieces)) = apdus.split_last() else {
            return Err(fail(step, "nothing to send"));
        };
        for piece in pieces {
            let reply = self.send(step, piece)?;
            expect_sw(step, &reply, 0x9000)?;
        }
        self.collect(step, last)
    }

    /// Management-key mutual authentication through the testkit's client
    /// (`Err(sw)` when the card refuses a step).
    pub fn authenticate_management_key(
        &mut self,
        algorithm: u8,
        key: &[u8],
        challenge: &[u8],
    ) -> Result<Result<(), u16>, Failure> {
        let step = "GENERAL AUTHENTICATE management key";
        match self
            .client
            .authenticate_management_key(algorithm, key, challenge)
        {
            Ok(result) => Ok(result.map_err(|status| status.to_u16())),
            Err(error) => Err(client_failure(step, error)),
        }
    }

    /// Warm reset.
    pub fn reset(&mut self, step: &str) -> Result<(), Failure> {
        self.client.reset().map_err(|e| client_failure(step, e))
    }

    /// Power cycle, when the transport can.
    pub fn power_cycle(&mut self, step: &str) -> Result<(), Failure> {
        self.client
            .power_cycle()
            .map_err(|e| client_failure(step, e))
    }
}

/// Requires status word `sw`.
pub fn expect_sw(step: &str, reply: &Reply, sw: u16) -> Result<(), Failure> {
    ensure(reply.sw() == sw, step, || {
        format!(
            "expected SW {sw:04X}, got {:04X} ({} data bytes)",
            reply.sw(),
            reply.data.len()
        )
    })
}

fn client_failure(step: &str, error: ClientError) -> Failure {
    fail(step, error.to_string())
}
