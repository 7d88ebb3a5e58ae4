//! Reports: a serialisable type of its own (so the JSON schema stays still when engine
//! internals move) and pure renderers from it to bytes.

pub mod json;
pub mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{Expect, Protocol, State};
use crate::verdict::Verdict;

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table grouped by target, coloured on a terminal.
    Table,
    /// One JSON object (schema 1) on stdout.
    Json,
}

/// Renders a report in a format; `color` adds ANSI styles (the caller's stream strips them
/// where colour is off).
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Table => table::render(report, color),
        Format::Json => json::render(report),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub tool: &'static str,
    pub version: &'static str,
    pub role: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub strict: bool,
    pub full_ranges: bool,
    /// Probes carried the shared key (`check --key`).
    pub keyed: bool,
    pub summary: Summary,
    /// Findings about the run as a whole (e.g. a middlebox that answers for every port).
    pub notes: Vec<String>,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when the run must exit 1: a check failed (with `--strict`, warnings already
    /// count as failures in the verdicts).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

/// One check on one address.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub description: String,
    pub protocol: Protocol,
    pub ports: String,
    pub target: String,
    pub host: Option<String>,
    pub address: Option<IpAddr>,
    pub required: bool,
    pub expect: Expect,
    /// `None` when the check was skipped.
    pub state: Option<State>,
    pub verdict: Verdict,
    pub reason: String,
    pub hint: Option<String>,
    pub latency_ms: Option<f64>,
    /// With `--key`: whether `automate-ports serve` proved itself; null without a key.
    pub verified: Option<bool>,
    /// What an application probe found on the open port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<crate::probe::app::AppResult>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probed_ports: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_ports: Option<Vec<u16>>,
}
