//! The probe stage: name resolution, the network seam ([`Prober`]) and the engine that runs
//! jobs through it in a bounded sliding window, with timeouts and retries enforced here
//! and nowhere else.

pub mod app;
pub mod dns;
pub mod net;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::model::{ProbeKind, Protocol, State};
use crate::plan::ProbeJob;

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
    NotServe(String),
    /// An application probe ran on the open port.
    App(Box<app::AppResult>),
    /// A local error: no route, no descriptors, bad address.
    Local(String),
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
    pub fn reason(&self, timeout: Duration) -> String {
        let after = fmt_duration(self.elapsed);
        let tries = if self.tries == 1 {
            "1 try".to_string()
        } else {
            format!("{} tries", self.tries)
        };
        match &self.why {
            Why::Connected => format!("connected in {after}"),
            Why::Reply => format!("reply in {after}"),
            Why::Exchanged => format!("bound here and exchanged traffic over loopback in {after}"),
            Why::InUse => {
                "in use by another program on this machine (normally the Automate agent itself)"
                    .into()
            }
            Why::Refused => format!("refused (RST) after {after}"),
            Why::PortUnreachable => format!("ICMP port unreachable after {after}"),
            Why::HostUnreachable => format!("host unreachable or prohibited (ICMP) after {after}"),
            Why::LocalFirewall => "this machine's firewall refused to send it".into(),
            Why::NoAnswer => format!("no answer in {}, {tries}", fmt_duration(timeout)),
            Why::NoAnswerKeyed => format!(
                "no answer in {}, {tries}, though automate-ports serve answers every valid probe: dropped",
                fmt_duration(timeout)
            ),
            Why::Verified => format!("automate-ports serve answered in {after} (verified)"),
            Why::Redirected(port) => format!(
                "automate-ports serve answered, but for port {port}: a port forward or REDIRECT sends this port there"
            ),
            Why::NotServe(detail) => format!(
                "{detail}: not automate-ports serve with this key (a proxy, SYN proxy, port forward to another host, or serve running with another key?)"
            ),
            Why::Local(message) => message.clone(),
            Why::App(found) => found.summary.clone(),
        }
    }
}

/// Formats a duration the way people read them: "0.3 ms", "12 ms", "2 s", "1.5 s".
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        let s = ms / 1000.0;
        if (s - s.round()).abs() < 0.05 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    }
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
        return Ok(budget);
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
        assert_eq!(out[3].reason(config.timeout), "no answer in 2 s, 3 tries");
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

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_micros(300)), "0.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
