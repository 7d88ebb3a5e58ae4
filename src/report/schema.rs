//! The JSON contract (schema 1): the report, its results and verdicts. It imports only the
//! model, so the schema stays still when the engine's internals move.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::lang::Lang;
use crate::model::{AppResult, Check, Expect, ProbeKind, Protocol, State, Trace};
use crate::nat::{Mapping, NatMapping};

/// The verdict on one check on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Verdict {
    /// How bad it is: of several verdicts on one check, the worst counts.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Skip => 0,
            Verdict::Pass => 1,
            Verdict::Warn => 2,
            Verdict::Fail => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
        }
    }

    /// The word a person reads in a table or ticket.
    pub fn word(self, lang: Lang) -> &'static str {
        match self {
            Verdict::Pass => lang.pick("PASS", "OK"),
            Verdict::Fail => lang.pick("FAIL", "FEHLER"),
            Verdict::Warn => lang.pick("WARN", "WARNUNG"),
            Verdict::Skip => lang.pick("SKIP", "AUSGELASSEN"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
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
    pub lang: Lang,
    pub summary: Summary,
    /// Findings about the run as a whole (e.g. a middlebox that answers for every port).
    pub notes: Vec<String>,
    /// With `--wait`: how long the checks were repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<Waited>,
    /// On a PC with the Automate agent: its ID, client, location and version, to join fleet
    /// reports with Automate's own data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::agentconfig::AgentInfo>,
    /// Roles with a NAT mapping check: which way tunnels will go from here, per address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<TunnelPath>,
    pub checks: Vec<CheckResult>,
}

/// Which way tunnels will take from this machine towards `host` (`address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TunnelPath {
    pub host: Option<String>,
    pub address: Option<IpAddr>,
    pub route: TunnelRoute,
    /// This site's NAT mapping, where the mapping check could tell.
    pub mapping: Option<Mapping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TunnelRoute {
    /// Direct, UDP, once the mediator introduced both ends.
    P2p,
    /// Through the Automate server: TCP 8002, then 49152-65535.
    Relay,
    /// Neither works from here.
    None,
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Waited {
    pub rounds: u32,
    pub waited_ms: f64,
    pub limit_ms: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

impl Summary {
    /// The counts of a run's results, by verdict.
    pub fn of(checks: &[CheckResult]) -> Summary {
        let mut summary = Summary::default();
        for c in checks {
            match c.verdict {
                Verdict::Pass => summary.pass += 1,
                Verdict::Fail => summary.fail += 1,
                Verdict::Warn => summary.warn += 1,
                Verdict::Skip => summary.skip += 1,
            }
        }
        summary
    }

    /// "4 pass, 1 fail, 3 warn, 0 skip", as the table and Markdown headings say it.
    pub fn counts(self, lang: Lang) -> String {
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
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
    pub app: Option<AppResult>,
    /// What the NAT mapping probe found (`probe = "nat"`, with the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatMapping>,
    /// Where the path of a filtered result stops (or, with `--trace`, any result's path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probed_ports: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_ports: Option<Vec<u16>>,
}

impl CheckResult {
    /// The result of `check` on `address` before it is judged: skipped, no reason yet.
    pub fn new(check: &Check, host: Option<String>, address: Option<IpAddr>) -> CheckResult {
        CheckResult {
            id: check.id.clone(),
            description: check.description.clone(),
            protocol: check.protocol,
            ports: match check.probe {
                ProbeKind::Nat { second } => format!("{},{second}", check.ports),
                _ => check.ports.to_string(),
            },
            target: check.target.clone(),
            host,
            address,
            required: check.required,
            expect: check.expect,
            state: None,
            verdict: Verdict::Skip,
            reason: String::new(),
            hint: None,
            latency_ms: None,
            verified: None,
            app: None,
            nat: None,
            trace: None,
            source: check.source.clone(),
            probed_ports: None,
            counts: None,
            failed_ports: None,
        }
    }
}
