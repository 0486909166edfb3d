//! [`PivApplet`]: the PIV Card Application on the vscard runtime.
//!
//! Contract: the runtime hands over one complete command at a time;
//! the applet parses it into a [`Command`] (no state touched on a parse
//! error), then runs the handler for its spec section. Persistent changes
//! are staged and committed by the runtime at the end of a successful
//! command; PIN and PUK tries are committed before the comparison through
//! [`vscard_emulator::OwnerPin::check`]. The security status lives in
//! transient memory cleared on deselection.

use std::sync::{Arc, LazyLock};

use vscard_emulator::{
    Aid, Applet, AppletState, ClearOn, CommandApdu, Context, Response, StateError, Status,
    Transient,
};

use crate::command::Command;
use crate::config::{ConfigError, PivConfig};
use crate::custody::{CustodyError, KeyCustody, KeyReference};
use crate::keys::{KeyError, PrivateKey, PublicKey};
use crate::objects::DataObjectTag;
use crate::reference::{Algorithm, PinPolicy, Slot};
use crate::security::SecurityStatus;
use crate::state::PivState;
use crate::tlv::Writer;

/// The answer to SELECT never changes: built once, copied per SELECT.
static APPLICATION_PROPERTY_TEMPLATE: LazyLock<Vec<u8>> =
    LazyLock::new(PivApplet::build_application_property_template);

/// The PIV AID: NIST RID `A0 00 00 03 08`, PIX `00 00 10 00 01 00`
/// (SP 800-73-4 Part 1 2.2).
pub const PIV_AID: Aid = Aid::from_array([
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
]);

/// The application label in the SELECT answer.
pub const APPLICATION_LABEL: &str = "vscard PIV";

/// The PIV Card Application.
#[derive(Debug)]
pub struct PivApplet {
    pub(crate) state: PivState,
    pub(crate) security: Transient<SecurityStatus>,
    /// The external custody of the keys not in the image, if attached.
    pub(crate) custody: Option<Arc<dyn KeyCustody>>,
}

impl PivApplet {
    /// An applet personalised with `config`.
    pub fn new(config: PivConfig) -> Result<PivApplet, ConfigError> {
        PivState::new(&config).map(PivApplet::from_state)
    }

    /// An applet with the well-known defaults (PIN `123456`, PUK
    /// `12345678`, 3DES management key `0102..08` x3).
    pub fn with_defaults() -> PivApplet {
        let state = PivState::new(&PivConfig::default());
        // The defaults satisfy the default rules; this cannot fail.
        match state {
            Ok(state) => PivApplet::from_state(state),
            Err(e) => unreachable!("default personalisation is valid: {e}"),
        }
    }

    /// An applet holding `state`.
    pub fn from_state(state: PivState) -> PivApplet {
        PivApplet {
            state,
            security: Transient::new(ClearOn::Deselect),
            custody: None,
        }
    }

    /// This applet with `custody` attached: the keys of the image that an
    /// external custody holds are used through it, and on a card whose
    /// state names a custody target GENERATE and IMPORT put new keys there
    /// ([`crate::custody`]). Software keys work with or without one.
    pub fn with_custody(mut self, custody: Arc<dyn KeyCustody>) -> PivApplet {
        self.custody = Some(custody);
        self
    }

    /// The attached external custody, if any.
    pub fn custody(&self) -> Option<&Arc<dyn KeyCustody>> {
        self.custody.as_ref()
    }

    /// Destroys the custody keys this card recorded in its write-ahead
    /// record (begun by GENERATE, or replaced) that it does not refer to,
    /// then reports (logs, and returns) the other keys the attached
    /// custody holds under this card's name that the state does not refer
    /// to (made by a custody without write-ahead, or deleted ones whose
    /// destruction was cut short). Those are never used, and never
    /// destroyed here: a card's name is not proof
    /// that the keys are this image's to destroy (a restored backup or a
    /// copy of the image shares the name with the live card, whose current
    /// keys this image does not know). Nothing to report (an empty list)
    /// without a target or a custody, or when the custody cannot list
    /// keys. Run it when the card starts, on the state it loaded.
    pub fn reconcile_custody(&self) -> Result<Vec<KeyReference>, CustodyError> {
        let (Some(target), Some(custody)) = (self.state.custody(), self.custody.as_deref()) else {
            return Ok(Vec::new());
        };
        if target.custody != custody.kind() {
            return Ok(Vec::new());
        }
        let referenced = self.state.custody_references();
        // The keys this card recorded as its own (begun, or replaced) and
        // no longer refers to: destroyed (one already gone is fine).
        for reference in &self.state.pending {
            if !referenced.contains(reference) && reference.custody == custody.kind() {
                custody.delete(target, reference)?;
                tracing::warn!(target: "vscard::piv", key = %reference,
                    "destroyed a custody key this card recorded and no longer refers to");
            }
        }
        let held = match custody.keys_of(target) {
            Ok(held) => held,
            Err(CustodyError::Unsupported { .. }) => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let strays: Vec<KeyReference> = held
            .into_iter()
            .filter(|reference| !referenced.contains(reference))
            .collect();
        for reference in &strays {
            tracing::warn!(target: "vscard::piv", key = %reference,
                "the key custody holds a key under this card's name that the card does not \
                 refer to (a generation cut short, or another copy of this card): not used, \
                 left in place");
        }
        Ok(strays)
    }

    /// Destroys custody keys the committed state no longer refers to;
    /// a failure is logged and left to [`PivApplet::reconcile_custody`].
    pub(crate) fn destroy_unreferenced(&self, old: Vec<KeyReference>) {
        let (Some(custody), Some(target)) = (self.custody.as_deref(), self.state.custody()) else {
            return;
        };
        let referenced = self.state.custody_references();
        for reference in old {
            if referenced.contains(&reference) || reference.custody != custody.kind() {
                continue;
            }
            if let Err(error) = custody.delete(target, &reference) {
                tracing::warn!(target: "vscard::piv", key = %reference, %error,
                    "cannot destroy a custody key no longer used; the next start will");
            }
        }
    }

    /// The applet stored in `state` (a card image's PIV part), built from
    /// it directly rather than from defaults that the image then replaces;
    /// the error names the part that cannot be loaded.
    pub fn from_saved(state: &AppletState) -> Result<PivApplet, StateError> {
        PivState::from_saved(state).map(PivApplet::from_state)
    }

    /// The persistent state.
    pub fn state(&self) -> &PivState {
        &self.state
    }

    /// The persistent state, for personalisation before the card is built.
    pub fn state_mut(&mut self) -> &mut PivState {
        &mut self.state
    }

    /// Installs a private key in `slot` (default PIN policy of the slot,
    /// origin "imported"); returns the public key.
    pub fn install_key(
        &mut self,
        slot: Slot,
        key: impl Into<PrivateKey>,
    ) -> Result<PublicKey, KeyError> {
        self.state.install_key(slot, key)
    }

    /// Installs the attestation key (slot `F9`, P-256) and its
    /// certificate (object `5FFF01`, DER), which ATTEST certificates are
    /// signed by and chain to.
    pub fn install_attestation(
        &mut self,
        key: p256::SecretKey,
        certificate_der: &[u8],
    ) -> Result<PublicKey, KeyError> {
        let key = PrivateKey::from(key);
        let public = key.public_key();
        let stored = crate::stored_key::StoredKey::with_public(
            key,
            &public,
            PinPolicy::Never,
            crate::stored_key::Origin::Imported,
        )?;
        self.state.attestation = Some(stored);
        self.state.put_object(
            crate::objects::DataObjectTag::ATTESTATION_CERTIFICATE,
            crate::objects::certificate(certificate_der),
        );
        Ok(public)
    }

    /// Stores a DER certificate in `slot`'s certificate object.
    pub fn put_certificate(&mut self, slot: Slot, der: &[u8]) {
        self.state.put_certificate(slot, der);
    }

    /// Sets a data object's value (empty deletes it).
    pub fn put_object(&mut self, tag: DataObjectTag, value: Vec<u8>) {
        self.state.put_object(tag, value);
    }

    /// The public key in `slot`, if any.
    pub fn public_key(&self, slot: Slot) -> Option<PublicKey> {
        self.state.public_key(slot)
    }

    /// The security status for reading (cleared when never set in this
    /// selection).
    pub(crate) fn security<'s>(&'s self, ctx: &Context<'_>) -> Option<&'s SecurityStatus> {
        self.security.get(ctx)
    }

    /// True when the PIN is verified in this selection.
    pub(crate) fn pin_verified(&self, ctx: &Context<'_>) -> bool {
        self.security(ctx).is_some_and(SecurityStatus::pin_verified)
    }

    /// Fails with `6982` unless the management key was authenticated.
    pub(crate) fn require_management(&self, ctx: &Context<'_>) -> Result<(), Status> {
        if self
            .security(ctx)
            .is_some_and(SecurityStatus::management_authenticated)
        {
            Ok(())
        } else {
            Err(Status::SecurityStatusNotSatisfied)
        }
    }

    /// The application property template (SP 800-73-4 Part 2 3.1.1
    /// Table 3): PIX, coexistent tag allocation authority, label, and the
    /// algorithms this card supports.
    pub fn application_property_template() -> Vec<u8> {
        APPLICATION_PROPERTY_TEMPLATE.clone()
    }

    fn build_application_property_template() -> Vec<u8> {
        Writer::new()
            .nest(0x61, |w| {
                w.put(0x4F, PIV_AID.pix())
                    .nest(0x79, |w| {
                        w.put(0x4F, PIV_AID.rid());
                    })
                    .put(0x50, APPLICATION_LABEL.as_bytes())
                    .nest(0xAC, |w| {
                        for algorithm in Algorithm::ADVERTISED {
                            w.put(0x80, &[algorithm.byte()]);
                        }
                        w.put(0x06, &[0x00]);
                    });
            })
            .finish()
    }

    fn execute(&mut self, ctx: &mut Context<'_>, command: Command<'_>) -> Result<Response, Status> {
        match command {
            Command::Verify(verify) => self.verify(ctx, verify),
            Command::ChangeReferenceData {
                reference,
                old,
                new,
            } => self.change_reference_data(ctx, reference, old.expose(), new.expose()),
            Command::ResetRetryCounter { puk, new_pin } => {
                self.reset_retry_counter(ctx, puk.expose(), new_pin.expose())
            }
            Command::GetData(tag) => self.get_data(ctx, tag),
            Command::PutData { tag, value } => self.put_data(ctx, tag, value.get()),
            Command::GeneralAuthenticate {
                algorithm,
                key,
                request,
            } => self.general_authenticate(ctx, algorithm, key, request),
            Command::GenerateAsymmetricKeyPair {
                slot,
                algorithm,
                pin_policy,
                touch_policy,
            } => self.generate(ctx, slot, algorithm, (pin_policy, touch_policy)),
            Command::GetVersion => Ok(Response::ok(self.state.settings.version.to_vec())),
            Command::Attest(slot) => self.attest(ctx, slot),
            Command::GetSerial => Ok(Response::ok(
                self.state.settings.serial.to_be_bytes().to_vec(),
            )),
            Command::GetMetadata(key) => self.get_metadata(ctx, key),
            Command::MoveKey(request) => self.move_key(ctx, request),
            Command::SetManagementKey { algorithm, key } => {
                self.set_management_key(ctx, algorithm, key.expose())
            }
            Command::Reset => self.reset(ctx),
            Command::SetPinRetries {
                pin_tries,
                puk_tries,
            } => self.set_pin_retries(ctx, pin_tries, puk_tries),
            Command::ImportKey {
                slot,
                algorithm,
                material,
                pin_policy,
                touch_policy,
            } => self.import_key(ctx, slot, algorithm, material, (pin_policy, touch_policy)),
        }
    }
}

/// The Yubico extensions' instructions: MOVE / DELETE KEY, GET METADATA,
/// GET SERIAL, ATTEST, SET PIN RETRIES, RESET, GET VERSION, IMPORT KEY, SET
/// MANAGEMENT KEY.
const YUBICO_INSTRUCTIONS: std::ops::RangeInclusive<u8> = 0xF6..=0xFF;

impl Default for PivApplet {
    fn default() -> Self {
        PivApplet::with_defaults()
    }
}

impl Applet for PivApplet {
    fn aid(&self) -> Aid {
        PIV_AID
    }

    fn name(&self) -> &str {
        "PIV"
    }

    fn select(
        &mut self,
        _ctx: &mut Context<'_>,
        _command: Option<&CommandApdu<'_>>,
    ) -> Result<Response, Status> {
        Ok(Response::ok(APPLICATION_PROPERTY_TEMPLATE.clone()))
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandApdu<'_>,
    ) -> Result<Response, Status> {
        // A plain PIV card has none of the Yubico instructions (F6 to FF),
        // whatever their parameters.
        if !self.state.settings.model.has_yubico_extensions()
            && YUBICO_INSTRUCTIONS.contains(&command.ins)
        {
            return Err(Status::InstructionNotSupported);
        }
        let command = Command::try_from(command)?;
        // Nor the Yubico policy tags (`AA`, `AB`) in GENERATE's control
        // reference template, which SP 800-73-4 Part 2 3.3.2 does not
        // define: a plain card answers an unknown tag in the data field as
        // incorrect data.
        if !self.state.settings.model.has_yubico_extensions()
            && let Command::GenerateAsymmetricKeyPair {
                pin_policy,
                touch_policy,
                ..
            } = &command
            && (pin_policy.is_some() || touch_policy.is_some())
        {
            return Err(Status::IncorrectData);
        }
        self.execute(ctx, command)
    }

    fn describe(&self, command: &CommandApdu<'_>) -> Option<String> {
        Command::try_from(command).ok().map(|c| c.describe())
    }

    fn save(&self) -> Result<AppletState, StateError> {
        self.state.save()
    }

    fn load(&mut self, state: &AppletState) -> Result<(), StateError> {
        self.state.load(state)
    }

    fn power_reset(&mut self) {
        self.security.clear();
    }
}
