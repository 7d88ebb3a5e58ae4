//! Hints: what is wrong, between which machines, and what to change, in the user's language.

use std::net::IpAddr;

use super::{compact_ports, RunInfo};
use crate::lang::Lang;
use crate::model::{Check, Expect, Protocol, State};
use crate::probe::Why;
use crate::report::CheckResult;
use crate::sys::FirewallShell;
use crate::tr;

mod app;
mod proxy;

/// Where a hint points: the protocol, the ports that did not pass, the host and address.
struct Subject<'a> {
    proto: &'static str,
    ports: String,
    host: &'a str,
    /// "host (address)", or the host alone when it is the address.
    place: String,
    address: Option<IpAddr>,
}

impl<'a> Subject<'a> {
    fn of(check: &Check, result: &'a CheckResult, failed: &[u16], lang: Lang) -> Subject<'a> {
        let host = result
            .host
            .as_deref()
            .unwrap_or(lang.pick("the target", "das Ziel"));
        let place = match result.address {
            Some(ip) if ip.to_string() != host => format!("{host} ({ip})"),
            _ => host.to_string(),
        };
        // Name the ports that did not pass; the whole range only when all of them failed.
        let ports = if failed.len() == 1
            || (failed.len() > 1
                && failed.len() < check.ports.count()
                && failed.len() < result.probed_ports.unwrap_or(usize::MAX))
        {
            compact_ports(failed, 8, lang)
        } else {
            check.ports.to_string()
        };
        Subject {
            proto: check.protocol.upper(),
            ports,
            host,
            place,
            address: result.address,
        }
    }
}

/// What is wrong, between which machines, and what to change.
pub(super) fn hint(
    check: &Check,
    state: State,
    why: &Why,
    result: &CheckResult,
    failed: &[u16],
    run: &RunInfo,
) -> String {
    let subject = Subject::of(check, result, failed, run.lang);
    match what(check, state, why, &subject, run.lang) {
        Said::ThenFix(what) => format!("{what} {}", fix(check, &subject, run.lang)),
        Said::Whole(whole) => whole,
    }
}

/// For a check where either state is right, what the state means: its `fix` text.
pub(super) fn note(check: &Check, result: &CheckResult, run: &RunInfo) -> String {
    let subject = Subject::of(check, result, &[], run.lang);
    fix(check, &subject, run.lang)
}

/// The change to make: the check's own `fix` (or `fix-de`) template, else allow or block.
fn fix(check: &Check, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject {
        proto,
        ports,
        host,
        place,
        address,
    } = subject;
    let template = match lang {
        Lang::De => check.fix_de.as_deref().or(check.fix.as_deref()),
        Lang::En => check.fix.as_deref(),
    };
    let Some(template) = template else {
        return match check.expect {
            Expect::Reachable => tr!(
                lang,
                "Allow {proto} {ports} from this machine to {place}.",
                "{proto} {ports} von diesem Rechner zu {place} freigeben."
            ),
            Expect::Blocked => tr!(
                lang,
                "Block {proto} {ports} to {place} from this machine's network.",
                "{proto} {ports} zu {place} aus dem Netz dieses Rechners sperren."
            ),
            Expect::Either => tr!(
                lang,
                "{proto} {ports} to {place} may be open or closed.",
                "{proto} {ports} zu {place} darf offen oder geschlossen sein."
            ),
        };
    };
    template
        .replace("{proto}", proto)
        .replace("{ports}", ports)
        .replace("{host}", host)
        .replace(
            "{address}",
            &address.map(|a| a.to_string()).unwrap_or_default(),
        )
        .replace("{where}", place)
}

/// The first words of a hint.
enum Said {
    /// What is wrong, to be followed by the fix.
    ThenFix(String),
    /// A hint complete in itself, with its own fix (the clocks, a NAT, a proxy, this
    /// machine's firewall, a port taken here, ...).
    Whole(String),
}

/// What is wrong, or a whole hint that needs no fix line.
fn what(check: &Check, state: State, why: &Why, subject: &Subject<'_>, lang: Lang) -> Said {
    let Subject {
        proto,
        ports,
        place,
        ..
    } = subject;
    let what = match (check.expect, state, why) {
        (Expect::Blocked, _, _) => tr!(
            lang,
            "{proto} {ports} on {place} answers from here but must be blocked.",
            "{proto} {ports} auf {place} antwortet von hier aus, muss aber gesperrt sein."
        ),
        (_, _, Why::App(found)) if found.finding.is_proxy() => {
            return Said::Whole(proxy::hint(found, subject, lang))
        }
        (_, State::Unfinished, _) => {
            return Said::Whole(tr!(
                lang,
                "Nothing is known about {proto} {ports} on {place}: the run reached its deadline while this machine's operating system still held the probe. Run the check again; if it stays stuck, a security product that intercepts network calls (or Wine) is the likely cause, not a firewall.",
                "Über {proto} {ports} auf {place} ist nichts bekannt: der Lauf hat seine Frist erreicht, während das Betriebssystem dieses Rechners die Probe noch festhielt. Die Prüfung wiederholen; bleibt sie hängen, ist eher ein Sicherheitsprodukt, das Netzwerkaufrufe abfängt (oder Wine), die Ursache als eine Firewall."
            ));
        }
        (_, State::Error, Why::Local(local)) => {
            let message = local.text(lang);
            return Said::Whole(tr!(
                lang,
                "This machine could not test it: {message}.",
                "Dieser Rechner konnte es nicht prüfen: {message}."
            ));
        }
        (Expect::Reachable, State::Open, Why::App(found) | Why::RealService(found)) => {
            // The port is open: the firewall is not what stops it, so no firewall fix.
            return Said::Whole(app::application(check, found, subject, lang));
        }
        (Expect::Reachable, _, Why::App(found) | Why::RealService(found)) => {
            let summary = crate::words::app::summary(found, lang);
            tr!(
                lang,
                "On {place}, {proto} {ports}: {summary}.",
                "Auf {place}, {proto} {ports}: {summary}."
            )
        }
        (_, _, Why::NotServe(_)) => tr!(
            lang,
            "Something other than automate-ports serve answers {proto} {ports} at {place}: a proxy, SYN proxy, or a port forward to another host. Make sure the forward points at the machine running serve. If serve runs there, give both sides the same key, and make sure this machine's clock is not behind (serve answers no probe dated before its own start).",
            "Auf {proto} {ports} bei {place} antwortet etwas anderes als automate-ports serve: ein Proxy, SYN-Proxy oder eine Portweiterleitung auf einen anderen Host. Die Weiterleitung muss auf den Rechner zeigen, auf dem serve läuft. Läuft serve dort, brauchen beide Seiten denselben Schlüssel, und die Uhr dieses Rechners darf nicht nachgehen (serve beantwortet keine Probe, die älter als sein eigener Start ist)."
        ),
        (_, _, Why::Stale { offset_ms }) => return Said::Whole(stale(*offset_ms, subject, lang)),
        (_, _, Why::Mapped(found)) => return Said::Whole(nat(found, subject, lang)),
        (_, _, Why::Redirected(port)) => tr!(
            lang,
            "{proto} {ports} at {place} reaches automate-ports serve, but on port {port}: the port forward maps it to the wrong internal port.",
            "{proto} {ports} bei {place} erreicht automate-ports serve, aber auf Port {port}: die Portweiterleitung zeigt auf den falschen internen Port."
        ),
        (_, _, Why::InUse(holder)) => return Said::Whole(in_use(holder.as_deref(), subject, lang)),
        (_, _, Why::InstallMoves { holder, free, range }) => {
            return Said::Whole(install_moves(holder.as_deref(), *free, *range, subject, lang))
        }
        (_, _, Why::LocalFirewall) => return Said::Whole(local_firewall(check, subject, lang)),
        // Every other cause, named so that a new one gets its words on purpose: the state
        // says what is wrong.
        (
            _,
            _,
            Why::Connected
            | Why::Reply
            | Why::Exchanged
            | Why::Listens(_)
            | Why::NothingListens
            | Why::Refused
            | Why::PortUnreachable
            | Why::HostUnreachable
            | Why::NoAnswer
            | Why::NoAnswerKeyed
            | Why::Verified
            | Why::App(_)
            | Why::RealService(_)
            | Why::Local(_)
            | Why::Unfinished { .. },
        ) => by_state(check, state, why, subject, lang),
    };
    Said::ThenFix(what)
}

/// `serve` refused the probe as stale: the clocks differ.
fn stale(offset_ms: i64, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject {
        proto,
        ports,
        place,
        ..
    } = subject;
    let clocks = crate::words::reasons::clock_difference(offset_ms, lang);
    tr!(
        lang,
        "{proto} {ports} at {place} reaches automate-ports serve, which refused the probe as stale: {clocks}. Set both clocks from the same time source (Windows: w32tm /resync; Linux: timedatectl set-ntp true) and check again.",
        "{proto} {ports} bei {place} erreicht automate-ports serve, das die Probe aber als veraltet abgelehnt hat: {clocks}. Beide Uhren aus derselben Zeitquelle stellen (Windows: w32tm /resync; Linux: timedatectl set-ntp true) und erneut prüfen."
    )
}

/// This machine's own firewall refused to send: the rule that allows it here.
fn local_firewall(check: &Check, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject { proto, ports, .. } = subject;
    let rules = local_rule(check, subject, crate::sys::FirewallShell::here());
    let rule = match rules.as_slice() {
        [first, other] => tr!(
            lang,
            "`{first}` (or: `{other}`)",
            "`{first}` (oder: `{other}`)"
        ),
        _ => format!("`{}`", rules.join("`, `")),
    };
    tr!(
        lang,
        "This machine's own firewall blocks outgoing {proto} {ports}. Allow it here, for example: {rule}",
        "Die eigene Firewall dieses Rechners blockiert ausgehendes {proto} {ports}. Hier freigeben, zum Beispiel: {rule}"
    )
}

/// What the state says where the cause alone did not: refused, unreachable, silent.
fn by_state(check: &Check, state: State, why: &Why, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject {
        proto,
        ports,
        place,
        ..
    } = subject;
    match (check.expect, state, why) {
        (_, _, Why::NothingListens) => tr!(
            lang,
            "Nothing listens on {proto} {ports} on this server.",
            "Auf {proto} {ports} lauscht auf diesem Server nichts."
        ),
        (_, State::Closed, _) if check.protocol == Protocol::Tcp => tr!(
            lang,
            "{place} refused TCP {ports}: nothing listens there, or a firewall rejects it.",
            "{place} hat TCP {ports} abgewiesen: dort lauscht nichts, oder eine Firewall weist die Verbindung ab."
        ),
        (_, State::Closed, _) => tr!(
            lang,
            "{place} reported UDP {ports} as unreachable: nothing listens there, or a firewall rejects it.",
            "{place} meldet UDP {ports} als nicht erreichbar: dort lauscht nichts, oder eine Firewall weist die Pakete ab."
        ),
        (_, State::Filtered, Why::HostUnreachable) => tr!(
            lang,
            "A router or firewall between here and {place} reported it unreachable for {proto} {ports}.",
            "Ein Router oder eine Firewall zwischen hier und {place} meldet {proto} {ports} als nicht erreichbar."
        ),
        (_, State::Filtered, _) if matches!(check.probe, crate::model::ProbeKind::Loopback { .. }) => tr!(
            lang,
            "{proto} {ports} over loopback got nowhere: a local firewall or endpoint protection drops it.",
            "{proto} {ports} über Loopback kommt nicht an: eine lokale Firewall oder ein Endpoint-Schutz verwirft es."
        ),
        (_, State::Filtered, _) => tr!(
            lang,
            "No answer from {place} on {proto} {ports}: a firewall drops it, or the host is down.",
            "Keine Antwort von {place} auf {proto} {ports}: eine Firewall verwirft die Pakete, oder der Host ist aus."
        ),
        (_, State::OpenFiltered, _) => tr!(
            lang,
            "No reply and no error from {place} on UDP {ports}: open but silent, or dropped by a firewall; this cannot be told apart from here without a responder on the far side.",
            "Weder Antwort noch Fehler von {place} auf UDP {ports}: offen, aber stumm, oder von einer Firewall verworfen; ohne Gegenstelle (automate-ports serve) ist das von hier aus nicht zu unterscheiden."
        ),
        (_, _, _) => tr!(
            lang,
            "{proto} {ports} on {place} is {state}.",
            "{proto} {ports} auf {place} ist {state}."
        ),
    }
}

/// The tray port is taken on this machine: by whom, where the OS tells.
fn in_use(holder: Option<&crate::sys::Holder>, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject { proto, ports, .. } = subject;
    if let Some(holder) = holder {
        let (name, pid) = (&holder.name, holder.pid);
        return tr!(
            lang,
            "{name} (PID {pid}) holds {proto} {ports} on this machine, so the agent's tray cannot use it: stop or reconfigure {name}, or give the agent another tray port.",
            "{name} (PID {pid}) belegt {proto} {ports} auf diesem Rechner, daher kann das Tray des Agenten ihn nicht nutzen: {name} beenden oder umstellen, oder dem Agenten einen anderen Tray-Port geben."
        );
    }
    lang.pick(
        "The port is taken on this machine; if the Automate agent is not installed, find the program holding it.",
        "Der Port ist auf diesem Rechner belegt; ist der Automate-Agent nicht installiert, das Programm suchen, das ihn belegt.",
    )
    .into()
}

/// No agent yet and the tray port is taken: the port an install takes, or that none is free.
fn install_moves(
    holder: Option<&crate::sys::Holder>,
    free: Option<u16>,
    range: crate::model::PortRange,
    subject: &Subject<'_>,
    lang: Lang,
) -> String {
    let Subject { proto, ports, .. } = subject;
    let who = holder.map_or_else(
        || {
            lang.pick("another program", "ein anderes Programm")
                .to_string()
        },
        |h| format!("{} (PID {})", h.name, h.pid),
    );
    match free {
        Some(port) => tr!(
            lang,
            "No Automate agent is installed here yet and {who} holds {proto} {ports}: an install takes {proto} {port} for the tray instead (install scripts move TrayPort to the first free port in {range} and pass it to the MSI as SERVICEPORT={port}), which works. To keep {ports}, stop or reconfigure {who} before installing.",
            "Hier ist noch kein Automate-Agent installiert, und {who} belegt {proto} {ports}: eine Installation nimmt stattdessen {proto} {port} für das Tray (Installationsskripte legen TrayPort auf den ersten freien Port in {range} und übergeben ihn dem MSI als SERVICEPORT={port}); das funktioniert. Um {ports} zu behalten, {who} vor der Installation beenden oder umstellen."
        ),
        None => tr!(
            lang,
            "Every port in {range} is taken on this machine ({who} holds {proto} {ports}): an agent install finds no tray port. Free one before installing (stop or reconfigure the programs holding them), or install with SERVICEPORT set to a free port.",
            "Jeder Port in {range} ist auf diesem Rechner belegt ({who} belegt {proto} {ports}): eine Agenten-Installation findet keinen Tray-Port. Vor der Installation einen freigeben (die belegenden Programme beenden oder umstellen) oder mit SERVICEPORT auf einem freien Port installieren."
        ),
    }
}

/// The NAT mapping was not one P2P can use, or could not be compared.
fn nat(found: &crate::nat::NatMapping, subject: &Subject<'_>, lang: Lang) -> String {
    let place = &subject.place;
    if found.mapping == crate::nat::Mapping::Symmetric {
        return tr!(
            lang,
            "This site's NAT gives each destination its own port, so P2P tunnels cannot be set up from here: tunnels will use the relay through {place}, so keep outbound TCP 8002 and 49152-65535 to it open. For P2P, make the site firewall keep the source port for outbound UDP (often called static port, no port randomization, or endpoint-independent mapping).",
            "Das NAT dieses Standorts gibt jedem Ziel einen eigenen Port, P2P-Tunnel lassen sich von hier also nicht aufbauen: Tunnel laufen über das Relay über {place}, daher ausgehend TCP 8002 und 49152-65535 dorthin offen halten. Für P2P muss die Firewall des Standorts bei ausgehendem UDP den Quellport beibehalten (oft „Static Port“, „keine Port-Randomisierung“ oder endpunktunabhängiges Mapping genannt)."
        );
    }
    let silent: Vec<String> = found
        .seen
        .iter()
        .filter(|s| s.from.is_none())
        .map(|s| s.port.to_string())
        .collect();
    let silent = silent.join(", ");
    tr!(
        lang,
        "Allow outbound UDP {silent} from this site to {place}, then check again to compare the NAT mapping.",
        "Ausgehend UDP {silent} von diesem Standort zu {place} freigeben, dann erneut prüfen, um das NAT-Mapping zu vergleichen."
    )
}

/// Commands that let this machine send the check's traffic, for the platform it runs on
/// (Linux: nftables, then ufw; Windows 7 / 2008 R2: netsh, which lacks New-NetFirewallRule).
fn local_rule(check: &Check, subject: &Subject<'_>, shell: FirewallShell) -> Vec<String> {
    let ports = &subject.ports;
    let proto = check.protocol.upper();
    let address = subject
        .address
        .map_or_else(|| subject.host.to_string(), |a| a.to_string());
    if shell == FirewallShell::PowerShell {
        vec![format!(
            "New-NetFirewallRule -DisplayName 'Automate {proto} {ports} out' -Direction Outbound -Protocol {proto} -RemoteAddress {address} -RemotePort {ports} -Action Allow"
        )]
    } else if shell == FirewallShell::Netsh {
        vec![format!(
            "netsh advfirewall firewall add rule name=\"Automate {proto} {ports} out\" dir=out action=allow protocol={proto} remoteip={address} remoteport={ports}"
        )]
    } else {
        let family = if subject.address.is_some_and(|a| a.is_ipv6()) {
            "ip6"
        } else {
            "ip"
        };
        let proto = proto.to_lowercase();
        vec![
            format!("nft insert rule inet filter output {family} daddr {address} {proto} dport {{ {ports} }} accept"),
            format!("ufw allow out to {address} port {} proto {proto}", ports.replace('-', ":")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, ProbeKind};

    #[test]
    fn local_rules_for_windows_7_and_later_and_linux() {
        let check = Check {
            id: "c".into(),
            description: String::new(),
            protocol: crate::model::Protocol::Tcp,
            ports: PortRange::new(49152, 65535).unwrap(),
            target: "server".into(),
            required: true,
            expect: Expect::Reachable,
            probe: ProbeKind::Connect,
            source: String::new(),
            fix: None,
            fix_de: None,
            port_from_host: false,
        };
        let mut result = CheckResult::new(&check, Some("automate.example.com".into()), None);
        result.address = Some("192.0.2.10".parse().unwrap());
        let subject = Subject::of(&check, &result, &[], Lang::En);
        assert_eq!(
            local_rule(&check, &subject, FirewallShell::PowerShell)[0],
            "New-NetFirewallRule -DisplayName 'Automate TCP 49152-65535 out' -Direction Outbound -Protocol TCP -RemoteAddress 192.0.2.10 -RemotePort 49152-65535 -Action Allow"
        );
        assert_eq!(
            local_rule(&check, &subject, FirewallShell::Netsh),
            ["netsh advfirewall firewall add rule name=\"Automate TCP 49152-65535 out\" dir=out action=allow protocol=TCP remoteip=192.0.2.10 remoteport=49152-65535"]
        );
        assert_eq!(
            local_rule(&check, &subject, FirewallShell::Linux),
            [
                "nft insert rule inet filter output ip daddr 192.0.2.10 tcp dport { 49152-65535 } accept",
                "ufw allow out to 192.0.2.10 port 49152:65535 proto tcp"
            ]
        );
    }
}
