//! The probe stage: name resolution, the network seam ([`Prober`]) and the engine that runs
//! jobs through it in a bounded sliding window, with timeouts and retries enforced here
//! and nowhere else.

pub mod app;
pub mod dns;
pub mod net;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::lang::Lang;
use crate::model::{ProbeKind, Protocol, State};
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
    /// Keyed: something answered that is not `automate-ports serve`.
    NotServe(NotServe),
    /// An application probe ran on the open port.
    App(Box<app::AppResult>),
    /// A local error: no route, no descriptors, bad address.
    Local(Local),
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
    /// Time of the last try: the round trip when something answered.
    pub elapsed: Duration,
    pub tries: u8,
}

impl Outcome {
    /// Whether `serve` proved itself: `None` when probing without a key.
    pub fn verified(&self, keyed: bool) -> Option<bool> {
        keyed.then_some(self.why == Why::Verified)
    }

    /// The reason in plain words, e.g. "refused (RST) after 0.3 ms".
    pub fn reason(&self, timeout: Duration, lang: Lang) -> String {
        let after = lang.duration(self.elapsed);
        let t = lang.duration(timeout);
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
            Why::NoAnswer => tr!(lang, "no answer in {t}, {tries}", "keine Antwort in {t}, {tries}"),
            Why::NoAnswerKeyed => tr!(
                lang,
                "no answer in {t}, {tries}, though automate-ports serve answers every valid probe: dropped",
                "keine Antwort in {t}, {tries}, obwohl automate-ports serve jede gültige Probe beantwortet: verworfen"
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
        }
    }
}

/// Formats a duration in English, for logs and `serve`'s output.
pub fn fmt_duration(d: Duration) -> String {
    Lang::En.duration(d)
}

/// The network seam: one try of one job.
///
/// The engine cancels a try after `timeout` for each of its [`phases`](Prober::phases)
/// and counts that as silence. A prober with more than one phase (connect, then wait for
/// the responder's answer) bounds each phase by `timeout` itself, so that a connection
/// that opened but never answered is told apart from one that never opened.
pub trait Prober: Send + Sync + 'static {
    fn attempt(&self, job: ProbeJob, timeout: Duration) -> impl Future<Output = Attempt> + Send;

    /// How many timeouts one try of `job` may take.
    fn phases(&self, _job: &ProbeJob) -> u32 {
        1
    }

    /// Whether probes carry the shared key (silence then means something else for UDP).
    fn keyed(&self) -> bool {
        false
    }
}

/// Timeout, retries and width of a run.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Per try.
    pub timeout: Duration,
    /// Extra tries after silence.
    pub retries: u8,
    /// In-flight jobs at most.
    pub concurrency: usize,
    /// New jobs per second at most (`--rate`).
    pub rate: Option<u32>,
}

/// Descriptors kept free for the runtime, stdio, DNS and the report.
const FD_RESERVE: u64 = 64;

/// Windows has no descriptor limit to narrow the default width, but every connect takes a
/// port from its dynamic range (16,384 by default, shared with every other program), so a
/// full sweep with all of them in flight would starve the machine: stay well below it.
const WINDOWS_WIDTH: usize = 4096;

/// How many probes may be in flight: `wanted` (all of them when `None`), narrowed to what
/// the open-file limit allows. The soft limit is raised to the hard limit first where the
/// OS allows. `extra` descriptors are kept for probes that hold two sockets (loopback).
pub fn probe_width(wanted: Option<usize>, extra: usize) -> anyhow::Result<usize> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX);
    let budget =
        usize::try_from(limit.saturating_sub(FD_RESERVE + extra as u64)).unwrap_or(usize::MAX);
    anyhow::ensure!(
        budget >= 1,
        "the open-file limit is {limit}, too low to probe anything: raise it (ulimit -n) to at least {}",
        FD_RESERVE + extra as u64 + 2
    );
    let Some(wanted) = wanted else {
        return Ok(if cfg!(windows) {
            budget.min(WINDOWS_WIDTH)
        } else {
            budget
        });
    };
    if budget < wanted {
        tracing::debug!(
            wanted,
            budget,
            limit,
            "narrowing concurrency to the file-descriptor limit"
        );
    }
    Ok(wanted.min(budget))
}

/// Runs every job and returns their outcomes in job order. `done` is called as each job
/// finishes (for a progress bar).
pub async fn run<P: Prober>(
    prober: Arc<P>,
    jobs: &[ProbeJob],
    config: EngineConfig,
    done: &dyn Fn(),
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut set = JoinSet::new();
    let mut next = 0;
    let width = config.concurrency.max(1);
    // --rate: job starts are spaced evenly; without it the window alone paces.
    let spacing = config
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let mut next_start = tokio::time::Instant::now();
    loop {
        while set.len() < width && next < jobs.len() {
            if let Some(spacing) = spacing {
                if tokio::time::Instant::now() < next_start {
                    break;
                }
                next_start += spacing;
            }
            let prober = Arc::clone(&prober);
            let job = jobs[next].clone();
            let index = next;
            set.spawn(async move { (index, one_job(&*prober, job, config).await) });
            next += 1;
        }
        let paced = spacing.is_some() && next < jobs.len() && set.len() < width;
        let finished = tokio::select! {
            joined = set.join_next(), if !set.is_empty() => joined,
            () = tokio::time::sleep_until(next_start), if paced => continue,
            else => None,
        };
        match finished {
            Some(Ok((index, outcome))) => {
                outcomes[index] = Some(outcome);
                done();
            }
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            None => break,
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every job reports"))
        .collect()
}

async fn one_job<P: Prober>(prober: &P, job: ProbeJob, config: EngineConfig) -> Outcome {
    let tries = config.retries.saturating_add(1);
    let mut elapsed = Duration::ZERO;
    for attempt in 1..=tries {
        let started = Instant::now();
        let budget = config.timeout * prober.phases(&job);
        let result =
            tokio::time::timeout(budget, prober.attempt(job.clone(), config.timeout)).await;
        elapsed = started.elapsed();
        if let Ok(Attempt::Answer(state, why)) = result {
            return Outcome {
                state,
                why,
                elapsed,
                tries: attempt,
            };
        }
    }
    let keyed_udp =
        prober.keyed() && job.protocol == Protocol::Udp && job.kind == ProbeKind::Connect;
    Outcome {
        state: if keyed_udp {
            State::Filtered
        } else {
            silent_state(&job)
        },
        why: if keyed_udp {
            Why::NoAnswerKeyed
        } else {
            Why::NoAnswer
        },
        elapsed,
        tries,
    }
}

/// What silence after every try means: a TCP SYN that gets nothing back is dropped; a UDP
/// datagram that gets nothing back may have reached a quiet service.
fn silent_state(job: &ProbeJob) -> State {
    match (job.kind, job.protocol) {
        (ProbeKind::Connect, Protocol::Udp) => State::OpenFiltered,
        _ => State::Filtered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake network: answers by port, counts tries and the widest moment.
    struct Fake {
        in_flight: AtomicUsize,
        widest: AtomicUsize,
        tries: AtomicUsize,
    }

    impl Prober for Fake {
        async fn attempt(&self, job: ProbeJob, _timeout: Duration) -> Attempt {
            // Counted down on drop: the engine cancels tries that run past the timeout.
            struct InFlight<'a>(&'a AtomicUsize);
            impl Drop for InFlight<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let _guard = InFlight(&self.in_flight);
            self.widest.fetch_max(now, Ordering::SeqCst);
            self.tries.fetch_add(1, Ordering::SeqCst);
            let answer = match job.addr.port() {
                1 => Attempt::Answer(State::Open, Why::Connected),
                2 => Attempt::Answer(State::Closed, Why::Refused),
                3 => Attempt::Silent,
                _ => {
                    // Hangs: only the engine's timeout ends it.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Attempt::Silent
                }
            };
            answer
        }
    }

    fn job(port: u16, protocol: Protocol) -> ProbeJob {
        ProbeJob {
            addr: ([192, 0, 2, 1], port).into(),
            protocol,
            kind: ProbeKind::Connect,
            host: None,
        }
    }

    fn fake() -> Arc<Fake> {
        Arc::new(Fake {
            in_flight: AtomicUsize::new(0),
            widest: AtomicUsize::new(0),
            tries: AtomicUsize::new(0),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_retries_and_order() {
        let prober = fake();
        let jobs = [
            job(1, Protocol::Tcp),
            job(2, Protocol::Tcp),
            job(3, Protocol::Udp),
            job(4, Protocol::Tcp),
        ];
        let config = EngineConfig {
            timeout: Duration::from_secs(2),
            retries: 2,
            concurrency: 8,
            rate: None,
        };
        let out = run(Arc::clone(&prober), &jobs, config, &|| {}).await;
        assert_eq!(out[0].state, State::Open);
        assert_eq!(out[1].state, State::Closed);
        assert_eq!((out[2].state, out[2].tries), (State::OpenFiltered, 3));
        assert_eq!((out[3].state, out[3].tries), (State::Filtered, 3));
        assert_eq!(
            out[3].reason(config.timeout, Lang::En),
            "no answer in 2 s, 3 tries"
        );
        assert_eq!(
            out[3].reason(config.timeout, Lang::De),
            "keine Antwort in 2 s, 3 Versuche"
        );
        // 1 + 1 + 3 + 3 tries.
        assert_eq!(prober.tries.load(Ordering::SeqCst), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn window_is_never_wider_than_asked() {
        let prober = fake();
        let jobs: Vec<ProbeJob> = (0..200).map(|i| job(4 + i, Protocol::Tcp)).collect();
        let config = EngineConfig {
            timeout: Duration::from_millis(500),
            retries: 0,
            concurrency: 16,
            rate: None,
        };
        let done = std::cell::Cell::new(0);
        let out = run(Arc::clone(&prober), &jobs, config, &|| {
            done.set(done.get() + 1);
        })
        .await;
        assert_eq!(done.get(), 200);
        assert_eq!(out.len(), 200);
        assert!(out.iter().all(|o| o.state == State::Filtered));
        assert_eq!(prober.widest.load(Ordering::SeqCst), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_spaces_job_starts() {
        let prober = fake();
        let jobs: Vec<ProbeJob> = (0..50).map(|_| job(1, Protocol::Tcp)).collect();
        let config = EngineConfig {
            timeout: Duration::from_secs(1),
            retries: 0,
            concurrency: 1000,
            rate: Some(100),
        };
        let started = tokio::time::Instant::now();
        let out = run(Arc::clone(&prober), &jobs, config, &|| {}).await;
        assert!(out.iter().all(|o| o.state == State::Open));
        // 50 starts at 100 per second: the last one starts 0.49 s after the first.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(490) && took < Duration::from_millis(600),
            "{took:?}"
        );
    }
}
