//! `demo`: stages a pretend on-premises Automate server on 127.0.0.1 with the real responder
//! (`serve`) on some of the `server` role's ports, leaves others closed and exposes the
//! database on purpose, runs the real `check --key` pipeline against it, and verifies that
//! every result matches the staging. It needs no network and no other machine.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::lang::Lang;
use crate::model::{
    Check, Expect, Family, PortRange, ProbeKind, Profile, Protocol, State, TargetSpec,
};
use crate::pipeline::{self, Options};
use crate::plan::ports_to_probe;
use crate::probe::app::AppConfig;
use crate::probe::net::NetProber;
use crate::profiles;
use crate::protocol::{Key, Probe};
use crate::report::Report;
use crate::serve;

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The relay-range sample ports the demo leaves closed, by position in the sample.
const CLOSED_RELAY: [usize; 2] = [9, 10];

/// What the demo staged, and the report it got.
pub struct Demo {
    pub report: Report,
    /// What was staged, for the user.
    pub description: String,
    /// Every port whose result differs from the staging.
    pub mismatches: Vec<String>,
    /// Ports the demo could not stage (in use, or below 1024 without the right): the notes in
    /// the description say which.
    pub skipped: bool,
}

/// Stages the pretend server, checks the `server` role against it, and compares.
pub async fn run(lang: Lang) -> anyhow::Result<Demo> {
    let profile = profiles::builtin("server")?;
    let open = staged_ports();

    // A one-off key: the demo's responder answers only this run's checks.
    let key = Key::derive(&format!("demo-{}", hex(&Probe::new(0, 0).nonce))).expect("long enough");
    let mut notes = Vec::new();
    let options = serve::ServeConfig {
        key: key.clone(),
        binds: vec![HOST],
        duration: Duration::from_secs(60),
        full_ranges: false,
        // The demo's own check runs in this process.
        drop_privileges: false,
        user: None,
    };
    let bound = serve::bind(&staging_profile(&open), &options, &mut |line: &str| {
        if line.starts_with("skipped") {
            notes.push(line.to_string());
        }
    })?;
    let running = serve::start(bound, &options, &mut |_: &str| {})?;
    let listening = running.listening.clone();

    let options = Options {
        targets: BTreeMap::from([(
            "server".to_string(),
            vec![crate::endpoint::Endpoint::host(crate::endpoint::Host::Ip(
                HOST,
            ))],
        )]),
        family: Family::Any,
        timeout: Duration::from_secs(1),
        retries: 1,
        concurrency: None,
        rate: None,
        full_ranges: false,
        strict: false,
        lang,
        trace: crate::pipeline::TraceMode::Filtered,
    };
    let prober = NetProber::new(
        Some(key),
        AppConfig::new(false, crate::probe::app::CERT_WARN_DAYS, None)?,
    );
    let report = pipeline::run(&profile, &options, Arc::new(prober), &()).await;
    running.stop().await;
    let report = report?;

    let description = describe(&notes, lang);
    let unstaged: Vec<(Protocol, u16)> = open
        .iter()
        .copied()
        .filter(|p| !listening.contains(p))
        .collect();
    let mismatches = mismatches(&report, &listening, &unstaged);
    Ok(Demo {
        report,
        description,
        mismatches,
        skipped: !notes.is_empty(),
    })
}

/// The ports the demo opens: 443, 8484, 8002, the exposed database, 75/udp, and the relay
/// sample but for [`CLOSED_RELAY`].
fn staged_ports() -> Vec<(Protocol, u16)> {
    let relay = ports_to_probe(PortRange::new(49152, 65535).expect("valid"), false);
    let mut open: Vec<(Protocol, u16)> = vec![
        (Protocol::Tcp, 443),
        (Protocol::Tcp, 8484),
        (Protocol::Tcp, 8002),
        (Protocol::Tcp, 3306),
        (Protocol::Udp, 75),
    ];
    open.extend(
        relay
            .iter()
            .enumerate()
            .filter(|(i, _)| !CLOSED_RELAY.contains(i))
            .map(|(_, &p)| (Protocol::Tcp, p)),
    );
    open
}

/// What was staged, for the user, with a note per port the demo could not stage.
fn describe(notes: &[String], lang: Lang) -> String {
    let mut description = lang
        .pick(
            "Demo: a pretend Automate server on 127.0.0.1, answered by automate-ports serve with a one-off key. \
             Listening: 443, 8484, 8002 and 30 of the 32 sampled relay ports (TCP), 75 (UDP). \
             Left closed on purpose: 80 (which may be closed: a note, not a warning) and two relay ports. Exposed on purpose: 3306 (the database must not be reachable). \
             Running: automate-ports check --role server --server 127.0.0.1 --key ...",
            "Demo: ein nachgestellter Automate-Server auf 127.0.0.1, beantwortet von automate-ports serve mit einem Einmal-Schlüssel. \
             Offen: 443, 8484, 8002 und 30 der 32 geprüften Relay-Ports (TCP), 75 (UDP). \
             Absichtlich geschlossen: 80 (darf geschlossen sein: ein Hinweis, keine Warnung) und zwei Relay-Ports. Absichtlich offen: 3306 (die Datenbank darf nicht erreichbar sein). \
             Ausgeführt wird: automate-ports check --role server --server 127.0.0.1 --key ...",
        )
        .to_string();
    for note in notes {
        description.push_str("\nnote: ");
        description.push_str(note);
        if note.contains("permission denied") {
            description.push_str(lang.pick(
                " (that result is not verified by the demo)",
                " (dieses Ergebnis prüft die Demo nicht)",
            ));
        }
    }
    description
}

/// A profile with one check per staged port, for `serve` to listen on.
fn staging_profile(open: &[(Protocol, u16)]) -> Profile {
    Profile {
        role: "demo".into(),
        description: "the demo's staged server".into(),
        targets: vec![TargetSpec {
            name: "server".into(),
            description: "the pretend server".into(),
            optional: false,
            default: None,
            default_from: None,
        }],
        checks: open
            .iter()
            .map(|&(protocol, port)| Check {
                id: format!("{port}-{protocol}"),
                description: String::new(),
                protocol,
                ports: PortRange::single(port).expect("staged ports are not 0"),
                target: "server".into(),
                required: true,
                expect: Expect::Reachable,
                probe: ProbeKind::Connect,
                source: "demo".into(),
                fix: None,
                fix_de: None,
                port_from_host: false,
            })
            .collect(),
    }
}

/// Ports staged open must be found open and verified; every other port must not be open.
/// Ports the demo could not stage (no permission below 1024) are not judged.
fn mismatches(
    report: &Report,
    listening: &[(Protocol, u16)],
    unstaged: &[(Protocol, u16)],
) -> Vec<String> {
    let mut out = Vec::new();
    for c in &report.checks {
        // The report's ports are the profile's, so they parse; the demo samples ranges.
        let ports = profiles::parse_port_spec(&c.ports)
            .map(|range| ports_to_probe(range, false))
            .unwrap_or_default();
        let failed = c.failed_ports.clone().unwrap_or_default();
        for port in ports {
            let key = (c.protocol, port);
            if unstaged.contains(&key) {
                continue;
            }
            let seen_open = if c.counts.is_some() {
                // In a range, the open ports are exactly those that did not fail.
                !failed.contains(&port)
            } else {
                c.state == Some(State::Open) && c.verified == Some(true)
            };
            let staged_open = listening.contains(&key);
            if seen_open != staged_open {
                out.push(format!(
                    "{port}/{} was staged {} but the check found it {}",
                    c.protocol,
                    if staged_open { "open" } else { "closed" },
                    if seen_open { "open" } else { "not open" }
                ));
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
