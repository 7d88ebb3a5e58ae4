//! Turns a profile and the targets the user named into concrete work: which host each
//! check aims at, which ports (sampled or full), and, once names are resolved, one probe
//! job per check × address × port.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::ops::Range;
use std::sync::Arc;

use anyhow::bail;

use crate::endpoint::{Endpoint, Host};
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
    pub host: Option<Host>,
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
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = Vec::new();
        for h in self.checks.iter().filter_map(|c| c.host.as_ref()) {
            crate::model::push_new(&mut hosts, h.clone());
        }
        hosts
    }
}

/// Target name → hosts, read once where they were given (the command line, an agent's
/// settings, a ScreenConnect client's). Usually one per target; an installed agent can list
/// several servers, and each is checked.
pub type Targets = BTreeMap<String, Vec<Endpoint>>;

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
            let twin = checks[first..]
                .iter()
                .any(|c: &PlannedCheck| c.host.as_ref() == Some(&host) && c.check == check);
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
    for (name, endpoints) in given {
        let takes_port = profile
            .checks
            .iter()
            .any(|c| c.target == *name && takes_host_port(c));
        for endpoint in endpoints {
            if endpoint.scheme.is_none() && endpoint.port.is_some() && !takes_port {
                bail!(
                    "'{endpoint}' for {} has a port, but role '{}' decides the ports of its checks there: give the host alone",
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
fn hosts_for(profile: &Profile, given: &Targets, name: &str, depth: usize) -> Vec<Endpoint> {
    let Some(spec) = profile.target(name) else {
        return Vec::new();
    };
    if let Some(endpoints) = given.get(name).filter(|e| !e.is_empty()) {
        return endpoints.clone();
    }
    if let Some(host) = &spec.default {
        return vec![Endpoint::host(host.clone())];
    }
    match &spec.default_from {
        Some(from) if depth < 4 => hosts_for(profile, given, from, depth + 1),
        _ => Vec::new(),
    }
}

/// Whether a check goes to the port its host is given with: the agent's web checks (the
/// Automate probe and the installer download) always, others where the profile says so.
fn takes_host_port(check: &Check) -> bool {
    check.port_from_host
        || matches!(
            check.probe,
            ProbeKind::App(AppProbe::Automate | AppProbe::Installer)
        )
}

/// A host given as the agent writes it (`http://server:8080`): the name to resolve, and the
/// agent's web check (the Automate probe) on the endpoint's port, over plain HTTP for
/// `http://`. The other checks on that host keep the role's ports.
fn at_endpoint(check: &Check, endpoint: &Endpoint) -> (Check, Host) {
    let mut check = check.clone();
    if takes_host_port(&check) {
        if let Some(port) = endpoint.web_port().and_then(PortRange::single) {
            check.ports = port;
        }
    }
    // A web check on a server given as https:// speaks TLS.
    if check.port_from_host
        && check.probe == ProbeKind::App(AppProbe::Http)
        && endpoint.scheme == Some(crate::endpoint::Scheme::Https)
    {
        check.probe = ProbeKind::App(AppProbe::Tls);
    }
    if let ProbeKind::App(probe @ (AppProbe::Automate | AppProbe::Installer)) = check.probe {
        if endpoint.is_plain() {
            check.probe = ProbeKind::App(if probe == AppProbe::Automate {
                AppProbe::AutomateHttp
            } else {
                AppProbe::InstallerHttp
            });
        }
    }
    (check, endpoint.host.clone())
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
    /// The host the user gave, for application probes (TLS SNI, HTTP Host); `None` for the rest.
    pub host: Option<Arc<Host>>,
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
                let name: Option<Arc<Host>> = matches!(planned.check.probe, ProbeKind::App(_))
                    .then(|| Arc::new(host.clone()));
                // A link-local literal's zone names the interface to probe through; one that
                // went away since the command line was read leaves nothing to probe.
                let scope = match host.scope() {
                    Ok(scope) => scope,
                    Err(detail) => {
                        paths.push(PathPlan {
                            check: index,
                            address: host.ip(),
                            work: Work::Unresolved(Unresolved::Failed {
                                host: host.to_string(),
                                detail,
                                after: std::time::Duration::ZERO,
                            }),
                        });
                        continue;
                    }
                };
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
mod tests;
