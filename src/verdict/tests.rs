//! The truth table, ranges, and every reason and hint in both languages.

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
        port_from_host: false,
    }
}

fn result_for(check: &Check) -> CheckResult {
    let mut result = CheckResult::new(check, Some("automate.example.com".into()), None);
    result.verdict = Verdict::Fail;
    result
}

/// Every outcome a check can end in, with a state it comes with.
/// A NAT probe's outcome from this machine (192.0.2.1:40001) to serve's 8002 and 40000.
fn mapped(first: Option<&str>, second: Option<&str>) -> Why {
    let seen = |port, from: Option<&str>| crate::nat::Seen {
        port,
        from: from.map(|f| f.parse().unwrap()),
    };
    Why::Mapped(Box::new(crate::nat::NatMapping::new(
        "192.0.2.1:40001".parse().unwrap(),
        [seen(8002, first), seen(40000, second)],
    )))
}

#[test]
fn the_tunnel_path_is_said_in_both_languages() {
    use crate::nat::Mapping;
    use crate::report::TunnelRoute;
    for route in [TunnelRoute::P2p, TunnelRoute::Relay, TunnelRoute::None] {
        for (mapping, blocked) in [
            (Some(Mapping::Symmetric), false),
            (None, true),
            (None, false),
        ] {
            let en = crate::words::nat::why_not_p2p(mapping, blocked, Lang::En);
            let de = crate::words::nat::why_not_p2p(mapping, blocked, Lang::De);
            assert_ne!(en, de);
            let note = crate::words::nat::path(route, "lab-server", &de, Lang::De);
            for word in [" the ", " from ", " will ", "Tunnels "] {
                assert!(!note.contains(word), "English {word:?} in German: {note}");
            }
        }
    }
}

fn every_why() -> Vec<(State, Why)> {
    let addr: std::net::SocketAddr = ([192, 0, 2, 1], 443).into();
    let mut whys = vec![
        (State::Open, Why::Connected),
        (State::Open, Why::Reply),
        (State::Open, Why::Exchanged),
        (State::Open, Why::InUse(None)),
        (State::Closed, Why::NothingListens),
        (State::Open, Why::Listens(None)),
        (
            State::Open,
            Why::InUse(Some(Box::new(crate::sys::Holder {
                pid: 4242,
                name: "python3".into(),
            }))),
        ),
        (State::Closed, Why::Refused),
        (State::Closed, Why::PortUnreachable),
        (State::Filtered, Why::HostUnreachable),
        (State::Filtered, Why::LocalFirewall),
        (State::Filtered, Why::NoAnswer),
        (State::OpenFiltered, Why::NoAnswer),
        (State::Filtered, Why::NoAnswerKeyed),
        (State::Open, Why::Verified),
        (
            State::Error,
            Why::Local(Box::new(crate::probe::Local::NeedsKey)),
        ),
        (
            State::Open,
            mapped(Some("198.51.100.1:40001"), Some("198.51.100.1:40001")),
        ),
        (
            State::Open,
            mapped(Some("198.51.100.1:40001"), Some("198.51.100.1:51000")),
        ),
        (
            State::Open,
            mapped(Some("192.0.2.1:40001"), Some("192.0.2.1:40001")),
        ),
        (State::Open, mapped(None, Some("198.51.100.1:40001"))),
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
                crate::model::Finding::TlsHandshake {
                    error: "reset".into(),
                },
            ))),
        ),
        (
            State::Error,
            Why::Local(Box::new(Local::NoRoute(addr.ip()))),
        ),
        (State::Error, Why::Local(Box::new(Local::NoDescriptors))),
        (State::Error, Why::Local(Box::new(Local::NoSourcePort(443)))),
        (State::Error, Why::Local(Box::new(Local::BindDenied(addr)))),
        (
            State::Error,
            Why::Local(Box::new(Local::NotOurs(addr.ip()))),
        ),
    ];
    whys.extend(proxy_sign_ins());
    whys
}

/// What a proxy's 407 can mean here: credentials wanted, refused, or a sign-in this tool does
/// not do.
fn proxy_sign_ins() -> Vec<(State, Why)> {
    let sign_ins = [
        (&["Basic"][..], false),
        (&["Basic"][..], true),
        (&["NTLM", "Negotiate"][..], false),
        (&["Digest"][..], true),
    ];
    sign_ins
        .into_iter()
        .map(|(schemes, sent)| {
            let mut found = crate::probe::app::AppResult::new(
                crate::model::AppProbe::Automate,
                AppVerdict::Fail,
                crate::model::Finding::ProxyAuth {
                    schemes: schemes.iter().map(ToString::to_string).collect(),
                    sent,
                },
            );
            found.proxy = Some("http://proxy.example:3128".into());
            (State::Error, Why::App(Box::new(found)))
        })
        .collect()
}

/// Every way a check can fail, with the words a German report must not fall back to.
#[test]
fn every_hint_and_reason_has_its_german() {
    let whys = every_why();
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
            hostname: "pc".into(),
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
                    (Expect::Reachable, ProbeKind::Loopback { fallback: None }),
                    (Expect::Blocked, ProbeKind::Connect),
                ] {
                    let c = check(protocol, expect, probe);
                    texts.push(hint(&c, *state, why, &result_for(&c), &[443], &run));
                }
            }
            for text in texts {
                assert!(!text.is_empty());
                // Commands in backticks are the same in every language.
                let words: String = text.split('`').step_by(2).collect();
                if lang == Lang::De {
                    let leak = english.iter().find(|w| words.contains(**w));
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
    let keyed = |state, expect, proven| verdict_of(judge(state, expect, Some(proven)), true, false);
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

#[test]
fn a_range_is_explained_by_a_port_that_did_not_pass() {
    // serve proved the key on the first ports; the last closed without an answer.
    let mut c = check(Protocol::Tcp, Expect::Reachable, ProbeKind::Connect);
    c.ports = PortRange::new(49152, 49161).unwrap();
    let ports: Vec<u16> = (49152..=49161).collect();
    let outcome = |why| Outcome {
        state: State::Open,
        why,
        elapsed: Duration::from_millis(2),
        tries: 3,
        keyed: true,
    };
    let mut outcomes = vec![outcome(Why::Verified); 8];
    outcomes.extend(vec![outcome(Why::NotServe(NotServe::Closed)); 2]);
    let run = RunInfo {
        started_at: String::new(),
        duration: Duration::ZERO,
        timeout: Duration::from_secs(2),
        strict: false,
        full_ranges: true,
        keyed: true,
        lang: Lang::En,
        hostname: "pc".into(),
    };
    let mut result = CheckResult::new(&c, Some("automate.example.com".into()), None);
    ranges::judge_range(&mut result, &c, &ports, &outcomes, &run);
    assert_eq!(result.verdict, Verdict::Fail);
    assert!(
        result
            .reason
            .contains("8 verified, 2 open, unverified; not passing: 49160-49161")
            && result
                .reason
                .contains("(e.g. connected, but it closed without a valid answer"),
        "{}",
        result.reason
    );
    let hint = result.hint.unwrap();
    assert!(
        hint.contains("Something other than automate-ports serve answers"),
        "{hint}"
    );
}
