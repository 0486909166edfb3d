//! Parse first, execute second: every APDU addressed to the PIV
//! application becomes one [`Command`] before anything runs.
//!
//! Contract: [`Command::try_from`] never panics and touches no state. It
//! checks everything that can be checked without state: instruction, P1,
//! P2, the structure of the data field, key references and algorithms; its
//! error is the status word the card answers. Handlers then only decide
//! what depends on state (PINs, keys, security status).
//!
//! Status words for structural errors: a proprietary class `6E00`; unknown
//! instruction `6D00`; wrong P1/P2 `6A86`; unknown PIN reference `6A88`;
//! malformed data `6A80`.

use vscard_emulator::{CommandApdu, Status};

use crate::move_key::MoveKey;
use crate::objects::DataObjectTag;
use crate::pin::PADDED_LEN;
use crate::reference::{Algorithm, KeyRef, PinPolicy, PinRef, Slot};
pub use crate::secret::{Bytes, Secret};
use crate::tlv::{self, Reader};
use crate::touch_policy::TouchPolicy;

/// One command of the PIV application. `Debug` never shows PINs, PUKs,
/// keys or authentication data, only their lengths: they are [`Secret`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// VERIFY (SP 800-73-4 Part 2 3.2.1).
    Verify(Verify<'a>),
    /// CHANGE REFERENCE DATA (3.2.2): old and new padded values.
    ChangeReferenceData {
        /// PIN or PUK.
        reference: PinRef,
        /// The current value, padded.
        old: Secret<'a>,
        /// The new value, padded.
        new: Secret<'a>,
    },
    /// RESET RETRY COUNTER (3.2.3): PUK and new PIN, padded.
    ResetRetryCounter {
        /// The PUK, padded.
        puk: Secret<'a>,
        /// The new PIN, padded.
        new_pin: Secret<'a>,
    },
    /// GET DATA (3.1.2).
    GetData(DataObjectTag),
    /// PUT DATA (3.3.2); an empty value deletes the object.
    PutData {
        /// The object.
        tag: DataObjectTag,
        /// Its new value.
        value: Bytes<'a>,
    },
    /// GENERAL AUTHENTICATE (3.2.4).
    GeneralAuthenticate {
        /// The algorithm named in P1.
        algorithm: Algorithm,
        /// The key named in P2.
        key: AuthKey,
        /// What the dynamic authentication template asks for.
        request: AuthRequest<'a>,
    },
    /// GENERATE ASYMMETRIC KEY PAIR (3.3.2).
    GenerateAsymmetricKeyPair {
        /// Where.
        slot: Slot,
        /// RSA-2048, P-256 or P-384.
        algorithm: Algorithm,
        /// Yubico tag `AA`, if present.
        pin_policy: Option<PinPolicy>,
        /// Yubico tag `AB`, if present.
        touch_policy: Option<TouchPolicy>,
    },
    /// Yubico GET VERSION (`FD`).
    GetVersion,
    /// Yubico ATTEST (`F9`, P1 the slot).
    Attest(Slot),
    /// Yubico GET SERIAL (`F8`).
    GetSerial,
    /// Yubico GET METADATA (`F7`).
    GetMetadata(KeyRef),
    /// Yubico MOVE KEY / DELETE KEY (`F6`).
    MoveKey(MoveKey),
    /// Yubico SET MANAGEMENT KEY (`FF`).
    SetManagementKey {
        /// The new key's algorithm.
        algorithm: Algorithm,
        /// The new key.
        key: Secret<'a>,
    },
    /// Yubico RESET (`FB`).
    Reset,
    /// Yubico SET PIN RETRIES (`FA`): P1 PIN tries, P2 PUK tries.
    SetPinRetries {
        /// New PIN try limit, 1..=15.
        pin_tries: u8,
        /// New PUK try limit, 1..=15.
        puk_tries: u8,
    },
    /// Yubico IMPORT ASYMMETRIC KEY (`FE`).
    ImportKey {
        /// Where.
        slot: Slot,
        /// RSA-2048, P-256 or P-384 (P1).
        algorithm: Algorithm,
        /// The key.
        material: ImportMaterial<'a>,
        /// Yubico tag `AA`, if present.
        pin_policy: Option<PinPolicy>,
        /// Yubico tag `AB`, if present.
        touch_policy: Option<TouchPolicy>,
    },
}

/// What a VERIFY asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify<'a> {
    /// Compare padded PIN data.
    Check(Secret<'a>),
    /// No data: report whether the PIN is verified (`9000`) or how many
    /// tries are left (`63Cx`).
    Status,
    /// P1 `FF`: forget the verification.
    LogOut,
}

/// The key a GENERAL AUTHENTICATE names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKey {
    /// `9B`.
    Management,
    /// An asymmetric slot.
    Slot(Slot),
}

/// The request inside a dynamic authentication template (`7C`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// `80` empty: mutual authentication step 1, send an encrypted witness.
    WitnessRequest,
    /// `80` witness and `81` challenge: mutual authentication step 2.
    MutualResponse {
        /// The decrypted witness.
        witness: Secret<'a>,
        /// The host's challenge for the card.
        challenge: Secret<'a>,
    },
    /// `81` empty: send a challenge (external authentication step 1, or
    /// simply random bytes).
    ChallengeRequest,
    /// `82` response: external authentication step 2.
    ExternalResponse(Secret<'a>),
    /// `82` empty and `81` data: sign (or RSA-decrypt) with a slot key
    /// (a digest or a ciphertext: redacted, it may be a secret's wrapping).
    Sign(Secret<'a>),
    /// `82` empty and `85` point: ECDH with a slot key.
    KeyAgreement(Bytes<'a>),
}

/// Key material of IMPORT KEY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportMaterial<'a> {
    /// RSA CRT components: `01` p, `02` q, `03` dP, `04` dQ, `05` qInv.
    Rsa {
        /// The five components, in tag order.
        parts: [Secret<'a>; 5],
    },
    /// `06`: the P-256 or P-384 private scalar.
    Ec(Secret<'a>),
    /// `07` (Ed25519) or `08` (X25519): the raw 32-byte private key.
    Curve25519(Secret<'a>),
}

/// The GET METADATA reference of a YubiKey Bio's fingerprints.
const BIO_METADATA: u8 = 0x96;

impl<'a> TryFrom<&CommandApdu<'a>> for Command<'a> {
    type Error = Status;

    fn try_from(apdu: &CommandApdu<'a>) -> Result<Self, Status> {
        // Every PIV command, the Yubico extensions included, is sent with an
        // interindustry class (SP 800-73-4 Part 2 3: CLA `00`, or `10` while
        // chaining; yubico-piv-tool and ykman send `00 F7`..`00 FF`). The
        // runtime has already taken the chaining bit off, answered secure
        // messaging with `6882` and routed by logical channel (ISO 7816-4
        // 5.4.1), so what is left to refuse is a proprietary class (`b8 = 1`):
        // `6E00` before the instruction is looked at, so no PIN try is spent.
        if apdu.class.is_proprietary() {
            return Err(Status::ClassNotSupported);
        }
        let (p1, p2, data) = (apdu.p1, apdu.p2, apdu.data);
        match apdu.ins {
            0x20 => parse_verify(p1, p2, data),
            0x24 => parse_change(p1, p2, data),
            0x2C => parse_reset_retry_counter(p1, p2, data),
            0xCB => expect_3fff(p1, p2).and_then(|()| parse_get_data(data)),
            0xDB => expect_3fff(p1, p2).and_then(|()| parse_put_data(data)),
            0x87 => parse_general_authenticate(p1, p2, data),
            0x47 => parse_generate(p1, p2, data),
            0xFD => Ok(Command::GetVersion),
            0xF9 if p2 == 0x00 => Slot::new(p1)
                .map(Command::Attest)
                .ok_or(Status::IncorrectP1P2),
            0xF9 => Err(Status::IncorrectP1P2),
            0xF8 => Ok(Command::GetSerial),
            0xF7 => match KeyRef::new(p2) {
                Some(key) => Ok(Command::GetMetadata(key)),
                // `96` is the YubiKey Bio's fingerprint "key": a YubiKey
                // without one answers `6A88` (reference data not found),
                // which yubikit's RESET takes as "no biometrics here".
                None if p2 == BIO_METADATA => Err(Status::ReferenceNotFound),
                None => Err(Status::IncorrectP1P2),
            },
            0xF6 => MoveKey::parse(p1, p2).map(Command::MoveKey),
            0xFF => parse_set_management_key(p1, p2, data),
            0xFB => Ok(Command::Reset),
            0xFA => match (p1, p2) {
                (1..=15, 1..=15) => Ok(Command::SetPinRetries {
                    pin_tries: p1,
                    puk_tries: p2,
                }),
                _ => Err(Status::IncorrectP1P2),
            },
            0xFE => parse_import(p1, p2, data),
            _ => Err(Status::InstructionNotSupported),
        }
    }
}

fn expect_3fff(p1: u8, p2: u8) -> Result<(), Status> {
    match (p1, p2) {
        (0x3F, 0xFF) => Ok(()),
        _ => Err(Status::IncorrectP1P2),
    }
}

fn padded(data: &[u8]) -> Result<Secret<'_>, Status> {
    match data.len() {
        PADDED_LEN => Ok(Secret::new(data)),
        _ => Err(Status::IncorrectData),
    }
}

fn padded_pair(data: &[u8]) -> Result<(Secret<'_>, Secret<'_>), Status> {
    if data.len() != 2 * PADDED_LEN {
        return Err(Status::IncorrectData);
    }
    let (first, second) = data.split_at(PADDED_LEN);
    Ok((Secret::new(first), Secret::new(second)))
}

fn parse_verify<'a>(p1: u8, p2: u8, data: &'a [u8]) -> Result<Command<'a>, Status> {
    if PinRef::from_p2(p2)? != PinRef::Pin {
        return Err(Status::ReferenceNotFound);
    }
    let verify = match (p1, data.is_empty()) {
        (0x00, true) => Verify::Status,
        (0x00, false) => Verify::Check(padded(data)?),
        (0xFF, true) => Verify::LogOut,
        (0xFF, false) => return Err(Status::IncorrectData),
        _ => return Err(Status::IncorrectP1P2),
    };
    Ok(Command::Verify(verify))
}

fn parse_change<'a>(p1: u8, p2: u8, data: &'a [u8]) -> Result<Command<'a>, Status> {
    if p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    let reference = PinRef::from_p2(p2)?;
    let (old, new) = padded_pair(data)?;
    Ok(Command::ChangeReferenceData {
        reference,
        old,
        new,
    })
}

fn parse_reset_retry_counter<'a>(p1: u8, p2: u8, data: &'a [u8]) -> Result<Command<'a>, Status> {
    if p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    if PinRef::from_p2(p2)? != PinRef::Pin {
        return Err(Status::ReferenceNotFound);
    }
    let (puk, new_pin) = padded_pair(data)?;
    Ok(Command::ResetRetryCounter { puk, new_pin })
}

fn parse_get_data(data: &[u8]) -> Result<Command<'_>, Status> {
    let tag = tlv::single(data, 0x5C)?;
    DataObjectTag::from_bytes(tag)
        .map(Command::GetData)
        .ok_or(Status::IncorrectData)
}

fn parse_put_data(data: &[u8]) -> Result<Command<'_>, Status> {
    let mut reader = Reader::new(data);
    let first = reader.read()?;
    // Discovery is written in its own tag (SP 800-73-4 Part 1 3.3.2).
    if first.tag == 0x7E {
        reader.expect_empty()?;
        return Ok(Command::PutData {
            tag: DataObjectTag::DISCOVERY,
            value: Bytes::new(first.value),
        });
    }
    if first.tag != 0x5C {
        return Err(Status::IncorrectData);
    }
    let tag = DataObjectTag::from_bytes(first.value).ok_or(Status::IncorrectData)?;
    let value = reader.expect(0x53)?;
    reader.expect_empty()?;
    Ok(Command::PutData {
        tag,
        value: Bytes::new(value),
    })
}

/// The data objects of a dynamic authentication template, each at most
/// once.
#[derive(Default)]
struct Template<'a> {
    witness: Option<&'a [u8]>,
    challenge: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    exponentiation: Option<&'a [u8]>,
}

fn parse_template(data: &[u8]) -> Result<Template<'_>, Status> {
    let inner = tlv::single(data, 0x7C)?;
    let mut template = Template::default();
    let mut reader = Reader::new(inner);
    while !reader.is_empty() {
        let object = reader.read()?;
        let slot = match object.tag {
            0x80 => &mut template.witness,
            0x81 => &mut template.challenge,
            0x82 => &mut template.response,
            0x85 => &mut template.exponentiation,
            _ => return Err(Status::IncorrectData),
        };
        if slot.replace(object.value).is_some() {
            return Err(Status::IncorrectData);
        }
    }
    Ok(template)
}

fn parse_general_authenticate<'a>(p1: u8, p2: u8, data: &'a [u8]) -> Result<Command<'a>, Status> {
    let algorithm = Algorithm::new(p1).ok_or(Status::IncorrectP1P2)?;
    let key = match KeyRef::new(p2) {
        Some(KeyRef::Management) => AuthKey::Management,
        Some(KeyRef::Slot(slot)) => AuthKey::Slot(slot),
        _ => return Err(Status::IncorrectP1P2),
    };
    if algorithm.is_symmetric() != (key == AuthKey::Management) {
        return Err(Status::IncorrectP1P2);
    }
    let t = parse_template(data)?;
    let empty = |v: Option<&[u8]>| v.is_some_and(<[u8]>::is_empty);
    let request = match (t.witness, t.challenge, t.response, t.exponentiation) {
        (w, None, None, None) if empty(w) => AuthRequest::WitnessRequest,
        (Some(w), Some(c), None, None) if !w.is_empty() && !c.is_empty() => {
            AuthRequest::MutualResponse {
                witness: Secret::new(w),
                challenge: Secret::new(c),
            }
        }
        (None, c, None, None) if empty(c) => AuthRequest::ChallengeRequest,
        (None, None, Some(r), None) if !r.is_empty() => {
            AuthRequest::ExternalResponse(Secret::new(r))
        }
        (None, Some(c), r, None) if empty(r) && !c.is_empty() => AuthRequest::Sign(Secret::new(c)),
        (None, None, r, Some(e)) if empty(r) && !e.is_empty() => {
            AuthRequest::KeyAgreement(Bytes::new(e))
        }
        _ => return Err(Status::IncorrectData),
    };
    let symmetric_request = matches!(
        request,
        AuthRequest::WitnessRequest
            | AuthRequest::MutualResponse { .. }
            | AuthRequest::ChallengeRequest
            | AuthRequest::ExternalResponse(_)
    );
    if symmetric_request != (key == AuthKey::Management) {
        return Err(Status::IncorrectData);
    }
    Ok(Command::GeneralAuthenticate {
        algorithm,
        key,
        request,
    })
}

/// The optional Yubico policy tags `AA` (PIN) and `AB` (touch).
#[derive(Default)]
struct Policies {
    pin: Option<PinPolicy>,
    touch: Option<TouchPolicy>,
}

impl Policies {
    /// Reads one policy tag; anything else is `6A80`.
    fn read(&mut self, tag: u32, value: &[u8], slot: Slot) -> Result<(), Status> {
        match (tag, value) {
            (0xAA, [byte]) => {
                self.pin = Some(PinPolicy::from_byte(*byte, slot).ok_or(Status::IncorrectData)?);
                Ok(())
            }
            (0xAB, [byte]) => {
                self.touch = Some(TouchPolicy::from_byte(*byte).ok_or(Status::IncorrectData)?);
                Ok(())
            }
            _ => Err(Status::IncorrectData),
        }
    }
}

fn parse_generate(p1: u8, p2: u8, data: &[u8]) -> Result<Command<'_>, Status> {
    if p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    let slot = Slot::new(p2).ok_or(Status::IncorrectP1P2)?;
    let template = tlv::single(data, 0xAC)?;
    let mut algorithm = None;
    let mut policies = Policies::default();
    for object in Reader::new(template).read_all()? {
        match (object.tag, object.value) {
            (0x80, [byte]) if algorithm.is_none() => algorithm = Some(*byte),
            (tag, value) => policies.read(tag, value, slot)?,
        }
    }
    let algorithm = algorithm
        .and_then(Algorithm::new)
        .filter(|a| !a.is_symmetric())
        .ok_or(Status::IncorrectData)?;
    Ok(Command::GenerateAsymmetricKeyPair {
        slot,
        algorithm,
        pin_policy: policies.pin,
        touch_policy: policies.touch,
    })
}

fn parse_set_management_key(p1: u8, p2: u8, data: &[u8]) -> Result<Command<'_>, Status> {
    // P2 `FE` asks for touch, which a virtual card cannot honour.
    if (p1, p2) != (0xFF, 0xFF) {
        return Err(Status::IncorrectP1P2);
    }
    let mut reader = Reader::new(data);
    let header = reader.take(2)?;
    let algorithm = header
        .first()
        .copied()
        .and_then(Algorithm::new)
        .filter(|a| a.is_symmetric())
        .ok_or(Status::IncorrectData)?;
    if header.get(1) != Some(&0x9B) {
        return Err(Status::IncorrectData);
    }
    let length = reader.take(1)?.first().copied().unwrap_or(0);
    let key = reader.take(usize::from(length))?;
    reader.expect_empty()?;
    if key.len() != algorithm.key_len() {
        return Err(Status::IncorrectData);
    }
    Ok(Command::SetManagementKey {
        algorithm,
        key: Secret::new(key),
    })
}

fn parse_import(p1: u8, p2: u8, data: &[u8]) -> Result<Command<'_>, Status> {
    let algorithm = Algorithm::new(p1)
        .filter(|a| !a.is_symmetric())
        .ok_or(Status::IncorrectP1P2)?;
    let slot = Slot::new(p2).ok_or(Status::IncorrectP1P2)?;
    let mut parts: [Option<&[u8]>; 8] = [None; 8];
    let mut policies = Policies::default();
    for object in Reader::new(data).read_all()? {
        match object.tag {
            0x01..=0x08 => {
                let index = object.tag as usize - 1;
                let entry = parts.get_mut(index).ok_or(Status::IncorrectData)?;
                if entry.replace(object.value).is_some() {
                    return Err(Status::IncorrectData);
                }
            }
            tag => policies.read(tag, object.value, slot)?,
        }
    }
    let material = match (algorithm, parts) {
        (
            Algorithm::Rsa1024 | Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096,
            [
                Some(p),
                Some(q),
                Some(dp),
                Some(dq),
                Some(qinv),
                None,
                None,
                None,
            ],
        ) => ImportMaterial::Rsa {
            parts: [p, q, dp, dq, qinv].map(Secret::new),
        },
        (
            Algorithm::EccP256 | Algorithm::EccP384,
            [None, None, None, None, None, Some(scalar), None, None],
        ) => ImportMaterial::Ec(Secret::new(scalar)),
        (Algorithm::Ed25519, [None, None, None, None, None, None, Some(key), None])
        | (Algorithm::X25519, [None, None, None, None, None, None, None, Some(key)]) => {
            ImportMaterial::Curve25519(Secret::new(key))
        }
        _ => return Err(Status::IncorrectData),
    };
    Ok(Command::ImportKey {
        slot,
        algorithm,
        material,
        pin_policy: policies.pin,
        touch_policy: policies.touch,
    })
}

impl Command<'_> {
    /// A one-line description without secret data, for traces.
    pub fn describe(&self) -> String {
        match self {
            Command::Verify(Verify::Check(_)) => "VERIFY PIN".into(),
            Command::Verify(Verify::Status) => "VERIFY PIN (status)".into(),
            Command::Verify(Verify::LogOut) => "VERIFY PIN (log out)".into(),
            Command::ChangeReferenceData { reference, .. } => {
                format!("CHANGE REFERENCE DATA {:02X}", reference.byte())
            }
            Command::ResetRetryCounter { .. } => "RESET RETRY COUNTER".into(),
            Command::GetData(tag) => format!("GET DATA {tag}"),
            Command::PutData { tag, value } => format!("PUT DATA {tag} ({} bytes)", value.len()),
            Command::GeneralAuthenticate {
                algorithm,
                key,
                request,
            } => {
                let key = match key {
                    AuthKey::Management => "9B".to_string(),
                    AuthKey::Slot(slot) => slot.to_string(),
                };
                format!(
                    "GENERAL AUTHENTICATE {key} {algorithm:?} {}",
                    request.name()
                )
            }
            Command::GenerateAsymmetricKeyPair {
                slot, algorithm, ..
            } => format!("GENERATE ASYMMETRIC KEY PAIR {slot} {algorithm:?}"),
            Command::GetVersion => "GET VERSION".into(),
            Command::Attest(slot) => format!("ATTEST {slot}"),
            Command::GetSerial => "GET SERIAL".into(),
            Command::GetMetadata(key) => format!("GET METADATA {:02X}", key.byte()),
            Command::MoveKey(request) => request.describe(),
            Command::SetManagementKey { algorithm, .. } => {
                format!("SET MANAGEMENT KEY {algorithm:?}")
            }
            Command::Reset => "RESET PIV".into(),
            Command::SetPinRetries {
                pin_tries,
                puk_tries,
            } => format!("SET PIN RETRIES {pin_tries} {puk_tries}"),
            Command::ImportKey { slot, .. } => format!("IMPORT KEY {slot}"),
        }
    }
}

impl AuthRequest<'_> {
    fn name(&self) -> &'static str {
        match self {
            AuthRequest::WitnessRequest => "witness request",
            AuthRequest::MutualResponse { .. } => "mutual response",
            AuthRequest::ChallengeRequest => "challenge request",
            AuthRequest::ExternalResponse(_) => "external response",
            AuthRequest::Sign(_) => "sign",
            AuthRequest::KeyAgreement(_) => "key agreement",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let apdu = [
            0x00, 0x24, 0x00, 0x80, 0x10, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF, b'6',
            b'5', b'4', b'3', b'2', b'1', 0xFF, 0xFF,
        ];
        let parsed = CommandApdu::parse(&apdu).unwrap();
        let command = Command::try_from(&parsed).unwrap();
        let debug = format!("{command:?}");
        assert!(
            debug.contains("ChangeReferenceData") && debug.contains("8 bytes redacted"),
            "{debug}"
        );
        assert!(!debug.contains("49") && !debug.contains("0x31"), "{debug}");
    }
}
