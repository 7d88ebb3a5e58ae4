//! Judges probe outcomes against what each check expects and writes the hints. Pure: no
//! I/O, so every rule here is tested without a network.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Check, Expect, Protocol, State};
use crate::plan::{PathPlan, Plan, Work};
use crate::probe::app::AppVerdict;
use crate::probe::{fmt_duration, Outcome, Why};
use crate::report::{CheckResult, Report, Summary};

/// The verdict on one check on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
        }
    }
}

/// What a state means for a check, before `required` and `--strict` are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Judgement {
    Met,
    /// UDP silence: cannot be told from a drop.
    Unsure,
    Unmet,
}

/// `verified` is `Some(false)` when probing with a key and the far side did not prove it
/// runs `serve`: an open port then proves only that *something* answers.
fn judge(state: State, expect: Expect, verified: Option<bool>) -> Judgement {
    let unproven = verified == Some(false);
    match (expect, state) {
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
fn judge_outcome(outcome: &Outcome, expect: Expect, verified: Option<bool>) -> Judgement {
    let base = judge(outcome.state, expect, verified);
    match (&outcome.why, expect) {
        (Why::App(found), Expect::Reachable) => match found.verdict {
            AppVerdict::Pass => base,
            AppVerdict::Warn => base.max(Judgement::Unsure),
            AppVerdict::Fail => Judgement::Unmet,
        },
        _ => base,
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
}

/// Builds the report from the plan, its paths and the outcomes of their jobs.
pub fn report(plan: &Plan, paths: &[PathPlan], outcomes: &[Outcome], run: &RunInfo) -> Report {
    let mut checks = Vec::with_capacity(paths.len());
    for path in paths {
        let planned = &plan.checks[path.check];
        let check = &planned.check;
        let host = planned.host.clone();
        let mut result = CheckResult {
            id: check.id.clone(),
            description: check.description.clone(),
            protocol: check.protocol,
            ports: check.ports.to_string(),
            target: check.target.clone(),
            host: host.clone(),
            address: path.address,
            required: check.required,
            expect: check.expect,
            state: None,
            verdict: Verdict::Skip,
            reason: String::new(),
            hint: None,
            latency_ms: None,
            verified: None,
            app: None,
            source: check.source.clone(),
            probed_ports: None,
            counts: None,
            failed_ports: None,
        };
        match &path.work {
            Work::Skipped(reason) => result.reason.clone_from(reason),
            Work::Unresolved(reason) => {
                result.state = Some(State::Error);
                result.verdict = verdict_of(Judgement::Unmet, check.required, run.strict);
                result.reason.clone_from(reason);
                result.hint = Some(format!(
                    "This machine cannot resolve {}: check the name ({}) and this machine's DNS settings; the Automate agent uses the same resolver.",
                    host.as_deref().unwrap_or("the target"),
                    crate::model::target_flag(&check.target)
                ));
            }
            Work::Probe(jobs) => {
                let outcomes = &outcomes[jobs.clone()];
                let ports: Vec<u16> = plan.checks[path.check].ports.clone();
                judge_probed(&mut result, check, &ports, outcomes, path.address, run);
            }
        }
        checks.push(result);
    }
    note_shared_ports(&mut checks);
    let mut summary = Summary::default();
    for c in &checks {
        match c.verdict {
            Verdict::Pass => summary.pass += 1,
            Verdict::Fail => summary.fail += 1,
            Verdict::Warn => summary.warn += 1,
            Verdict::Skip => summary.skip += 1,
        }
    }
    Report {
        schema: 1,
        tool: "automate-ports",
        version: env!("CARGO_PKG_VERSION"),
        role: plan.role.clone(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        started_at: run.started_at.clone(),
        duration_ms: round_ms(run.duration),
        strict: run.strict,
        full_ranges: run.full_ranges,
        keyed: run.keyed,
        summary,
        notes: Vec::new(),
        wait: None,
        checks,
    }
}

/// Two checks on one host, port and protocol (ScreenConnect's web and relay behind one
/// router port, say): a connect alone confirms neither service, so each says so.
fn note_shared_ports(checks: &mut [CheckResult]) {
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
        if members.len() < 2 {
            continue;
        }
        let ids: Vec<String> = members.iter().map(|&i| checks[i].id.clone()).collect();
        for &i in &members {
            let others: Vec<&str> = ids
                .iter()
                .filter(|id| **id != checks[i].id)
                .map(String::as_str)
                .collect();
            let _ = write!(
                checks[i].reason,
                " (shares {ports}/{proto} with {}: a connect alone confirms neither service)",
                others.join(", ")
            );
        }
    }
}

fn judge_probed(
    result: &mut CheckResult,
    check: &Check,
    ports: &[u16],
    outcomes: &[Outcome],
    address: Option<IpAddr>,
    run: &RunInfo,
) {
    if let ([port], [outcome]) = (ports, outcomes) {
        let verified = outcome.verified(run.keyed);
        let judgement = judge_outcome(outcome, check.expect, verified);
        result.verified = verified;
        if let Why::App(found) = &outcome.why {
            result.app = Some((**found).clone());
        }
        result.state = Some(outcome.state);
        result.verdict = verdict_of(judgement, check.required, run.strict);
        result.reason = outcome.reason(run.timeout);
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
                address,
                &[*port],
                run.timeout,
            ));
        }
        return;
    }

    // A range: judge every port, keep counts and the complete list of ports that did not pass.
    let mut counts: BTreeMap<State, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut worst = Judgement::Met;
    let mut failing_states: BTreeMap<State, usize> = BTreeMap::new();
    let mut open_latency = Vec::new();
    let mut all_verified = true;
    for (&port, outcome) in ports.iter().zip(outcomes) {
        *counts.entry(outcome.state).or_default() += 1;
        let verified = outcome.verified(run.keyed);
        if let Some(v) = verified {
            all_verified &= v;
        }
        let j = judge_outcome(outcome, check.expect, verified);
        worst = worst.max(j);
        if j == Judgement::Met {
            if outcome.state == State::Open {
                open_latency.push(outcome.elapsed);
            }
        } else {
            failed.push(port);
            *failing_states.entry(outcome.state).or_default() += 1;
        }
    }
    // The state that best describes the range: the commonest among the ports that did not
    // pass, else the commonest overall.
    let pick = |m: &BTreeMap<State, usize>| {
        m.iter()
            .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
            .map(|(s, _)| *s)
    };
    let state = pick(&failing_states)
        .or_else(|| pick(&counts))
        .unwrap_or(State::Error);
    let sampled = if run.full_ranges || ports.len() == check.ports.count() {
        format!("{} ports", thousands(ports.len()))
    } else {
        format!(
            "{} of {} ports sampled",
            ports.len(),
            thousands(check.ports.count())
        )
    };
    let tally = counts
        .iter()
        .map(|(s, n)| format!("{} {s}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut reason = format!("{sampled}: {tally}");
    if !failed.is_empty() && failed.len() < ports.len() {
        let _ = write!(reason, "; not passing: {}", compact_ports(&failed, 8));
    }
    if let Some(example) = outcomes.iter().find(|o| o.state == state) {
        let _ = write!(reason, " (e.g. {})", example.reason(run.timeout));
    }
    open_latency.sort();
    result.latency_ms = open_latency
        .get(open_latency.len() / 2)
        .map(|d| round_ms(*d));
    result.state = Some(state);
    result.verdict = verdict_of(worst, check.required, run.strict);
    result.reason = reason;
    result.probed_ports = Some(ports.len());
    result.verified = run.keyed.then_some(all_verified);
    result.counts = Some(
        counts
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
    );
    if result.verdict != Verdict::Pass {
        let why = outcomes
            .iter()
            .find(|o| o.state == state)
            .map_or(Why::NoAnswer, |o| o.why.clone());
        result.hint = Some(hint(
            check,
            state,
            &why,
            result,
            address,
            &failed,
            run.timeout,
        ));
    }
    result.failed_ports = Some(failed);
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// 16384 → "16,384": range counts are read at a glance.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "49152-49155, 50000, 60000-60010 and 12 more".
pub fn compact_ports(ports: &[u16], max_spans: usize) -> String {
    let mut spans: Vec<(u16, u16)> = Vec::new();
    for &p in ports {
        match spans.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(p) => *end = p,
            _ => spans.push((p, p)),
        }
    }
    let shown: Vec<String> = spans
        .iter()
        .take(max_spans)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let mut text = shown.join(", ");
    if spans.len() > max_spans {
        let rest: usize = spans[max_spans..]
            .iter()
            .map(|&(a, b)| usize::from(b - a) + 1)
            .sum();
        let _ = write!(text, " and {rest} more");
    }
    text
}

/// What is wrong, between which machines, and what to change.
fn hint(
    check: &Check,
    state: State,
    why: &Why,
    result: &CheckResult,
    address: Option<IpAddr>,
    failed: &[u16],
    timeout: Duration,
) -> String {
    let host = result.host.as_deref().unwrap_or("the target");
    let place = match address {
        Some(ip) if ip.to_string() != host => format!("{host} ({ip})"),
        _ => host.to_string(),
    };
    let proto = check.protocol.upper();
    // Name the ports that did not pass; the whole range only when all of them failed.
    let ports = if failed.len() == 1
        || (failed.len() > 1
            && failed.len() < check.ports.count()
            && failed.len() < result.probed_ports.unwrap_or(usize::MAX))
    {
        compact_ports(failed, 8)
    } else {
        check.ports.to_string()
    };
    let fix = check.fix.as_deref().map_or_else(
        || match check.expect {
            Expect::Reachable => format!("Allow {proto} {ports} from this machine to {place}."),
            Expect::Blocked => {
                format!("Block {proto} {ports} to {place} from this machine's network.")
            }
        },
        |template| {
            template
                .replace("{proto}", proto)
                .replace("{ports}", &ports)
                .replace("{host}", host)
                .replace(
                    "{address}",
                    &address.map(|a| a.to_string()).unwrap_or_default(),
                )
                .replace("{where}", &place)
        },
    );
    let what = match (check.expect, state, why) {
        (Expect::Blocked, _, _) => format!(
            "{proto} {ports} on {place} answers from here but must be blocked."
        ),
        (_, State::Error, Why::Local(message)) => return format!("This machine could not test it: {message}."),
        (Expect::Reachable, _, Why::App(found)) => format!("On {place}, {proto} {ports}: {}.", found.summary),
        (_, _, Why::NotServe(_)) => format!(
            "Something other than automate-ports serve answers {proto} {ports} at {place}: a proxy, SYN proxy, or a port forward to another host. Make sure the forward points at the machine running serve."
        ),
        (_, _, Why::Redirected(port)) => format!(
            "{proto} {ports} at {place} reaches automate-ports serve, but on port {port}: the port forward maps it to the wrong internal port."
        ),
        (_, _, Why::InUse) => return "The port is taken on this machine; if the Automate agent is not installed, find the program holding it.".into(),
        (_, _, Why::LocalFirewall) => format!("This machine's own firewall blocks outgoing {proto} {ports}."),
        (_, State::Closed, _) if check.protocol == Protocol::Tcp => format!(
            "{place} refused TCP {ports}: nothing listens there, or a firewall rejects it."
        ),
        (_, State::Closed, _) => format!(
            "{place} reported UDP {ports} as unreachable: nothing listens there, or a firewall rejects it."
        ),
        (_, State::Filtered, Why::HostUnreachable) => format!(
            "A router or firewall between here and {place} reported it unreachable for {proto} {ports}."
        ),
        (_, State::Filtered, _) if check.probe == crate::model::ProbeKind::Loopback => format!(
            "{proto} {ports} over loopback got nowhere: a local firewall or endpoint protection drops it."
        ),
        (_, State::Filtered, _) => format!(
            "No answer from {place} on {proto} {ports} in {}: a firewall drops it, or the host is down.",
            fmt_duration(timeout)
        ),
        (_, State::OpenFiltered, _) => format!(
            "No reply and no error from {place} on UDP {ports}: open but silent, or dropped by a firewall; this cannot be told apart from here without a responder on the far side."
        ),
        (_, _, _) => format!("{proto} {ports} on {place} is {state}."),
    };
    format!("{what} {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_table() {
        use Expect::{Blocked, Reachable};
        use Verdict::{Fail, Pass, Warn};
        let cases = [
            (State::Open, Reachable, true, Pass),
            (State::Closed, Reachable, true, Fail),
            (State::Filtered, Reachable, true, Fail),
            (State::Error, Reachable, true, Fail),
            (State::Closed, Reachable, false, Warn),
            (State::OpenFiltered, Reachable, true, Warn),
            (State::Open, Blocked, true, Fail),
            (State::Open, Blocked, false, Warn),
            (State::Closed, Blocked, true, Pass),
            (State::Filtered, Blocked, true, Pass),
            (State::OpenFiltered, Blocked, true, Warn),
        ];
        for (state, expect, required, want) in cases {
            assert_eq!(
                verdict_of(judge(state, expect, None), required, false),
                want,
                "{state} {expect:?} {required}"
            );
        }
        assert_eq!(
            verdict_of(judge(State::Closed, Reachable, None), false, true),
            Fail,
            "--strict"
        );
        assert_eq!(
            verdict_of(judge(State::OpenFiltered, Reachable, None), true, true),
            Fail,
            "--strict"
        );
        // With a key, open but unproven is a middlebox: it fails a reachable check, and only
        // warns for a blocked one (the real service behind it may still be shut).
        let keyed =
            |state, expect, proven| verdict_of(judge(state, expect, Some(proven)), true, false);
        assert_eq!(keyed(State::Open, Reachable, false), Fail);
        assert_eq!(keyed(State::Open, Reachable, true), Pass);
        assert_eq!(keyed(State::Open, Blocked, false), Warn);
        assert_eq!(keyed(State::Open, Blocked, true), Fail);
        assert_eq!(keyed(State::Filtered, Reachable, false), Fail);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1001), "1,001");
        assert_eq!(thousands(16384), "16,384");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn compact_ports_joins_runs() {
        assert_eq!(compact_ports(&[1, 2, 3, 5, 7, 8], 8), "1-3, 5, 7-8");
        assert_eq!(compact_ports(&[1, 3, 5, 7], 2), "1, 3 and 2 more");
        assert_eq!(compact_ports(&[65534, 65535], 8), "65534-65535");
    }
}
