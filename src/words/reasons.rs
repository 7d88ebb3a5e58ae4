//! Reasons in words: why a probe ended as it did, what this machine could not do, and the
//! clock difference `serve` reported. The probe stage keeps these as data ([`Why`]).

use crate::lang::Lang;
use crate::probe::{Local, NotServe, Outcome, Why};
use crate::sys::Holder;
use crate::tr;

/// "clocks differ by 420 s (the server is ahead)", or, when they agree within serve's window,
/// that serve started after the probe was made.
pub fn clock_difference(offset_ms: i64, lang: Lang) -> String {
    let seconds = (offset_ms.unsigned_abs() + 500) / 1000;
    let window = crate::protocol::FRESH_WINDOW.as_secs();
    if seconds <= window {
        return tr!(
            lang,
            "clocks differ by {seconds} s, within the {window} s serve allows, so serve started after this probe was made (a clock running behind the server's)",
            "die Uhren weichen um {seconds} s ab, innerhalb der {window} s, die serve zulässt; serve wurde also erst nach dieser Probe gestartet (eine Uhr, die hinter der des Servers zurückliegt)"
        );
    }
    match (offset_ms > 0, lang) {
        (true, Lang::En) => {
            format!("clocks differ by {seconds} s (the server is ahead; serve allows {window} s)")
        }
        (false, Lang::En) => {
            format!("clocks differ by {seconds} s (the server is behind; serve allows {window} s)")
        }
        (true, Lang::De) => format!(
            "die Uhren weichen um {seconds} s ab (der Server geht vor; serve lässt {window} s zu)"
        ),
        (false, Lang::De) => format!(
            "die Uhren weichen um {seconds} s ab (der Server geht nach; serve lässt {window} s zu)"
        ),
    }
}

impl Local {
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Local::NoRoute(ip) => tr!(
                lang,
                "no route to {ip} from this machine (network unreachable)",
                "keine Route von diesem Rechner zu {ip} (Netz nicht erreichbar)"
            ),
            Local::NoDescriptors => tr!(
                lang,
                "out of file descriptors: lower --concurrency",
                "keine Dateideskriptoren mehr frei: --concurrency verringern"
            ),
            Local::Probe(addr, e) => tr!(
                lang,
                "local error probing {addr}: {e}",
                "lokaler Fehler beim Prüfen von {addr}: {e}"
            ),
            Local::NoSourcePort(port) => tr!(
                lang,
                "could not get a source port other than {port}",
                "kein anderer Quellport als {port} verfügbar"
            ),
            Local::BindDenied(addr) => tr!(
                lang,
                "no permission to bind {addr} for the loopback test: run as administrator/root",
                "keine Berechtigung, {addr} für den Loopback-Test zu binden: als Administrator/root ausführen"
            ),
            Local::NotOurs(ip) => tr!(
                lang,
                "{ip} is not an address of this machine: the loopback test binds it locally",
                "{ip} ist keine Adresse dieses Rechners: der Loopback-Test bindet sie lokal"
            ),
            Local::NeedsKey => tr!(
                lang,
                "needs --key and automate-ports serve on the target",
                "braucht --key und automate-ports serve auf dem Ziel"
            ),
            Local::Bind(addr, e) => tr!(
                lang,
                "cannot bind {addr} for the loopback test: {e}",
                "{addr} lässt sich für den Loopback-Test nicht binden: {e}"
            ),
        }
    }
}

impl NotServe {
    pub fn text(&self, lang: Lang) -> String {
        match self {
            NotServe::Silent(timeout) => {
                let t = lang.duration(*timeout);
                tr!(
                    lang,
                    "connected, but no answer in {t}",
                    "verbunden, aber keine Antwort in {t}"
                )
            }
            NotServe::Closed => tr!(
                lang,
                "connected, but it closed without a valid answer",
                "verbunden, aber ohne gültige Antwort geschlossen"
            ),
            NotServe::Failed(e) => tr!(
                lang,
                "connected, but the exchange failed ({e})",
                "verbunden, aber der Austausch schlug fehl ({e})"
            ),
            NotServe::BadProof => tr!(
                lang,
                "connected, but the answer does not prove the key",
                "verbunden, aber die Antwort belegt den Schlüssel nicht"
            ),
            NotServe::BadUdpProof => tr!(
                lang,
                "a UDP reply that does not prove the key",
                "eine UDP-Antwort, die den Schlüssel nicht belegt"
            ),
        }
    }
}

impl Outcome {
    pub fn reason(&self, lang: Lang) -> String {
        let after = lang.duration(self.elapsed);
        let n = self.tries;
        let tries = match (lang, n) {
            (Lang::En, 1) => "1 try".to_string(),
            (Lang::En, _) => format!("{n} tries"),
            (Lang::De, 1) => "1 Versuch".to_string(),
            (Lang::De, _) => format!("{n} Versuche"),
        };
        match &self.why {
            Why::Connected => tr!(lang, "connected in {after}", "verbunden in {after}"),
            Why::Reply => tr!(lang, "reply in {after}", "Antwort in {after}"),
            Why::Exchanged => tr!(
                lang,
                "bound here and exchanged traffic over loopback in {after}",
                "hier gebunden, Datenaustausch über Loopback in {after}"
            ),
            Why::InUse(holder) => in_use(holder.as_deref(), lang),
            Why::InstallMoves {
                holder,
                free,
                range,
            } => install_moves(holder.as_deref(), *free, *range, lang),
            Why::Listens(Some(holder)) => {
                let (name, pid) = (&holder.name, holder.pid);
                tr!(
                    lang,
                    "listening here: {name} (PID {pid})",
                    "lauscht hier: {name} (PID {pid})"
                )
            }
            Why::Listens(None) => tr!(
                lang,
                "a service listens here",
                "hier lauscht ein Dienst"
            ),
            Why::NothingListens => tr!(
                lang,
                "nothing listens on it on this machine",
                "auf diesem Rechner lauscht nichts darauf"
            ),
            Why::Refused => tr!(lang, "refused (RST) after {after}", "abgewiesen (RST) nach {after}"),
            Why::PortUnreachable => tr!(
                lang,
                "ICMP port unreachable after {after}",
                "ICMP Port unreachable nach {after}"
            ),
            Why::HostUnreachable => tr!(
                lang,
                "host unreachable or prohibited (ICMP) after {after}",
                "Host nicht erreichbar oder gesperrt (ICMP) nach {after}"
            ),
            Why::LocalFirewall => tr!(
                lang,
                "this machine's firewall refused to send it",
                "die Firewall dieses Rechners hat das Senden verweigert"
            ),
            Why::NoAnswer => tr!(lang, "no answer in {after}, {tries}", "keine Antwort in {after}, {tries}"),
            Why::NoAnswerKeyed => tr!(
                lang,
                "no answer in {after}, {tries}, though automate-ports serve answers every valid probe: dropped",
                "keine Antwort in {after}, {tries}, obwohl automate-ports serve jede gültige Probe beantwortet: verworfen"
            ),
            Why::Verified | Why::Redirected(_) | Why::Stale { .. } | Why::NotServe(_) => {
                keyed(&self.why, &after, lang)
            }
            Why::Local(local) => local.text(lang),
            Why::Unfinished { after } => unfinished(*after, lang),
            Why::Mapped(found) => crate::words::nat::mapping(found, lang),
            Why::App(found) => crate::words::app::summary(found, lang),
            Why::RealService(found) => real_service(found, lang),
        }
    }
}

/// With the key, where serve left the port to the real service: what answered there.
fn real_service(found: &crate::model::AppResult, lang: Lang) -> String {
    let summary = crate::words::app::summary(found, lang);
    if found.verdict == crate::model::AppVerdict::Fail {
        tr!(
            lang,
            "not automate-ports serve; what answers here says: {summary}",
            "nicht automate-ports serve; was hier antwortet, sagt: {summary}"
        )
    } else {
        tr!(
            lang,
            "the real service answered (serve does not hold this port): {summary}",
            "der echte Dienst hat geantwortet (serve belegt diesen Port nicht): {summary}"
        )
    }
}

/// The run's deadline came with the probe still inside the operating system.
fn unfinished(after: std::time::Duration, lang: Lang) -> String {
    let after = lang.duration(after);
    tr!(
        lang,
        "no result: the operating system did not return within {after}",
        "kein Ergebnis: das Betriebssystem ist nicht innerhalb von {after} zurückgekehrt"
    )
}

/// The port is taken on this machine: by whom, where the OS tells.
fn in_use(holder: Option<&Holder>, lang: Lang) -> String {
    let Some(holder) = holder else {
        return tr!(
            lang,
            "in use by another program on this machine (normally the Automate agent itself)",
            "von einem anderen Programm auf diesem Rechner belegt (normalerweise vom Automate-Agenten selbst)"
        );
    };
    let (name, pid) = (&holder.name, holder.pid);
    if holder.is_automate_agent() {
        tr!(
            lang,
            "held by the Automate agent ({name}, PID {pid})",
            "vom Automate-Agenten belegt ({name}, PID {pid})"
        )
    } else {
        tr!(
            lang,
            "held by {name} (PID {pid}), not the Automate agent",
            "von {name} (PID {pid}) belegt, nicht vom Automate-Agenten"
        )
    }
}

/// The port is taken and nothing is installed: which port an install takes instead.
fn install_moves(
    holder: Option<&Holder>,
    free: Option<u16>,
    range: crate::model::PortRange,
    lang: Lang,
) -> String {
    let held = match holder {
        Some(h) => {
            let (name, pid) = (&h.name, h.pid);
            tr!(
                lang,
                "held by {name} (PID {pid}), not the Automate agent",
                "von {name} (PID {pid}) belegt, nicht vom Automate-Agenten"
            )
        }
        None => lang
            .pick(
                "in use by another program on this machine (no Automate agent is installed)",
                "von einem anderen Programm auf diesem Rechner belegt (kein Automate-Agent installiert)",
            )
            .to_string(),
    };
    match free {
        Some(port) => tr!(
            lang,
            "{held}; an agent install would take UDP {port} instead (the first free port in {range}, as install scripts choose)",
            "{held}; eine Agenten-Installation nähme stattdessen UDP {port} (den ersten freien Port in {range}, wie Installationsskripte wählen)"
        ),
        None => tr!(
            lang,
            "{held}; every port in {range} is taken, so an agent install finds no tray port",
            "{held}; jeder Port in {range} ist belegt, eine Agenten-Installation findet also keinen Tray-Port"
        ),
    }
}

/// What a keyed probe heard from (or instead of) `serve`.
fn keyed(why: &Why, after: &str, lang: Lang) -> String {
    match why {
        Why::Verified => tr!(
            lang,
            "automate-ports serve answered in {after} (verified)",
            "automate-ports serve hat in {after} geantwortet (verifiziert)"
            ),
        Why::Redirected(port) => tr!(
            lang,
            "automate-ports serve answered, but for port {port}: a port forward or REDIRECT sends this port there",
            "automate-ports serve hat geantwortet, aber für Port {port}: eine Portweiterleitung oder ein REDIRECT leitet diesen Port dorthin"
            ),
        Why::Stale { offset_ms } => {
            let clocks = clock_difference(*offset_ms, lang);
            tr!(
                lang,
                "automate-ports serve answered with the key, but refused the probe as stale: {clocks}",
                "automate-ports serve hat mit dem Schlüssel geantwortet, die Probe aber als veraltet abgelehnt: {clocks}"
            )
            }
        Why::NotServe(detail) => {
            let detail = detail.text(lang);
            tr!(
                lang,
                "{detail}: not automate-ports serve with this key (a proxy, SYN proxy, port forward to another host, serve running with another key, or this machine's clock behind serve's start?)",
                "{detail}: nicht automate-ports serve mit diesem Schlüssel (ein Proxy, SYN-Proxy, eine Portweiterleitung auf einen anderen Host, läuft serve mit einem anderen Schlüssel, oder geht die Uhr dieses Rechners gegenüber dem Start von serve nach?)"
            )
            }
        _ => String::new(),
    }
}
