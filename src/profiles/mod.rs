//! Role profiles: the TOML files under `profiles/` (embedded in the binary) or a user's own
//! file, parsed strictly ([`file`]) and validated ([`validate`]) into the [`Profile`] model.

mod file;
mod validate;

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use crate::model::Profile;
pub use validate::{is_name, parse, parse_port_spec};

/// The built-in profiles, in the order `profiles list` shows them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("agent", include_str!("../../profiles/agent.toml")),
    ("server", include_str!("../../profiles/server.toml")),
    (
        "server-local",
        include_str!("../../profiles/server-local.toml"),
    ),
    ("split-db", include_str!("../../profiles/split-db.toml")),
    ("tunnel", include_str!("../../profiles/tunnel.toml")),
    (
        "screenconnect",
        include_str!("../../profiles/screenconnect.toml"),
    ),
    (
        "screenconnect-client",
        include_str!("../../profiles/screenconnect-client.toml"),
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
    use crate::model::{Expect, PortRange, ProbeKind};

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
        // "When 443 is open, 80 inbound may be closed": either state is right.
        let http = server
            .checks
            .iter()
            .find(|c| c.id == "server-http")
            .unwrap();
        assert_eq!(http.expect, Expect::Either);
        // Redirectors use the relay ports; 70 is legacy and stays closed.
        assert!(server
            .checks
            .iter()
            .all(|c| c.ports != PortRange::single(70).unwrap()));
        let tunnel = builtin("tunnel").unwrap();
        assert!(
            tunnel.checks.iter().all(|c| !c.required),
            "tunnels are optional features"
        );
        let agent = builtin("agent").unwrap();
        let tray = agent.checks.iter().find(|c| c.id == "agent-tray").unwrap();
        assert_eq!(
            tray.probe,
            ProbeKind::Loopback {
                fallback: PortRange::new(42000, 42009)
            }
        );
        assert!(agent.target("peer").unwrap().optional);
        // "The local firewall must allow 42000 UDP between agents": required once --peer names one.
        let wakeup = agent
            .checks
            .iter()
            .find(|c| c.id == "agent-wakeup")
            .unwrap();
        assert!(wakeup.required);
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
    fn fallback_ports_go_with_a_udp_loopback_and_hold_its_port() {
        let udp = |ports: &str, extra: &str| {
            MINIMAL
                .replace("PORTS", ports)
                .replace("protocol = \"tcp\"", "protocol = \"udp\"")
                .replace("source = \"s\"", &format!("source = \"s\"\n{extra}"))
        };
        let ok = parse(
            "t.toml",
            &udp(
                "\"42000\"",
                "probe = \"loopback\"\nfallback-ports = \"42000-42009\"",
            ),
        )
        .unwrap();
        assert_eq!(
            ok.checks[0].probe,
            ProbeKind::Loopback {
                fallback: PortRange::new(42000, 42009)
            }
        );
        for (ports, extra, want) in [
            (
                "\"42000\"",
                "fallback-ports = \"42000-42009\"",
                "only goes with probe = \"loopback\"",
            ),
            (
                "\"42000\"",
                "probe = \"loopback\"\nfallback-ports = \"42001-42009\"",
                "must hold the check's one port 42000",
            ),
            (
                "\"42000-42001\"",
                "probe = \"loopback\"\nfallback-ports = \"42000-42009\"",
                "must hold the check's one port",
            ),
            (
                "\"42000\"",
                "probe = \"loopback\"\nfallback-ports = \"0-9\"",
                "port",
            ),
        ] {
            let e = parse("t.toml", &udp(ports, extra)).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("fallback-ports"), "{e}");
            assert!(e.message.contains(want), "{e}");
            assert!(e.line.is_some(), "{e}");
        }
        let tcp = MINIMAL.replace("PORTS", "443").replace(
            "source = \"s\"",
            "source = \"s\"\nprobe = \"loopback\"\nfallback-ports = \"443-444\"",
        );
        let e = parse("t.toml", &tcp).unwrap_err();
        assert!(e.message.contains("over UDP"), "{e}");
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
