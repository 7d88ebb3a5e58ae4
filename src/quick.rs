//! One-off checks named on the command line, like `Test-NetConnection`:
//! `check --tcp HOST:PORT` and `--udp HOST:PORT` (repeatable). They join the role's checks,
//! or form a run of their own without a role, and get the same verdicts, reasons, hints and
//! outputs as any profile's checks.

use crate::endpoint::{Endpoint, Host};
use crate::model::{Check, Expect, PortRange, ProbeKind, Profile, Protocol, TargetSpec};
use crate::plan::Targets;

/// `HOST:PORT` or `[v6]:PORT`: the host as `--server` takes one, and a port 1-65535.
pub fn parse(s: &str) -> Result<(Host, u16), String> {
    let text = s.trim();
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .ok_or_else(|| format!("'{text}' is not [ADDRESS]:PORT"))?,
        None => text
            .rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .ok_or_else(|| {
                format!("'{text}' is not HOST:PORT: write it like automate.example.com:443 or [2001:db8::1]:443")
            })?,
    };
    let range = crate::profiles::parse_port_spec(port)?;
    if !range.is_single() {
        return Err(format!("'{text}' names a range: one port per --tcp/--udp"));
    }
    Ok((Host::parse(host)?, range.start()))
}

/// The profile with the one-off checks added (`base` is the role's, if one was asked for),
/// and their hosts in `targets`. Each check gets a target of its own (`tcp-1`, `udp-1`, ...).
pub fn add(
    base: Option<Profile>,
    tcp: &[(Host, u16)],
    udp: &[(Host, u16)],
    targets: &mut Targets,
) -> Profile {
    let mut profile = base.unwrap_or_else(|| Profile {
        role: "quick".into(),
        description: "checks named on the command line".into(),
        targets: Vec::new(),
        checks: Vec::new(),
    });
    let all = tcp
        .iter()
        .map(|t| (Protocol::Tcp, t))
        .chain(udp.iter().map(|u| (Protocol::Udp, u)));
    let mut counts = [0usize; 2];
    for (protocol, (host, port)) in all {
        let (kind, count) = match protocol {
            Protocol::Tcp => ("tcp", &mut counts[0]),
            Protocol::Udp => ("udp", &mut counts[1]),
        };
        *count += 1;
        let target = format!("{kind}-{count}");
        let mut id = format!("{kind}-{port}");
        if profile.checks.iter().any(|c| c.id == id) {
            id = format!("{kind}-{port}-{count}");
        }
        profile.targets.push(TargetSpec {
            name: target.clone(),
            description: format!("{host}, named with --{kind}"),
            optional: false,
            default: None,
            default_from: None,
        });
        profile.checks.push(Check {
            id,
            description: format!("{} {port} to {host}", protocol.upper()),
            protocol,
            ports: PortRange::single(*port).expect("parse rejects port 0"),
            target: target.clone(),
            required: true,
            expect: Expect::Reachable,
            probe: ProbeKind::Connect,
            source: format!("the command line (--{kind} {host}:{port})"),
            fix: None,
            fix_de: None,
            port_from_host: false,
        });
        targets.insert(target, vec![Endpoint::host(host.clone())]);
    }
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let host = |s: &str| Host::parse(s).unwrap();
        assert_eq!(parse("127.0.0.1:8443"), Ok((host("127.0.0.1"), 8443)));
        assert_eq!(parse("[::1]:443"), Ok((host("::1"), 443)));
        assert_eq!(parse(" a.example:75 "), Ok((host("a.example"), 75)));
        for (bad, says) in [
            ("a.example", "HOST:PORT"),
            ("a.example:0", "port 0"),
            ("a.example:70000", "above 65535"),
            ("a.example:1-9", "range"),
            ("::1:443", "HOST:PORT"),
            ("https://a:443", "HOST:PORT"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn one_off_checks_join_a_role_or_stand_alone() {
        let mut targets = Targets::new();
        let host = |s: &str| Host::parse(s).unwrap();
        let tcp = [(host("a.example"), 443), (host("b.example"), 443)];
        let udp = [(host("a.example"), 75)];
        let alone = add(None, &tcp, &udp, &mut targets);
        let ids: Vec<&str> = alone.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["tcp-443", "tcp-443-2", "udp-75"]);
        assert_eq!(alone.role, "quick");
        assert_eq!(targets["tcp-2"], [Endpoint::host(host("b.example"))]);
        let agent = crate::profiles::builtin("agent").unwrap();
        let n = agent.checks.len();
        let joined = add(Some(agent), &tcp[..1], &[], &mut Targets::new());
        assert_eq!(joined.checks.len(), n + 1);
        assert_eq!(joined.role, "agent");
    }
}
