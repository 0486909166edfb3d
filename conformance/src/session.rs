//! A scenario's view of the card: send APDUs, check status words, and keep
//! a transcript for the report when something fails.

use std::fmt;

use crate::facts::CardFacts;
use crate::transport::{Transport, TransportError};

/// A response APDU split into data and status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The response data.
    pub data: Vec<u8>,
    /// SW1 SW2.
    pub sw: u16,
}

impl Reply {
    /// SW1 alone.
    pub fn sw1(&self) -> u8 {
        (self.sw >> 8) as u8
    }

    /// SW2 alone.
    pub fn sw2(&self) -> u8 {
        self.sw as u8
    }
}

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

/// One scenario's connection to the card.
pub struct Session<'a> {
    transport: &'a mut dyn Transport,
    /// What the scenario may assume about the card.
    pub facts: &'a CardFacts,
    transcript: Vec<String>,
}

impl<'a> Session<'a> {
    /// A session over `transport`.
    pub fn new(transport: &'a mut dyn Transport, facts: &'a CardFacts) -> Self {
        Session {
            transport,
            facts,
            transcript: Vec::new(),
        }
    }

    /// The exchanges so far, as `>> C-APDU` / `<< R-APDU` hex lines (PIN
    /// data included: scenarios only use test PINs).
    pub fn transcript(&self) -> &[String] {
        &self.transcript
    }

    /// The transport's name.
    pub fn transport_name(&self) -> String {
        self.transport.name()
    }

    /// Sends one APDU as is.
    pub fn send(&mut self, step: &str, apdu: &[u8]) -> Result<Reply, Failure> {
        self.transcript
            .push(format!(">> {}", hex::encode_upper(apdu)));
        let mut bytes = self
            .transport
            .transmit(apdu)
            .map_err(|e| transport_failure(step, e))?;
        self.transcript
            .push(format!("<< {}", hex::encode_upper(&bytes)));
        if bytes.len() < 2 {
            return Err(fail(
                step,
                format!("response of {} bytes has no status word", bytes.len()),
            ));
        }
        let sw = bytes.split_off(bytes.len() - 2);
        Ok(Reply {
            data: bytes,
            sw: u16::from_be_bytes([sw[0], sw[1]]),
        })
    }

    /// Sends one APDU and requires status word `sw`; returns the data.
    pub fn expect(&mut self, step: &str, apdu: &[u8], sw: u16) -> Result<Vec<u8>, Failure> {
        let reply = self.send(step, apdu)?;
        expect_sw(step, &reply, sw)?;
        Ok(reply.data)
    }

    /// Sends one APDU and follows `61xx` with GET RESPONSE (and `6Cxx` with
    /// the corrected Le) until the final status word; returns all data.
    pub fn collect(&mut self, step: &str, apdu: &[u8]) -> Result<Reply, Failure> {
        let mut reply = self.send(step, apdu)?;
        let mut data = std::mem::take(&mut reply.data);
        let mut rounds = 0;
        loop {
            match reply.sw1() {
                0x61 => {
                    let get_response = [0x00, 0xC0, 0x00, 0x00, reply.sw2()];
                    reply = self.send(step, &get_response)?;
                }
                0x6C if rounds == 0 => {
                    let mut again = apdu.to_vec();
                    if let Some(le) = again.last_mut() {
                        *le = reply.sw2();
                    }
                    reply = self.send(step, &again)?;
                }
                _ => break,
            }
            data.append(&mut reply.data);
            rounds += 1;
            if rounds > 300 {
                return Err(fail(step, "more than 300 GET RESPONSE rounds"));
            }
        }
        Ok(Reply { data, sw: reply.sw })
    }

    /// [`Session::collect`] and require `9000`.
    pub fn collect_ok(&mut self, step: &str, apdu: &[u8]) -> Result<Vec<u8>, Failure> {
        let reply = self.collect(step, apdu)?;
        expect_sw(step, &reply, 0x9000)?;
        Ok(reply.data)
    }

    /// Warm reset.
    pub fn reset(&mut self, step: &str) -> Result<(), Failure> {
        self.transcript.push("-- reset".into());
        self.transport
            .reset()
            .map_err(|e| transport_failure(step, e))
    }

    /// Power cycle, when the transport can.
    pub fn power_cycle(&mut self, step: &str) -> Result<(), Failure> {
        self.transcript.push("-- power cycle".into());
        self.transport
            .power_cycle()
            .map_err(|e| transport_failure(step, e))
    }
}

/// Requires status word `sw`.
pub fn expect_sw(step: &str, reply: &Reply, sw: u16) -> Result<(), Failure> {
    ensure(reply.sw == sw, step, || {
        format!(
            "expected SW {sw:04X}, got {:04X} ({} data bytes)",
            reply.sw,
            reply.data.len()
        )
    })
}

fn transport_failure(step: &str, error: TransportError) -> Failure {
    fail(step, error.to_string())
}
