//! The scenario groups.

pub mod iso7816;
pub mod piv;

use crate::scenario::Scenario;

/// Every scenario, in the order the runner runs them.
pub fn all() -> Vec<Scenario> {
    let mut all = Vec::new();
    all.extend_from_slice(iso7816::SCENARIOS);
    all.extend_from_slice(piv::SCENARIOS);
    all
}
