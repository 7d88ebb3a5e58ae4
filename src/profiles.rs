//! Role profiles: the TOML files under `profiles/` (embedded in the binary) or a user's own
//! file, parsed strictly into the validated [`Profile`] model.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read as _;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{AppProbe, Check, Expect, PortRange, ProbeKind, Profile, Protocol, TargetSpec};

/// The built-in profiles, in the order `profiles list` shows them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("agent", include_str!("../profiles/agent.toml")),
    ("server", include_str!("../profiles/server.toml")),
    ("split-db", include_str!("../profiles/split-db.toml")),
    ("tunnel", include_str!("../profiles/tunnel.toml")),
    (
        "screenconnect",
        include_str!("../profiles/screenconnect.toml"),
    ),
];

/// The TOML text of a built-in role.
pub fn builtin_text(role: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(name, _)| *name == role)
        .map(|(_, text)| *text)
}

/// Names of the built-in roles, for error messages.
pub fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads a built-in role by name.
pub fn builtin(role: &str) -> anyhow::Result<Profile> {
    let text = builtin_text(role).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown role '{role}': choose one of {}, or pass your own with --profile FILE",
            builtin_names()
        )
    })?;
    Ok(parse(&format!("<built-in {role}>"), text)?)
}

/// Loads a profile file; a missing or unreadable file is reported with its path.
pub fn from_file(path: &Path) -> anyhow::Result<Profile> {
    let cannot = |why: String| {
        anyhow::anyhow!(
            "cannot read profile {}: {why} (check the path given to --profile)",
            path.display()
        )
    };
    // Looked at before it is opened: opening a FIFO would wait for a writer, and a device
    // such as /dev/zero never ends.
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("it is not a regular file".into()));
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(cannot(format!(
            "it is {} bytes, more than a profile can be ({MAX_PROFILE_BYTES})",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot(e.to_string()))?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(cannot("it grew past 1 MiB while being read".into()));
    }
    Ok(parse(&path.display().to_string(), &text)?)
}

/// The largest profile read: a thousand checks fit in a tenth of it.
const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// A profile that does not parse or validate: names the file, the line and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile {}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key '{key}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ProfileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ProfileFile {
    role: Spanned<String>,
    description: String,
    #[serde(default)]
    targets: BTreeMap<String, Spanned<TargetFile>>,
    #[serde(default)]
    check: Vec<Spanned<CheckFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TargetFile {
    description: String,
    #[serde(default)]
    optional: bool,
    default: Option<String>,
    default_from: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CheckFile {
    id: Spanned<String>,
    description: String,
    protocol: ProtocolFile,
    ports: Spanned<PortsFile>,
    target: Spanned<String>,
    required: bool,
    #[serde(default)]
    expect: ExpectFile,
    #[serde(default)]
    probe: Option<Spanned<ProbeFile>>,
    source: String,
    fix: Option<String>,
    /// The fix in German, for `--lang de`.
    fix_de: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ProtocolFile {
    Tcp,
    Udp,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ExpectFile {
    #[default]
    Reachable,
    Blocked,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ProbeFile {
    Tcp,
    Udp,
    Loopback,
    Tls,
    Automate,
    Mysql,
    Http,
}

/// `ports` as written: a number (any size, so that 99999999999999999999 is "above 65535", not
/// a type error), a string, or a number with a fraction (a typo to name, not a parse error).
enum PortsFile {
    Number(i128),
    Fraction(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for PortsFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PortsFile, D::Error> {
        struct Ports;
        impl serde::de::Visitor<'_> for Ports {
            type Value = PortsFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port like 443 or a range like \"49152-65535\"")
            }
            fn visit_i64<E>(self, v: i64) -> Result<PortsFile, E> {
                Ok(PortsFile::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<PortsFile, E> {
                Ok(PortsFile::Number(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<PortsFile, E> {
                Ok(PortsFile::Number(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<PortsFile, E> {
                Ok(PortsFile::Number(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<PortsFile, E> {
                Ok(PortsFile::Fraction(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<PortsFile, E> {
                Ok(PortsFile::Text(v.to_string()))
            }
        }
        d.deserialize_any(Ports)
    }
}

/// Parses and validates a profile. `file` names the source in error messages.
pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let err = |span: Option<Range<usize>>, key: Option<&str>, message: String| ProfileError {
        file: file.to_string(),
        line: span.map(|s| line_of(text, s.start)),
        key: key.map(str::to_string),
        message,
    };
    let raw: ProfileFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        err(e.span(), None, message)
    })?;

    let role = raw.role.get_ref().trim().to_string();
    if !is_name(&role) {
        return Err(err(
            Some(raw.role.span()),
            Some("role"),
            format!("'{role}' is not a valid role name: use lower-case letters, digits and '-'"),
        ));
    }

    let mut targets = Vec::with_capacity(raw.targets.len());
    for (name, spanned) in &raw.targets {
        let span = spanned.span();
        let t = spanned.get_ref();
        if !is_name(name) {
            return Err(err(
                Some(span),
                Some("targets"),
                format!(
                    "'{name}' is not a valid target name: use lower-case letters, digits and '-'"
                ),
            ));
        }
        if let Some(from) = &t.default_from {
            let from_name = from.get_ref();
            if from_name == name || !raw.targets.contains_key(from_name) {
                return Err(err(
                    Some(from.span()),
                    Some("default-from"),
                    format!(
                        "target '{name}' takes its default from '{from_name}', which is not another target of this profile"
                    ),
                ));
            }
        }
        if t.default.is_some() && t.default_from.is_some() {
            return Err(err(
                Some(span),
                Some("default"),
                format!("target '{name}' has both 'default' and 'default-from': keep one"),
            ));
        }
        targets.push(TargetSpec {
            name: name.clone(),
            description: t.description.clone(),
            optional: t.optional,
            default: t.default.clone(),
            default_from: t.default_from.as_ref().map(|s| s.get_ref().clone()),
        });
    }

    if raw.check.is_empty() {
        return Err(err(
            None,
            Some("check"),
            "the profile has no [[check]] entries".into(),
        ));
    }

    let mut seen = HashSet::new();
    let mut checks = Vec::with_capacity(raw.check.len());
    for spanned in &raw.check {
        let c = spanned.get_ref();
        let id = c.id.get_ref().trim().to_string();
        if !is_name(&id) {
            return Err(err(
                Some(c.id.span()),
                Some("id"),
                format!("'{id}' is not a valid check id: use lower-case letters, digits and '-'"),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(err(
                Some(c.id.span()),
                Some("id"),
                format!("duplicate check id '{id}': every check needs its own id"),
            ));
        }
        let ports = parse_ports(c.ports.get_ref())
            .map_err(|m| err(Some(c.ports.span()), Some("ports"), m))?;
        let target = c.target.get_ref().clone();
        if !raw.targets.contains_key(&target) {
            let known = raw.targets.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(err(
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
        let probe = match c.probe.as_ref().map(|p| (*p.get_ref(), p.span())) {
            None => ProbeKind::Connect,
            Some((ProbeFile::Loopback, _)) => ProbeKind::Loopback,
            Some((ProbeFile::Tcp, _)) if protocol == Protocol::Tcp => ProbeKind::Connect,
            Some((ProbeFile::Udp, _)) if protocol == Protocol::Udp => ProbeKind::Connect,
            Some((
                app @ (ProbeFile::Tls | ProbeFile::Automate | ProbeFile::Mysql | ProbeFile::Http),
                _,
            )) if protocol == Protocol::Tcp => ProbeKind::App(match app {
                ProbeFile::Tls => AppProbe::Tls,
                ProbeFile::Automate => AppProbe::Automate,
                ProbeFile::Mysql => AppProbe::Mysql,
                _ => AppProbe::Http,
            }),
            Some((_, span)) => {
                return Err(err(
                    Some(span),
                    Some("probe"),
                    format!("check '{id}': probe does not match protocol '{protocol}'"),
                ))
            }
        };
        checks.push(Check {
            id,
            description: c.description.clone(),
            protocol,
            ports,
            target,
            required: c.required,
            expect: match c.expect {
                ExpectFile::Reachable => Expect::Reachable,
                ExpectFile::Blocked => Expect::Blocked,
            },
            probe,
            source: c.source.clone(),
            fix: c.fix.clone(),
            fix_de: c.fix_de.clone(),
        });
    }

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

fn is_name(s: &str) -> bool {
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

/// Reads a profile from a path or picks a built-in role.
///
/// With a file, `role` (when given) must match the file's role, so a script that names
/// both cannot silently check the wrong thing.
pub fn load(role: Option<&str>, file: Option<&Path>) -> anyhow::Result<Profile> {
    match (role, file) {
        (_, Some(path)) => {
            let profile = from_file(path)?;
            if let Some(role) = role {
                anyhow::ensure!(
                    role == profile.role,
                    "profile {} defines role '{}', not '{role}': drop --role or use --role {}",
                    path.display(),
                    profile.role,
                    profile.role
                );
            }
            Ok(profile)
        }
        (Some(role), None) => builtin(role),
        (None, None) => anyhow::bail!(
            "no role given: add --role ROLE (one of {}) or --profile FILE",
            builtin_names()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses_and_validates() {
        for (name, text) in BUILTIN {
            let p = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.role, name);
            assert!(!p.checks.is_empty());
            for c in &p.checks {
                assert!(
                    !c.source.is_empty(),
                    "{name}/{}: every check keeps a source",
                    c.id
                );
                assert!(
                    c.fix.is_some() && c.fix_de.is_some(),
                    "{name}/{}: every built-in check has a fix, in English and German",
                    c.id
                );
                let placeholders = |text: &str| {
                    let mut found: Vec<&str> =
                        ["{proto}", "{ports}", "{host}", "{address}", "{where}"]
                            .into_iter()
                            .filter(|p| text.contains(p))
                            .collect();
                    found.sort_unstable();
                    found
                };
                assert_eq!(
                    placeholders(c.fix.as_deref().unwrap_or_default()),
                    placeholders(c.fix_de.as_deref().unwrap_or_default()),
                    "{name}/{}: both fixes name the same places",
                    c.id
                );
            }
        }
    }

    #[test]
    fn builtin_roles_hold_what_the_source_asks() {
        let server = builtin("server").unwrap();
        let db = server
            .checks
            .iter()
            .find(|c| c.ports == PortRange::single(3306).unwrap())
            .unwrap();
        assert_eq!(db.expect, Expect::Blocked);
        assert!(db.required);
        let tunnel = builtin("tunnel").unwrap();
        assert!(
            tunnel.checks.iter().all(|c| !c.required),
            "tunnels are optional features"
        );
        let agent = builtin("agent").unwrap();
        let tray = agent.checks.iter().find(|c| c.id == "agent-tray").unwrap();
        assert_eq!(tray.probe, ProbeKind::Loopback);
        assert!(agent.target("peer").unwrap().optional);
    }

    const MINIMAL: &str = r#"role = "custom"
description = "d"
[targets.box]
description = "a box"
[[check]]
id = "one"
description = "d"
protocol = "tcp"
ports = PORTS
target = "box"
required = true
source = "s"
"#;

    fn with_ports(ports: &str) -> Result<Profile, ProfileError> {
        parse("t.toml", &MINIMAL.replace("PORTS", ports))
    }

    #[test]
    fn ports_accept_numbers_strings_and_ranges() {
        assert_eq!(
            with_ports("443").unwrap().checks[0].ports.to_string(),
            "443"
        );
        assert_eq!(
            with_ports("\"8002\"").unwrap().checks[0].ports.to_string(),
            "8002"
        );
        assert_eq!(
            with_ports("\"49152-65535\"").unwrap().checks[0]
                .ports
                .to_string(),
            "49152-65535"
        );
    }

    #[test]
    fn bad_ports_name_file_line_and_key() {
        for (ports, needle) in [
            ("0", "port 0"),
            ("\"0\"", "port 0"),
            ("70000", "above 65535"),
            ("\"1-70000\"", "above 65535"),
            ("\"443-80\"", "reversed: write 80-443"),
            ("\"https\"", "not a port or range"),
            ("-5", "negative"),
            ("\"-1\"", "port -1 is negative"),
            ("443.5", "443.5 is not a whole port number"),
            (
                "99999999999999999999",
                "port 99999999999999999999 is above 65535",
            ),
            ("\"10-\"", "'10-' is a range with an end missing"),
        ] {
            let e = with_ports(ports).unwrap_err();
            assert_eq!(e.line, Some(9), "{ports}: {e}");
            assert_eq!(e.key.as_deref(), Some("ports"));
            assert!(e.to_string().contains(needle), "{ports}: {e}");
            assert!(
                e.to_string()
                    .starts_with("profile t.toml, line 9, key 'ports'"),
                "{e}"
            );
        }
    }

    #[test]
    fn ports_of_another_type_say_what_is_expected() {
        let e = with_ports("true").unwrap_err().to_string();
        assert!(e.starts_with("profile t.toml, line 9"), "{e}");
        assert!(e.contains("expected a port like 443"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let text = MINIMAL
            .replace("PORTS", "443")
            .replace("required = true", "requird = true");
        let e = parse("t.toml", &text).unwrap_err();
        assert!(e.message.contains("requird"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn duplicate_ids_and_unknown_targets_are_errors() {
        let text = MINIMAL.replace("PORTS", "443");
        let dup = format!("{text}{}", &text[text.find("[[check]]").unwrap()..]);
        let e = parse("t.toml", &dup).unwrap_err();
        assert!(e.message.contains("duplicate check id 'one'"), "{e}");
        assert_eq!(e.line, Some(14), "the second 'id' line");

        let e = parse(
            "t.toml",
            &text.replace("target = \"box\"", "target = \"nas\""),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target"));
        assert!(e.message.contains("unknown target 'nas'"), "{e}");
    }

    #[test]
    fn syntax_errors_are_one_line() {
        let e = parse("t.toml", "role = \"x\"\ndescription = \n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn probe_must_fit_protocol() {
        let text = MINIMAL
            .replace("PORTS", "443")
            .replace("source = \"s\"", "source = \"s\"\nprobe = \"udp\"");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("probe"));
    }
}
