//! Validation: one function per rule, each error naming the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use toml::Spanned;

use super::file::{
    CheckFile, ExpectFile, PortsFile, ProbeFile, ProfileFile, ProtocolFile, TargetFile,
};
use super::ProfileError;
use crate::model::{AppProbe, Check, Expect, PortRange, ProbeKind, Profile, Protocol, TargetSpec};

/// The file being validated, to turn a span into an error with its line.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn err(&self, span: Option<Range<usize>>, key: Option<&str>, message: String) -> ProfileError {
        ProfileError {
            file: self.file.to_string(),
            line: span.map(|s| line_of(self.text, s.start)),
            key: key.map(str::to_string),
            message,
        }
    }
}

/// Parses and validates a profile; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let src = Source { file, text };
    let raw: ProfileFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        src.err(e.span(), None, message)
    })?;
    let role = raw.role.get_ref().trim().to_string();
    if !is_name(&role) {
        return Err(src.err(
            Some(raw.role.span()),
            Some("role"),
            format!("'{role}' is not a valid role name: use lower-case letters, digits and '-'"),
        ));
    }
    let mut targets = raw
        .targets
        .iter()
        .map(|(name, spanned)| target(&src, name, spanned, &raw.targets))
        .collect::<Result<Vec<_>, _>>()?;
    if raw.check.is_empty() {
        return Err(src.err(
            None,
            Some("check"),
            "the profile has no [[check]] entries".into(),
        ));
    }
    let mut seen = HashSet::new();
    let checks = raw
        .check
        .iter()
        .map(|spanned| check(&src, spanned.get_ref(), &raw.targets, &mut seen))
        .collect::<Result<Vec<_>, _>>()?;
    // Targets in the order the checks first use them, then the rest: the report follows it.
    targets.sort_by_key(|t| {
        checks
            .iter()
            .position(|c| c.target == t.name)
            .unwrap_or(usize::MAX)
    });
    Ok(Profile {
        role,
        description: raw.description,
        targets,
        checks,
    })
}

/// A `[targets.NAME]` table: a valid name, and at most one default, from another target.
fn target(
    src: &Source<'_>,
    name: &str,
    spanned: &Spanned<TargetFile>,
    all: &BTreeMap<String, Spanned<TargetFile>>,
) -> Result<TargetSpec, ProfileError> {
    let span = spanned.span();
    let t = spanned.get_ref();
    if !is_name(name) {
        return Err(src.err(
            Some(span),
            Some("targets"),
            format!("'{name}' is not a valid target name: use lower-case letters, digits and '-'"),
        ));
    }
    if let Some(from) = &t.default_from {
        let from_name = from.get_ref();
        if from_name == name || !all.contains_key(from_name) {
            return Err(src.err(
                Some(from.span()),
                Some("default-from"),
                format!(
                    "target '{name}' takes its default from '{from_name}', which is not another target of this profile"
                ),
            ));
        }
    }
    if t.default.is_some() && t.default_from.is_some() {
        return Err(src.err(
            Some(span),
            Some("default"),
            format!("target '{name}' has both 'default' and 'default-from': keep one"),
        ));
    }
    let default = match &t.default {
        Some(host) => Some(crate::endpoint::Host::parse(host).map_err(|e| {
            src.err(
                Some(span),
                Some("default"),
                format!("target '{name}' has a default that is not a host: {e}"),
            )
        })?),
        None => None,
    };
    Ok(TargetSpec {
        name: name.to_string(),
        description: t.description.clone(),
        optional: t.optional,
        default,
        default_from: t.default_from.as_ref().map(|s| s.get_ref().clone()),
    })
}

/// A `[[check]]`: a new valid id, valid ports, a declared target, a probe that fits.
fn check(
    src: &Source<'_>,
    c: &CheckFile,
    targets: &BTreeMap<String, Spanned<TargetFile>>,
    seen: &mut HashSet<String>,
) -> Result<Check, ProfileError> {
    let id = c.id.get_ref().trim().to_string();
    if !is_name(&id) {
        return Err(src.err(
            Some(c.id.span()),
            Some("id"),
            format!("'{id}' is not a valid check id: use lower-case letters, digits and '-'"),
        ));
    }
    if !seen.insert(id.clone()) {
        return Err(src.err(
            Some(c.id.span()),
            Some("id"),
            format!("duplicate check id '{id}': every check needs its own id"),
        ));
    }
    let ports = parse_ports(c.ports.get_ref())
        .map_err(|m| src.err(Some(c.ports.span()), Some("ports"), m))?;
    let target = c.target.get_ref().clone();
    if !targets.contains_key(&target) {
        let known = targets.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(src.err(
            Some(c.target.span()),
            Some("target"),
            format!(
                "check '{id}' aims at unknown target '{target}': declare [targets.{target}] or use one of: {known}"
            ),
        ));
    }
    let protocol = match c.protocol {
        ProtocolFile::Tcp => Protocol::Tcp,
        ProtocolFile::Udp => Protocol::Udp,
    };
    let probe =
        probe_kind(c.probe.as_ref().map(Spanned::get_ref).copied(), protocol).ok_or_else(|| {
            src.err(
                c.probe.as_ref().map(Spanned::span),
                Some("probe"),
                format!("check '{id}': probe does not match protocol '{protocol}'"),
            )
        })?;
    let probe = with_second_port(src, c, &id, probe, ports)?;
    let probe = with_fallback_ports(src, c, &id, probe, ports)?;
    Ok(Check {
        id,
        description: c.description.clone(),
        protocol,
        ports,
        target,
        required: c.required,
        expect: match c.expect {
            ExpectFile::Reachable => Expect::Reachable,
            ExpectFile::Blocked => Expect::Blocked,
            ExpectFile::Either => Expect::Either,
        },
        probe,
        source: c.source.clone(),
        fix: c.fix.clone(),
        fix_de: c.fix_de.clone(),
        port_from_host: c.port_from_host,
    })
}

/// `probe = "nat"` takes its second destination from `second-port`, which no other probe has.
fn with_second_port(
    src: &Source<'_>,
    c: &CheckFile,
    id: &str,
    probe: ProbeKind,
    ports: PortRange,
) -> Result<ProbeKind, ProfileError> {
    let is_nat = matches!(probe, ProbeKind::Nat { .. });
    let probe_span = c.probe.as_ref().map(Spanned::span);
    match (&c.second_port, is_nat) {
        (None, false) => Ok(probe),
        (Some(second), false) => Err(src.err(
            Some(second.span()),
            Some("second-port"),
            format!("check '{id}': second-port only goes with probe = \"nat\": remove it"),
        )),
        (None, true) => Err(src.err(
            probe_span,
            Some("second-port"),
            format!("check '{id}': probe = \"nat\" compares two ports: add second-port = 40000 (a port serve answers on the same host)"),
        )),
        (Some(second), true) => {
            let port = port_number(&second.get_ref().to_string())
                .map_err(|m| src.err(Some(second.span()), Some("second-port"), m))?;
            if !ports.is_single() || ports.start() == port {
                return Err(src.err(
                    Some(c.ports.span()),
                    Some("ports"),
                    format!("check '{id}': probe = \"nat\" needs one port in ports and a different second-port"),
                ));
            }
            Ok(ProbeKind::Nat { second: port })
        }
    }
}

/// `probe = "loopback"` may name `fallback-ports`: the range an install picks from when the
/// port is taken, which must hold the port itself.
fn with_fallback_ports(
    src: &Source<'_>,
    c: &CheckFile,
    id: &str,
    probe: ProbeKind,
    ports: PortRange,
) -> Result<ProbeKind, ProfileError> {
    let Some(raw) = &c.fallback_ports else {
        return Ok(probe);
    };
    let err = |m: String| src.err(Some(raw.span()), Some("fallback-ports"), m);
    if !matches!(probe, ProbeKind::Loopback { .. }) || matches!(c.protocol, ProtocolFile::Tcp) {
        return Err(err(format!(
            "check '{id}': fallback-ports only goes with probe = \"loopback\" over UDP: remove it"
        )));
    }
    let range = parse_ports(raw.get_ref()).map_err(err)?;
    if !ports.is_single() || !range.contains(ports.start()) {
        return Err(err(format!(
            "check '{id}': fallback-ports must hold the check's one port {}: e.g. \"{}-{}\"",
            ports.start(),
            ports.start(),
            ports.start().saturating_add(9)
        )));
    }
    Ok(ProbeKind::Loopback {
        fallback: Some(range),
    })
}

/// The probe a check asks for, if it fits its protocol (application probes speak TCP).
fn probe_kind(probe: Option<ProbeFile>, protocol: Protocol) -> Option<ProbeKind> {
    let tcp = protocol == Protocol::Tcp;
    Some(match probe {
        None => ProbeKind::Connect,
        // The fallback range is filled in by `with_fallback_ports`.
        Some(ProbeFile::Loopback) => ProbeKind::Loopback { fallback: None },
        Some(ProbeFile::Listening) => ProbeKind::Listening,
        // The second port is filled in by `with_second_port`.
        Some(ProbeFile::Nat) if !tcp => ProbeKind::Nat { second: 0 },
        Some(ProbeFile::Tcp) if tcp => ProbeKind::Connect,
        Some(ProbeFile::Udp) if !tcp => ProbeKind::Connect,
        Some(ProbeFile::Tls) if tcp => ProbeKind::App(AppProbe::Tls),
        Some(ProbeFile::Automate) if tcp => ProbeKind::App(AppProbe::Automate),
        Some(ProbeFile::Installer) if tcp => ProbeKind::App(AppProbe::Installer),
        Some(ProbeFile::Relay) if tcp => ProbeKind::App(AppProbe::Relay),
        Some(ProbeFile::Mysql) if tcp => ProbeKind::App(AppProbe::Mysql),
        Some(ProbeFile::Http) if tcp => ProbeKind::App(AppProbe::Http),
        Some(_) => return None,
    })
}

/// Parses "443", 443 or "49152-65535" into a validated range.
fn parse_ports(raw: &PortsFile) -> Result<PortRange, String> {
    match raw {
        PortsFile::Number(n) => {
            let port = port_number(&n.to_string())?;
            Ok(PortRange::single(port).expect("port_number rejects 0"))
        }
        PortsFile::Fraction(n) => Err(format!(
            "{n} is not a whole port number: write a port like 443 or a range like \"49152-65535\""
        )),
        PortsFile::Text(text) => parse_port_spec(text),
    }
}

/// Parses a port or range as written by a user: "443" or "49152-65535".
pub fn parse_port_spec(text: &str) -> Result<PortRange, String> {
    let text = text.trim();
    // "-1" is a negative port, not a range with its start left out.
    if let Some(rest) = text.strip_prefix('-') {
        if rest.trim().parse::<i128>().is_ok() {
            return Err(format!("port {text} is negative: use 1-65535"));
        }
    }
    if let Some((a, b)) = text.split_once('-') {
        if a.trim().is_empty() || b.trim().is_empty() {
            return Err(format!(
                "'{text}' is a range with an end missing: write a range like 49152-65535"
            ));
        }
        let (start, end) = (port_number(a.trim())?, port_number(b.trim())?);
        PortRange::new(start, end)
            .ok_or_else(|| format!("range {start}-{end} is reversed: write {end}-{start}"))
    } else {
        let port = port_number(text)?;
        Ok(PortRange::single(port).expect("port_number rejects 0"))
    }
}

fn port_number(text: &str) -> Result<u16, String> {
    let n: i128 = text.parse().map_err(|_| {
        format!(
            "'{text}' is not a port or range: write a port like 443 or a range like 49152-65535"
        )
    })?;
    match n {
        0 => Err("port 0 is not a usable port: use 1-65535".into()),
        1..=65535 => Ok(n as u16),
        n if n < 0 => Err(format!("port {n} is negative: use 1-65535")),
        n => Err(format!("port {n} is above 65535: use 1-65535")),
    }
}

/// A check or target id: lower-case letters, digits, '-' and '_'.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
