//! The installed Automate agent's own settings, so that on a customer PC
//! `check --role agent` needs no `--server`: the registry key
//! `HKLM\SOFTWARE\LabTech\Service` (or its `WOW6432Node` twin) holds `Server Address` (one
//! or more servers, separated by `|` or `;`) and `TrayPort`. The parsing is plain text and
//! tested everywhere; only reading the registry and the service states is Windows-only.

/// What the agent's settings say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentConfig {
    pub servers: Vec<String>,
    pub tray_port: Option<u16>,
    /// `LTService` and `LTSvcMon`, with their state ("RUNNING", "STOPPED", or why unknown).
    pub services: Vec<(String, String)>,
}

/// The agent's service names: the agent itself and its monitor.
pub const SERVICES: [&str; 2] = ["LTService", "LTSvcMon"];

/// Host names from `Server Address`: `https://a.example.com|https://b.example.com/` gives
/// `a.example.com` and `b.example.com`. Schemes, paths and ports are dropped; the tool
/// checks the role's ports.
pub fn parse_server_address(raw: &str) -> Vec<String> {
    let mut servers: Vec<String> = Vec::new();
    for entry in raw.split(['|', ';']) {
        let entry = entry.trim();
        let without_scheme = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let authority = without_scheme.split(['/', '?', '#']).next().unwrap_or("");
        let host = if let Some(rest) = authority.strip_prefix('[') {
            rest.split(']').next().unwrap_or("")
        } else {
            // "host:port", but not a bare IPv6 address.
            match authority.matches(':').count() {
                1 => authority.split(':').next().unwrap_or(""),
                _ => authority,
            }
        };
        let host = host.trim().trim_end_matches('.').to_string();
        if !host.is_empty() && !servers.iter().any(|s| s.eq_ignore_ascii_case(&host)) {
            servers.push(host);
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

/// The state in `sc.exe query NAME` output: the word after the number on the STATE line.
pub fn parse_sc_state(output: &str) -> Option<String> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("STATE"))?;
    let after = line.split_once(':')?.1;
    after.split_whitespace().nth(1).map(str::to_string)
}

/// Reads the installed agent's settings; `None` when no agent is installed here.
#[cfg(windows)]
pub fn read() -> Option<AgentConfig> {
    use winreg::enums::HKEY_LOCAL_MACHINE;
    use winreg::RegKey;

    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let key = [
        "SOFTWARE\\LabTech\\Service",
        "SOFTWARE\\WOW6432Node\\LabTech\\Service",
    ]
    .iter()
    .find_map(|path| hklm.open_subkey(path).ok())?;
    let servers = key
        .get_value::<String, _>("Server Address")
        .map(|raw| parse_server_address(&raw))
        .unwrap_or_default();
    let tray_port = key
        .get_value::<u32, _>("TrayPort")
        .map(|n| n.to_string())
        .or_else(|_| key.get_value::<String, _>("TrayPort"))
        .ok()
        .and_then(|raw| parse_tray_port(&raw));
    let services = SERVICES
        .iter()
        .map(|name| {
            let state = std::process::Command::new("sc.exe")
                .args(["query", name])
                .output()
                .ok()
                .and_then(|out| parse_sc_state(&String::from_utf8_lossy(&out.stdout)))
                .unwrap_or_else(|| "not installed".to_string());
            ((*name).to_string(), state)
        })
        .collect();
    Some(AgentConfig {
        servers,
        tray_port,
        services,
    })
}

/// Elsewhere there is no registry: `check --role agent` then needs `--server`.
#[cfg(not(windows))]
pub fn read() -> Option<AgentConfig> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_in_every_form() {
        assert_eq!(
            parse_server_address("https://automate.example.com"),
            ["automate.example.com"]
        );
        assert_eq!(
            parse_server_address("https://a.example.com/|https://b.example.com:443;c.example.com"),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(
            parse_server_address(" 203.0.113.5 | https://[2001:db8::5]:443/ "),
            ["203.0.113.5", "2001:db8::5"]
        );
        assert_eq!(parse_server_address("2001:db8::7"), ["2001:db8::7"]);
        assert_eq!(
            parse_server_address("https://A.example.com|https://a.example.com"),
            ["A.example.com"]
        );
        assert!(parse_server_address(" | ; ").is_empty());
    }

    #[test]
    fn tray_ports_and_service_states() {
        assert_eq!(parse_tray_port("42000"), Some(42000));
        assert_eq!(parse_tray_port(" 42001 "), Some(42001));
        assert_eq!(parse_tray_port("0"), None);
        assert_eq!(parse_tray_port("70000"), None);
        assert_eq!(parse_tray_port("x"), None);
        let sc = "SERVICE_NAME: LTService\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n        STATE              : 4  RUNNING\r\n";
        assert_eq!(parse_sc_state(sc).as_deref(), Some("RUNNING"));
        assert_eq!(
            parse_sc_state("[SC] EnumQueryServicesStatus:OpenService FAILED 1060"),
            None
        );
    }
}
