//! The installed Automate agent's own settings, so that on a customer PC
//! `check --role agent` needs no `--server` and checks what the agent really uses: the
//! registry key `HKLM\SOFTWARE\LabTech\Service` (or its `WOW6432Node` twin; `LabTechBackup`
//! when those name no server) holds `Server Address` (servers separated by `|` or `;`, each
//! with its scheme and port), `TrayPort`, the agent's `ID`, `ClientID`, `LocationID` and
//! `Version`; its `Settings` subkey holds the proxy (`ProxyServerURL`; of `ProxyUsername`
//! only whether it is set, see [`AgentProxy`]). The parsing is plain text and tested
//! everywhere; only the reading is Windows-only, and the service states come from the
//! Service Control Manager (`crate::sys`), never from text.

use serde::Serialize;

use crate::endpoint::Endpoint;

/// What the agent's settings say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// Each server as the agent reaches it (`https://host`, `http://host:8080`), in order.
    pub servers: Vec<Endpoint>,
    pub tray_port: Option<u16>,
    /// `LTService` and `LTSvcMon`, with their state.
    pub services: Vec<(String, ServiceState)>,
    pub agent: AgentInfo,
    /// The proxy the agent goes through, if set.
    pub proxy: Option<AgentProxy>,
    /// Where the settings were read (`HKLM\SOFTWARE\LabTech\Service`, or the backup key).
    pub key: String,
}

/// The agent's identity in Automate, for joining fleet reports with Automate's own data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct AgentInfo {
    /// The computer's ID in Automate (`ID`).
    pub id: Option<u64>,
    pub client_id: Option<u64>,
    pub location_id: Option<u64>,
    pub version: Option<String>,
    /// What the agent recorded about reaching its server (`crate::evidence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::evidence::Evidence>,
}

/// The agent's proxy: its URL, and whether the agent has credentials for it. The agent keeps
/// `ProxyServerURL`, `ProxyUsername` and `ProxyPassword` side by side in `Settings`, user
/// and password encrypted (the community LabTech PowerShell module's `Get-LTProxy` reads
/// all three there and decrypts them with the agent's own key; `Set-LTProxy` writes them).
/// This tool never decrypts them, so it knows only that a user name is set: the password
/// for the check comes from `--proxy-user` and its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProxy {
    pub url: String,
    /// `ProxyUsername` is not empty. `Set-LTProxy` encrypts an empty name too, which gives a
    /// value as long as a short name's; telling them apart would take decrypting it.
    pub credentials: bool,
}

pub use crate::sys::ServiceState;

/// The agent's service names: the agent itself and its monitor.
pub const SERVICES: [&str; 2] = ["LTService", "LTSvcMon"];

/// The servers in `Server Address`, as the agent uses them: `https://a.example.com/|
/// ~http://b.example.com:8080` gives `https://a.example.com` and `http://b.example.com:8080`.
/// A `~` (seen in real settings) is dropped; entries that are no server are skipped.
pub fn parse_server_address(raw: &str) -> Vec<Endpoint> {
    let mut servers: Vec<Endpoint> = Vec::new();
    for entry in raw.split(['|', ';']) {
        let entry = entry.replace('~', "");
        let Ok(endpoint) = Endpoint::parse(&entry) else {
            continue;
        };
        let shown = endpoint.to_string();
        if !servers
            .iter()
            .any(|s| s.to_string().eq_ignore_ascii_case(&shown))
        {
            servers.push(endpoint);
        }
    }
    servers
}

/// `TrayPort`: a number (REG_DWORD or text); 0 or out of range means "not set".
pub fn parse_tray_port(raw: &str) -> Option<u16> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

/// An ID value (REG_DWORD or text); empty or not a number is "not set".
pub fn parse_id(raw: &str) -> Option<u64> {
    raw.trim().parse().ok()
}

/// `ProxyServerURL` as agents store it (`http://proxy:8080`, or `proxy:8080`); empty is none.
pub fn parse_proxy(url: &str, username: &str) -> Option<AgentProxy> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    Some(AgentProxy {
        url,
        credentials: !username.trim().is_empty(),
    })
}

/// Reads the installed agent's settings; `None` when no agent is installed here.
#[cfg(windows)]
pub fn read() -> Option<AgentConfig> {
    use winreg::enums::HKEY_LOCAL_MACHINE;
    use winreg::RegKey;

    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let text = |key: &RegKey, name: &str| -> Option<String> {
        key.get_value::<String, _>(name)
            .or_else(|_| key.get_value::<u32, _>(name).map(|n| n.to_string()))
            .ok()
    };
    let keys = [
        "SOFTWARE\\LabTech\\Service",
        "SOFTWARE\\WOW6432Node\\LabTech\\Service",
        "SOFTWARE\\LabTechBackup\\Service",
        "SOFTWARE\\WOW6432Node\\LabTechBackup\\Service",
    ];
    let opened: Vec<(&str, RegKey)> = keys
        .iter()
        .filter_map(|path| hklm.open_subkey(path).ok().map(|k| (*path, k)))
        .collect();
    let (path, key) = opened
        .iter()
        .find(|(_, k)| text(k, "Server Address").is_some_and(|s| !s.trim().is_empty()))
        .or_else(|| opened.first())?;
    let settings = key.open_subkey("Settings").ok();
    let setting = |name: &str| {
        settings
            .as_ref()
            .and_then(|s| text(s, name))
            .unwrap_or_default()
    };
    Some(AgentConfig {
        servers: parse_server_address(&text(key, "Server Address").unwrap_or_default()),
        tray_port: text(key, "TrayPort").and_then(|raw| parse_tray_port(&raw)),
        services: SERVICES
            .iter()
            .map(|name| ((*name).to_string(), crate::sys::service_state(name)))
            .collect(),
        agent: AgentInfo {
            id: text(key, "ID").and_then(|v| parse_id(&v)),
            client_id: text(key, "ClientID").and_then(|v| parse_id(&v)),
            location_id: text(key, "LocationID").and_then(|v| parse_id(&v)),
            version: text(key, "Version").filter(|v| !v.trim().is_empty()),
            evidence: evidence(|name| text(key, name)),
        },
        proxy: parse_proxy(&setting("ProxyServerURL"), &setting("ProxyUsername")),
        key: format!("HKLM\\{path}"),
    })
}

/// The agent's record of reaching its server, dated by this machine's local clock and read
/// in the date order of the culture the service writes in (the system account's, `.DEFAULT`;
/// the user's where that has none).
#[cfg(windows)]
fn evidence(text: impl Fn(&str) -> Option<String>) -> Option<crate::evidence::Evidence> {
    use crate::evidence::{order_of, stamp, Civil, Evidence};
    use winreg::enums::{HKEY_CURRENT_USER, HKEY_USERS};
    use winreg::RegKey;

    let short_date = [
        (HKEY_USERS, ".DEFAULT\\Control Panel\\International"),
        (HKEY_CURRENT_USER, "Control Panel\\International"),
    ]
    .iter()
    .find_map(|(root, path)| {
        RegKey::predef(*root)
            .open_subkey(path)
            .ok()?
            .get_value::<String, _>("sShortDate")
            .ok()
    });
    let order = short_date.as_deref().and_then(order_of);
    let now = Some(Civil::from(crate::sys::local_now()));
    let at = |name: &str| text(name).and_then(|v| stamp(&v, order, now));
    let found = Evidence {
        last_contact: at("LastSuccessStatus"),
        heartbeat_sent: at("HeartbeatLastSent"),
        heartbeat_received: at("HeartbeatLastReceived"),
    };
    (!found.is_empty()).then_some(found)
}

/// What decides the TLS versions the agent offers: the Windows version, Schannel's client
/// protocol keys, the .NET TLS keys in both registry views, and the runtime named in the
/// agent's `LTSVC.exe.config` (in `%SystemRoot%\LTSvc`, where the agent installs).
#[cfg(windows)]
pub fn read_tls() -> crate::tlsoffer::Settings {
    use crate::tlsoffer::{Dword, NetKeys, ProtocolKeys, Settings, TlsVersion};
    use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_32KEY, KEY_WOW64_64KEY};
    use winreg::RegKey;

    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let dword = |path: &str, name: &str, view: u32| -> Option<u32> {
        hklm.open_subkey_with_flags(path, KEY_READ | view)
            .ok()?
            .get_value::<u32, _>(name)
            .ok()
    };
    let both = |path: &str, name: &str| {
        Dword::of_views(
            dword(path, name, KEY_WOW64_64KEY),
            dword(path, name, KEY_WOW64_32KEY),
        )
    };
    let net = |version: &str| {
        let path = format!("SOFTWARE\\Microsoft\\.NETFramework\\{version}");
        NetKeys {
            sch_use_strong_crypto: both(&path, "SchUseStrongCrypto"),
            system_default_tls_versions: both(&path, "SystemDefaultTlsVersions"),
        }
    };
    let schannel = TlsVersion::ALL.map(|v| {
        let path = format!(
            "SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\{}\\Client",
            v.as_str()
        );
        ProtocolKeys {
            enabled: dword(&path, "Enabled", KEY_WOW64_64KEY),
            disabled_by_default: dword(&path, "DisabledByDefault", KEY_WOW64_64KEY),
        }
    });
    let windows = crate::sys::windows_version();
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into());
    let config = std::path::Path::new(&root)
        .join("LTSvc")
        .join("LTSVC.exe.config");
    // A config file is small; a larger one is not the agent's.
    let runtime = std::fs::File::open(&config).ok().and_then(|file| {
        use std::io::Read as _;
        let mut text = String::new();
        file.take(1 << 20).read_to_string(&mut text).ok()?;
        crate::tlsoffer::parse_supported_runtime(&text)
    });
    Settings {
        windows,
        runtime,
        net2: net("v2.0.50727"),
        net4: net("v4.0.30319"),
        schannel,
    }
}

/// Elsewhere nothing decides it: no Windows, no Schannel.
#[cfg(not(windows))]
pub fn read_tls() -> crate::tlsoffer::Settings {
    crate::tlsoffer::Settings::default()
}

/// Elsewhere there is no registry: `check --role agent` then needs `--server`.
#[cfg(not(windows))]
pub fn read() -> Option<AgentConfig> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Server Address` values as agents of several versions stored them.
    #[test]
    fn server_addresses_as_agents_store_them() {
        for (raw, want) in [
            // 10.5-era: a bare host.
            ("automate.example.com", vec!["automate.example.com"]),
            // 2019+: URLs, several, with a trailing slash.
            (
                "https://a.example.com/|https://b.example.com:443;c.example.com",
                vec![
                    "https://a.example.com",
                    "https://b.example.com:443",
                    "c.example.com",
                ],
            ),
            // A leading ~ and plain http with a custom port.
            (
                "~http://127.0.0.1:18080|https://127.0.0.1:18443",
                vec!["http://127.0.0.1:18080", "https://127.0.0.1:18443"],
            ),
            (
                " 203.0.113.5 | https://[2001:db8::5]:443/ ",
                vec!["203.0.113.5", "https://[2001:db8::5]:443"],
            ),
            ("2001:db8::7", vec!["2001:db8::7"]),
            (
                "https://A.example.com|https://a.example.com",
                vec!["https://A.example.com"],
            ),
            ("ftp://x.example| | ; ", vec![]),
        ] {
            let got: Vec<String> = parse_server_address(raw)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{raw}");
        }
    }

    #[test]
    fn tray_ports_ids_proxies_and_service_states() {
        assert_eq!(parse_tray_port("42000"), Some(42000));
        assert_eq!(parse_tray_port(" 42001 "), Some(42001));
        assert_eq!(parse_tray_port("0"), None);
        assert_eq!(parse_tray_port("70000"), None);
        assert_eq!(parse_tray_port("x"), None);
        assert_eq!(parse_id(" 1234 "), Some(1234));
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_proxy("", "x"), None);
        assert_eq!(
            parse_proxy("proxy.example:3128", ""),
            Some(AgentProxy {
                url: "http://proxy.example:3128".into(),
                credentials: false
            })
        );
        // The agent stores the user name encrypted (base64); only whether it is there counts.
        assert!(
            parse_proxy("http://p:8080", "q7ZJx2Tn4tE=")
                .unwrap()
                .credentials
        );
        assert!(!parse_proxy("http://p:8080", " \t").unwrap().credentials);
        assert_eq!(ServiceState::from_code(4), ServiceState::Running);
        assert_eq!(ServiceState::from_code(1), ServiceState::Stopped);
        assert_eq!(ServiceState::from_code(99).as_str(), "unknown");
    }
}
