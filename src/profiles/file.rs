//! The profile file as written: strict TOML (unknown keys are errors), with spans so every
//! error can name its line.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ProfileFile {
    pub(super) role: Spanned<String>,
    pub(super) description: String,
    #[serde(default)]
    pub(super) targets: BTreeMap<String, Spanned<TargetFile>>,
    #[serde(default)]
    pub(super) check: Vec<Spanned<CheckFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct TargetFile {
    pub(super) description: String,
    #[serde(default)]
    pub(super) optional: bool,
    pub(super) default: Option<String>,
    pub(super) default_from: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct CheckFile {
    pub(super) id: Spanned<String>,
    pub(super) description: String,
    pub(super) protocol: ProtocolFile,
    pub(super) ports: Spanned<PortsFile>,
    pub(super) target: Spanned<String>,
    pub(super) required: bool,
    #[serde(default)]
    pub(super) expect: ExpectFile,
    #[serde(default)]
    pub(super) probe: Option<Spanned<ProbeFile>>,
    /// `probe = "nat"`: the second destination port the mapping is compared at.
    pub(super) second_port: Option<Spanned<i64>>,
    /// `probe = "loopback"`: the ports an install takes instead when the port is taken.
    pub(super) fallback_ports: Option<Spanned<PortsFile>>,
    pub(super) source: String,
    pub(super) fix: Option<String>,
    /// The fix in German, for `--lang de`.
    pub(super) fix_de: Option<String>,
    /// The check takes the port its target's host is given with (`relay=host:443`).
    #[serde(default)]
    pub(super) port_from_host: bool,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProtocolFile {
    Tcp,
    Udp,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum ExpectFile {
    #[default]
    Reachable,
    Blocked,
    Either,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProbeFile {
    Tcp,
    Udp,
    Loopback,
    Listening,
    Nat,
    Tls,
    Automate,
    Installer,
    Relay,
    Mysql,
    Http,
}

/// `ports` as written: a number (any size, so that 99999999999999999999 is "above 65535", not
/// a type error), a string, or a number with a fraction (a typo to name, not a parse error).
pub(super) enum PortsFile {
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
