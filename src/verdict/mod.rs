//! Judges probe outcomes against what each check expects: the truth table, one result per
//! check and address, the notes across results. Pure: no I/O, so every rule here is tested
//! without a network. Ranges are judged in [`ranges`], hints written in [`hints`].

mod hints;
mod ranges;
#[cfg(test)]
mod tests;
mod trace;
mod tunnel;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::lang::compact_ports;
use crate::lang::Lang;
use crate::model::{Check, Expect, ProbeKind, Protocol, State};
use crate::plan::{PathPlan, Plan, Work};
use crate::probe::app::AppVerdict;
use crate::probe::{Outcome, Why};
use crate::report::{CheckResult, Report, Summary, Verdict};
use crate::tr;
use hints::hint;
pub use trace::{attach as attach_trace, judge as judge_trace, Trail};

/// What a state means for a check, before `required` and `--strict` are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Judgement {
    Met,
    /// UDP silence: cannot be told from a drop.
    Unsure,
    Unmet,
}

/// `proven` is `Some(false)` when probing with a key and the far side did not prove it
/// runs `serve` (or, where serve left the port to it, that it is the real service): an open
/// port then proves only that *something* answers.
fn judge(state: State, expect: Expect, proven: Option<bool>) -> Judgement {
    let unproven = proven == Some(false);
    match (expect, state) {
        (Expect::Either, State::Error | State::Unfinished) => Judgement::Unmet,
        (Expect::Either, _) => Judgement::Met,
        (_, State::OpenFiltered) => Judgement::Unsure,
        (Expect::Blocked, State::Open) if unproven => Judgement::Unsure,
        (Expect::Reachable, State::Open) if unproven => Judgement::Unmet,
        (Expect::Reachable, State::Open) | (Expect::Blocked, State::Closed | State::Filtered) => {
            Judgement::Met
        }
        _ => Judgement::Unmet,
    }
}

/// An application probe can only lower the judgement of an open port: what answered is
/// not what the check needs (fail) or is doubtful (warn).
fn judge_outcome(outcome: &Outcome, expect: Expect) -> Judgement {
    let base = judge(outcome.state, expect, outcome.proven());
    match (&outcome.why, expect) {
        (Why::App(found) | Why::RealService(found), Expect::Reachable) => match found.verdict {
            AppVerdict::Pass => base,
            AppVerdict::Warn => base.max(Judgement::Unsure),
            AppVerdict::Fail => Judgement::Unmet,
        },
        // The port is taken by a program that is not the agent: the tray cannot work.
        (Why::InUse(Some(holder)), _) if !holder.is_automate_agent() => Judgement::Unmet,
        // Nothing installed yet: an install takes the next free port, as install scripts do;
        // none free, and it has no tray port.
        (Why::InstallMoves { free: None, .. }, _) => Judgement::Unmet,
        // The install moves to a free port: doubtful, not broken. And a path proven open (the
        // answer is bound to the key, nonce and port) whose check could not complete: doubtful,
        // not a firewall's fault.
        (Why::InstallMoves { free: Some(_), .. } | Why::Stale { .. }, _) => Judgement::Unsure,
        // Proven with the key, but P2P cannot be set up (or it could not be compared):
        // tunnels still work through the relay, so doubtful rather than failed.
        (Why::Mapped(found), _) if !found.allows_p2p() => base.max(Judgement::Unsure),
        // Every other cause, named so that a new one is judged here on purpose: the state
        // alone decides.
        (
            Why::Connected
            | Why::Reply
            | Why::Exchanged
            | Why::InUse(_)
            | Why::Listens(_)
            | Why::NothingListens
            | Why::Refused
            | Why::PortUnreachable
            | Why::HostUnreachable
            | Why::LocalFirewall
            | Why::NoAnswer
            | Why::NoAnswerKeyed
            | Why::Verified
            | Why::Redirected(_)
            | Why::Mapped(_)
            | Why::NotServe(_)
            | Why::App(_)
            | Why::RealService(_)
            | Why::Local(_)
            | Why::Unfinished { .. },
            _,
        ) => base,
    }
}

fn verdict_of(judgement: Judgement, required: bool, strict: bool) -> Verdict {
    let verdict = match judgement {
        Judgement::Met => Verdict::Pass,
        Judgement::Unmet if required => Verdict::Fail,
        Judgement::Unsure | Judgement::Unmet => Verdict::Warn,
    };
    if strict && verdict == Verdict::Warn {
        Verdict::Fail
    } else {
        verdict
    }
}

/// Settings of the run that the report states.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub started_at: String,
    pub duration: Duration,
    pub timeout: Duration,
    pub strict: bool,
    pub full_ranges: bool,
    /// Probes carried the shared key (`check --key`).
    pub keyed: bool,
    /// The language of reasons and hints.
    pub lang: Lang,
    /// This machine's name, asked by the caller: the verdict does no I/O.
    pub hostname: String,
}

/// Builds the report from the plan, its paths and the outcomes of their jobs.
pub fn report(plan: &Plan, paths: &[PathPlan], outcomes: &[Outcome], run: &RunInfo) -> Report {
    let mut checks: Vec<CheckResult> = paths
        .iter()
        .map(|path| path_result(plan, path, outcomes, run))
        .collect();
    note_shared_ports(&mut checks, run.lang);
    let (mut mapping_checks, mut others) = (Vec::new(), Vec::new());
    for (result, path) in checks.iter().zip(paths) {
        if matches!(plan.checks[path.check].check.probe, ProbeKind::Nat { .. }) {
            mapping_checks.push(result);
        } else {
            others.push(result);
        }
    }
    let (tunnels, notes) = tunnel::paths(&mapping_checks, &others, run.lang);
    Report {
        schema: 1,
        tool: "automate-ports",
        version: env!("CARGO_PKG_VERSION"),
        role: plan.role.clone(),
        hostname: run.hostname.clone(),
        started_at: run.started_at.clone(),
        duration_ms: round_ms(run.duration),
        strict: run.strict,
        full_ranges: run.full_ranges,
        keyed: run.keyed,
        lang: run.lang,
        summary: Summary::of(&checks),
        notes,
        wait: None,
        agent: None,
        tunnels,
        checks,
    }
}

/// The result of one check on one address: skipped, unresolved, or judged from its outcomes.
fn path_result(plan: &Plan, path: &PathPlan, outcomes: &[Outcome], run: &RunInfo) -> CheckResult {
    let lang = run.lang;
    let planned = &plan.checks[path.check];
    let check = &planned.check;
    let host = planned.host.as_ref().map(ToString::to_string);
    let mut result = CheckResult::new(check, host, path.address);
    match &path.work {
        Work::Skipped { flag } => {
            result.reason = tr!(
                lang,
                "not checked: no {flag} given",
                "nicht geprüft: kein {flag} angegeben"
            );
        }
        Work::Unresolved(reason) => {
            result.state = Some(State::Error);
            result.verdict = verdict_of(Judgement::Unmet, check.required, run.strict);
            result.reason = reason.text(lang);
            let name = planned
                .host
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let flag = crate::model::target_flag(&check.target);
            result.hint = Some(tr!(
                lang,
                "This machine cannot resolve {name}: check the name ({flag}) and this machine's DNS settings; the Automate agent uses the same resolver.",
                "Dieser Rechner kann {name} nicht auflösen: den Namen ({flag}) und die DNS-Einstellungen dieses Rechners prüfen; der Automate-Agent nutzt denselben Resolver."
            ));
        }
        Work::Probe(jobs) => {
            let outcomes = &outcomes[jobs.clone()];
            match (planned.ports.as_slice(), outcomes) {
                ([port], [outcome]) => judge_port(&mut result, check, *port, outcome, run),
                (ports, _) => ranges::judge_range(&mut result, check, ports, outcomes, run),
            }
        }
    }
    result
}

/// One port, one outcome: its state, verdict, reason and, unless it passed, a hint.
fn judge_port(
    result: &mut CheckResult,
    check: &Check,
    port: u16,
    outcome: &Outcome,
    run: &RunInfo,
) {
    let judgement = judge_outcome(outcome, check.expect);
    result.verified = outcome.verified();
    if let Why::App(found) | Why::RealService(found) = &outcome.why {
        result.app = Some(crate::words::app::with_summary(found, run.lang));
    }
    if let Why::Mapped(found) = &outcome.why {
        result.nat = Some((**found).clone());
    }
    result.state = Some(outcome.state);
    result.verdict = verdict_of(judgement, check.required, run.strict);
    result.reason = outcome.reason(run.lang);
    if check.expect == Expect::Either
        && !matches!(
            outcome.state,
            State::Open | State::Error | State::Unfinished
        )
    {
        let note = hints::note(check, result, run);
        result.reason = format!("{}; {note}", result.reason);
    }
    if matches!(outcome.state, State::Open)
        || matches!(outcome.why, Why::Refused | Why::PortUnreachable)
    {
        result.latency_ms = Some(round_ms(outcome.elapsed));
    }
    if result.verdict != Verdict::Pass {
        result.hint = Some(hint(
            check,
            outcome.state,
            &outcome.why,
            result,
            &[port],
            run,
        ));
    }
}

/// Two checks on one host, port and protocol (ScreenConnect's web and relay behind one
/// router port, say): a connect alone confirms neither service, so each says so.
fn note_shared_ports(checks: &mut [CheckResult], lang: Lang) {
    type Place = (Option<IpAddr>, Option<String>, String, &'static str);
    let mut groups: BTreeMap<Place, Vec<usize>> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if c.state.is_some() && c.counts.is_none() {
            let proto = if c.protocol == Protocol::Tcp {
                "tcp"
            } else {
                "udp"
            };
            groups
                .entry((c.address, c.host.clone(), c.ports.clone(), proto))
                .or_default()
                .push(i);
        }
    }
    for ((_, _, ports, proto), members) in groups {
        // Where every one asked the application (the agent's web check and its installer
        // download), each answer confirms its own service; a relay's silence confirms none.
        let confirmed = |i: usize| {
            checks[i]
                .app
                .as_ref()
                .is_some_and(|a| a.probe != crate::model::AppProbe::Relay)
        };
        if members.len() < 2 || members.iter().all(|&i| confirmed(i)) {
            continue;
        }
        let ids: Vec<String> = members.iter().map(|&i| checks[i].id.clone()).collect();
        for &i in &members {
            let others: Vec<&str> = ids
                .iter()
                .filter(|id| **id != checks[i].id)
                .map(String::as_str)
                .collect();
            let others = others.join(", ");
            let note = tr!(
                lang,
                " (shares {ports}/{proto} with {others}: a connect alone confirms neither service)",
                " (teilt {ports}/{proto} mit {others}: ein Verbindungsaufbau allein bestätigt keinen der Dienste)"
            );
            checks[i].reason.push_str(&note);
        }
    }
}

pub fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}
