//! The commands the harnesses send, and one way to send them to any
//! card: in-process ([`vscard_emulator::Card`]) or through PC/SC.
//!
//! An [`Operation`] is what a middleware does for one logical command:
//! one APDU, or a command chain (CLA bit `10`, ISO 7816-4 5.3.3), followed
//! by GET RESPONSE while the card answers `61xx`. [`perform`] records the
//! APDUs it actually sent so that the same exchanges can be replayed to a
//! trivial responder card as the baseline.

use vscard_testkit::client::{Client, ClientError, TransportError, chain, short_apdu};
use vscard_testkit::piv::{pad, select_apdu, tag_list};
use vscard_testkit::{Reply, Transport};

use crate::BenchError;

/// The demo card's PIN (`CardProfile::demo`).
pub const DEMO_PIN: &[u8] = b"123456";

/// Data objects: CHUID, CCC, and the certificates of 9A, 9C, 9E.
pub const CHUID: [u8; 3] = [0x5F, 0xC1, 0x02];
/// Card Capability Container.
pub const CCC: [u8; 3] = [0x5F, 0xC1, 0x07];
/// X.509 certificate for PIV Authentication (9A, RSA-2048 on the demo card).
pub const CERT_9A: [u8; 3] = [0x5F, 0xC1, 0x05];
/// X.509 certificate for Digital Signature (9C).
pub const CERT_9C: [u8; 3] = [0x5F, 0xC1, 0x0A];
/// X.509 certificate for Card Authentication (9E).
pub const CERT_9E: [u8; 3] = [0x5F, 0xC1, 0x01];

/// What a middleware sends for one logical command.
#[derive(Clone, Debug)]
pub struct Operation {
    /// A short name for tables.
    pub name: &'static str,
    /// The APDUs before any GET RESPONSE (several for a command chain).
    pub apdus: Vec<Vec<u8>>,
    /// The status word expected at the end (`9000`; `63C0` matches any
    /// `63Cx`).
    pub expect: u16,
}

/// The answer to an [`Operation`].
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The response data, GET RESPONSE pieces joined.
    pub data: Vec<u8>,
    /// The final status word.
    pub sw: u16,
    /// How many APDUs were exchanged.
    pub round_trips: usize,
}

fn matches(expect: u16, sw: u16) -> bool {
    if expect == 0x63C0 {
        sw & 0xFFF0 == 0x63C0
    } else {
        sw == expect
    }
}

/// The APDUs of an operation as sent (chain parts and GET RESPONSEs) and
/// the card's answers, for [`replay`] to a card that answers the same.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// The APDUs.
    pub commands: Vec<Vec<u8>>,
    /// The answers, one per APDU.
    pub responses: Vec<Vec<u8>>,
}

impl Script {
    /// The number of APDUs.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// A transport that adds every exchange to a [`Script`].
struct Recorder<'a, T> {
    inner: &'a mut T,
    script: Option<&'a mut Script>,
}

impl<T: Transport> Transport for Recorder<'_, T> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.inner.transmit(apdu)?;
        if let Some(script) = self.script.as_deref_mut() {
            script.commands.push(apdu.to_vec());
            script.responses.push(response.clone());
        }
        Ok(response)
    }
}

fn client_error(op: &Operation, error: ClientError) -> BenchError {
    match error {
        ClientError::Transport(TransportError::Card(error)) => BenchError::Card(error),
        ClientError::NoStatusWord(_) => BenchError::ShortResponse(op.name.to_owned()),
        other => BenchError::Client {
            command: op.name.to_owned(),
            source: other,
        },
    }
}

/// Performs `op` with the testkit's client (chain pieces must answer
/// `9000`, the last APDU's `61xx` is followed with GET RESPONSE); with
/// `record`, adds every APDU sent (chain parts and GET RESPONSEs) and its
/// answer, for [`replay`].
pub fn perform(
    transport: &mut impl Transport,
    op: &Operation,
    record: Option<&mut Script>,
) -> Result<Outcome, BenchError> {
    let unexpected = |sw| BenchError::Status {
        command: op.name.to_owned(),
        sw,
    };
    let mut client = Client::new(Recorder {
        inner: transport,
        script: record,
    });
    let Some((last, pieces)) = op.apdus.split_last() else {
        return Err(BenchError::ShortResponse(op.name.to_owned()));
    };
    let mut data = Vec::new();
    for apdu in pieces {
        let reply = client.transmit(apdu).map_err(|e| client_error(op, e))?;
        if reply.sw() != 0x9000 {
            return Err(unexpected(reply.sw()));
        }
        data.extend_from_slice(&reply.data);
    }
    let Reply {
        data: last_data,
        status,
    } = client.send(last).map_err(|e| client_error(op, e))?;
    data.extend_from_slice(&last_data);
    let sw = status.to_u16();
    if !matches(op.expect, sw) {
        return Err(unexpected(sw));
    }
    Ok(Outcome {
        data,
        sw,
        round_trips: client.round_trips(),
    })
}

/// Sends a script's APDUs, ignoring the answers (the trivial card answers
/// with the script's recorded answers).
pub fn replay(transport: &mut impl Transport, script: &Script) -> Result<(), BenchError> {
    for apdu in &script.commands {
        transport.transmit(apdu)?;
    }
    Ok(())
}

/// SELECT the PIV application by its full AID.
pub fn select() -> Operation {
    Operation {
        name: "SELECT PIV",
        apdus: vec![select_apdu(vscard_applet::PIV_AID.as_bytes())],
        expect: 0x9000,
    }
}

/// GET DATA of one object (`00 CB 3F FF 5C 03 tag`, Le 256: longer objects
/// come back with `61xx` / GET RESPONSE).
pub fn get_data(name: &'static str, tag: [u8; 3]) -> Operation {
    Operation {
        name,
        apdus: vec![short_apdu([0x00, 0xCB, 0x3F, 0xFF], &tag_list(&tag), true)],
        expect: 0x9000,
    }
}

/// VERIFY the PIN (padded with FF to 8 bytes).
pub fn verify(name: &'static str, pin: &[u8], expect: u16) -> Operation {
    Operation {
        name,
        apdus: vec![short_apdu([0x00, 0x20, 0x00, 0x80], &pad(pin), false)],
        expect,
    }
}

/// GENERAL AUTHENTICATE with the P-256 key of 9E (PIN never): ECDSA over
/// a 32-byte digest.
pub fn sign_p256() -> Operation {
    let mut body = vec![0x7C, 0x24, 0x82, 0x00, 0x81, 0x20];
    body.extend_from_slice(&[0x5A; 32]);
    Operation {
        name: "GENERAL AUTHENTICATE 9E P-256",
        apdus: chain([0x00, 0x87, 0x11, 0x9E], &body),
        expect: 0x9000,
    }
}

/// A PKCS#1 v1.5 signature block for a SHA-256 DigestInfo (RFC 8017
/// 9.2): what the host pads before GENERAL AUTHENTICATE with RSA.
pub fn pkcs1_block() -> Vec<u8> {
    const DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.resize(256 - DIGEST_INFO.len() - 32 - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&DIGEST_INFO);
    block.extend_from_slice(&[0x5A; 32]);
    block
}

/// GENERAL AUTHENTICATE with the RSA-2048 key of 9A (PIN once per
/// session): the raw private-key operation on a padded block, sent as a
/// command chain of two APDUs as OpenSC does.
pub fn sign_rsa() -> Operation {
    let block = pkcs1_block();
    let mut body = vec![0x7C, 0x82, 0x01, 0x06, 0x82, 0x00, 0x81, 0x82, 0x01, 0x00];
    body.extend_from_slice(&block);
    Operation {
        name: "GENERAL AUTHENTICATE 9A RSA-2048",
        apdus: chain([0x00, 0x87, 0x07, 0x9A], &body),
        expect: 0x9000,
    }
}

/// An OpenSC-style login: SELECT, GET DATA x5 (CHUID, CCC and three
/// certificates), VERIFY, sign with 9A.
pub fn login() -> Vec<Operation> {
    vec![
        select(),
        get_data("GET DATA CHUID", CHUID),
        get_data("GET DATA CCC", CCC),
        get_data("GET DATA cert 9A", CERT_9A),
        get_data("GET DATA cert 9C", CERT_9C),
        get_data("GET DATA cert 9E", CERT_9E),
        verify("VERIFY", DEMO_PIN, 0x9000),
        sign_rsa(),
    ]
}
