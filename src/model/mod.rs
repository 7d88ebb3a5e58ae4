//! The validated model every later stage works on. Values here are already checked:
//! downstream code never re-validates them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Transport protocol of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// Upper-case name as firewall admins write it ("TCP 443").
    pub fn upper(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// An inclusive, non-empty port range; `start >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// Builds a range; `None` when it contains port 0 or is reversed.
    pub fn new(start: u16, end: u16) -> Option<PortRange> {
        (start >= 1 && start <= end).then_some(PortRange { start, end })
    }

    pub fn single(port: u16) -> Option<PortRange> {
        PortRange::new(port, port)
    }

    pub fn start(self) -> u16 {
        self.start
    }

    pub fn end(self) -> u16 {
        self.end
    }

    /// How many ports the range holds.
    pub fn count(self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    pub fn contains(self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    pub fn is_single(self) -> bool {
        self.start == self.end
    }

    pub fn iter(self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// What the check expects of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The path must be open.
    Reachable,
    /// The path must be closed or dropped (for example a database port seen from outside).
    Blocked,
    /// Either is right (80 beside 443): the state is reported, and the check's `fix` is added
    /// as a note when the path is not open.
    Either,
}

/// How a check is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// Connect (TCP) or send a datagram and wait (UDP) to the target.
    Connect,
    /// Bind the port on the target address of this machine and exchange traffic with
    /// ourselves: proves the local stack and firewall let the port through on loopback.
    /// `fallback`: where the port is taken by another program and nothing is installed yet,
    /// the ports an install takes instead, first free first (the agent's tray: 42000-42009).
    Loopback { fallback: Option<PortRange> },
    /// Connect, then ask the application what it is (TCP only).
    App(AppProbe),
    /// On this machine: a service listens on the port (TCP: a loopback connect is accepted;
    /// UDP: the port is bound), and which process holds it.
    Listening,
    /// UDP with the key: one socket sends a mapped probe to the check's port and to
    /// `second` on the same host; the two source addresses `serve` saw tell how this
    /// site's NAT maps (see `crate::nat`).
    Nat { second: u16 },
}

impl ProbeKind {
    /// Whether the far side of this probe is a remote port (`serve` can stand in for it).
    pub fn is_remote(self) -> bool {
        !matches!(self, ProbeKind::Loopback { .. } | ProbeKind::Listening)
    }
}

/// Application probes that run once a TCP port is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AppProbe {
    /// TLS handshake: version, certificate, trust, expiry.
    Tls,
    /// TLS, then `GET /LabTech/agent.aspx`: is ConnectWise Automate behind it?
    Automate,
    /// The same request over plain HTTP, for an agent set to `http://`.
    #[serde(rename = "automate-http")]
    AutomateHttp,
    /// TLS, then the first bytes of the agent installer as an install script downloads it
    /// (`/LabTech/Deployment.aspx`): an MSI, or what a web filter or portal put in its place.
    Installer,
    /// The same download over plain HTTP, for a server set as `http://`.
    #[serde(rename = "installer-http")]
    InstallerHttp,
    /// A ScreenConnect relay port: listen without speaking; a greeting names what answers.
    Relay,
    /// The MySQL/MariaDB greeting, or the error it sends this host.
    Mysql,
    /// Plain HTTP: status line and `Server` header.
    Http,
}

impl AppProbe {
    /// Speaks HTTP or HTTPS: the probes a proxy carries.
    pub fn is_web(self) -> bool {
        !matches!(self, AppProbe::Mysql | AppProbe::Relay)
    }

    /// Shakes hands with TLS.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            AppProbe::Tls | AppProbe::Automate | AppProbe::Installer
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppProbe::Tls => "tls",
            AppProbe::Automate => "automate",
            AppProbe::AutomateHttp => "automate-http",
            AppProbe::Installer => "installer",
            AppProbe::InstallerHttp => "installer-http",
            AppProbe::Relay => "relay",
            AppProbe::Mysql => "mysql",
            AppProbe::Http => "http",
        }
    }
}

/// A named machine a check aims at (`server`, `peer`, or any name a custom profile uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub name: String,
    pub description: String,
    /// Checks on an optional target are skipped when nobody names it.
    pub optional: bool,
    /// Host used when nobody names the target.
    pub default: Option<crate::endpoint::Host>,
    /// Another target whose host is used when nobody names this one.
    pub default_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub id: String,
    pub description: String,
    pub protocol: Protocol,
    pub ports: PortRange,
    pub target: String,
    pub required: bool,
    pub expect: Expect,
    pub probe: ProbeKind,
    pub source: String,
    /// What to change when the check does not pass; may use `{proto}`, `{ports}`,
    /// `{host}`, `{address}` and `{where}`.
    pub fix: Option<String>,
    /// `fix` in German (`--lang de`); the English one stands in when it is missing.
    pub fix_de: Option<String>,
    /// The check goes to the port its host is given with (`--target relay=host:443`, a URL),
    /// where one is: a ScreenConnect server on other ports than the defaults.
    pub port_from_host: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub role: String,
    pub description: String,
    pub targets: Vec<TargetSpec>,
    pub checks: Vec<Check>,
}

impl Profile {
    pub fn target(&self, name: &str) -> Option<&TargetSpec> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Whether `automate-ports serve` can stand in for the far side of `check`: a remote
    /// port on a target the user names. A target with a fixed default host (the public
    /// mediator, loopback) is never a machine serve runs on, so it is probed without the key.
    pub fn serve_stands_in(&self, check: &Check) -> bool {
        let fixed_host = self
            .target(&check.target)
            .is_some_and(|t| t.default.is_some());
        check.probe.is_remote() && !fixed_host
    }
}

/// Target names that have a flag of their own on the command line.
pub const FLAG_TARGETS: &[&str] = &["server", "mediator", "db", "peer", "screenconnect"];

/// How a user names a target on the command line: `--server HOST` or `--target NAME=HOST`.
pub fn target_flag(name: &str) -> String {
    // The installer download goes to the server's hosts once asked for.
    if name == "installer" {
        return "--installer".to_string();
    }
    if FLAG_TARGETS.contains(&name) {
        format!("--{name} HOST")
    } else {
        format!("--target {name}=HOST")
    }
}

/// What a probe found on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum State {
    /// TCP handshake done, or a UDP reply arrived.
    #[serde(rename = "open")]
    Open,
    /// Refused: TCP RST, or ICMP port unreachable for UDP.
    #[serde(rename = "closed")]
    Closed,
    /// No answer in time, or host unreachable / administratively prohibited.
    #[serde(rename = "filtered")]
    Filtered,
    /// UDP silence: open but quiet, or dropped; cannot be told apart from here.
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    /// A local problem stopped the probe (name did not resolve, no route, no descriptors).
    #[serde(rename = "error")]
    Error,
    /// The run's deadline came first: the operating system had not returned from the probe.
    #[serde(rename = "unfinished")]
    Unfinished,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::OpenFiltered => "open|filtered",
            State::Error => "error",
            State::Unfinished => "unfinished",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which address families to probe (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Appends `item` unless the list has it: lists of hosts, addresses and targets keep the
/// order in which they were first named.
/// Text from outside this program (a report file, a remote server, a process name) as it
/// may reach a terminal or a document: control characters (escape sequences, bells, line
/// breaks) and bidirectional overrides become U+FFFD, so it can neither clear a screen,
/// retitle a window nor reorder a line. Each output format escapes its own syntax on top.
pub fn defang(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Text the far side chose (a `Server` header, a certificate's names, a MySQL version or
/// error) as it may be shown: control characters (terminal escapes, bells, line breaks) and
/// bidirectional overrides become U+FFFD, and at most 256 characters are kept, so nothing a
/// remote machine sends can clear a technician's screen, retitle the window or reorder a
/// report line.
pub fn untrusted(text: &str) -> String {
    // Above the longest DNS name (253), so certificate names still match as they are.
    const MAX_CHARS: usize = 256;
    let kept: String = text.chars().take(MAX_CHARS).collect();
    let mut out = crate::model::defang(&kept);
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

pub fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

mod app;
mod tls;
mod trace;
pub use app::*;
pub use tls::*;
pub use trace::*;
