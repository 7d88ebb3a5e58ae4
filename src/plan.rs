//! Turns a profile and the targets the user named into concrete work: which host each
//! check aims at, which ports (sampled or full), and, once names are resolved, one probe
//! job per check × address × port.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::ops::Range;
use std::sync::Arc;

use anyhow::bail;

use crate::endpoint::Endpoint;
use crate::model::{
    target_flag, AppProbe, Check, PortRange, ProbeKind, Profile, Protocol, FLAG_TARGETS,
};
use crate::resolve::{Resolved, Unresolved};

/// How many ports of a range are probed without `--full-ranges`.
pub const RANGE_SAMPLE: usize = 32;

/// A check with its host decided and its ports chosen.
#[derive(Debug, Clone)]
pub struct PlannedCheck {
    pub check: Check,
    /// `None` when the check is skipped because its optional target was not named.
    pub host: Option<String>,
    pub ports: Vec<u16>,
    /// `serve` can stand in for the far side, so a keyed run sends it keyed probes.
    pub served: bool,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub role: String,
    pub checks: Vec<PlannedCheck>,
}

impl Plan {
    /// Every distinct host to resolve, in first-use order.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for h in self.checks.iter().filter_map(|c| c.host.as_ref()) {
            crate::model::push_new(&mut hosts, h.clone());
        }
        hosts
    }
}

/// Target name → hosts. Usually one host per target; an installed agent can list several
/// servers, and each is checked.
pub type Targets = BTreeMap<String, Vec<String>>;

/// Decides the host of every check, one planned check per host. `given` maps target names
/// to hosts from the command line.
///
/// Fails (a usage error) when a target the role needs was not named, or when a name was
/// given that the profile does not know.
pub fn build(profile: &Profile, given: &Targets, full_ranges: bool) -> anyhow::Result<Plan> {
    for name in given.keys() {
        if profile.target(name).is_none() && !FLAG_TARGETS.contains(&name.as_str()) {
            let known: Vec<&str> = profile.targets.iter().map(|t| t.name.as_str()).collect();
            bail!(
                "unknown target '{name}' for role '{}': its targets are {}",
                profile.role,
                known.join(", ")
            );
        }
        if profile.target(name).is_none() {
            tracing::warn!(
                "--{name} is not used by role '{}'; ignoring it",
                profile.role
            );
        }
    }

    ports_given_fit(profile, given)?;
    let hosts_of = |name: &str| hosts_for(profile, given, name, 0);

    let mut checks = Vec::with_capacity(profile.checks.len());
    for check in &profile.checks {
        let spec = profile.target(&check.target).expect("validated profile");
        let hosts = hosts_of(&check.target);
        if hosts.is_empty() && !spec.optional {
            // Every flag that would name it: the target's own, then those it defaults from.
            let mut others = Vec::new();
            let mut from = spec.default_from.as_deref();
            while let Some(name) = from.filter(|_| others.len() < 4) {
                others.push(target_flag(name));
                from = profile.target(name).and_then(|t| t.default_from.as_deref());
            }
            let mut flag = target_flag(&spec.name);
            if !others.is_empty() {
                flag = format!("{flag} (or {})", others.join(", or "));
            }
            bail!(
                "role '{}' needs {flag}: {} (check '{}')",
                profile.role,
                spec.description,
                check.id
            );
        }
        let served = profile.serve_stands_in(check);
        if hosts.is_empty() {
            checks.push(PlannedCheck {
                ports: ports_to_probe(check.ports, full_ranges),
                check: check.clone(),
                host: None,
                served,
            });
        }
        let first = checks.len();
        for host in hosts {
            let (check, host) = at_endpoint(check, &host);
            // Two endpoints on one host (http:// and https:// of one server) differ only in
            // the web check: the others are planned once.
            let twin = checks[first..].iter().any(|c: &PlannedCheck| {
                c.host.as_deref() == Some(host.as_str()) && c.check == check
            });
            if twin {
                continue;
            }
            checks.push(PlannedCheck {
                ports: ports_to_probe(check.ports, full_ranges),
                check,
                host: Some(host),
                served,
            });
        }
    }
    Ok(Plan {
        role: profile.role.clone(),
        checks,
    })
}

/// A host given with a port (`relay=host:443`) must go to a check that takes one.
fn ports_given_fit(profile: &Profile, given: &Targets) -> anyhow::Result<()> {
    for (name, hosts) in given {
        let takes_port = profile.checks.iter().any(|c| {
            c.target == *name
                && (c.port_from_host
                    || matches!(
                        c.probe,
                        ProbeKind::App(AppProbe::Automate | AppProbe::Installer)
                    ))
        });
        for host in hosts {
            let Ok(endpoint) = Endpoint::parse_any(host) else {
                continue;
            };
            if endpoint.scheme.is_none() && endpoint.port.is_some() && !takes_port {
                bail!(
                    "'{host}' for {} has a port, but role '{}' decides the ports of its checks there: give the host alone",
                    target_flag(name),
                    profile.role
                );
            }
        }
    }
    Ok(())
}

/// The hosts of target `name`: given, else its default, else those of the target it
/// defaults from (which may default from another: ScreenConnect's relay from
/// `--screenconnect`, that from `--server`).
fn hosts_for(profile: &Profile, given: &Targets, name: &str, depth: usize) -> Vec<String> {
    let Some(spec) = profile.target(name) else {
        return Vec::new();
    };
    if let Some(hosts) = given.get(name).filter(|hosts| !hosts.is_empty()) {
        return hosts.clone();
    }
    if let Some(host) = &spec.default {
        return vec![host.clone()];
    }
    match &spec.default_from {
        Some(from) if depth < 4 => hosts_for(profile, given, from, depth + 1),
        _ => Vec::new(),
    }
}

/// A host given as the agent writes it (`http://server:8080`): the name to resolve, and the
/// agent's web check (the Automate probe) on the endpoint's port, over plain HTTP for
/// `http://`. The other checks on that host keep the role's ports.
fn at_endpoint(check: &Check, host: &str) -> (Check, String) {
    let mut check = check.clone();
    let Ok(endpoint) = Endpoint::parse_any(host) else {
        return (check, host.to_string());
    };
    if check.port_from_host {
        if let Some(port) = endpoint.web_port().and_then(PortRange::single) {
            check.ports = port;
        }
        // A web check on a server given as https:// speaks TLS.
        if check.probe == ProbeKind::App(AppProbe::Http)
            && endpoint.scheme == Some(crate::endpoint::Scheme::Https)
        {
            check.probe = ProbeKind::App(AppProbe::Tls);
        }
    }
    if let ProbeKind::App(probe @ (AppProbe::Automate | AppProbe::Installer)) = check.probe {
        if let Some(port) = endpoint.web_port().and_then(PortRange::single) {
            check.ports = port;
        }
        if endpoint.is_plain() {
            check.probe = ProbeKind::App(if probe == AppProbe::Automate {
                AppProbe::AutomateHttp
            } else {
                AppProbe::InstallerHttp
            });
        }
    }
    (check, endpoint.host)
}

/// The ports probed for a range: all of them with `full`, else both ends and evenly spread
/// ports in between, [`RANGE_SAMPLE`] in all. The same range always gives the same sample.
pub fn ports_to_probe(range: PortRange, full: bool) -> Vec<u16> {
    let len = range.count();
    if full || len <= RANGE_SAMPLE {
        return range.iter().collect();
    }
    let span = len - 1;
    let steps = RANGE_SAMPLE - 1;
    (0..RANGE_SAMPLE)
        .map(|i| range.start() + ((i * span + steps / 2) / steps) as u16)
        .collect()
}

/// One packet exchange to run: a port on one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeJob {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub kind: ProbeKind,
    /// The name the user gave, for application probes (TLS SNI, HTTP Host); `None` for the rest.
    pub host: Option<Arc<str>>,
    /// Sent as the authenticated probe that `serve` answers (`check --key`, and serve can
    /// stand in for the far side).
    pub keyed: bool,
}

/// One check on one address: the unit a verdict is given to.
#[derive(Debug, Clone)]
pub struct PathPlan {
    /// Index into [`Plan::checks`].
    pub check: usize,
    pub address: Option<IpAddr>,
    pub work: Work,
}

#[derive(Debug, Clone)]
pub enum Work {
    /// Jobs `range` of the job list, one per port.
    Probe(Range<usize>),
    /// The optional target was not named; it would be with this flag.
    Skipped { flag: String },
    /// The name did not resolve (or has no address of the asked family).
    Unresolved(Unresolved),
}

/// Expands a plan over resolved addresses into paths and probe jobs; `keyed` when the run
/// has a key.
pub fn expand(plan: &Plan, resolved: &Resolved, keyed: bool) -> (Vec<PathPlan>, Vec<ProbeJob>) {
    let mut paths = Vec::new();
    let mut jobs = Vec::new();
    for (index, planned) in plan.checks.iter().enumerate() {
        let Some(host) = &planned.host else {
            paths.push(PathPlan {
                check: index,
                address: None,
                work: Work::Skipped {
                    flag: target_flag(&planned.check.target),
                },
            });
            continue;
        };
        if matches!(planned.check.probe, ProbeKind::Nat { .. }) && !(keyed && planned.served) {
            // Only `serve` with the key can say which source it saw: nothing to probe.
            paths.push(PathPlan {
                check: index,
                address: None,
                work: Work::Skipped {
                    flag: "--key".to_string(),
                },
            });
            continue;
        }
        match resolved.get(host) {
            Some(Ok(addresses)) => {
                let name: Option<Arc<str>> = matches!(planned.check.probe, ProbeKind::App(_))
                    .then(|| Arc::from(host.as_str()));
                // A link-local literal's zone names the interface to probe through.
                let scope = crate::resolve::zoned(host)
                    .ok()
                    .flatten()
                    .map_or(0, |(_, scope)| scope);
                for &ip in addresses {
                    let start = jobs.len();
                    jobs.extend(planned.ports.iter().map(|&port| ProbeJob {
                        addr: match ip {
                            IpAddr::V6(v6) if scope != 0 => {
                                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
                            }
                            _ => SocketAddr::new(ip, port),
                        },
                        protocol: planned.check.protocol,
                        kind: planned.check.probe,
                        host: name.clone(),
                        keyed: keyed && planned.served,
                    }));
                    paths.push(PathPlan {
                        check: index,
                        address: Some(ip),
                        work: Work::Probe(start..jobs.len()),
                    });
                }
            }
            Some(Err(reason)) => paths.push(PathPlan {
                check: index,
                address: None,
                work: Work::Unresolved(reason.clone()),
            }),
            None => unreachable!("plan.hosts() lists every host a check names"),
        }
    }
    (paths, jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles;

    fn given(pairs: &[(&str, &str)]) -> Targets {
        let mut targets = Targets::new();
        for (k, v) in pairs {
            targets
                .entry((*k).to_string())
                .or_default()
                .push((*v).to_string());
        }
        targets
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
            plan.hosts()[..2],
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
            .all(|c| c.host.as_deref() == Some("a.example")));
        let plan = build(
            &sc,
            &given(&[("server", "a"), ("screenconnect", "b")]),
            false,
        )
        .unwrap();
        assert!(plan.checks.iter().all(|c| c.host.as_deref() == Some("b")));
        let tunnel = profiles::builtin("tunnel").unwrap();
        let plan = build(&tunnel, &given(&[("server", "s")]), false).unwrap();
        assert_eq!(plan.hosts(), vec!["mediator.labtechsoftware.com", "s"]);
        // The mapping check runs only with the key: without it, it is skipped and says so.
        let mut resolved = Resolved::new();
        resolved.insert("s".into(), Ok(vec!["192.0.2.1".parse().unwrap()]));
        resolved.insert(
            "mediator.labtechsoftware.com".into(),
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
        let web: Vec<(&str, Vec<u16>, ProbeKind)> = plan
            .checks
            .iter()
            .filter(|c| c.check.id == "agent-https")
            .map(|c| (c.host.as_deref().unwrap(), c.ports.clone(), c.check.probe))
            .collect();
        assert_eq!(
            web,
            [
                (
                    "127.0.0.1",
                    vec![18080],
                    ProbeKind::App(AppProbe::AutomateHttp)
                ),
                ("127.0.0.1", vec![18443], ProbeKind::App(AppProbe::Automate)),
                ("a.example", vec![443], ProbeKind::App(AppProbe::Automate)),
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
        assert_eq!(plan.hosts(), ["127.0.0.1", "a.example"]);
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
            "s".into(),
            Ok(vec![
                "192.0.2.1".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ]),
        );
        resolved.insert("127.0.0.1".into(), Ok(vec!["127.0.0.1".parse().unwrap()]));
        let (paths, jobs) = expand(&plan, &resolved, false);
        // 443 and 75 on two addresses, the tray on one, the wake-up and the installer download
        // skipped.
        assert_eq!(paths.len(), 7);
        assert_eq!(jobs.len(), 5);
        assert!(matches!(paths.last().unwrap().work, Work::Skipped { .. }));
    }
}
