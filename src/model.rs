//! The validated model every later stage works on. Values here are already checked:
//! downstream code never re-validates them.

use std::fmt;

use serde::Serialize;

/// Transport protocol of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// Connect (TCP) or send a datagram and wait (UDP) to the target.
    Connect,
    /// Bind the port on the target address of this machine and exchange traffic with
    /// ourselves: proves the local stack and firewall let the port through on loopback.
    Loopback,
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
        !matches!(self, ProbeKind::Loopback | ProbeKind::Listening)
    }
}

/// Application probes that run once a TCP port is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProbe {
    /// TLS handshake: version, certificate, trust, expiry.
    Tls,
    /// TLS, then `GET /LabTech/agent.aspx`: is ConnectWise Automate behind it?
    Automate,
    /// The same request over plain HTTP, for an agent set to `http://`.
    #[serde(rename = "automate-http")]
    AutomateHttp,
    /// The MySQL/MariaDB greeting, or the error it sends this host.
    Mysql,
    /// Plain HTTP: status line and `Server` header.
    Http,
}

impl AppProbe {
    pub fn as_str(self) -> &'static str {
        match self {
            AppProbe::Tls => "tls",
            AppProbe::Automate => "automate",
            AppProbe::AutomateHttp => "automate-http",
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
    pub default: Option<String>,
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
    if FLAG_TARGETS.contains(&name) {
        format!("--{name} HOST")
    } else {
        format!("--target {name}=HOST")
    }
}

/// What a probe found on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::OpenFiltered => "open|filtered",
            State::Error => "error",
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

// What application probes find: data the report embeds, written by `probe::app`.

/// What an application probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppResult {
    pub probe: AppProbe,
    pub verdict: AppVerdict,
    /// One line for the report's reason.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// The Automate version from `/LabTech/agent.aspx`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automate_version: Option<String>,
    /// MySQL server version, or the HTTP `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_error: Option<u16>,
    /// The certificate's trust was not checked (`--insecure`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// What was found, as data; `summary` is its sentence, written by the words stage.
    #[serde(skip)]
    pub finding: Finding,
}

/// What an application probe found, as data (the rest is in [`AppResult`]'s fields):
/// `crate::words::app` says it in the user's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Connected, then nothing answered the probe within the timeout.
    NoAnswer {
        timeout: std::time::Duration,
    },
    /// MySQL: closed without a greeting, or a short broken one.
    MysqlClosed,
    MysqlBroken,
    /// A greeting from MySQL or MariaDB (`product`); the version is in `server`.
    MysqlGreeting {
        product: &'static str,
    },
    /// Error 1130: the database refuses this host.
    MysqlRefusesHost {
        message: String,
    },
    MysqlError {
        code: u16,
        message: String,
    },
    NotMysql,
    HttpFailed {
        error: String,
    },
    /// A status line (the status is in `http_status`, the `Server` header in `server`).
    HttpStatus {
        reason: String,
    },
    NotHttp,
    TlsSetup {
        error: String,
    },
    TlsHandshake {
        error: String,
    },
    NoCertificate,
    CertificateUnreadable,
    /// The certificate (described by `tls`) and its first problem, if any.
    Certificate(CertificateFinding),
    /// Automate answered (its version in `automate_version`); `tls` is what the TLS probe
    /// before it found.
    Automate {
        tls: Box<Finding>,
    },
    /// Something answered on the Automate port, but not Automate (status and `Server`, if any).
    NotAutomate,
    /// Automate over plain HTTP (an agent set to `http://`): no TLS to judge.
    PlainHttp,
    AutomateFailed {
        error: String,
    },
}

impl Finding {
    /// The service spoke its own protocol (a greeting, an error, a status line, a
    /// certificate), as opposed to silence, a closed connection or bytes of another protocol.
    pub fn is_an_application_answer(&self) -> bool {
        matches!(
            self,
            Finding::MysqlGreeting { .. }
                | Finding::MysqlRefusesHost { .. }
                | Finding::MysqlError { .. }
                | Finding::HttpStatus { .. }
                | Finding::Certificate(_)
                | Finding::Automate { .. }
                | Finding::NotAutomate
        )
    }
}

/// The first problem with a certificate, in order of what a user must fix first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateFinding {
    /// Not for `host`, the name asked for; the names it is for are in `tls`.
    WrongName {
        host: String,
    },
    Expired {
        days: i64,
    },
    NotYetValid,
    /// Trusted by this machine's store alone: TLS inspection or a private CA.
    TrustedOnlyHere,
    TrustedNowhere,
    ExpiresSoon {
        days: i64,
    },
    /// `--insecure`, and trusted nowhere: trust was not checked.
    Unchecked,
    Fine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppVerdict {
    Pass,
    Warn,
    Fail,
}

/// The TLS session and certificate as seen from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    pub version: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub issuer: String,
    pub not_after: String,
    pub days_left: i64,
    /// Trusted by the public (webpki) roots.
    pub trusted_public: bool,
    /// Trusted by this machine's certificate store.
    pub trusted_system: bool,
    /// Trusted by `--ca-file`, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_ca_file: Option<bool>,
}

impl AppResult {
    /// A finding with only a verdict; probes fill in the rest, the words stage the summary.
    pub fn new(probe: AppProbe, verdict: AppVerdict, finding: Finding) -> AppResult {
        AppResult {
            probe,
            verdict,
            finding,
            summary: String::new(),
            tls: None,
            automate_version: None,
            server: None,
            http_status: None,
            mysql_error: None,
            insecure: false,
        }
    }
}

/// Appends `item` unless the list has it: lists of hosts, addresses and targets keep the
/// order in which they were first named.
pub fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}
