//! The scenario groups.

pub mod iso7816;

use crate::scenario::Scenario;

/// Every scenario, in the order the runner runs them.
pub fn all() -> Vec<Scenario> {
    let mut all = Vec::new();
    all.extend_from_slice(iso7816::SCENARIOS);
    all
}
