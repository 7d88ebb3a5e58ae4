//! Reports: a serialisable type of its own (so the JSON schema stays still when engine
//! internals move) and pure renderers from it to bytes.

pub mod json;
pub mod junit;
pub mod markdown;
pub mod nagios;
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
    /// JUnit XML: a testsuite per target, a testcase per check and address.
    Junit,
    /// Markdown, for pasting into a ticket.
    Markdown,
    /// One Nagios/Icinga plugin line with perfdata (plugin exit codes).
    Nagios,
}

impl Format {
    /// The format a file name implies, from its extension.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Junit),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" => Some(Format::Table),
            _ => None,
        }
    }
}

/// Renders a report in a format; `color` adds ANSI styles (the caller's stream strips them
/// where colour is off).
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Table => table::render(report, color),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Nagios => nagios::render(report),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub tool: &'static str,
    pub version: &'static str,
    pub role: String,
    /// The machine the check ran on, so reports from a fleet merge cleanly.
    pub hostname: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub strict: bool,
    pub full_ranges: bool,
    /// Probes carried the shared key (`check --key`).
    pub keyed: bool,
    /// The language of reasons, hints and notes (`--lang`); keys and states stay English.
    pub lang: crate::lang::Lang,
    pub summary: Summary,
    /// Findings about the run as a whole (e.g. a middlebox that answers for every port).
    pub notes: Vec<String>,
    /// With `--wait`: how long the checks were repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<Waited>,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when the run must exit 1: a check failed (with `--strict`, warnings already
    /// count as failures in the verdicts).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// How a `--wait` run went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Waited {
    pub rounds: u32,
    pub waited_ms: f64,
    pub limit_ms: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

impl Summary {
    /// "4 pass, 1 fail, 3 warn, 0 skip", as the table and Markdown headings say it.
    pub fn counts(self, lang: crate::lang::Lang) -> String {
        let Summary {
            pass,
            fail,
            warn,
            skip,
        } = self;
        let warnings = if warn == 1 { "Warnung" } else { "Warnungen" };
        crate::tr!(
            lang,
            "{pass} pass, {fail} fail, {warn} warn, {skip} skip",
            "{pass} OK, {fail} Fehler, {warn} {warnings}, {skip} ausgelassen"
        )
    }
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
