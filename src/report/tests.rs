//! Snapshots of the renderers on a fixed report: the table a technician reads and the JSON
//! a script parses must not change by accident.

use super::{render, CheckResult, Format, Report, Summary};
use crate::lang::Lang;
use crate::model::{Expect, Protocol, State};
use crate::report::Verdict;

fn result(
    id: &str,
    protocol: Protocol,
    ports: &str,
    state: Option<State>,
    verdict: Verdict,
) -> CheckResult {
    let check = crate::model::Check {
        id: id.into(),
        description: format!("{id} description"),
        protocol,
        ports: crate::profiles::parse_port_spec(ports).unwrap(),
        target: "server".into(),
        required: true,
        expect: Expect::Reachable,
        probe: crate::model::ProbeKind::Connect,
        source: "test".into(),
        fix: None,
        fix_de: None,
        port_from_host: false,
    };
    let address = Some("192.0.2.10".parse().unwrap());
    let mut result = CheckResult::new(&check, Some("automate.example.com".into()), address);
    result.state = state;
    result.verdict = verdict;
    result
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
        lang: Lang::En,
        notes: vec!["every port on 192.0.2.10 seems to answer.".into()],
        wait: None,
        agent: None,
        tunnels: Vec::new(),
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

/// The German report as the verdict stage writes it: the renderer adds the words, headings
/// and summary; numbers use a decimal comma.
fn sample_de() -> Report {
    let mut report = sample();
    report.lang = Lang::De;
    report.notes = vec!["auf 192.0.2.10 scheint jeder Port zu antworten.".into()];
    let texts = [
        ("verbunden in 12 ms", None),
        (
            "keine Antwort in 2 s, 2 Versuche",
            Some("Weder Antwort noch Fehler von automate.example.com (192.0.2.10) auf UDP 75."),
        ),
        (
            "Stichprobe von 32 der 16.384 Ports: 2 filtered, 30 open; nicht bestanden: 50000, 60000",
            Some("Keine Antwort von automate.example.com (192.0.2.10) auf TCP 50000, 60000 in 2 s."),
        ),
        ("nicht geprüft: kein --peer HOST angegeben", None),
    ];
    for (check, (reason, hint)) in report.checks.iter_mut().zip(texts) {
        check.reason = reason.into();
        check.hint = hint.map(Into::into);
    }
    report
}

#[test]
fn german_table_snapshot() {
    insta::assert_snapshot!(render(&sample_de(), Format::Table, false));
}

#[test]
fn german_markdown_snapshot() {
    insta::assert_snapshot!(render(&sample_de(), Format::Markdown, false));
}

#[test]
fn german_json_keeps_english_keys_and_states() {
    let json: serde_json::Value =
        serde_json::from_str(&render(&sample_de(), Format::Json, false)).unwrap();
    assert_eq!(json["lang"], "de");
    assert_eq!(json["checks"][1]["state"], "open|filtered");
    assert_eq!(json["checks"][1]["verdict"], "warn");
    assert_eq!(
        json["checks"][1]["reason"],
        "keine Antwort in 2 s, 2 Versuche"
    );
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

/// schema/report-1.json is the report types, generated (the derives exist in test builds
/// only): a change to the types that changes the JSON shows here first. Regenerate with
/// `UPDATE_SCHEMA=1 cargo test --lib published_schema` and record the change in CHANGELOG.md.
#[test]
fn the_published_schema_is_the_report_types() {
    let mut schema = schemars::schema_for!(Report);
    schema.insert(
        "$id".into(),
        "https://github.com/automate-ports/automate-ports/schema/report-1.json".into(),
    );
    schema.insert(
        "description".into(),
        "An automate-ports report (schema 1): the output of check --format json and --output json:FILE.".into(),
    );
    let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report-1.json");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, &text).unwrap();
    }
    assert!(
        std::fs::read_to_string(path).unwrap_or_default() == text,
        "schema/report-1.json is out of date: UPDATE_SCHEMA=1 cargo test --lib published_schema"
    );
    // The sample reports of this module's snapshots are valid against it.
    let validator = jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap();
    for report in [sample(), sample_de()] {
        let value = serde_json::to_value(&report).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
