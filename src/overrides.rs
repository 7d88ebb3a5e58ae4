//! Where each target's hosts come from, highest first: the command line, then the installed
//! agent's own settings (Windows), then the profile's defaults (applied by [`crate::plan`]).

use crate::agentconfig::AgentConfig;
use crate::lang::Lang;
use crate::model::{push_new, PortRange, ProbeKind, Profile, FLAG_TARGETS};
use crate::plan::Targets;
use crate::tr;

/// The targets named on the command line: `flags` in [`FLAG_TARGETS`] order (`--server`,
/// `--mediator`, ...), then `--target NAME=HOST`; naming a target again adds a host.
pub fn from_command_line(flags: [Option<&String>; 5], named: &[(String, String)]) -> Targets {
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

/// `check --role agent` without `--server` on a PC with the agent: its own settings name
/// the servers and the tray port. Returns notes for the report (where the settings came
/// from, and whether the agent's services run). Elsewhere nothing is found and the plan
/// asks for `--server`.
pub fn from_installed_agent(
    profile: &mut Profile,
    targets: &mut Targets,
    read: impl FnOnce() -> Option<AgentConfig>,
    lang: Lang,
) -> anyhow::Result<Vec<String>> {
    if profile.role != "agent" || targets.contains_key("server") {
        return Ok(Vec::new());
    }
    let Some(found) = read() else {
        return Ok(Vec::new());
    };
    anyhow::ensure!(
        !found.servers.is_empty(),
        "the installed agent's settings (HKLM\\SOFTWARE\\LabTech\\Service) name no server: pass --server HOST"
    );
    let servers = found.servers.join(", ");
    let mut notes = vec![tr!(
        lang,
        "servers from the installed agent's settings: {servers}",
        "Server aus den Einstellungen des installierten Agenten: {servers}"
    )];
    targets.insert("server".into(), found.servers);
    if let Some(port) = found.tray_port {
        for check in &mut profile.checks {
            if check.probe == ProbeKind::Loopback {
                check.ports = PortRange::single(port).expect("parse_tray_port rejects 0");
            }
        }
        notes.push(tr!(
            lang,
            "tray port {port} from the installed agent's settings",
            "Tray-Port {port} aus den Einstellungen des installierten Agenten"
        ));
    }
    let services: Vec<String> = found
        .services
        .iter()
        .map(|(name, state)| format!("{name} {}", state.to_lowercase()))
        .collect();
    let services = services.join(", ");
    notes.push(tr!(
        lang,
        "agent services: {services}",
        "Dienste des Agenten: {services}"
    ));
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles;

    fn installed() -> AgentConfig {
        AgentConfig {
            servers: vec!["automate.example.com".into(), "192.0.2.9".into()],
            tray_port: Some(42001),
            services: vec![("LTService".into(), "Running".into())],
        }
    }

    #[test]
    fn command_line_flags_then_named_targets_adding_hosts() {
        let (server, db) = ("a.example".to_string(), "db.example".to_string());
        let named = [
            ("server".to_string(), "b.example".to_string()),
            ("server".to_string(), "a.example".to_string()),
            ("nas".to_string(), "nas.example".to_string()),
        ];
        let targets = from_command_line([Some(&server), None, Some(&db), None, None], &named);
        assert_eq!(targets["server"], ["a.example", "b.example"]);
        assert_eq!(targets["db"], ["db.example"]);
        assert_eq!(targets["nas"], ["nas.example"]);
        assert!(!targets.contains_key("mediator"));
    }

    #[test]
    fn the_installed_agent_fills_in_only_what_the_command_line_left_open() {
        let mut agent = profiles::builtin("agent").unwrap();
        let mut targets = Targets::new();
        let notes =
            from_installed_agent(&mut agent, &mut targets, || Some(installed()), Lang::En).unwrap();
        assert_eq!(targets["server"], ["automate.example.com", "192.0.2.9"]);
        let tray = agent
            .checks
            .iter()
            .find(|c| c.probe == ProbeKind::Loopback)
            .unwrap();
        assert_eq!(tray.ports, PortRange::single(42001).unwrap());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[2].contains("LTService running"), "{notes:?}");

        // --server wins: the settings are not even read.
        let mut agent = profiles::builtin("agent").unwrap();
        let mut targets = from_command_line(
            [Some(&"x.example".to_string()), None, None, None, None],
            &[],
        );
        let notes = from_installed_agent(&mut agent, &mut targets, || panic!("read"), Lang::En);
        assert!(notes.unwrap().is_empty());
        assert_eq!(targets["server"], ["x.example"]);

        // Other roles never look; an agent without settings asks for --server later.
        let mut server = profiles::builtin("server").unwrap();
        let none = from_installed_agent(
            &mut server,
            &mut Targets::new(),
            || panic!("read"),
            Lang::En,
        );
        assert!(none.unwrap().is_empty());
        let mut agent = profiles::builtin("agent").unwrap();
        assert!(
            from_installed_agent(&mut agent, &mut Targets::new(), || None, Lang::En)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn settings_without_a_server_are_an_error_naming_the_flag() {
        let mut agent = profiles::builtin("agent").unwrap();
        let empty = || {
            Some(AgentConfig {
                servers: Vec::new(),
                tray_port: None,
                services: Vec::new(),
            })
        };
        let e = from_installed_agent(&mut agent, &mut Targets::new(), empty, Lang::En).unwrap_err();
        assert!(e.to_string().contains("pass --server HOST"), "{e}");
    }
}
