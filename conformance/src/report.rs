//! The runner's table, as Markdown and JSON.

use std::fmt::Write;

use crate::scenario::ScenarioResult;

/// One transport's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransportReport {
    /// The transport's name.
    pub transport: String,
    /// One row per scenario.
    pub results: Vec<ScenarioResult>,
}

/// Counts of passed, failed, unsupported and skipped scenarios.
pub fn summary(results: &[ScenarioResult]) -> (usize, usize, usize, usize) {
    let count = |r: &str| results.iter().filter(|x| x.result == r).count();
    (
        count("passed"),
        count("failed"),
        count("unsupported"),
        count("skipped"),
    )
}

/// A Markdown table: one row per scenario, one column per transport.
pub fn markdown(reports: &[TransportReport]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| group | scenario | clause |");
    for report in reports {
        let _ = write!(out, " {} |", report.transport);
    }
    out.push('\n');
    out.push_str("|---|---|---|");
    for _ in reports {
        out.push_str("---|");
    }
    out.push('\n');
    let Some(first) = reports.first() else {
        return out;
    };
    for (i, row) in first.results.iter().enumerate() {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            row.group.label(),
            row.name,
            row.clause
        );
        for report in reports {
            let cell = report.results.get(i).map_or("-", |r| r.result);
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');
    for report in reports {
        let (passed, failed, unsupported, skipped) = summary(&report.results);
        let _ = writeln!(
            out,
            "{}: {passed} passed, {failed} failed, {unsupported} unsupported, {skipped} skipped",
            report.transport
        );
    }
    out
}

/// The reports as pretty JSON.
pub fn json(reports: &[TransportReport]) -> String {
    serde_json::to_string_pretty(reports).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
