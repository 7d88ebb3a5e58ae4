//! Which TLS versions the Automate agent on this Windows machine will offer, judged from what
//! decides it: the Windows version, Schannel's protocol settings, the .NET runtime the agent
//! runs on and the .NET TLS settings. Pure: the values are read in `agentconfig` (Windows);
//! here they are only judged, each rule citing Microsoft's documentation. Where the
//! documentation does not settle a version, it is `unknown`, never guessed: an application
//! may ask for more in its own code than .NET's defaults.

pub use crate::model::{Offer, TlsVersion};

/// Schannel's protocol switches: `Enabled = 0` disables a protocol for every Schannel client;
/// `DisabledByDefault = 1` leaves it out unless the application asks for it by name.
pub const SRC_SCHANNEL_KEYS: &str = "Microsoft: Transport Layer Security (TLS) registry settings, learn.microsoft.com/windows-server/security/tls/tls-registry-settings";

/// Which versions each Windows release has, and which its clients offer by default: TLS 1.1
/// and 1.2 from Windows 7 / Server 2008 R2, where they are disabled by default for clients;
/// enabled by default from Windows 8 / Server 2012; TLS 1.3 from Windows 11 / Server 2022.
pub const SRC_SCHANNEL_OS: &str = "Microsoft: Protocols in TLS/SSL (Schannel SSP), learn.microsoft.com/windows/win32/secauthn/protocols-in-tls-ssl--schannel-ssp-";

/// .NET Framework: `SystemDefaultTlsVersions = 1` lets the OS choose; `SchUseStrongCrypto = 1`
/// offers TLS 1.0, 1.1 and 1.2; applications targeting 4.7 or later use the OS default,
/// 4.6 offers TLS 1.0 to 1.2, 3.5 and 4.5 offer SSL 3.0 and TLS 1.0 unless a key says otherwise
/// (for 3.5 both keys need the TLS update, KB3154518 and its successors, on Windows 7).
pub const SRC_DOTNET: &str = "Microsoft: Transport Layer Security (TLS) best practices with the .NET Framework, learn.microsoft.com/dotnet/framework/network-programming/tls";

/// A registry DWORD as the agent would see it: the same in both registry views (or absent
/// from both), or different between the 64-bit and the 32-bit view, where which one the
/// agent reads depends on its bitness, which is not known from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dword {
    #[default]
    Absent,
    Is(u32),
    /// The views disagree.
    Differs,
}

impl Dword {
    /// Both views' values (64-bit, 32-bit) as one.
    pub fn of_views(native: Option<u32>, wow: Option<u32>) -> Dword {
        match (native, wow) {
            (None, None) => Dword::Absent,
            (Some(a), Some(b)) if a == b => Dword::Is(a),
            _ => Dword::Differs,
        }
    }
}

/// The .NET runtime the agent's service runs on, from `LTSVC.exe.config`'s `supportedRuntime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// CLR 2.0 (`v2.0.50727`): .NET Framework 2.0 to 3.5.
    Clr2,
    /// CLR 4 (`v4.0`), with the target framework from `sku` where given (4, 6 for 4.6).
    Clr4 { target: Option<(u32, u32)> },
}

/// The .NET TLS keys under `SOFTWARE\Microsoft\.NETFramework\<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetKeys {
    pub sch_use_strong_crypto: Dword,
    pub system_default_tls_versions: Dword,
}

/// `SCHANNEL\Protocols\<version>\Client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolKeys {
    pub enabled: Option<u32>,
    pub disabled_by_default: Option<u32>,
}

/// Everything on this machine that decides the agent's offer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Major, minor, build (`CurrentMajorVersionNumber` etc.; 6.1 is Windows 7).
    pub windows: Option<(u32, u32, u32)>,
    pub runtime: Option<Runtime>,
    /// `v2.0.50727`, `v4.0.30319`.
    pub net2: NetKeys,
    pub net4: NetKeys,
    /// TLS 1.0 to 1.3, in [`TlsVersion::ALL`] order.
    pub schannel: [ProtocolKeys; 4],
}

/// What the agent will offer, per version, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOffer {
    pub offers: [Offer; 4],
    /// What the agent asks Schannel for: `None` is the OS default set.
    pub asks: Option<Vec<TlsVersion>>,
    /// The rules that decided it, each with its source.
    pub basis: Vec<&'static str>,
}

impl AgentOffer {
    pub fn offer(&self, v: TlsVersion) -> Offer {
        self.offers[v as usize]
    }

    /// Every version settled (yes or no).
    pub fn settled(&self) -> bool {
        !self.offers.contains(&Offer::Unknown)
    }
}

/// Whether this Windows has `v` at all.
fn os_has(windows: (u32, u32, u32), v: TlsVersion) -> bool {
    let (major, minor, build) = windows;
    match v {
        TlsVersion::Tls10 => true,
        TlsVersion::Tls11 | TlsVersion::Tls12 => (major, minor) >= (6, 1),
        // Server 2022 is build 20348, Windows 11 22000.
        TlsVersion::Tls13 => major >= 10 && build >= 20348,
    }
}

/// Whether Schannel offers `v` when the application asks for the OS default.
fn os_default(windows: (u32, u32, u32), keys: ProtocolKeys, v: TlsVersion) -> Offer {
    if !os_has(windows, v) || keys.enabled == Some(0) {
        return Offer::No;
    }
    match keys.disabled_by_default {
        Some(0) => Offer::Yes,
        Some(_) => Offer::No,
        // Windows 7 / 2008 R2 leaves 1.1 and 1.2 out for clients unless told.
        None if (windows.0, windows.1) == (6, 1) && v != TlsVersion::Tls10 => Offer::No,
        // Windows 11 has been turning TLS 1.0 and 1.1 off by default release by release:
        // which build does is not settled by the page cited.
        None if windows.2 >= 22000 && v < TlsVersion::Tls12 => Offer::Unknown,
        None => Offer::Yes,
    }
}

/// What the agent's runtime asks Schannel for, by .NET's documented defaults.
enum Asks {
    /// The OS default (Schannel's own protocol settings decide).
    OsDefault,
    /// These versions by name.
    These(Vec<TlsVersion>),
    /// The documentation does not settle it.
    Unsettled,
}

fn runtime_asks(settings: &Settings) -> Asks {
    use TlsVersion::{Tls10, Tls11, Tls12};
    let strong = || Asks::These(vec![Tls10, Tls11, Tls12]);
    let old = || Asks::These(vec![Tls10]);
    let Some(runtime) = settings.runtime else {
        return Asks::Unsettled;
    };
    let (keys, target) = match runtime {
        Runtime::Clr2 => (settings.net2, Some((3, 5))),
        Runtime::Clr4 { target } => (settings.net4, target),
    };
    if keys.system_default_tls_versions == Dword::Differs
        || keys.sch_use_strong_crypto == Dword::Differs
    {
        return Asks::Unsettled;
    }
    if keys.system_default_tls_versions == Dword::Is(1) {
        return Asks::OsDefault;
    }
    match target {
        Some(t) if t >= (4, 7) => Asks::OsDefault,
        Some(t) if t >= (4, 6) => match keys.sch_use_strong_crypto {
            Dword::Is(0) => old(),
            _ => strong(),
        },
        _ if keys.sch_use_strong_crypto == Dword::Is(1) => strong(),
        Some(_) => old(),
        // A CLR 4 application without its target framework: 4.5 or 4.8 alike.
        None => Asks::Unsettled,
    }
}

/// Judges the agent's offer from `settings`.
pub fn judge(settings: &Settings) -> AgentOffer {
    let mut basis = vec![SRC_SCHANNEL_OS, SRC_SCHANNEL_KEYS];
    let Some(windows) = settings.windows else {
        return AgentOffer {
            offers: [Offer::Unknown; 4],
            asks: None,
            basis: Vec::new(),
        };
    };
    let asks = runtime_asks(settings);
    if settings.runtime.is_some() {
        basis.push(SRC_DOTNET);
    }
    let mut offers = [Offer::Unknown; 4];
    for v in TlsVersion::ALL {
        let keys = settings.schannel[v as usize];
        offers[v as usize] = if !os_has(windows, v) || keys.enabled == Some(0) {
            Offer::No
        } else {
            match &asks {
                Asks::OsDefault => os_default(windows, keys, v),
                Asks::These(list) if list.contains(&v) => Offer::Yes,
                Asks::These(_) => Offer::No,
                Asks::Unsettled => Offer::Unknown,
            }
        };
    }
    AgentOffer {
        offers,
        asks: match asks {
            Asks::These(list) => Some(list),
            Asks::OsDefault | Asks::Unsettled => None,
        },
        basis,
    }
}

/// `<supportedRuntime version="v4.0" sku=".NETFramework,Version=v4.6.2" />` in the agent's
/// `LTSVC.exe.config`: the first one listed is the runtime it prefers.
pub fn parse_supported_runtime(config: &str) -> Option<Runtime> {
    let start = config.find("<supportedRuntime")?;
    let tag = &config[start..];
    let tag = &tag[..tag.find('>')?];
    let attr = |name: &str| {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = &tag[at..];
        Some(rest[..rest.find('"')?].to_string())
    };
    let version = attr("version")?;
    if version.starts_with("v2.") {
        return Some(Runtime::Clr2);
    }
    if !version.starts_with("v4.") {
        return None;
    }
    let target = attr("sku").and_then(|sku| {
        let v = sku.split("Version=v").nth(1)?;
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
    });
    Some(Runtime::Clr4 { target })
}

#[cfg(test)]
mod tests;
