//! Scenarios, their outcomes, and the runner.

use serde::Serialize;

use crate::facts::CardFacts;
use crate::session::{Failure, Session};
use crate::transport::Transport;

/// The group a scenario belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Group {
    /// ISO/IEC 7816-4 runtime behaviour: cases, chaining, GET RESPONSE,
    /// SELECT, channels, reset.
    #[serde(rename = "ISO 7816-4")]
    Iso7816,
    /// NIST SP 800-73-4 Part 2 PIV commands and security status.
    #[serde(rename = "PIV")]
    Piv,
    /// The healthcare worker's journey (NHS-style card life).
    #[serde(rename = "Journey")]
    Journey,
}

impl Group {
    /// The group's name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Group::Iso7816 => "ISO 7816-4",
            Group::Piv => "PIV",
            Group::Journey => "Journey",
        }
    }
}

/// What a scenario concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it checked held.
    Passed,
    /// The card (or transport) does not offer the feature; the reason says
    /// what answered. vscard itself must never give this.
    Unsupported(String),
}

/// The signature of a scenario body.
pub type ScenarioFn = fn(&mut Session<'_>) -> Result<Outcome, Failure>;

/// One named check against a card.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Its group.
    pub group: Group,
    /// A short name, unique in the suite.
    pub name: &'static str,
    /// The clause it checks.
    pub clause: &'static str,
    /// True when it changes the card irreversibly for a real card (blocks
    /// the PIN, generates keys, writes objects); such scenarios run only
    /// when asked for.
    pub destructive: bool,
    /// The body.
    pub run: ScenarioFn,
}

/// The result of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// The group.
    pub group: Group,
    /// The scenario's name.
    pub name: &'static str,
    /// The clause it checks.
    pub clause: &'static str,
    /// `passed`, `failed`, `unsupported` or `skipped`.
    pub result: &'static str,
    /// Why it failed, was unsupported or was skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The exchanges of a failed scenario.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
}

impl ScenarioResult {
    /// True for a failure.
    pub fn failed(&self) -> bool {
        self.result == "failed"
    }
}

/// Runs one scenario on a freshly reset card.
pub fn run_one(
    scenario: &Scenario,
    transport: &mut dyn Transport,
    facts: &CardFacts,
) -> ScenarioResult {
    let mut session = Session::new(transport, facts);
    let outcome = session
        .reset("reset before the scenario")
        .and_then(|()| (scenario.run)(&mut session));
    let (result, detail, transcript) = match outcome {
        Ok(Outcome::Passed) => ("passed", String::new(), Vec::new()),
        Ok(Outcome::Unsupported(why)) => ("unsupported", why, Vec::new()),
        Err(failure) => ("failed", failure.to_string(), session.transcript().to_vec()),
    };
    ScenarioResult {
        group: scenario.group,
        name: scenario.name,
        clause: scenario.clause,
        result,
        detail,
        transcript,
    }
}

/// Runs `scenarios` in order; destructive ones only when `destructive`.
pub fn run_all(
    scenarios: &[Scenario],
    transport: &mut dyn Transport,
    facts: &CardFacts,
    destructive: bool,
) -> Vec<ScenarioResult> {
    scenarios
        .iter()
        .map(|scenario| {
            if scenario.destructive && !destructive {
                ScenarioResult {
                    group: scenario.group,
                    name: scenario.name,
                    clause: scenario.clause,
                    result: "skipped",
                    detail: "destructive; run with --destructive".into(),
                    transcript: Vec::new(),
                }
            } else {
                run_one(scenario, transport, facts)
            }
        })
        .collect()
}
