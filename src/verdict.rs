//! Judges probe outcomes against what each check expects and writes the hints. Pure: no
//! I/O, so every rule here is tested without a network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::lang::Lang;
use crate::model::{Check, Expect, Protocol, State};
use crate::plan::{PathPlan, Plan, Work};
use crate::probe::app::AppVerdict;
use crate::probe::{Outcome, Why};
use crate::report::{CheckResult, Report, Summary};
use crate::tr;

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
        // The path is proven open (the answer is bound to the key, nonce and port), but the
        // check itself could not complete: doubtful, not a firewall's fault.
        (Why::Stale { .. }, _) => Judgement::Unsure,
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
    /// The language of reasons and hints.
    pub lang: Lang,
}

/// Builds the report from the plan, its paths and the outcomes of their jobs.
pub fn report(plan: &Plan, paths: &[PathPlan], outcomes: &[Outcome], run: &RunInfo) -> Report {
    let lang = run.lang;
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
                let name = host.as_deref().unwrap_or_default();
                let flag = crate::model::target_flag(&check.target);
                result.hint = Some(tr!(
                    lang,
                    "This machine cannot resolve {name}: check the name ({flag}) and this machine's DNS settings; the Automate agent uses the same resolver.",
                    "Dieser Rechner kann {name} nicht auflösen: den Namen ({flag}) und die DNS-Einstellungen dieses Rechners prüfen; der Automate-Agent nutzt denselben Resolver."
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
    note_shared_ports(&mut checks, lang);
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
        lang,
        summary,
        notes: Vec::new(),
        wait: None,
        checks,
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

fn judge_probed(
    result: &mut CheckResult,
    check: &Check,
    ports: &[u16],
    outcomes: &[Outcome],
    address: Option<IpAddr>,
    run: &RunInfo,
) {
    let lang = run.lang;
    if let ([port], [outcome]) = (ports, outcomes) {
        let judgement = judge_outcome(outcome, check.expect);
        result.verified = outcome.verified();
        if let Why::App(found) | Why::RealService(found) = &outcome.why {
            result.app = Some((**found).clone());
        }
        result.state = Some(outcome.state);
        result.verdict = verdict_of(judgement, check.required, run.strict);
        result.reason = outcome.reason(lang);
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
                run,
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
    let mut verified_all: Option<bool> = None;
    // What a person reads: verified ports apart from ports that are merely open.
    let mut tally: BTreeMap<(State, bool), usize> = BTreeMap::new();
    for (&port, outcome) in ports.iter().zip(outcomes) {
        *counts.entry(outcome.state).or_default() += 1;
        let verified = outcome.verified();
        if let Some(v) = verified {
            verified_all = Some(verified_all.unwrap_or(true) && v);
        }
        *tally
            .entry((outcome.state, verified == Some(false)))
            .or_default() += 1;
        let j = judge_outcome(outcome, check.expect);
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
    let probed = lang.thousands(ports.len());
    let sampled = if run.full_ranges || ports.len() == check.ports.count() {
        tr!(lang, "{probed} ports", "{probed} Ports")
    } else {
        let all = lang.thousands(check.ports.count());
        tr!(
            lang,
            "{probed} of {all} ports sampled",
            "Stichprobe von {probed} der {all} Ports"
        )
    };
    let tally = tally
        .iter()
        .map(|(&(state, unverified), n)| {
            let n = lang.thousands(*n);
            match (state, unverified) {
                (State::Open, false) if verified_all.is_some() => {
                    tr!(lang, "{n} verified", "{n} verifiziert")
                }
                (State::Open, true) => {
                    tr!(lang, "{n} open, unverified", "{n} offen, nicht verifiziert")
                }
                _ => format!("{n} {state}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut reason = format!("{sampled}: {tally}");
    if !failed.is_empty() && failed.len() < ports.len() {
        let list = compact_ports(&failed, 8, lang);
        reason.push_str(&tr!(
            lang,
            "; not passing: {list}",
            "; nicht bestanden: {list}"
        ));
    }
    if let Some(example) = outcomes.iter().find(|o| o.state == state) {
        let example = example.reason(lang);
        reason.push_str(&tr!(lang, " (e.g. {example})", " (z. B. {example})"));
    }
    open_latency.sort();
    result.latency_ms = open_latency
        .get(open_latency.len() / 2)
        .map(|d| round_ms(*d));
    result.state = Some(state);
    result.verdict = verdict_of(worst, check.required, run.strict);
    result.reason = reason;
    result.probed_ports = Some(ports.len());
    result.verified = verified_all;
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
        result.hint = Some(hint(check, state, &why, result, address, &failed, run));
    }
    result.failed_ports = Some(failed);
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// "49152-49155, 50000, 60000-60010 and 12 more".
pub fn compact_ports(ports: &[u16], max_spans: usize, lang: Lang) -> String {
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
        text.push_str(&tr!(lang, " and {rest} more", " und {rest} weitere"));
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
    run: &RunInfo,
) -> String {
    let lang = run.lang;
    let host = result
        .host
        .as_deref()
        .unwrap_or(lang.pick("the target", "das Ziel"));
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
        compact_ports(failed, 8, lang)
    } else {
        check.ports.to_string()
    };
    let template = match lang {
        Lang::De => check.fix_de.as_deref().or(check.fix.as_deref()),
        Lang::En => check.fix.as_deref(),
    };
    let fix = template.map_or_else(
        || match check.expect {
            Expect::Reachable => tr!(
                lang,
                "Allow {proto} {ports} from this machine to {place}.",
                "{proto} {ports} von diesem Rechner zu {place} freigeben."
            ),
            Expect::Blocked => tr!(
                lang,
                "Block {proto} {ports} to {place} from this machine's network.",
                "{proto} {ports} zu {place} aus dem Netz dieses Rechners sperren."
            ),
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
        (Expect::Blocked, _, _) => tr!(
            lang,
            "{proto} {ports} on {place} answers from here but must be blocked.",
            "{proto} {ports} auf {place} antwortet von hier aus, muss aber gesperrt sein."
        ),
        (_, State::Error, Why::Local(local)) => {
            let message = local.text(lang);
            return tr!(
                lang,
                "This machine could not test it: {message}.",
                "Dieser Rechner konnte es nicht prüfen: {message}."
            );
        }
        (Expect::Reachable, _, Why::App(found) | Why::RealService(found)) => {
            let summary = &found.summary;
            tr!(
                lang,
                "On {place}, {proto} {ports}: {summary}.",
                "Auf {place}, {proto} {ports}: {summary}."
            )
        }
        (_, _, Why::NotServe(_)) => tr!(
            lang,
            "Something other than automate-ports serve answers {proto} {ports} at {place}: a proxy, SYN proxy, or a port forward to another host. Make sure the forward points at the machine running serve.",
            "Auf {proto} {ports} bei {place} antwortet etwas anderes als automate-ports serve: ein Proxy, SYN-Proxy oder eine Portweiterleitung auf einen anderen Host. Die Weiterleitung muss auf den Rechner zeigen, auf dem serve läuft."
        ),
        (_, _, Why::Stale { offset_ms }) => {
            let clocks = crate::probe::clock_difference(*offset_ms, lang);
            return tr!(
                lang,
                "{proto} {ports} at {place} reaches automate-ports serve, which refused the probe as stale: {clocks}. Set both clocks from the same time source (Windows: w32tm /resync; Linux: timedatectl set-ntp true) and check again.",
                "{proto} {ports} bei {place} erreicht automate-ports serve, das die Probe aber als veraltet abgelehnt hat: {clocks}. Beide Uhren aus derselben Zeitquelle stellen (Windows: w32tm /resync; Linux: timedatectl set-ntp true) und erneut prüfen."
            );
        }
        (_, _, Why::Redirected(port)) => tr!(
            lang,
            "{proto} {ports} at {place} reaches automate-ports serve, but on port {port}: the port forward maps it to the wrong internal port.",
            "{proto} {ports} bei {place} erreicht automate-ports serve, aber auf Port {port}: die Portweiterleitung zeigt auf den falschen internen Port."
        ),
        (_, _, Why::InUse) => {
            return lang
                .pick(
                    "The port is taken on this machine; if the Automate agent is not installed, find the program holding it.",
                    "Der Port ist auf diesem Rechner belegt; ist der Automate-Agent nicht installiert, das Programm suchen, das ihn belegt.",
                )
                .into()
        }
        (_, _, Why::LocalFirewall) => tr!(
            lang,
            "This machine's own firewall blocks outgoing {proto} {ports}.",
            "Die eigene Firewall dieses Rechners blockiert ausgehendes {proto} {ports}."
        ),
        (_, State::Closed, _) if check.protocol == Protocol::Tcp => tr!(
            lang,
            "{place} refused TCP {ports}: nothing listens there, or a firewall rejects it.",
            "{place} hat TCP {ports} abgewiesen: dort lauscht nichts, oder eine Firewall weist die Verbindung ab."
        ),
        (_, State::Closed, _) => tr!(
            lang,
            "{place} reported UDP {ports} as unreachable: nothing listens there, or a firewall rejects it.",
            "{place} meldet UDP {ports} als nicht erreichbar: dort lauscht nichts, oder eine Firewall weist die Pakete ab."
        ),
        (_, State::Filtered, Why::HostUnreachable) => tr!(
            lang,
            "A router or firewall between here and {place} reported it unreachable for {proto} {ports}.",
            "Ein Router oder eine Firewall zwischen hier und {place} meldet {proto} {ports} als nicht erreichbar."
        ),
        (_, State::Filtered, _) if check.probe == crate::model::ProbeKind::Loopback => tr!(
            lang,
            "{proto} {ports} over loopback got nowhere: a local firewall or endpoint protection drops it.",
            "{proto} {ports} über Loopback kommt nicht an: eine lokale Firewall oder ein Endpoint-Schutz verwirft es."
        ),
        (_, State::Filtered, _) => tr!(
            lang,
            "No answer from {place} on {proto} {ports}: a firewall drops it, or the host is down.",
            "Keine Antwort von {place} auf {proto} {ports}: eine Firewall verwirft die Pakete, oder der Host ist aus."
        ),
        (_, State::OpenFiltered, _) => tr!(
            lang,
            "No reply and no error from {place} on UDP {ports}: open but silent, or dropped by a firewall; this cannot be told apart from here without a responder on the far side.",
            "Weder Antwort noch Fehler von {place} auf UDP {ports}: offen, aber stumm, oder von einer Firewall verworfen; ohne Gegenstelle (automate-ports serve) ist das von hier aus nicht zu unterscheiden."
        ),
        (_, _, _) => tr!(
            lang,
            "{proto} {ports} on {place} is {state}.",
            "{proto} {ports} auf {place} ist {state}."
        ),
    };
    format!("{what} {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, ProbeKind};
    use crate::probe::{Local, NotServe};

    fn check(protocol: Protocol, expect: Expect, probe: ProbeKind) -> Check {
        Check {
            id: "c".into(),
            description: String::new(),
            protocol,
            ports: PortRange::single(443).unwrap(),
            target: "server".into(),
            required: true,
            expect,
            probe,
            source: String::new(),
            fix: None,
            fix_de: None,
        }
    }

    fn result_for(check: &Check) -> CheckResult {
        CheckResult {
            id: check.id.clone(),
            description: String::new(),
            protocol: check.protocol,
            ports: check.ports.to_string(),
            target: check.target.clone(),
            host: Some("automate.example.com".into()),
            address: None,
            required: true,
            expect: check.expect,
            state: None,
            verdict: Verdict::Fail,
            reason: String::new(),
            hint: None,
            latency_ms: None,
            verified: None,
            app: None,
            source: String::new(),
            probed_ports: None,
            counts: None,
            failed_ports: None,
        }
    }

    /// Every way a check can fail, with the words a German report must not fall back to.
    #[test]
    fn every_hint_and_reason_has_its_german() {
        let addr: std::net::SocketAddr = ([192, 0, 2, 1], 443).into();
        let whys = [
            (State::Open, Why::Connected),
            (State::Open, Why::Reply),
            (State::Open, Why::Exchanged),
            (State::Open, Why::InUse),
            (State::Closed, Why::Refused),
            (State::Closed, Why::PortUnreachable),
            (State::Filtered, Why::HostUnreachable),
            (State::Filtered, Why::LocalFirewall),
            (State::Filtered, Why::NoAnswer),
            (State::OpenFiltered, Why::NoAnswer),
            (State::Filtered, Why::NoAnswerKeyed),
            (State::Open, Why::Verified),
            (State::Open, Why::Redirected(8443)),
            (State::Open, Why::Stale { offset_ms: 420_000 }),
            (
                State::Open,
                Why::Stale {
                    offset_ms: -420_000,
                },
            ),
            (State::Open, Why::Stale { offset_ms: 2_000 }),
            (
                State::Open,
                Why::NotServe(NotServe::Silent(Duration::from_secs(2))),
            ),
            (State::Open, Why::NotServe(NotServe::Closed)),
            (State::Open, Why::NotServe(NotServe::BadProof)),
            (State::Open, Why::NotServe(NotServe::BadUdpProof)),
            (
                State::Open,
                Why::RealService(Box::new(crate::probe::app::AppResult::new(
                    crate::model::AppProbe::Tls,
                    AppVerdict::Warn,
                    "TLS 1.3",
                ))),
            ),
            (State::Error, Why::Local(Local::NoRoute(addr.ip()))),
            (State::Error, Why::Local(Local::NoDescriptors)),
            (State::Error, Why::Local(Local::NoSourcePort(443))),
            (State::Error, Why::Local(Local::BindDenied(addr))),
            (State::Error, Why::Local(Local::NotOurs(addr.ip()))),
        ];
        let english = [
            " the ", " from ", " to ", " no ", "Allow", "Block", " answer", " after ", " with ",
            " this ", "try", "refused", "nothing",
        ];
        for lang in [Lang::En, Lang::De] {
            let run = RunInfo {
                started_at: String::new(),
                duration: Duration::ZERO,
                timeout: Duration::from_secs(2),
                strict: false,
                full_ranges: false,
                keyed: true,
                lang,
            };
            for (state, why) in &whys {
                let outcome = Outcome {
                    state: *state,
                    why: why.clone(),
                    elapsed: Duration::from_micros(300),
                    tries: 2,
                    keyed: true,
                };
                let mut texts = vec![outcome.reason(lang)];
                for protocol in [Protocol::Tcp, Protocol::Udp] {
                    for (expect, probe) in [
                        (Expect::Reachable, ProbeKind::Connect),
                        (Expect::Reachable, ProbeKind::Loopback),
                        (Expect::Blocked, ProbeKind::Connect),
                    ] {
                        let c = check(protocol, expect, probe);
                        texts.push(hint(&c, *state, why, &result_for(&c), None, &[443], &run));
                    }
                }
                for text in texts {
                    assert!(!text.is_empty());
                    if lang == Lang::De {
                        let leak = english.iter().find(|w| text.contains(**w));
                        assert!(leak.is_none(), "English {leak:?} in German: {text}");
                        assert!(!text.contains("0.3 ms"), "decimal point in German: {text}");
                    }
                }
            }
        }
    }

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
    fn compact_ports_joins_runs() {
        let en = Lang::En;
        assert_eq!(compact_ports(&[1, 2, 3, 5, 7, 8], 8, en), "1-3, 5, 7-8");
        assert_eq!(compact_ports(&[1, 3, 5, 7], 2, en), "1, 3 and 2 more");
        assert_eq!(
            compact_ports(&[1, 3, 5, 7], 2, Lang::De),
            "1, 3 und 2 weitere"
        );
        assert_eq!(compact_ports(&[65534, 65535], 8, en), "65534-65535");
    }
}
