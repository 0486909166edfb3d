//! From a profile to a personalised PIV application, and back.
//!
//! [`issue_applet`] turns a [`CardProfile`] into a [`PivApplet`] the way a
//! Registration Authority prints a card: PIN and unlock code, one key per
//! slot certified by the environment's Sub CA, and the identity objects:
//!
//! - CHUID (`5FC102`): the filler FASC-N (agency code 9999, so middleware
//!   prefers the GUID) and a GUID whose first 8 bytes make it unique per
//!   issuance and whose last 8 bytes are `00 00` and the 12-digit user ID in
//!   BCD. OpenSC's PKCS#11 token serial (`pkcs11-tool -L`) is the *last* 16
//!   hex digits of the GUID (framework-pkcs15.c keeps the tail of a long
//!   serial), so it reads `0000` + the user ID. Expiry = the certificates'
//!   end of validity.
//! - Printed Information (`5FC109`, PIN-protected): holder name, first role,
//!   card expiry, the user ID as card serial, issuer `vscard <env>`, and the
//!   first role's ODS code as organisation.
//! - Role profiles ([`ROLES_OBJECT`], `5FFF20`, PIN-protected): one `A0`
//!   template per role, in profile order, each `80` role code, `81` role
//!   name, `82` business function codes (comma-separated), `83` ODS code
//!   (all UTF-8). A card with several roles lists them all, so software can
//!   let the holder choose one.
//!
//! [`summarize`] reads these back for `vscard inspect`, and
//! [`renew_applet`] re-certifies the slots (two more years) in place,
//! keeping the PIN and unlock-code counters.

use std::time::SystemTime;

use der::{Decode, Encode};
use rand_core::CryptoRng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::applet_format;
use super::authority::CertificateAuthority;
use super::card_certificate::{certify, issue_card};
use super::error::{CardError, IssuanceError};
use super::keys::{CARD_SLOTS, algorithm_of_public_key, generate_key};
use super::profile::{CardProfile, Environment, RoleProfile};
use super::summary::CertificateSummary;
use super::validity::CertificateValidity;
use vscard_applet::objects::{self, DataObjectTag, PrintedInformation};
use vscard_applet::tlv::{Reader, Writer};
use vscard_applet::{Algorithm, CustodyTarget, KeyCustody, PivApplet, PivConfig, PivState, Slot};

/// The role profiles object (vscard-specific, in the range Yubico and
/// others use for vendor objects; PIN-protected like Printed Information).
pub const ROLES_OBJECT: DataObjectTag = DataObjectTag::ROLE_PROFILES;

/// A card's identity and state as `vscard inspect` shows it: never a
/// secret.
#[derive(Clone, Debug, Serialize)]
pub struct CardSummary {
    /// The holder's name (Printed Information).
    pub holder: String,
    /// The 12-digit user ID (CHUID GUID).
    pub uuid: String,
    /// The role profiles.
    pub roles: Vec<RoleProfile>,
    /// The environment whose PKI issued the certificates.
    pub environment: String,
    /// The card model (`yubikey-5.7`, `yubikey-5.4`, `piv`).
    pub model: String,
    /// Each key slot.
    pub slots: Vec<SlotSummary>,
    /// The PIN's counter.
    pub pin: CounterSummary,
    /// The unlock code's (PUK's) counter.
    pub unlock_code: CounterSummary,
}

/// One key slot.
#[derive(Clone, Debug, Serialize)]
pub struct SlotSummary {
    /// `9A`, `9C`, `9D`, `9E`.
    pub slot: String,
    /// The key's algorithm, if a key is present (`rsa2048`, `p256`,
    /// `p384` in JSON).
    #[serde(serialize_with = "applet_format::optional_slot_algorithm")]
    pub algorithm: Option<Algorithm>,
    /// The certificate, if present.
    pub certificate: Option<CertificateSummary>,
}

/// A try counter.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CounterSummary {
    /// Tries left.
    pub tries_left: u8,
    /// True when no tries are left.
    pub blocked: bool,
}

/// The PIV personalisation for `profile`: PIN, unlock code (PUK), PIN
/// rules from the profile's policy, and the last 9 digits of the user ID as
/// the serial GET SERIAL reports.
pub fn piv_config(profile: &CardProfile) -> Result<PivConfig, IssuanceError> {
    let serial = profile
        .uuid
        .get(3..)
        .and_then(|digits| digits.parse::<u32>().ok())
        .ok_or(CardError::UserId)?;
    Ok(PivConfig::for_model(profile.model)
        .with_pin(profile.pin.expose().as_bytes())
        .with_puk(profile.unlock_code.expose().as_bytes())
        .with_rules(profile.pin_policy)
        .with_capacity(profile.capacity)
        .with_serial(serial))
}

/// Issues a whole card: keys for 9A, 9C, 9D and 9E (the profile's
/// algorithms) certified by `sub_ca` (the environment's Sub CA) for
/// `validity`, and the identity objects. `progress` is called before each
/// key generation.
pub fn issue_applet<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    profile: &CardProfile,
    validity: CertificateValidity,
    rng: &mut R,
    progress: impl FnMut(Slot, Algorithm),
) -> Result<PivApplet, IssuanceError> {
    issue_applet_with(sub_ca, profile, validity, rng, progress, None)
}

/// Where an issued card's keys are made: an external custody and the
/// card's target in it ([`vscard_applet::custody`]).
#[derive(Clone, Copy, Debug)]
pub struct IssueCustody<'a> {
    /// The custody that generates and keeps the keys.
    pub custody: &'a dyn KeyCustody,
    /// The card's target in it (recorded in the image: GENERATE on the
    /// served card goes there too).
    pub target: &'a CustodyTarget,
}

/// As [`issue_applet`], with the four keys generated in `custody`: the
/// image holds their references and public keys only. Keys already made
/// when a later step fails are destroyed in the custody.
pub fn issue_applet_in_custody<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    profile: &CardProfile,
    validity: CertificateValidity,
    rng: &mut R,
    progress: impl FnMut(Slot, Algorithm),
    custody: IssueCustody<'_>,
) -> Result<PivApplet, IssuanceError> {
    issue_applet_with(sub_ca, profile, validity, rng, progress, Some(custody))
}

fn issue_applet_with<R: CryptoRng + ?Sized>(
    sub_ca: &CertificateAuthority,
    profile: &CardProfile,
    validity: CertificateValidity,
    rng: &mut R,
    mut progress: impl FnMut(Slot, Algorithm),
    custody: Option<IssueCustody<'_>>,
) -> Result<PivApplet, IssuanceError> {
    profile.validate()?;
    let mut applet = PivApplet::new(piv_config(profile)?).map_err(CardError::Config)?;
    let certified: Vec<(Slot, Certificate)> = match custody {
        None => {
            let mut certified = Vec::new();
            for slot in issue_card(sub_ca, profile, validity, rng, progress)? {
                applet
                    .state_mut()
                    .install_key_with_public(
                        slot.slot,
                        slot.key.private_key.clone(),
                        slot.key.public.clone(),
                        slot.slot.default_pin_policy(),
                    )
                    .map_err(|source| CardError::KeyInstall {
                        slot: slot.slot,
                        source,
                    })?;
                certified.push((slot.slot, slot.certificate));
            }
            certified
        }
        Some(custody) => {
            let mut made = Vec::new();
            let result = custody_keys(
                &mut applet,
                sub_ca,
                profile,
                validity,
                rng,
                &mut progress,
                custody,
                &mut made,
            );
            if result.is_err() {
                for reference in &made {
                    let _ = custody.custody.delete(custody.target, reference);
                }
            }
            applet.state_mut().set_custody(Some(custody.target.clone()));
            result?
        }
    };
    let mut guid_seed = Sha256::new();
    guid_seed.update(profile.environment.name().as_bytes());
    for (target, certificate) in &certified {
        let der = certificate
            .to_der()
            .map_err(|source| CardError::CertificateEncoding {
                slot: *target,
                source,
            })?;
        guid_seed.update(&der);
        applet.put_certificate(*target, &der);
    }
    let guid = guid(&profile.uuid, &guid_seed.finalize())?;
    write_identity(&mut applet, profile, &guid, validity.not_after())?;
    // Personalisation bypasses PUT DATA's capacity check: a card that
    // starts over its capacity would refuse every later PUT DATA.
    let (used, capacity) = (applet.state().used_bytes(), applet.state().capacity());
    if used > capacity {
        return Err(CardError::OverCapacity { used, capacity }.into());
    }
    Ok(applet)
}

/// Generates, certifies and installs the four keys in `custody`; `made`
/// collects the references (for a clean-up on failure).
#[allow(clippy::too_many_arguments)]
fn custody_keys<R: CryptoRng + ?Sized>(
    applet: &mut PivApplet,
    sub_ca: &CertificateAuthority,
    profile: &CardProfile,
    validity: CertificateValidity,
    rng: &mut R,
    progress: &mut impl FnMut(Slot, Algorithm),
    custody: IssueCustody<'_>,
    made: &mut Vec<vscard_applet::KeyReference>,
) -> Result<Vec<(Slot, Certificate)>, IssuanceError> {
    let mut certified = Vec::new();
    for slot in CARD_SLOTS {
        let algorithm = profile
            .slots
            .algorithm(slot)
            .ok_or(CardError::NotAKeySlot { slot })?;
        progress(slot, algorithm);
        let (reference, public) = custody
            .custody
            .generate(custody.target, slot, algorithm)
            .map_err(|source| CardError::Custody { slot, source })?;
        made.push(reference.clone());
        let spki = public
            .subject_public_key_info()
            .map_err(|error| CardError::Custody {
                slot,
                source: vscard_applet::CustodyError::unavailable(format!(
                    "the public key does not encode: {error}"
                )),
            })?;
        let certificate =
            crate::issue_card_certificate(sub_ca, &spki, profile, slot, validity, rng)?;
        applet
            .state_mut()
            .install_external_key(
                slot,
                reference,
                public,
                slot.default_pin_policy(),
                vscard_applet::Origin::Generated,
            )
            .map_err(|source| CardError::KeyInstall { slot, source })?;
        certified.push((slot, certificate));
    }
    Ok(certified)
}

/// The CHUID GUID: 8 bytes of `unique`, then `00 00` and the user ID in BCD.
fn guid(uuid: &str, unique: &[u8]) -> Result<[u8; 16], IssuanceError> {
    let digits: Vec<u8> = uuid.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    if digits.len() != 12 || digits.iter().any(|d| *d > 9) {
        return Err(CardError::UserId.into());
    }
    let mut guid = [0u8; 16];
    for (byte, u) in guid[..8].iter_mut().zip(unique) {
        *byte = *u;
    }
    for (byte, pair) in guid[10..].iter_mut().zip(digits.chunks(2)) {
        *byte = pair.iter().fold(0, |acc, d| (acc << 4) | d);
    }
    Ok(guid)
}

/// The user ID carried by a CHUID GUID, if it has vscard's layout.
fn uuid_of_guid(guid: &[u8]) -> Option<String> {
    let bcd = guid.get(10..16)?;
    let digits: String = bcd
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .map(|d| char::from_digit(u32::from(d), 10))
        .collect::<Option<String>>()?;
    (guid.get(8..10) == Some(&[0, 0][..])).then_some(digits)
}

fn civil(time: SystemTime) -> Result<der::DateTime, IssuanceError> {
    der::DateTime::from_system_time(time).map_err(|e| CardError::ExpiryOutOfRange(e).into())
}

/// The CHUID expiry date, `YYYYMMDD` (SP 800-73-4 Part 1 Table 9).
fn chuid_date(time: SystemTime) -> Result<[u8; 8], IssuanceError> {
    let date = civil(time)?;
    format!("{:04}{:02}{:02}", date.year(), date.month(), date.day())
        .as_bytes()
        .try_into()
        .map_err(|_| CardError::ExpiryYear.into())
}

/// The Printed Information expiry date, `YYYYMMMDD` (e.g. `2028JAN01`).
fn printed_date(time: SystemTime) -> Result<String, IssuanceError> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let date = civil(time)?;
    let month = MONTHS
        .get(usize::from(date.month()).saturating_sub(1))
        .ok_or(CardError::ExpiryMonth)?;
    Ok(format!("{:04}{month}{:02}", date.year(), date.day()))
}

/// The value of the first object `tag` in `object`.
fn field(object: Option<&[u8]>, tag: u32) -> Option<&[u8]> {
    let items = Reader::new(object?).read_all().ok()?;
    items.into_iter().find(|t| t.tag == tag).map(|t| t.value)
}

fn write_identity(
    applet: &mut PivApplet,
    profile: &CardProfile,
    guid: &[u8; 16],
    expiry: SystemTime,
) -> Result<(), IssuanceError> {
    applet.put_object(
        DataObjectTag::CHUID,
        objects::chuid(guid, &chuid_date(expiry)?),
    );
    let primary = profile.primary_role();
    let printed = PrintedInformation {
        name: truncate(&profile.name, 125),
        employee_affiliation: truncate(primary.map_or("", |r| r.name.as_str()), 20),
        expiration_date: printed_date(expiry)?,
        agency_card_serial: profile.uuid.clone(),
        issuer: truncate(&format!("vscard {}", profile.environment.name()), 15),
        organization_line1: primary.map(|r| r.ods_code.clone()),
        organization_line2: None,
    };
    applet.put_object(DataObjectTag::PRINTED_INFORMATION, printed.encode());
    applet.put_object(ROLES_OBJECT, encode_roles(&profile.roles));
    Ok(())
}

fn truncate(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The role profiles object's value (see the module doc).
pub fn encode_roles(roles: &[RoleProfile]) -> Vec<u8> {
    let mut writer = Writer::new();
    for role in roles {
        writer.nest(0xA0, |w| {
            w.put(0x80, role.code.as_bytes())
                .put(0x81, role.name.as_bytes())
                .put(0x82, role.business_functions.join(",").as_bytes())
                .put(0x83, role.ods_code.as_bytes());
        });
    }
    writer.finish()
}

/// Decodes the role profiles object's value.
pub fn decode_roles(value: &[u8]) -> Result<Vec<RoleProfile>, IssuanceError> {
    let damaged = CardError::RolesObject;
    let text =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| CardError::RolesNotUtf8);
    let mut roles = Vec::new();
    let mut outer = Reader::new(value);
    while !outer.is_empty() {
        let template = outer.expect(0xA0).map_err(damaged)?;
        let mut inner = Reader::new(template);
        let code = text(inner.expect(0x80).map_err(damaged)?)?;
        let name = text(inner.expect(0x81).map_err(damaged)?)?;
        let functions = text(inner.expect(0x82).map_err(damaged)?)?;
        let ods_code = text(inner.expect(0x83).map_err(damaged)?)?;
        inner.expect_empty().map_err(damaged)?;
        roles.push(RoleProfile {
            code,
            name,
            business_functions: functions
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            ods_code,
        });
    }
    Ok(roles)
}

/// The certificate in `slot`, if the card holds one.
pub fn certificate(state: &PivState, slot: Slot) -> Result<Option<Certificate>, IssuanceError> {
    let tag = DataObjectTag::new(slot.certificate_tag()).ok_or(CardError::NotAKeySlot { slot })?;
    let Some(container) = state.object(tag) else {
        return Ok(None);
    };
    let der = objects::certificate_der(container).ok_or(CardError::CertificateMissing { slot })?;
    Certificate::from_der(der)
        .map(Some)
        .map_err(|source| CardError::CertificateNotDer { slot, source }.into())
}

/// The environment of a card: the `OU` of its 9A certificate's subject.
pub fn environment_of(state: &PivState) -> Result<Environment, IssuanceError> {
    let cert =
        certificate(state, Slot::AUTHENTICATION)?.ok_or(CardError::NoAuthenticationCertificate)?;
    let ou = attribute(&cert, "2.5.4.11").ok_or(CardError::NoOrganizationalUnit)?;
    Environment::parse(&ou).map_err(IssuanceError::from)
}

/// The first value of an attribute of a certificate's subject.
fn attribute(certificate: &Certificate, oid: &str) -> Option<String> {
    let atv = certificate
        .tbs_certificate()
        .subject()
        .iter()
        .find(|atv| atv.oid.to_string() == oid)?;
    atv.value
        .decode_as::<der::asn1::Utf8StringRef<'_>>()
        .map(|s| s.to_string())
        .or_else(|_| {
            atv.value
                .decode_as::<der::asn1::PrintableStringRef<'_>>()
                .map(|s| s.to_string())
        })
        .ok()
}

/// Re-certifies every slot that has a certificate for `validity`, with the
/// same subject, by `sub_ca` (the environment's Sub CA); with `new_keys`,
/// each slot first gets a new key of the same algorithm. PIN and unlock-code counters are untouched.
pub fn renew_applet<R: CryptoRng + ?Sized>(
    applet: &mut PivApplet,
    sub_ca: &CertificateAuthority,
    validity: CertificateValidity,
    new_keys: bool,
    rng: &mut R,
) -> Result<(), IssuanceError> {
    for slot in CARD_SLOTS {
        let Some(previous) = certificate(applet.state(), slot)? else {
            continue;
        };
        let public_key = if new_keys {
            let algorithm =
                algorithm_of_public_key(previous.tbs_certificate().subject_public_key_info())?;
            let key = generate_key(algorithm, rng)?;
            applet
                .state_mut()
                .install_key_with_public(
                    slot,
                    key.private_key.clone(),
                    key.public.clone(),
                    slot.default_pin_policy(),
                )
                .map_err(|source| CardError::KeyInstall { slot, source })?;
            key.public_key
        } else {
            previous.tbs_certificate().subject_public_key_info().clone()
        };
        let subject = previous.tbs_certificate().subject().clone();
        let upn = super::extensions::upn_of(&previous);
        let renewed = certify(sub_ca, &public_key, subject, slot, upn, validity, rng)?;
        let der = renewed
            .to_der()
            .map_err(|source| CardError::CertificateEncoding { slot, source })?;
        applet.put_certificate(slot, &der);
    }
    refresh_expiry(applet, validity.not_after())
}

/// Moves the CHUID and Printed Information expiry to `expiry`.
fn refresh_expiry(applet: &mut PivApplet, expiry: SystemTime) -> Result<(), IssuanceError> {
    let state = applet.state();
    let guid = field(state.object(DataObjectTag::CHUID), 0x34)
        .and_then(|g| <[u8; 16]>::try_from(g).ok())
        .ok_or(CardError::NoGuid)?;
    let printed = state
        .object(DataObjectTag::PRINTED_INFORMATION)
        .map(|value| replace_field(value, 0x04, printed_date(expiry)?.as_bytes()))
        .transpose()?;
    applet.put_object(
        DataObjectTag::CHUID,
        objects::chuid(&guid, &chuid_date(expiry)?),
    );
    if let Some(printed) = printed {
        applet.put_object(DataObjectTag::PRINTED_INFORMATION, printed);
    }
    Ok(())
}

/// `object` with the value of `tag` replaced, every other field kept in
/// its place.
fn replace_field(object: &[u8], tag: u32, value: &[u8]) -> Result<Vec<u8>, IssuanceError> {
    let items = Reader::new(object)
        .read_all()
        .map_err(CardError::PrintedInformation)?;
    let mut writer = Writer::new();
    for item in items {
        writer.put(item.tag, if item.tag == tag { value } else { item.value });
    }
    Ok(writer.finish())
}

/// What `vscard inspect` shows, without the certificates' status (no
/// clock is read): see [`summarize_at`].
pub fn summarize(state: &PivState) -> Result<CardSummary, IssuanceError> {
    summary_of(state, None)
}

/// [`summarize`], with each certificate's
/// [`CertificateStatus`](crate::CertificateStatus) at `now` (expired, not
/// yet valid, days left).
pub fn summarize_at(state: &PivState, now: SystemTime) -> Result<CardSummary, IssuanceError> {
    summary_of(state, Some(now))
}

fn summary_of(state: &PivState, now: Option<SystemTime>) -> Result<CardSummary, IssuanceError> {
    let holder = field(state.object(DataObjectTag::PRINTED_INFORMATION), 0x01)
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default();
    let uuid = field(state.object(DataObjectTag::CHUID), 0x34)
        .and_then(uuid_of_guid)
        .unwrap_or_default();
    let roles = match state.object(ROLES_OBJECT) {
        Some(value) => decode_roles(value)?,
        None => Vec::new(),
    };
    let environment = environment_of(state)
        .map(|e| e.name().to_owned())
        .unwrap_or_default();
    let mut slots = Vec::new();
    for slot in CARD_SLOTS {
        let key = state.public_key(slot);
        slots.push(SlotSummary {
            slot: slot.to_string(),
            algorithm: key.map(|k| k.algorithm()),
            certificate: certificate(state, slot)?
                .as_ref()
                .map(|certificate| match now {
                    Some(now) => CertificateSummary::at(certificate, now),
                    None => CertificateSummary::of(certificate),
                }),
        });
    }
    let counter = |tries_left: u8| CounterSummary {
        tries_left,
        blocked: tries_left == 0,
    };
    Ok(CardSummary {
        holder,
        uuid,
        roles,
        environment,
        model: state.settings().model.name().to_owned(),
        slots,
        pin: counter(state.pin_tries_left()),
        unlock_code: counter(state.puk_tries_left()),
    })
}

impl std::fmt::Display for CardSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "holder:       {}", self.holder)?;
        writeln!(f, "user ID:      {}", self.uuid)?;
        writeln!(f, "environment:  {}", self.environment)?;
        writeln!(f, "model:        {}", self.model)?;
        for role in &self.roles {
            writeln!(
                f,
                "role:         {} {} at {} ({})",
                role.code,
                role.name,
                role.ods_code,
                role.business_functions.join(", ")
            )?;
        }
        let state = |c: &CounterSummary| {
            if c.blocked {
                "BLOCKED".to_owned()
            } else {
                format!("{} tries left", c.tries_left)
            }
        };
        writeln!(f, "PIN:          {}", state(&self.pin))?;
        writeln!(f, "unlock code:  {}", state(&self.unlock_code))?;
        for slot in &self.slots {
            let algorithm = slot
                .algorithm
                .map_or("empty", applet_format::algorithm_name);
            match &slot.certificate {
                Some(c) => {
                    writeln!(
                        f,
                        "slot {}:      {algorithm}, {} (issuer {}), valid {} to {}{}",
                        slot.slot,
                        c.subject,
                        c.issuer,
                        c.not_before,
                        c.not_after,
                        c.status.map(status_text).unwrap_or_default()
                    )?;
                    writeln!(f, "              SHA-256 {}", c.sha256_fingerprint)?;
                }
                None => writeln!(f, "slot {}:      {algorithm}, no certificate", slot.slot)?,
            }
        }
        Ok(())
    }
}

/// `: EXPIRED 3 days ago`, `: NOT YET VALID`, `: 729 days left`.
fn status_text(status: crate::CertificateStatus) -> String {
    let days = |n: i64| if n.abs() == 1 { "day" } else { "days" };
    if status.expired {
        match -status.days_left {
            0 => ": EXPIRED less than a day ago".to_owned(),
            n => format!(": EXPIRED {n} {} ago", days(n)),
        }
    } else if status.not_yet_valid {
        ": NOT YET VALID".to_owned()
    } else {
        format!(": {} {} left", status.days_left, days(status.days_left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_carries_the_uuid_in_bcd() {
        let value = guid("000123456789", &[0xAA; 32]).unwrap();
        assert_eq!(hex::encode_upper(&value[8..]), "0000000123456789");
        assert_eq!(&value[..8], &[0xAA; 8]);
        assert_eq!(uuid_of_guid(&value).as_deref(), Some("000123456789"));
        assert!(guid("12345678901", &[0; 32]).is_err());
        assert!(guid("12345678901a", &[0; 32]).is_err());
    }

    #[test]
    fn roles_round_trip() {
        let roles = vec![
            RoleProfile {
                code: "R8000".into(),
                name: "Clinical Practitioner Access Role".into(),
                business_functions: vec!["B0264".into(), "B0360".into()],
                ods_code: "RX1".into(),
            },
            RoleProfile {
                code: "R8001".into(),
                name: "Nurse Access Role".into(),
                business_functions: vec![],
                ods_code: "K81003001".into(),
            },
        ];
        let encoded = encode_roles(&roles);
        assert_eq!(encoded[0], 0xA0);
        assert_eq!(decode_roles(&encoded).unwrap(), roles);
        assert!(decode_roles(&[0xA0, 0x02, 0x80, 0x05]).is_err());
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("Zoë Ångström", 3), "Zo");
        assert_eq!(truncate("abc", 20), "abc");
    }
}
