//! Snapshots of the renderers on a fixed report: the table a technician reads and the JSON
//! a script parses must not change by accident.

use super::{render, CheckResult, Format, Report, Summary};
use crate::model::{Expect, Protocol, State};
use crate::verdict::Verdict;

fn result(
    id: &str,
    protocol: Protocol,
    ports: &str,
    state: Option<State>,
    verdict: Verdict,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        description: format!("{id} description"),
        protocol,
        ports: ports.into(),
        target: "server".into(),
        host: Some("automate.example.com".into()),
        address: Some("192.0.2.10".parse().unwrap()),
        required: true,
        expect: Expect::Reachable,
        state,
        verdict,
        reason: String::new(),
        hint: None,
        latency_ms: None,
        verified: None,
        app: None,
        source: "test".into(),
        probed_ports: None,
        counts: None,
        failed_ports: None,
    }
}

fn sample() -> Report {
    let mut https = result(
        "agent-https",
        Protocol::Tcp,
        "443",
        Some(State::Open),
        Verdict::Pass,
    );
    https.reason = "connected in 12 ms".into();
    https.latency_ms = Some(12.3);
    let mut heartbeat = result(
        "agent-heartbeat",
        Protocol::Udp,
        "75",
        Some(State::OpenFiltered),
        Verdict::Warn,
    );
    heartbeat.required = false;
    heartbeat.reason = "no answer in 2 s, 2 tries".into();
    heartbeat.hint =
        Some("No reply and no error from automate.example.com (192.0.2.10) on UDP 75.".into());
    let mut range = result(
        "relay-range",
        Protocol::Tcp,
        "49152-65535",
        Some(State::Filtered),
        Verdict::Fail,
    );
    range.reason =
        "32 of 16384 ports sampled: 30 open, 2 filtered; not passing: 50000, 60000".into();
    range.hint =
        Some("No answer from automate.example.com (192.0.2.10) on TCP 50000, 60000 in 2 s.".into());
    range.probed_ports = Some(32);
    range.counts = Some([("filtered".to_string(), 2), ("open".to_string(), 30)].into());
    range.failed_ports = Some(vec![50000, 60000]);
    let mut peer = result("agent-wakeup", Protocol::Udp, "42000", None, Verdict::Skip);
    peer.target = "peer".into();
    peer.host = None;
    peer.address = None;
    peer.reason = "not checked: no --peer HOST given".into();
    Report {
        schema: 1,
        tool: "automate-ports",
        version: "0.0.0-test",
        role: "agent".into(),
        hostname: "tech-pc-01".into(),
        started_at: "2026-11-26T12:00:00.000Z".into(),
        duration_ms: 2004.5,
        strict: false,
        full_ranges: false,
        keyed: false,
        notes: vec!["every port on 192.0.2.10 seems to answer.".into()],
        wait: None,
        summary: Summary {
            pass: 1,
            fail: 1,
            warn: 1,
            skip: 1,
        },
        checks: vec![https, heartbeat, range, peer],
    }
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!(render(&sample(), Format::Table, false));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(render(&sample(), Format::Json, false));
}

#[test]
fn colour_only_when_asked() {
    let plain = render(&sample(), Format::Table, false);
    let coloured = render(&sample(), Format::Table, true);
    assert!(!plain.contains('\u{1b}'));
    assert!(coloured.contains("\u{1b}["));
    // Styles never shift the columns: stripped of escapes, both read the same.
    let stripped: String = anstream::adapter::strip_str(&coloured).to_string();
    assert_eq!(stripped, plain);
}
