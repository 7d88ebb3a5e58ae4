//! TLS versions as data: which the server accepts, which the Automate agent here offers and
//! what Schannel said (`crate::tlsoffer` judges the offer; `probe::app::versions` probes).

use serde::Serialize;

/// TLS versions: which the server accepts, which the Automate agent here offers (Windows,
/// agent role), and whether Schannel got through (Windows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TlsVersions {
    pub server_accepts: VersionMap,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_offers: Option<VersionMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schannel: Option<SchannelResult>,
}

impl TlsVersions {
    pub fn new(server_accepts: [Offer; 4]) -> TlsVersions {
        TlsVersions {
            server_accepts: VersionMap::from(server_accepts),
            agent_offers: None,
            schannel: None,
        }
    }
}

/// Yes, no or unknown for each version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct VersionMap {
    #[serde(rename = "TLS 1.0")]
    pub tls10: Offer,
    #[serde(rename = "TLS 1.1")]
    pub tls11: Offer,
    #[serde(rename = "TLS 1.2")]
    pub tls12: Offer,
    #[serde(rename = "TLS 1.3")]
    pub tls13: Offer,
}

impl From<[Offer; 4]> for VersionMap {
    fn from([tls10, tls11, tls12, tls13]: [Offer; 4]) -> VersionMap {
        VersionMap {
            tls10,
            tls11,
            tls12,
            tls13,
        }
    }
}

impl VersionMap {
    pub fn get(&self, v: TlsVersion) -> Offer {
        match v {
            TlsVersion::Tls10 => self.tls10,
            TlsVersion::Tls11 => self.tls11,
            TlsVersion::Tls12 => self.tls12,
            TlsVersion::Tls13 => self.tls13,
        }
    }

    /// The versions that are `yes`, oldest first.
    pub fn yes(&self) -> Vec<TlsVersion> {
        TlsVersion::ALL
            .into_iter()
            .filter(|v| self.get(*v) == Offer::Yes)
            .collect()
    }
}

/// The handshake through Schannel, Windows' own TLS, which the agent uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SchannelResult {
    pub ok: bool,
    /// The versions asked for by name, as the agent's runtime would; absent: the OS default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<Vec<TlsVersion>>,
    /// Why it failed: the SEC_E_* name and code, or the OS's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The SECURITY_STATUS, where Schannel gave one.
    #[serde(skip)]
    pub code: Option<u32>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum TlsVersion {
    #[serde(rename = "TLS 1.0")]
    Tls10,
    #[serde(rename = "TLS 1.1")]
    Tls11,
    #[serde(rename = "TLS 1.2")]
    Tls12,
    #[serde(rename = "TLS 1.3")]
    Tls13,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }

    /// The wire version (`ProtocolVersion` in a ClientHello or ServerHello).
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }
}

/// Whether the agent offers a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Offer {
    Yes,
    No,
    Unknown,
}
