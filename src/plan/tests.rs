//! The plan over the built-in roles: targets, defaults, endpoints, ranges and paths.

use super::*;
use crate::profiles;

fn given(pairs: &[(&str, &str)]) -> Targets {
    let mut targets = Targets::new();
    for (k, v) in pairs {
        targets
            .entry((*k).to_string())
            .or_default()
            .push(Endpoint::parse_any(v).unwrap());
    }
    targets
}

fn host(s: &str) -> Host {
    Host::parse(s).unwrap()
}

/// The plan's hosts as the report shows them.
fn hosts(plan: &Plan) -> Vec<String> {
    plan.hosts().iter().map(ToString::to_string).collect()
}

fn host_of(c: &PlannedCheck) -> Option<String> {
    c.host.as_ref().map(ToString::to_string)
}

#[test]
fn every_host_of_a_target_is_checked() {
    let agent = profiles::builtin("agent").unwrap();
    let plan = build(
        &agent,
        &given(&[("server", "a.example"), ("server", "b.example")]),
        false,
    )
    .unwrap();
    let https: Vec<_> = plan
        .checks
        .iter()
        .filter(|c| c.check.id == "agent-https")
        .collect();
    assert_eq!(https.len(), 2);
    assert_eq!(
        hosts(&plan)[..2],
        ["a.example".to_string(), "b.example".to_string()]
    );
}

#[test]
fn sample_keeps_both_ends_and_spreads_evenly() {
    let r = PortRange::new(49152, 65535).unwrap();
    let s = ports_to_probe(r, false);
    assert_eq!(s.len(), RANGE_SAMPLE);
    assert_eq!(s.first(), Some(&49152));
    assert_eq!(s.last(), Some(&65535));
    assert!(s.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ports_to_probe(r, true).len(), 16384);
    let small = PortRange::new(10, 20).unwrap();
    assert_eq!(ports_to_probe(small, false), (10..=20).collect::<Vec<_>>());
    let p2p = ports_to_probe(PortRange::new(40000, 41000).unwrap(), false);
    assert_eq!((p2p[0], p2p[31], p2p.len()), (40000, 41000, 32));
}

#[test]
fn missing_target_names_the_flag() {
    let agent = profiles::builtin("agent").unwrap();
    let e = build(&agent, &given(&[]), false).unwrap_err().to_string();
    assert!(e.contains("needs --server HOST"), "{e}");
    let sc = profiles::builtin("screenconnect").unwrap();
    let e = build(&sc, &given(&[]), false).unwrap_err().to_string();
    assert!(
        e.contains("--target web=HOST (or --screenconnect HOST, or --server HOST)"),
        "{e}"
    );
}

#[test]
fn defaults_and_default_from_apply() {
    let sc = profiles::builtin("screenconnect").unwrap();
    let plan = build(&sc, &given(&[("server", "a.example")]), false).unwrap();
    assert!(plan
        .checks
        .iter()
        .all(|c| host_of(c).as_deref() == Some("a.example")));
    let plan = build(
        &sc,
        &given(&[("server", "a"), ("screenconnect", "b")]),
        false,
    )
    .unwrap();
    assert!(plan
        .checks
        .iter()
        .all(|c| host_of(c).as_deref() == Some("b")));
    let tunnel = profiles::builtin("tunnel").unwrap();
    let plan = build(&tunnel, &given(&[("server", "s")]), false).unwrap();
    assert_eq!(hosts(&plan), vec!["mediator.labtechsoftware.com", "s"]);
    // The mapping check runs only with the key: without it, it is skipped and says so.
    let mut resolved = Resolved::new();
    resolved.insert(host("s"), Ok(vec!["192.0.2.1".parse().unwrap()]));
    resolved.insert(
        host("mediator.labtechsoftware.com"),
        Ok(vec!["192.0.2.9".parse().unwrap()]),
    );
    let nat = plan
        .checks
        .iter()
        .position(|c| matches!(c.check.probe, ProbeKind::Nat { second: 40000 }))
        .expect("a mapping check");
    let (paths, _) = expand(&plan, &resolved, false);
    let skipped = paths.iter().find(|p| p.check == nat).unwrap();
    assert!(matches!(&skipped.work, Work::Skipped { flag } if flag == "--key"));
    let (paths, jobs) = expand(&plan, &resolved, true);
    let Work::Probe(range) = &paths.iter().find(|p| p.check == nat).unwrap().work else {
        panic!("not probed with the key");
    };
    assert_eq!(range.len(), 1, "one job compares both ports");
    assert!(jobs[range.start].keyed);
}

#[test]
fn an_agent_url_sets_the_web_checks_port_and_scheme() {
    let agent = profiles::builtin("agent").unwrap();
    let plan = build(
        &agent,
        &given(&[
            ("server", "http://127.0.0.1:18080"),
            ("server", "https://127.0.0.1:18443"),
            ("server", "a.example"),
        ]),
        false,
    )
    .unwrap();
    let web: Vec<(String, Vec<u16>, ProbeKind)> = plan
        .checks
        .iter()
        .filter(|c| c.check.id == "agent-https")
        .map(|c| (host_of(c).unwrap(), c.ports.clone(), c.check.probe))
        .collect();
    assert_eq!(
        web,
        [
            (
                "127.0.0.1".to_string(),
                vec![18080],
                ProbeKind::App(AppProbe::AutomateHttp)
            ),
            (
                "127.0.0.1".to_string(),
                vec![18443],
                ProbeKind::App(AppProbe::Automate)
            ),
            (
                "a.example".to_string(),
                vec![443],
                ProbeKind::App(AppProbe::Automate)
            ),
        ]
    );
    // The heartbeat keeps its port; the host is resolved once, by name.
    let heartbeat: Vec<_> = plan
        .checks
        .iter()
        .filter(|c| c.check.id == "agent-heartbeat")
        .collect();
    assert!(heartbeat.iter().all(|c| c.ports == [75]));
    assert_eq!(heartbeat.len(), 2, "once per host, not per endpoint");
    assert_eq!(hosts(&plan), ["127.0.0.1", "a.example"]);
}

#[test]
fn unknown_custom_target_is_an_error() {
    let agent = profiles::builtin("agent").unwrap();
    let e = build(&agent, &given(&[("server", "s"), ("nas", "n")]), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown target 'nas'"), "{e}");
}

#[test]
fn expand_makes_one_path_per_address() {
    let agent = profiles::builtin("agent").unwrap();
    let plan = build(&agent, &given(&[("server", "s")]), false).unwrap();
    let mut resolved = Resolved::new();
    resolved.insert(
        host("s"),
        Ok(vec![
            "192.0.2.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ]),
    );
    resolved.insert(host("127.0.0.1"), Ok(vec!["127.0.0.1".parse().unwrap()]));
    let (paths, jobs) = expand(&plan, &resolved, false);
    // 443 and 75 on two addresses, the tray on one, the wake-up and the installer download
    // skipped.
    assert_eq!(paths.len(), 7);
    assert_eq!(jobs.len(), 5);
    assert!(matches!(paths.last().unwrap().work, Work::Skipped { .. }));
}
