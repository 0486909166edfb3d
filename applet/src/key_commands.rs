//! GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2 3.3.2) and the Yubico
//! IMPORT ASYMMETRIC KEY (`FE`).
//!
//! Contract: both need the management key (`6982`); both answer `6A84`
//! before changing anything when the key would overflow the card's
//! storage ([`crate::capacity`]); the new key replaces the slot's key in
//! one atomic commit of the key table; the answer carries only the public
//! key.

use vscard_emulator::{Context, Response, Status};

use std::sync::Arc;

use crate::PivApplet;
use crate::command::ImportMaterial;
use crate::custody::{CustodyError, CustodyTarget, KeyCustody, KeyReference};
use crate::keys::PrivateKey;
use crate::reference::{Algorithm, PinPolicy, Slot};
use crate::stored_key::{Origin, StoredKey};
use crate::touch_policy::TouchPolicy;

/// The policies a GENERATE or IMPORT names (tags `AA`, `AB`), if any.
type Policies = (Option<PinPolicy>, Option<TouchPolicy>);

impl PivApplet {
    /// GENERATE ASYMMETRIC KEY PAIR: answers `7F49 { 81 n, 82 e }` or
    /// `7F49 { 86 point }`.
    pub(crate) fn generate(
        &mut self,
        ctx: &mut Context<'_>,
        slot: Slot,
        algorithm: Algorithm,
        (pin_policy, touch_policy): Policies,
    ) -> Result<Response, Status> {
        // An algorithm this model lacks is refused as one the card does
        // not know (`6A80`, a bad algorithm in the template), before the
        // management key is asked for.
        if !self.state.settings.model.supports(algorithm) {
            return Err(Status::IncorrectData);
        }
        self.require_management(ctx)?;
        // Checked before generating: an RSA key takes a second to make.
        if !self.state.key_fits(slot, algorithm) {
            return Err(Status::NotEnoughMemory);
        }
        let policy = pin_policy.unwrap_or(slot.default_pin_policy());
        if let Some(target) = self.state.custody.clone() {
            let custody = self.target_custody(&target)?;
            let fail = |error| custody_failure(error, slot, "generate");
            let (reference, public) = match custody.reserve(&target, slot).map_err(fail)? {
                Some(reserved) => {
                    // Recorded before the key exists: a cut from here on
                    // leaves a key reconcile knows is this card's.
                    self.record_pending(ctx, &*custody, &target, reserved.clone())?;
                    let public = custody
                        .generate_reserved(&target, &reserved, slot, algorithm)
                        .map_err(fail)?;
                    (reserved, public)
                }
                None => custody.generate(&target, slot, algorithm).map_err(fail)?,
            };
            let template = public.to_template();
            let stored =
                self.external_key(reference, public, algorithm, policy, Origin::Generated)?;
            self.commit_key(
                ctx,
                slot,
                stored.with_touch_policy(touch_policy.unwrap_or_default()),
            )?;
            return Ok(Response::ok(template));
        }
        // Logged before it becomes a bare 6A80: on a card, a failed
        // generation is otherwise invisible. The error names the algorithm
        // and the cause, never key material.
        let key = PrivateKey::generate(algorithm, ctx.rng()).map_err(|error| {
            tracing::error!(target: "vscard::piv", %slot, ?algorithm, %error, "key generation failed");
            Status::IncorrectData
        })?;
        let public = key.public_key();
        let template = public.to_template();
        let stored = StoredKey::with_public(key, &public, policy, Origin::Generated).map_err(
            |error| {
                tracing::error!(target: "vscard::piv", %slot, %error, "cannot store a generated key");
                Status::UnknownError
            },
        )?
        .with_touch_policy(touch_policy.unwrap_or_default());
        self.state.keys.insert(slot, stored);
        self.state.stage_keys(ctx)?;
        Ok(Response::ok(template))
    }

    /// IMPORT ASYMMETRIC KEY: `6A86` for an algorithm the model lacks (as
    /// for one the card does not know), `6A80` for key material that is
    /// not a valid key of the algorithm in P1.
    pub(crate) fn import_key(
        &mut self,
        ctx: &mut Context<'_>,
        slot: Slot,
        algorithm: Algorithm,
        material: ImportMaterial<'_>,
        (pin_policy, touch_policy): Policies,
    ) -> Result<Response, Status> {
        if !self.state.settings.model.supports(algorithm) {
            return Err(Status::IncorrectP1P2);
        }
        self.require_management(ctx)?;
        let key = match material {
            ImportMaterial::Rsa {
                parts: [p, q, dp, dq, qinv],
            } => PrivateKey::from_rsa_crt(
                algorithm,
                p.expose(),
                q.expose(),
                dp.expose(),
                dq.expose(),
                qinv.expose(),
            ),
            ImportMaterial::Ec(scalar) => PrivateKey::from_ec_scalar(algorithm, scalar.expose()),
            ImportMaterial::Curve25519(key) => {
                PrivateKey::from_curve25519_bytes(algorithm, key.expose())
            }
        }
        .map_err(|error| {
            // The host's material is refused: say why (the error carries no
            // key bytes), then answer 6A80.
            tracing::warn!(target: "vscard::piv", %slot, %error, "imported key refused");
            Status::IncorrectData
        })?;
        // After parsing (malformed material is `6A80` whatever the space),
        // before the key table changes.
        if !self.state.key_fits(slot, key.algorithm()) {
            return Err(Status::NotEnoughMemory);
        }
        let policy = pin_policy.unwrap_or(slot.default_pin_policy());
        if let Some(target) = self.state.custody.clone() {
            let custody = self.target_custody(&target)?;
            let (reference, public) = custody
                .import(&target, slot, &key)
                .map_err(|error| custody_failure(error, slot, "import"))?;
            let stored =
                self.external_key(reference, public, key.algorithm(), policy, Origin::Imported)?;
            self.commit_key(
                ctx,
                slot,
                stored.with_touch_policy(touch_policy.unwrap_or_default()),
            )?;
            return Ok(Response::empty());
        }
        let stored = StoredKey::new(key, policy, Origin::Imported)
            .map_err(|_| Status::IncorrectData)?
            .with_touch_policy(touch_policy.unwrap_or_default());
        self.state.keys.insert(slot, stored);
        self.state.stage_keys(ctx)?;
        Ok(Response::empty())
    }
}

/// Logs a custody failure for `slot` and gives its status word.
fn custody_failure(error: CustodyError, slot: Slot, operation: &str) -> Status {
    match &error {
        CustodyError::Unavailable { .. } => {
            tracing::error!(target: "vscard::piv", %slot, operation, %error, "key custody failed");
        }
        _ => tracing::warn!(target: "vscard::piv", %slot, operation, %error, "key custody refused"),
    }
    error.status()
}

impl PivApplet {
    /// The attached custody, if it is the one `target` names; `6F00`
    /// (logged) otherwise.
    fn target_custody(&self, target: &CustodyTarget) -> Result<Arc<dyn KeyCustody>, Status> {
        match &self.custody {
            Some(custody) if custody.kind() == target.custody => Ok(Arc::clone(custody)),
            _ => {
                tracing::error!(target: "vscard::piv", custody = %target.custody,
                    "the card keeps its keys in an external custody that is not attached");
                Err(Status::UnknownError)
            }
        }
    }

    /// The stored form of a key the custody made; `6F00` (and the key
    /// destroyed) when the custody answered a key of another algorithm.
    fn external_key(
        &self,
        reference: KeyReference,
        public: crate::keys::PublicKey,
        algorithm: Algorithm,
        policy: PinPolicy,
        origin: Origin,
    ) -> Result<StoredKey, Status> {
        let refused = |reason: &dyn std::fmt::Display| {
            tracing::error!(target: "vscard::piv", key = %reference, %reason,
                "the key custody answered an unusable key");
            self.destroy_unreferenced(vec![reference.clone()]);
            Status::UnknownError
        };
        if public.algorithm() != algorithm {
            return Err(refused(&format_args!(
                "a {:?} key for {algorithm:?}",
                public.algorithm()
            )));
        }
        StoredKey::external(reference.clone(), public, policy, origin).map_err(|e| refused(&e))
    }

    /// Puts `stored` in `slot` and commits the key table now; after the
    /// commit, destroys the custody key it replaced. A failed commit may
    /// still have reached the store: the new key is then left for
    /// [`PivApplet::reconcile_custody`], never destroyed here.
    pub(crate) fn commit_key(
        &mut self,
        ctx: &mut Context<'_>,
        slot: Slot,
        stored: StoredKey,
    ) -> Result<(), Status> {
        let new = stored.custody_reference().cloned();
        let old = self.state.keys.insert(slot, stored);
        let old = old.and_then(|key| key.custody_reference().cloned());
        // In the same commit: the new key is no longer pending, the one it
        // replaces is (so a cut before its destruction leaves it recorded).
        let before = self.state.pending.len();
        self.state
            .pending
            .retain(|pending| Some(pending) != new.as_ref());
        let changed = before != self.state.pending.len();
        if let Some(old) = &old
            && !self.state.pending.contains(old)
        {
            self.state.pending.push(old.clone());
        }
        self.state.stage_keys(ctx)?;
        if changed || old.is_some() {
            self.state.stage_pending(ctx)?;
        }
        ctx.commit()?;
        self.destroy_unreferenced(old.into_iter().collect());
        Ok(())
    }

    /// Commits `reserved` to the write-ahead record before its key is
    /// made; pending keys the card does not refer to are destroyed first
    /// (and dropped from the record once destroyed).
    fn record_pending(
        &mut self,
        ctx: &mut Context<'_>,
        custody: &dyn KeyCustody,
        target: &CustodyTarget,
        reserved: KeyReference,
    ) -> Result<(), Status> {
        let referenced = self.state.custody_references();
        let pending = std::mem::take(&mut self.state.pending);
        for reference in pending {
            let done = !referenced.contains(&reference)
                && reference.custody == custody.kind()
                && custody.delete(target, &reference).is_ok();
            if !done && !referenced.contains(&reference) {
                self.state.pending.push(reference);
            }
        }
        self.state.pending.push(reserved);
        self.state.stage_pending(ctx)?;
        ctx.commit()?;
        Ok(())
    }
}
