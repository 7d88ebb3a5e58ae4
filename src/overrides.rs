//! Where each target's hosts come from, highest first: the command line, then the installed
//! agent's own settings (Windows), then the profile's defaults (applied by [`crate::plan`]).

use crate::agentconfig::{AgentConfig, AgentInfo, AgentProxy, ServiceState};
use crate::endpoint::Endpoint;
use crate::lang::Lang;
use crate::model::{push_new, PortRange, ProbeKind, Profile, FLAG_TARGETS};
use crate::plan::Targets;
use crate::tr;

/// The targets named on the command line: `flags` in [`FLAG_TARGETS`] order (`--server`,
/// `--mediator`, ...), then `--target NAME=HOST`; naming a target again adds a host.
pub fn from_command_line(flags: [Option<&Endpoint>; 5], named: &[(String, Endpoint)]) -> Targets {
    let mut targets = Targets::new();
    for (name, host) in FLAG_TARGETS.iter().zip(flags) {
        if let Some(host) = host {
            targets.insert((*name).to_string(), vec![host.clone()]);
        }
    }
    for (name, host) in named {
        push_new(targets.entry(name.clone()).or_default(), host.clone());
    }
    targets
}

/// What the installed agent adds to a run: notes for the report, its identity for the JSON,
/// and the proxy it goes through.
#[derive(Debug, Default)]
pub struct Installed {
    pub notes: Vec<String>,
    pub agent: Option<AgentInfo>,
    pub proxy: Option<AgentProxy>,
}

/// `check --role agent` on a PC with the agent: its own settings name the servers (unless
/// `--server` does), the tray port, its identity and proxy; the report notes where the
/// servers came from and whether the agent's services run. Elsewhere nothing is found and
/// the plan asks for `--server`.
pub fn from_installed_agent(
    profile: &mut Profile,
    targets: &mut Targets,
    read: impl FnOnce() -> Option<AgentConfig>,
    lang: Lang,
) -> anyhow::Result<Installed> {
    if profile.role != "agent" {
        return Ok(Installed::default());
    }
    let Some(found) = read() else {
        return Ok(Installed::default());
    };
    let mut notes = Vec::new();
    if !targets.contains_key("server") {
        let key = &found.key;
        anyhow::ensure!(
            !found.servers.is_empty(),
            "the installed agent's settings ({key}) name no server: pass --server HOST"
        );
        let servers = found
            .servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        notes.push(tr!(
            lang,
            "servers from the installed agent's settings ({key}): {servers}",
            "Server aus den Einstellungen des installierten Agenten ({key}): {servers}"
        ));
        targets.insert("server".into(), found.servers.clone());
    }
    // The agent is installed: its tray port is fixed (TrayPort, or 42000), and a program
    // holding it breaks the tray; no install will move it.
    for check in &mut profile.checks {
        if let ProbeKind::Loopback { fallback } = &mut check.probe {
            *fallback = None;
        }
    }
    if let Some(port) = found.tray_port {
        for check in &mut profile.checks {
            if matches!(check.probe, ProbeKind::Loopback { .. }) {
                check.ports = PortRange::single(port).expect("parse_tray_port rejects 0");
            }
        }
        notes.push(tr!(
            lang,
            "tray port {port} from the installed agent's settings",
            "Tray-Port {port} aus den Einstellungen des installierten Agenten"
        ));
    }
    if let Some(evidence) = &found.agent.evidence {
        notes.push(crate::evidence::note(evidence, lang));
    }
    let services: Vec<String> = found
        .services
        .iter()
        .map(|(name, state)| format!("{name} {}", state_word(*state, lang)))
        .collect();
    if !services.is_empty() {
        let services = services.join(", ");
        notes.push(tr!(
            lang,
            "agent services: {services}",
            "Dienste des Agenten: {services}"
        ));
    }
    Ok(Installed {
        notes,
        agent: Some(found.agent),
        proxy: found.proxy,
    })
}

fn state_word(state: ServiceState, lang: Lang) -> &'static str {
    match (state, lang) {
        (_, Lang::En) => state.as_str(),
        (ServiceState::Running, Lang::De) => "läuft",
        (ServiceState::Stopped, Lang::De) => "gestoppt",
        (ServiceState::Starting, Lang::De) => "startet",
        (ServiceState::Stopping, Lang::De) => "stoppt",
        (ServiceState::Paused, Lang::De) => "angehalten",
        (ServiceState::NotInstalled, Lang::De) => "nicht installiert",
        (ServiceState::Unknown, Lang::De) => "unbekannt",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles;

    fn installed() -> AgentConfig {
        AgentConfig {
            servers: crate::agentconfig::parse_server_address(
                "https://automate.example.com|192.0.2.9",
            ),
            tray_port: Some(42001),
            services: vec![
                ("LTService".into(), ServiceState::Running),
                ("LTSvcMon".into(), ServiceState::NotInstalled),
            ],
            agent: AgentInfo {
                id: Some(1234),
                client_id: Some(7),
                location_id: Some(12),
                version: Some("240.150".into()),
                evidence: None,
            },
            proxy: None,
            key: "HKLM\\SOFTWARE\\LabTech\\Service".into(),
        }
    }

    fn host(s: &str) -> Endpoint {
        Endpoint::parse_host(s).unwrap()
    }

    /// A target's hosts as the report shows them.
    fn shown(targets: &Targets, name: &str) -> Vec<String> {
        targets[name].iter().map(ToString::to_string).collect()
    }

    #[test]
    fn command_line_flags_then_named_targets_adding_hosts() {
        let (server, db) = (host("a.example"), host("db.example"));
        let named = [
            ("server".to_string(), host("b.example")),
            ("server".to_string(), host("a.example")),
            ("nas".to_string(), host("nas.example")),
        ];
        let targets = from_command_line([Some(&server), None, Some(&db), None, None], &named);
        assert_eq!(shown(&targets, "server"), ["a.example", "b.example"]);
        assert_eq!(shown(&targets, "db"), ["db.example"]);
        assert_eq!(shown(&targets, "nas"), ["nas.example"]);
        assert!(!targets.contains_key("mediator"));
    }

    #[test]
    fn the_installed_agent_fills_in_only_what_the_command_line_left_open() {
        let mut agent = profiles::builtin("agent").unwrap();
        let mut targets = Targets::new();
        let found =
            from_installed_agent(&mut agent, &mut targets, || Some(installed()), Lang::En).unwrap();
        let notes = found.notes;
        assert_eq!(
            shown(&targets, "server"),
            ["https://automate.example.com", "192.0.2.9"]
        );
        assert_eq!(found.agent.unwrap().id, Some(1234));
        let tray = agent
            .checks
            .iter()
            .find(|c| matches!(c.probe, ProbeKind::Loopback { .. }))
            .unwrap();
        assert_eq!(tray.ports, PortRange::single(42001).unwrap());
        // Installed: its tray port is fixed, no install will move it.
        assert_eq!(tray.probe, ProbeKind::Loopback { fallback: None });
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[2].contains("LTService running, LTSvcMon not installed"),
            "{notes:?}"
        );

        // --server wins over the settings' servers; the agent's identity is still reported.
        let mut agent = profiles::builtin("agent").unwrap();
        let mut targets =
            from_command_line([Some(&host("x.example")), None, None, None, None], &[]);
        let found =
            from_installed_agent(&mut agent, &mut targets, || Some(installed()), Lang::De).unwrap();
        assert_eq!(shown(&targets, "server"), ["x.example"]);
        assert_eq!(found.agent.unwrap().client_id, Some(7));
        assert!(
            found.notes.iter().all(|n| !n.contains("Server aus")),
            "{:?}",
            found.notes
        );
        assert!(
            found.notes.iter().any(|n| n.contains("LTService läuft")),
            "{:?}",
            found.notes
        );

        // Other roles never look; an agent without settings asks for --server later.
        let mut server = profiles::builtin("server").unwrap();
        let none = from_installed_agent(
            &mut server,
            &mut Targets::new(),
            || panic!("read"),
            Lang::En,
        );
        assert!(none.unwrap().notes.is_empty());
        let mut agent = profiles::builtin("agent").unwrap();
        let nothing = from_installed_agent(&mut agent, &mut Targets::new(), || None, Lang::En);
        assert!(nothing.unwrap().agent.is_none());
    }

    #[test]
    fn settings_without_a_server_are_an_error_naming_the_flag() {
        let mut agent = profiles::builtin("agent").unwrap();
        let empty = || {
            Some(AgentConfig {
                key: "HKLM\\SOFTWARE\\LabTechBackup\\Service".into(),
                ..AgentConfig::default()
            })
        };
        let e = from_installed_agent(&mut agent, &mut Targets::new(), empty, Lang::En).unwrap_err();
        assert!(e.to_string().contains("pass --server HOST"), "{e}");
        assert!(e.to_string().contains("LabTechBackup"), "{e}");
    }
}
