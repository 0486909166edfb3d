//! The scenario groups.

pub mod iso7816;
pub mod journey;
pub mod piv;
pub mod yubikey;

use crate::scenario::Scenario;

/// Every scenario, in the order the runner runs them: the non-destructive
/// ones of every group first, then the destructive ones (GENERATE, which
/// replaces a key the others sign with, comes last of all).
pub fn all() -> Vec<Scenario> {
    let every = [
        iso7816::SCENARIOS,
        piv::SCENARIOS,
        yubikey::SCENARIOS,
        journey::SCENARIOS,
    ]
    .concat();
    let (mut safe, mut destructive): (Vec<_>, Vec<_>) =
        every.into_iter().partition(|s| !s.destructive);
    // GENERATE replaces the card's keys; RESET wipes the card: last.
    destructive.sort_by_key(|s| (s.name.contains("RESET"), s.name.starts_with("GENERATE")));
    safe.append(&mut destructive);
    safe
}
