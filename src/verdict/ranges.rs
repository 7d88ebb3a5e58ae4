//! Ranges: every port judged, counted by state, the ports that did not pass listed, and one
//! line that says what was sampled and what was found.

use std::collections::BTreeMap;

use super::hints::hint;
use super::{judge_outcome, round_ms, verdict_of, Judgement, RunInfo};
use crate::lang::{compact_ports, Lang};
use crate::model::{Check, State};
use crate::probe::{Outcome, Why};
use crate::report::{CheckResult, Verdict};
use crate::tr;

/// Judges a range from the outcome of each of its probed `ports`.
pub(super) fn judge_range(
    result: &mut CheckResult,
    check: &Check,
    ports: &[u16],
    outcomes: &[Outcome],
    run: &RunInfo,
) {
    let mut tally = Tally::default();
    for (&port, outcome) in ports.iter().zip(outcomes) {
        tally.add(port, outcome, check);
    }
    let state = tally.state();
    let lang = run.lang;
    let mut reason = format!(
        "{}: {}",
        sampled(check, ports.len(), run),
        tally.words(lang)
    );
    if !tally.failed.is_empty() && tally.failed.len() < ports.len() {
        let list = compact_ports(&tally.failed, 8, lang);
        reason.push_str(&tr!(
            lang,
            "; not passing: {list}",
            "; nicht bestanden: {list}"
        ));
    }
    // The example (and the hint's cause) is a port that did not pass, where one did not: a
    // range of verified ports with a few that closed unanswered is open either way, and the
    // first open port would explain the failure with a verified answer.
    let example = outcomes
        .iter()
        .filter(|o| o.state == state)
        .find(|o| judge_outcome(o, check.expect) != Judgement::Met)
        .or_else(|| outcomes.iter().find(|o| o.state == state));
    if let Some(example) = example {
        let example = example.reason(lang);
        reason.push_str(&tr!(lang, " (e.g. {example})", " (z. B. {example})"));
    }
    tally.open_latency.sort();
    result.latency_ms = tally
        .open_latency
        .get(tally.open_latency.len() / 2)
        .map(|d| round_ms(*d));
    result.state = Some(state);
    result.verdict = verdict_of(tally.worst, check.required, run.strict);
    result.reason = reason;
    result.probed_ports = Some(ports.len());
    result.verified = tally.verified_all;
    result.counts = Some(
        tally
            .counts
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect(),
    );
    if result.verdict != Verdict::Pass {
        let why = example.map_or(Why::NoAnswer, |o| o.why.clone());
        result.hint = Some(hint(check, state, &why, result, &tally.failed, run));
    }
    result.failed_ports = Some(tally.failed);
}

/// What a range's ports came to, port by port.
struct Tally {
    counts: BTreeMap<State, usize>,
    /// Every port that did not pass, in order.
    failed: Vec<u16>,
    worst: Judgement,
    failing_states: BTreeMap<State, usize>,
    open_latency: Vec<std::time::Duration>,
    /// With a key: whether every port proved `serve`.
    verified_all: Option<bool>,
    /// What a person reads: verified ports apart from ports that are merely open.
    by_proof: BTreeMap<(State, bool), usize>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            counts: BTreeMap::new(),
            failed: Vec::new(),
            worst: Judgement::Met,
            failing_states: BTreeMap::new(),
            open_latency: Vec::new(),
            verified_all: None,
            by_proof: BTreeMap::new(),
        }
    }
}

impl Tally {
    fn add(&mut self, port: u16, outcome: &Outcome, check: &Check) {
        *self.counts.entry(outcome.state).or_default() += 1;
        let verified = outcome.verified();
        if let Some(v) = verified {
            self.verified_all = Some(self.verified_all.unwrap_or(true) && v);
        }
        *self
            .by_proof
            .entry((outcome.state, verified == Some(false)))
            .or_default() += 1;
        let judgement = judge_outcome(outcome, check.expect);
        self.worst = self.worst.max(judgement);
        if judgement == Judgement::Met {
            if outcome.state == State::Open {
                self.open_latency.push(outcome.elapsed);
            }
        } else {
            self.failed.push(port);
            *self.failing_states.entry(outcome.state).or_default() += 1;
        }
    }

    /// The state that best describes the range: the commonest among the ports that did not
    /// pass, else the commonest overall.
    fn state(&self) -> State {
        let pick = |m: &BTreeMap<State, usize>| {
            m.iter()
                .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
                .map(|(s, _)| *s)
        };
        pick(&self.failing_states)
            .or_else(|| pick(&self.counts))
            .unwrap_or(State::Error)
    }

    /// "16,284 verified, 100 filtered".
    fn words(&self, lang: Lang) -> String {
        self.by_proof
            .iter()
            .map(|(&(state, unverified), n)| {
                let n = lang.thousands(*n);
                match (state, unverified) {
                    (State::Open, false) if self.verified_all.is_some() => {
                        tr!(lang, "{n} verified", "{n} verifiziert")
                    }
                    (State::Open, true) => {
                        tr!(lang, "{n} open, unverified", "{n} offen, nicht verifiziert")
                    }
                    _ => format!("{n} {state}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "32 of 16,384 ports sampled", or "16,384 ports" when all were probed.
fn sampled(check: &Check, probed: usize, run: &RunInfo) -> String {
    let lang = run.lang;
    let n = lang.thousands(probed);
    if run.full_ranges || probed == check.ports.count() {
        tr!(lang, "{n} ports", "{n} Ports")
    } else {
        let all = lang.thousands(check.ports.count());
        tr!(
            lang,
            "{n} of {all} ports sampled",
            "Stichprobe von {n} der {all} Ports"
        )
    }
}
