//! What application probes find: data the report embeds, written by `probe::app` and put
//! into words by `crate::words::app`.

use serde::Serialize;

use super::tls::{TlsVersion, TlsVersions};
use super::AppProbe;

/// What an application probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct AppResult {
    pub probe: AppProbe,
    pub verdict: AppVerdict,
    /// One line for the report's reason.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// TLS probes: the versions the server accepts, the agent's offer, Schannel's handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_versions: Option<TlsVersions>,
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
    /// The proxy the probe went through (`--proxy`, or the agent's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The certificate's trust was not checked (`--insecure`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
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
    /// The handshake failed because the server accepts only TLS versions before 1.2
    /// (`accepted`); whether Schannel, the agent's TLS, still connects with them.
    OldTlsOnly {
        accepted: Vec<TlsVersion>,
        schannel_ok: bool,
    },
    /// Schannel, the TLS the agent uses, could not connect where rustls did; `settled` when
    /// the agent's own offer was known (else the OS default was tried). What rustls found
    /// is `inner`, with the verdict it had (`was`).
    SchannelFailed {
        error: String,
        code: Option<u32>,
        settled: bool,
        inner: Box<Finding>,
        was: AppVerdict,
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
    /// The proxy could not be reached (the OS's words, or no answer in time).
    ProxyUnreachable {
        error: String,
    },
    /// The proxy answered CONNECT with this status: it will not open the tunnel.
    ProxyRefused {
        status: u16,
        reason: String,
    },
    /// 407: the proxy wants credentials. `schemes`: what its `Proxy-Authenticate` headers
    /// offer (`Basic`, `NTLM`, ...), made safe; `sent`: whether Basic credentials went with
    /// the request (`--proxy-user`).
    ProxyAuth {
        schemes: Vec<String>,
        sent: bool,
    },
    /// What answered on the proxy's port is not an HTTP proxy.
    ProxyBroken,
    AutomateFailed {
        error: String,
    },
    /// The installer's first bytes are an MSI (an OLE compound file) of `size` bytes
    /// (`Content-Length`, if sent), or a ZIP for an installer token; `tls` is what the TLS
    /// probe before it found (`PlainHttp` over HTTP).
    Installer {
        size: Option<u64>,
        zip: bool,
        tls: Box<Finding>,
    },
    /// Not the installer: what came instead, the HTTP status and the page's title, if any.
    NoInstaller {
        instead: Instead,
        status: Option<u16>,
        title: Option<String>,
    },
    /// The download failed (the OS's or the TLS stack's words).
    InstallerFailed {
        error: String,
    },
    /// A relay port where nothing spoke first, as a relay does.
    RelayQuiet,
    /// Something greeted on a relay port (a relay never does): who, and its first line.
    RelaySpoke {
        speaker: Speaker,
        banner: String,
    },
}

/// What greeted on a port that should stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Http,
    Tls,
    Ssh,
    Other,
}

/// A file that came instead of the MSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A Windows program (`MZ`).
    Program,
    /// A ZIP where no installer token asked for one.
    Zip,
    Empty,
    Other,
}

/// What a download of the agent installer got instead of the MSI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instead {
    /// A web filter's block page (its words say blocked, denied, a category, a filter vendor).
    BlockPage,
    /// A sign-in page (a password field, "sign in"): a portal or an authenticating filter.
    LoginPage,
    /// 404: no installer at this URL.
    NotFound,
    /// 401 or 403 without a block page's words.
    Refused,
    /// A redirect, to `location`.
    Redirected { location: String },
    /// Another HTML page.
    Page,
    /// A file, but not an MSI.
    OtherFile { kind: FileKind },
    /// An MSI too short to be the agent's installer (`size` bytes).
    Short { size: u64 },
    /// No HTTP answer.
    NotHttp,
}

impl Finding {
    /// The proxy stopped the probe before it reached the target.
    pub fn is_proxy(&self) -> bool {
        matches!(
            self,
            Finding::ProxyUnreachable { .. }
                | Finding::ProxyRefused { .. }
                | Finding::ProxyAuth { .. }
                | Finding::ProxyBroken
        )
    }

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
                | Finding::SchannelFailed { .. }
                | Finding::OldTlsOnly { .. }
                | Finding::Installer { .. }
                | Finding::NoInstaller { .. }
                | Finding::RelaySpoke { .. }
        )
    }
}

/// What a proxy's 407 means for this tool, which signs in with Basic only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySignIn {
    /// Basic (or no scheme named), and no credentials sent: `--proxy-user` would do.
    Wanted,
    /// Basic, and the credentials sent were not accepted.
    Refused,
    /// Only NTLM, Negotiate or Kerberos: a Windows account's sign-in.
    Windows,
    /// Only other schemes (Digest, Bearer, a vendor's own).
    Unsupported,
}

impl ProxySignIn {
    pub fn of(schemes: &[String], sent: bool) -> ProxySignIn {
        let is = |name: &str| schemes.iter().any(|s| s.eq_ignore_ascii_case(name));
        let windows = |s: &String| {
            ["NTLM", "Negotiate", "Kerberos"]
                .iter()
                .any(|w| s.eq_ignore_ascii_case(w))
        };
        // No Proxy-Authenticate at all breaks the rule, but credentials are what it asks.
        if schemes.is_empty() || is("Basic") {
            if sent {
                ProxySignIn::Refused
            } else {
                ProxySignIn::Wanted
            }
        } else if schemes.iter().all(windows) {
            ProxySignIn::Windows
        } else {
            ProxySignIn::Unsupported
        }
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AppVerdict {
    Pass,
    Warn,
    Fail,
}

/// The TLS session and certificate as seen from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
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
    /// With a key, where serve leaves the port to the real service: whether this answer
    /// proves the path. A passing probe does, and so does a service speaking its own
    /// protocol even in a failure (a MySQL error, an HTTP 404, a certificate); silence or
    /// bytes of another protocol do not.
    pub fn proves_the_path(&self) -> bool {
        self.verdict != AppVerdict::Fail || self.finding.is_an_application_answer()
    }

    /// A finding with only a verdict; probes fill in the rest, the words stage the summary.
    pub fn new(probe: AppProbe, verdict: AppVerdict, finding: Finding) -> AppResult {
        AppResult {
            probe,
            verdict,
            finding,
            summary: String::new(),
            tls: None,
            tls_versions: None,
            automate_version: None,
            server: None,
            http_status: None,
            mysql_error: None,
            proxy: None,
            insecure: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProxySignIn;

    #[test]
    fn what_a_407_means_here() {
        let of = |schemes: &[&str], sent| {
            let schemes: Vec<String> = schemes.iter().map(ToString::to_string).collect();
            ProxySignIn::of(&schemes, sent)
        };
        assert_eq!(of(&["Basic"], false), ProxySignIn::Wanted);
        assert_eq!(of(&[], false), ProxySignIn::Wanted);
        assert_eq!(
            of(&["Negotiate", "NTLM", "Basic"], false),
            ProxySignIn::Wanted
        );
        assert_eq!(of(&["basic"], true), ProxySignIn::Refused);
        assert_eq!(of(&[], true), ProxySignIn::Refused);
        assert_eq!(of(&["NTLM", "Negotiate"], false), ProxySignIn::Windows);
        // Basic sent, but the proxy does not take it at all.
        assert_eq!(of(&["ntlm"], true), ProxySignIn::Windows);
        assert_eq!(of(&["Digest"], false), ProxySignIn::Unsupported);
        assert_eq!(of(&["NTLM", "Digest"], true), ProxySignIn::Unsupported);
    }
}
