//! The probe stage: name resolution, the network seam ([`Prober`]) and the engine that runs
//! jobs through it in a bounded sliding window, with timeouts and retries enforced here
//! and nowhere else.

pub mod app;
mod engine;
pub mod net;

pub use engine::{probe_width, run, EngineConfig, MAX_TRIES};

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::lang::Lang;
use crate::model::State;
use crate::plan::ProbeJob;
use crate::tr;

/// Why a probe ended the way it did; turned into words by [`Outcome::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// TCP handshake completed.
    Connected,
    /// A UDP reply arrived.
    Reply,
    /// Loopback probe: the port was bound here and traffic went through.
    Exchanged,
    /// Loopback probe: something on this machine already holds the port.
    InUse,
    /// TCP RST.
    Refused,
    /// ICMP port unreachable (UDP).
    PortUnreachable,
    /// ICMP host unreachable or administratively prohibited.
    HostUnreachable,
    /// This machine's own firewall refused to send (EPERM/EACCES).
    LocalFirewall,
    /// Nothing came back within the timeout, on every try.
    NoAnswer,
    /// Keyed UDP: nothing came back, though `serve` answers every valid probe.
    NoAnswerKeyed,
    /// Keyed: `automate-ports serve` answered with proof of the key, on the port aimed at.
    Verified,
    /// Keyed: a responder with the key answered, but the probe arrived on another port.
    Redirected(u16),
    /// Keyed: `serve` proved the key but refused the probe as stale: its clock differs from
    /// ours by `offset_ms` (positive: it is ahead), or it started after the probe was made.
    Stale { offset_ms: i64 },
    /// Keyed: something answered that is not `automate-ports serve`.
    NotServe(NotServe),
    /// An application probe ran on the open port.
    App(Box<app::AppResult>),
    /// Keyed: `serve` did not answer, but the real service proved itself through its
    /// application probe (serve leaves ports in use to it).
    RealService(Box<app::AppResult>),
    /// A local error: no route, no descriptors, bad address.
    Local(Local),
}

impl Why {
    /// Connected, but no valid answer: a busy responder or a lost reply can cause it as
    /// well as a middlebox, so it earns a second look before it is believed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Why::NotServe(NotServe::Silent(_) | NotServe::Closed | NotServe::Failed(_))
        )
    }

    /// Something on the far side (or on the way) answered: the address is alive.
    pub fn from_the_network(&self) -> bool {
        matches!(
            self,
            Why::Connected
                | Why::Reply
                | Why::Refused
                | Why::PortUnreachable
                | Why::HostUnreachable
                | Why::Verified
                | Why::Redirected(_)
                | Why::Stale { .. }
                | Why::NotServe(_)
                | Why::App(_)
                | Why::RealService(_)
        )
    }
}

/// Keyed probes: what the far side did instead of proving the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotServe {
    /// Connected, then silence for the whole timeout.
    Silent(Duration),
    /// Connected, then closed without a valid answer.
    Closed,
    /// Connected, then the exchange failed (the OS's words).
    Failed(String),
    /// An answer that does not prove the key (TCP).
    BadProof,
    /// A UDP reply that does not prove the key.
    BadUdpProof,
}

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

/// A problem on this machine that stopped a probe; the OS's own words where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    NoRoute(IpAddr),
    NoDescriptors,
    Probe(SocketAddr, String),
    NoSourcePort(u16),
    BindDenied(SocketAddr),
    NotOurs(IpAddr),
    Bind(SocketAddr, String),
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
            Local::Bind(addr, e) => tr!(
                lang,
                "cannot bind {addr} for the loopback test: {e}",
                "{addr} lässt sich für den Loopback-Test nicht binden: {e}"
            ),
        }
    }
}

impl NotServe {
    fn text(&self, lang: Lang) -> String {
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

/// What one try of a probe saw. Silence is the only outcome that is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answer(State, Why),
    Silent,
}

/// The result of a job after all its tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: State,
    pub why: Why,
    /// The round trip when something answered; the longest wait of a try when nothing did.
    pub elapsed: Duration,
    pub tries: u8,
    /// The probe carried the key (`serve` stands in for the far side).
    pub keyed: bool,
}

impl Outcome {
    /// Whether `serve` proved itself: `None` when the probe went without a key.
    pub fn verified(&self) -> Option<bool> {
        self.keyed.then_some(self.why == Why::Verified)
    }

    /// Whether what answered proved itself: `serve` with the key, or the real service
    /// through its application where serve left the port to it. `None` without a key.
    pub fn proven(&self) -> Option<bool> {
        self.keyed
            .then_some(matches!(self.why, Why::Verified | Why::RealService(_)))
    }

    /// The reason in plain words, e.g. "refused (RST) after 0.3 ms".
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
            Why::InUse => tr!(
                lang,
                "in use by another program on this machine (normally the Automate agent itself)",
                "von einem anderen Programm auf diesem Rechner belegt (normalerweise vom Automate-Agenten selbst)"
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
                    "{detail}: not automate-ports serve with this key (a proxy, SYN proxy, port forward to another host, or serve running with another key?)",
                    "{detail}: nicht automate-ports serve mit diesem Schlüssel (ein Proxy, SYN-Proxy, eine Portweiterleitung auf einen anderen Host, oder läuft serve mit einem anderen Schlüssel?)"
                )
            }
            Why::Local(local) => local.text(lang),
            Why::App(found) => found.summary.clone(),
            Why::RealService(found) => {
                let summary = &found.summary;
                tr!(
                    lang,
                    "the real service answered (serve does not hold this port): {summary}",
                    "der echte Dienst hat geantwortet (serve belegt diesen Port nicht): {summary}"
                )
            }
        }
    }
}

/// Where a try tells the engine that the far side answered at the network level (a TCP
/// handshake completed) while the try goes on.
#[derive(Debug, Clone)]
pub struct Heard {
    flags: Arc<[AtomicBool]>,
    index: usize,
}

impl Heard {
    /// Flags for `n` jobs, all clear.
    pub fn flags(n: usize) -> Arc<[AtomicBool]> {
        (0..n).map(|_| AtomicBool::new(false)).collect()
    }

    /// The flag of job `index`, cleared for a new try.
    pub fn new(flags: &Arc<[AtomicBool]>, index: usize) -> Heard {
        flags[index].store(false, Ordering::Relaxed);
        Heard {
            flags: Arc::clone(flags),
            index,
        }
    }

    pub fn mark(&self) {
        self.flags[self.index].store(true, Ordering::Relaxed);
    }

    /// A flag nobody reads, for a try outside the engine.
    pub fn unread() -> Heard {
        Heard::new(&Heard::flags(1), 0)
    }
}

/// Formats a duration in English, for logs and `serve`'s output.
pub fn fmt_duration(d: Duration) -> String {
    Lang::En.duration(d)
}

/// The network seam: one try of one job.
///
/// The engine cancels a try after `timeout` for each of its [`phases`](Prober::phases)
/// and counts that as silence; on an address whose other ports answer it may give up on a
/// silent try sooner. A prober with more than one phase (connect, then wait for the
/// responder's answer) bounds each phase by `timeout` itself and marks `heard` once the
/// first phase got an answer, so that a connection that opened but never answered is told
/// apart from one that never opened, and is never given up on as silence.
pub trait Prober: Send + Sync + 'static {
    fn attempt(
        &self,
        job: ProbeJob,
        timeout: Duration,
        heard: Heard,
    ) -> impl Future<Output = Attempt> + Send;

    /// How many timeouts one try of `job` may take.
    fn phases(&self, _job: &ProbeJob) -> u32 {
        1
    }

    /// Whether it holds a key: jobs marked [`ProbeJob::keyed`] then carry it.
    fn has_key(&self) -> bool {
        false
    }
}
