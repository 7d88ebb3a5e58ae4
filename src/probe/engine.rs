//! The engine: runs jobs through a [`Prober`] in a bounded sliding window. Timeouts,
//! retransmission and pacing are decided here and nowhere else.
//!
//! Silence is ambiguous: a firewall drops the probe, or the network lost it. Like nmap, the
//! engine tells the two apart by what the other ports on the same address do. While they
//! answer, a try that hears nothing for a few of their round trips is given up early and
//! sent again; re-probes continue while they keep recovering ports (loss) and stop as soon
//! as a round recovers none (a filter). An address where nothing answers gets the full
//! timeout and `--retries`, as before.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::Instant;

use super::{Attempt, Heard, Outcome, Prober, Why};
use crate::model::{ProbeKind, Protocol, State};
use crate::plan::ProbeJob;

/// Timeout, retries and width of a run.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Per try, at most.
    pub timeout: Duration,
    /// Extra tries after silence where nothing else on the address answers.
    pub retries: u8,
    /// In-flight jobs at most.
    pub concurrency: usize,
    /// New jobs per second at most (`--rate`).
    pub rate: Option<u32>,
}

/// Most tries a silent port gets on an address where other ports answer and lost probes
/// are being recovered: at 4 % loss per exchange, six tries leave one port in 250 million.
pub const MAX_TRIES: u8 = 6;

/// The shortest silence, with the rest of the address quiet as well, that ends a try early.
/// Well above a LAN's or a WAN's round trip, and above the scheduling hiccups of a busy
/// two-core machine that runs both ends.
const QUIET_FLOOR: Duration = Duration::from_millis(250);

/// How often running tries are held against their address's quiet time.
const TICK: Duration = Duration::from_millis(20);

/// In flight at most for the second try of ports that connected but gave no valid answer:
/// if a busy responder caused it, a narrow second look does not repeat it.
const NARROW_WIDTH: usize = 256;

/// Narrow looks a port gets before "connected, but no valid answer" is believed. Each waits
/// twice the timeout: after a busy sweep the OS remembers long round trips to the far side
/// and starts new connections with a long retransmission timeout, so one lost probe or reply
/// can take more than a timeout to repair.
const NARROW_LOOKS: u8 = 2;

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

/// What the engine has learnt about one address.
#[derive(Debug, Default)]
struct PathState {
    /// Round trips of answers, for the quiet time.
    samples: Vec<Duration>,
    /// The quiet time for `samples.len()` samples, computed once per new sample count.
    quiet: Option<(usize, Duration)>,
    last_answer: Option<Instant>,
    /// A port answered on a later try: silence here includes loss.
    recovered: bool,
    /// Times tries were given up since the last answer: each doubles the quiet time, so a
    /// passing outage (a router rebooting, neighbour discovery retrying) is waited out
    /// instead of burning every try in a second.
    strikes: u32,
}

impl PathState {
    fn live(&self) -> bool {
        self.last_answer.is_some()
    }

    /// How long the address may stay silent before a running try counts as lost: twice the
    /// 90th-percentile round trip, within the floor and the timeout, doubled for each strike.
    fn quiet_time(&mut self, timeout: Duration) -> Duration {
        let n = self.samples.len();
        if n == 0 {
            return timeout;
        }
        let base = match self.quiet {
            Some((count, quiet)) if count == n => quiet,
            _ => {
                let mut sorted = self.samples.clone();
                let at = (n * 9 / 10).min(n - 1);
                let (_, p90, _) = sorted.select_nth_unstable(at);
                let quiet = (*p90 * 2).clamp(QUIET_FLOOR.min(timeout), timeout);
                self.quiet = Some((n, quiet));
                quiet
            }
        };
        base.saturating_mul(1 << self.strikes.min(8)).min(timeout)
    }

    fn answered(&mut self, at: Instant) {
        self.last_answer = Some(self.last_answer.map_or(at, |last| last.max(at)));
        self.strikes = 0;
    }
}

/// One job's progress through its tries.
#[derive(Debug, Default)]
struct Slot {
    path: usize,
    tries: u8,
    /// Bumped when a try is given up, so its late result is ignored.
    generation: u32,
    running: Option<Running>,
    /// A "connected, but no valid answer" outcome, reported if later tries hear nothing.
    held: Option<(State, Why, Duration)>,
    /// Narrow looks it has had.
    narrowed: u8,
    longest_wait: Duration,
    done: bool,
}

#[derive(Debug)]
struct Running {
    abort: AbortHandle,
    /// Narrow tries run to their full timeout.
    narrow: bool,
}

/// Runs every job and returns their outcomes in job order. `done` is called as each job
/// finishes (for a progress bar).
pub async fn run<P: Prober>(
    prober: Arc<P>,
    jobs: &[ProbeJob],
    config: EngineConfig,
    done: &dyn Fn(),
) -> Vec<Outcome> {
    let mut engine = Engine::new(jobs, config);
    let width = config.concurrency.max(1);
    let mut set: JoinSet<Finished> = JoinSet::new();
    // --rate: job starts are spaced evenly; without it the window alone paces.
    let spacing = config
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let mut next_start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while set.len() < width {
            if spacing.is_some() && Instant::now() < next_start {
                break;
            }
            let Some((index, narrow)) = engine.next_job() else {
                break;
            };
            if let Some(spacing) = spacing {
                next_start += spacing;
            }
            let prober = Arc::clone(&prober);
            let job = jobs[index].clone();
            let generation = engine.slots[index].generation;
            let phases = prober.phases(&job);
            let timeout = if narrow {
                config.timeout * 2
            } else {
                config.timeout
            };
            let heard = Heard::new(&engine.heard, index);
            let starts = Arc::clone(&engine.starts);
            starts.clear(index);
            let abort = set.spawn(async move {
                // Stamped when the try really begins: a busy runtime may poll a spawned
                // task much later, and that wait is not the far side's silence.
                let started = starts.stamp(index);
                let attempt =
                    tokio::time::timeout(timeout * phases, prober.attempt(job, timeout, heard))
                        .await
                        .unwrap_or(Attempt::Silent);
                let at = Instant::now();
                Finished {
                    index,
                    generation,
                    attempt,
                    elapsed: at - started,
                    at,
                }
            });
            engine.started(index, abort, narrow);
        }
        let paced = spacing.is_some() && engine.has_ready() && set.len() < width;
        let watching = engine.any_live() && !set.is_empty();
        tokio::select! {
            joined = set.join_next(), if !set.is_empty() => engine.joined(joined, done),
            _ = tick.tick(), if watching => {
                // Every answer that has arrived counts before anything is called quiet.
                while let Some(joined) = set.try_join_next() {
                    engine.joined(Some(joined), done);
                }
                engine.give_up_quiet(done);
            }
            () = tokio::time::sleep_until(next_start), if paced => {}
            else => {
                if !engine.unpark() {
                    engine.finish_parked(done);
                    break;
                }
            }
        }
    }
    engine.into_outcomes()
}

/// What a try's task hands back.
struct Finished {
    index: usize,
    generation: u32,
    attempt: Attempt,
    elapsed: Duration,
    /// When it ended (not when the engine got round to it).
    at: Instant,
}

/// When each job's running try began on the network, for `give_up_quiet`.
struct Starts {
    epoch: Instant,
    /// Nanoseconds after `epoch`, plus one; zero while the try has not begun.
    nanos: Box<[AtomicU64]>,
}

impl Starts {
    fn new(n: usize) -> Starts {
        Starts {
            epoch: Instant::now(),
            nanos: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn clear(&self, index: usize) {
        self.nanos[index].store(0, Ordering::Relaxed);
    }

    fn stamp(&self, index: usize) -> Instant {
        let now = Instant::now();
        let nanos = now.duration_since(self.epoch).as_nanos() as u64 + 1;
        self.nanos[index].store(nanos, Ordering::Relaxed);
        now
    }

    fn get(&self, index: usize) -> Option<Instant> {
        match self.nanos[index].load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }
}

struct Engine<'a> {
    jobs: &'a [ProbeJob],
    config: EngineConfig,
    slots: Vec<Slot>,
    paths: Vec<PathState>,
    ready: VecDeque<usize>,
    narrow: VecDeque<usize>,
    narrow_running: usize,
    /// Tries running, narrow ones included.
    running: usize,
    parked: Vec<usize>,
    outcomes: Vec<Option<Outcome>>,
    /// Set by a running try once the far side answered its first phase.
    heard: Arc<[AtomicBool]>,
    starts: Arc<Starts>,
}

impl<'a> Engine<'a> {
    fn new(jobs: &'a [ProbeJob], config: EngineConfig) -> Engine<'a> {
        // One state per address, across protocols: while any port there answers (a keyed
        // sweep keeps the far side busy with TCP while UDP replies queue), it is not quiet.
        let mut index: HashMap<IpAddr, usize> = HashMap::new();
        let slots = jobs
            .iter()
            .map(|job| {
                let next = index.len();
                let path = *index.entry(job.addr.ip()).or_insert(next);
                Slot {
                    path,
                    ..Slot::default()
                }
            })
            .collect();
        Engine {
            jobs,
            config,
            slots,
            paths: (0..index.len()).map(|_| PathState::default()).collect(),
            ready: (0..jobs.len()).collect(),
            narrow: VecDeque::new(),
            narrow_running: 0,
            running: 0,
            parked: Vec::new(),
            outcomes: vec![None; jobs.len()],
            heard: Heard::flags(jobs.len()),
            starts: Arc::new(Starts::new(jobs.len())),
        }
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty() || (!self.narrow.is_empty() && self.narrow_may_start())
    }

    /// Narrow tries wait until nothing else runs: a responder still busy with the sweep is
    /// what they give a second chance to.
    fn narrow_may_start(&self) -> bool {
        self.running == self.narrow_running && self.narrow_running < NARROW_WIDTH
    }

    fn any_live(&self) -> bool {
        self.paths.iter().any(PathState::live)
    }

    /// The next job to start, and whether it is a narrow try.
    fn next_job(&mut self) -> Option<(usize, bool)> {
        if let Some(index) = self.ready.pop_front() {
            return Some((index, false));
        }
        if self.narrow_may_start() {
            return self.narrow.pop_front().map(|index| (index, true));
        }
        None
    }

    fn started(&mut self, index: usize, abort: AbortHandle, narrow: bool) {
        self.running += 1;
        if narrow {
            self.narrow_running += 1;
        }
        self.slots[index].running = Some(Running { abort, narrow });
    }

    fn joined(&mut self, joined: Option<Result<Finished, JoinError>>, done: &dyn Fn()) {
        match joined {
            Some(Ok(finished)) => self.finished(finished, done),
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Given up by `give_up_quiet`, already accounted for.
            Some(Err(_)) | None => {}
        }
    }

    fn finished(&mut self, finished: Finished, done: &dyn Fn()) {
        let Finished {
            index,
            generation,
            attempt,
            elapsed,
            at,
        } = finished;
        let slot = &mut self.slots[index];
        if slot.done || slot.generation != generation {
            return;
        }
        if slot.running.take().is_some_and(|r| r.narrow) {
            self.narrow_running -= 1;
        }
        self.running -= 1;
        slot.tries += 1;
        slot.longest_wait = slot.longest_wait.max(elapsed);
        let job = &self.jobs[index];
        let path = &mut self.paths[slot.path];
        match attempt {
            Attempt::Answer(state, why) if why.retryable() => {
                tracing::debug!(addr = %job.addr, ?why, try_ = slot.tries, "no valid answer");
                // It connected: the address is alive, but this proves nothing yet.
                path.answered(at);
                slot.held = Some((state, why, elapsed));
                if slot.narrowed >= NARROW_LOOKS {
                    self.finish(index, done);
                } else {
                    slot.narrowed += 1;
                    self.narrow.push_back(index);
                }
            }
            Attempt::Answer(state, why) => {
                if why.from_the_network() {
                    path.answered(at);
                    if slot.tries > 1 {
                        path.recovered = true;
                    }
                    if job.kind == ProbeKind::Connect {
                        path.samples.push(elapsed);
                    }
                }
                self.outcomes[index] = Some(Outcome {
                    state,
                    why,
                    elapsed,
                    tries: slot.tries,
                    keyed: job.keyed,
                });
                slot.done = true;
                done();
            }
            Attempt::Silent => self.silent(index, done),
        }
    }

    /// Running tries on an address that has gone quiet: everything that was going to answer
    /// has, so these are lost or dropped. Give them up and decide on another try.
    fn give_up_quiet(&mut self, done: &dyn Fn()) {
        let now = Instant::now();
        let timeout = self.config.timeout;
        let quiet: Vec<Option<Duration>> = self
            .paths
            .iter_mut()
            .map(|p| {
                let last = p.last_answer?;
                let quiet = p.quiet_time(timeout);
                (now.duration_since(last) > quiet).then_some(quiet)
            })
            .collect();
        let mut struck = vec![false; self.paths.len()];
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(running) = &slot.running else {
                continue;
            };
            let Some(quiet) = quiet[slot.path] else {
                continue;
            };
            let Some(started) = self.starts.get(index) else {
                continue;
            };
            let waited = now.duration_since(started);
            // Connected tries are not silence (a keyed exchange or an application probe is
            // under way); loopback tries are local; narrow tries get their whole time.
            let connected = self.heard[index].load(Ordering::Relaxed);
            if connected
                || running.narrow
                || self.jobs[index].kind == ProbeKind::Loopback
                || waited <= quiet
            {
                continue;
            }
            running.abort.abort();
            slot.running = None;
            self.running -= 1;
            slot.generation += 1;
            slot.tries += 1;
            slot.longest_wait = slot.longest_wait.max(waited);
            struck[slot.path] = true;
            self.silent(index, done);
        }
        for (path, struck) in self.paths.iter_mut().zip(struck) {
            if struck {
                path.strikes += 1;
            }
        }
    }

    /// A try heard nothing: send another now, later (parked until the address shows loss),
    /// or report the silence.
    fn silent(&mut self, index: usize, done: &dyn Fn()) {
        match self.another_try(index) {
            Some(true) => self.ready.push_back(index),
            Some(false) => self.parked.push(index),
            None => self.finish(index, done),
        }
    }

    /// `Some(true)`: try again now; `Some(false)`: not unless the address shows loss later;
    /// `None`: no more tries.
    fn another_try(&self, index: usize) -> Option<bool> {
        let slot = &self.slots[index];
        let cap = MAX_TRIES.max(self.config.retries.saturating_add(1));
        if slot.tries >= cap {
            return None;
        }
        let path = &self.paths[slot.path];
        if !path.live() {
            return (slot.tries <= self.config.retries).then_some(true);
        }
        if slot.tries == 1 || path.recovered {
            return Some(true);
        }
        Some(false)
    }

    /// When nothing runs any more: parked jobs whose address has since shown loss go again.
    /// Returns whether any did.
    fn unpark(&mut self) -> bool {
        let parked = std::mem::take(&mut self.parked);
        for index in parked {
            if self.another_try(index) == Some(true) {
                self.ready.push_back(index);
            } else {
                self.parked.push(index);
            }
        }
        !self.ready.is_empty()
    }

    /// Ends a job with what it has: the held answer, else silence.
    fn finish(&mut self, index: usize, done: &dyn Fn()) {
        let slot = &mut self.slots[index];
        let job = &self.jobs[index];
        let outcome = match slot.held.take() {
            Some((state, why, elapsed)) => Outcome {
                state,
                why,
                elapsed,
                tries: slot.tries,
                keyed: job.keyed,
            },
            None => silence(job, slot.longest_wait, slot.tries),
        };
        self.outcomes[index] = Some(outcome);
        slot.done = true;
        done();
    }

    fn finish_parked(&mut self, done: &dyn Fn()) {
        for index in std::mem::take(&mut self.parked) {
            self.finish(index, done);
        }
    }

    fn into_outcomes(self) -> Vec<Outcome> {
        let tries: usize = self.slots.iter().map(|s| usize::from(s.tries)).sum();
        let strikes: u32 = self.paths.iter().map(|p| p.strikes).sum();
        tracing::debug!(jobs = self.jobs.len(), tries, strikes, "probing done");
        self.outcomes
            .into_iter()
            .map(|o| o.expect("every job reports"))
            .collect()
    }
}

/// What silence after every try means: a TCP SYN that gets nothing back is dropped; a UDP
/// datagram that gets nothing back may have reached a quiet service, unless it was keyed
/// (`serve` answers every valid probe).
fn silence(job: &ProbeJob, waited: Duration, tries: u8) -> Outcome {
    let (state, why) = match (job.kind, job.protocol) {
        (ProbeKind::Connect, Protocol::Udp) if job.keyed => (State::Filtered, Why::NoAnswerKeyed),
        (ProbeKind::Connect, Protocol::Udp) => (State::OpenFiltered, Why::NoAnswer),
        _ => (State::Filtered, Why::NoAnswer),
    };
    Outcome {
        state,
        why,
        elapsed: waited,
        tries,
        keyed: job.keyed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A fake network: answers by port, counts tries and the widest moment. Ports listed in
    /// `lose` lose their first that many tries (the probe vanishes: no answer, ever).
    #[derive(Default)]
    struct Fake {
        in_flight: AtomicUsize,
        widest: AtomicUsize,
        tries: AtomicUsize,
        lose: Mutex<HashMap<u16, usize>>,
    }

    impl Prober for Fake {
        async fn attempt(&self, job: ProbeJob, timeout: Duration, heard: Heard) -> Attempt {
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
            let port = job.addr.port();
            let lost = {
                let mut lose = self.lose.lock().unwrap();
                match lose.get_mut(&port) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                }
            };
            // A millisecond of round trip, like a LAN.
            tokio::time::sleep(Duration::from_millis(1)).await;
            match port {
                _ if lost => hang().await,
                // Connects, then the far side never says a word (a plain listener).
                7 => {
                    heard.mark();
                    tokio::time::sleep(timeout).await;
                    Attempt::Answer(
                        State::Open,
                        Why::NotServe(super::super::NotServe::Silent(timeout)),
                    )
                }
                1 => Attempt::Answer(State::Open, Why::Connected),
                3 => Attempt::Silent,
                5 => Attempt::Answer(State::Open, Why::NotServe(super::super::NotServe::Closed)),
                2 | 1000.. => Attempt::Answer(State::Closed, Why::Refused),
                _ => hang().await,
            }
        }

        fn phases(&self, job: &ProbeJob) -> u32 {
            // Port 7 connects, then waits a whole timeout for an answer.
            if job.addr.port() == 7 {
                2
            } else {
                1
            }
        }
    }

    /// Only the engine's timeout (or its giving up) ends it.
    async fn hang() -> Attempt {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Attempt::Silent
    }

    fn job(port: u16, protocol: Protocol) -> ProbeJob {
        job_at([192, 0, 2, 1], port, protocol)
    }

    fn job_at(ip: [u8; 4], port: u16, protocol: Protocol) -> ProbeJob {
        ProbeJob {
            addr: (ip, port).into(),
            protocol,
            kind: ProbeKind::Connect,
            host: None,
            keyed: false,
        }
    }

    fn config(timeout_ms: u64, retries: u8, concurrency: usize) -> EngineConfig {
        EngineConfig {
            timeout: Duration::from_millis(timeout_ms),
            retries,
            concurrency,
            rate: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_address_gets_the_full_timeout_and_the_retries() {
        let prober = Arc::new(Fake::default());
        let jobs = [job(3, Protocol::Udp), job(4, Protocol::Tcp)];
        let config = config(2000, 2, 8);
        let started = Instant::now();
        let out = run(Arc::clone(&prober), &jobs, config, &|| {}).await;
        assert_eq!((out[0].state, out[0].tries), (State::OpenFiltered, 3));
        assert_eq!((out[1].state, out[1].tries), (State::Filtered, 3));
        assert_eq!(out[1].reason(Lang::En), "no answer in 2 s, 3 tries");
        assert_eq!(out[1].reason(Lang::De), "keine Antwort in 2 s, 3 Versuche");
        // Three full timeouts, one after the other.
        assert!(
            started.elapsed() >= Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(prober.tries.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_final_and_in_job_order() {
        let prober = Arc::new(Fake::default());
        let jobs = [job(1, Protocol::Tcp), job(2, Protocol::Tcp)];
        let out = run(Arc::clone(&prober), &jobs, config(2000, 2, 8), &|| {}).await;
        assert_eq!((out[0].state, out[0].tries), (State::Open, 1));
        assert_eq!((out[1].state, out[1].tries), (State::Closed, 1));
        assert_eq!(prober.tries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_filter_on_a_live_address_is_given_up_early_after_one_more_try() {
        // 100 ports answer, 20 are dropped: the drops are tried twice, quickly.
        let prober = Arc::new(Fake::default());
        let mut jobs: Vec<ProbeJob> = (1000..1100).map(|p| job(p, Protocol::Tcp)).collect();
        jobs.extend((10..30).map(|p| job(p, Protocol::Tcp)));
        let started = Instant::now();
        let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 1000), &|| {}).await;
        let took = started.elapsed();
        assert!(out[..100].iter().all(|o| o.state == State::Closed));
        for o in &out[100..] {
            assert_eq!((o.state, o.tries), (State::Filtered, 2), "{o:?}");
            assert!(o.elapsed < Duration::from_secs(1), "{o:?}");
        }
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn loss_on_a_live_address_is_recovered_without_full_timeouts() {
        // Every port answers, but some probes are lost once, twice or four times.
        let prober = Arc::new(Fake::default());
        {
            let mut lose = prober.lose.lock().unwrap();
            for p in 1000..1040 {
                lose.insert(p, 1);
            }
            lose.insert(1050, 2);
            lose.insert(1060, 4);
        }
        let jobs: Vec<ProbeJob> = (1000..1200).map(|p| job(p, Protocol::Tcp)).collect();
        let started = Instant::now();
        let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 1000), &|| {}).await;
        let took = started.elapsed();
        assert!(out.iter().all(|o| o.state == State::Closed), "{out:?}");
        assert_eq!(out[0].tries, 2);
        assert_eq!(out[50].tries, 3);
        assert_eq!(out[60].tries, 5);
        // Four quiet times of 250 ms, not four timeouts of 2 s.
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn more_loss_than_the_cap_is_reported_with_its_tries() {
        let prober = Arc::new(Fake::default());
        prober.lose.lock().unwrap().insert(1001, 100);
        prober.lose.lock().unwrap().insert(1002, 1);
        let jobs: Vec<ProbeJob> = (1000..1010).map(|p| job(p, Protocol::Tcp)).collect();
        let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 100), &|| {}).await;
        assert_eq!((out[1].state, out[1].tries), (State::Filtered, MAX_TRIES));
        assert_eq!(out[2].state, State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn each_address_is_judged_by_its_own_answers() {
        // 192.0.2.1 answers; 192.0.2.9 is dead: its port waits the full timeout.
        let prober = Arc::new(Fake::default());
        let jobs = [
            job(1000, Protocol::Tcp),
            job(20, Protocol::Tcp),
            job_at([192, 0, 2, 9], 20, Protocol::Tcp),
        ];
        let out = run(Arc::clone(&prober), &jobs, config(2000, 0, 8), &|| {}).await;
        assert_eq!(out[1].tries, 2);
        assert!(out[1].elapsed < Duration::from_secs(1));
        assert_eq!(out[2].tries, 1);
        assert!(out[2].elapsed >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn connected_without_a_valid_answer_gets_narrow_second_looks() {
        let prober = Arc::new(Fake::default());
        let jobs = [job(5, Protocol::Tcp), job(1000, Protocol::Tcp)];
        let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 8), &|| {}).await;
        assert_eq!(out[0].tries, 1 + NARROW_LOOKS);
        assert!(matches!(out[0].why, Why::NotServe(_)), "{:?}", out[0]);
        assert_eq!(
            prober.tries.load(Ordering::SeqCst),
            usize::from(2 + NARROW_LOOKS)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connected_try_is_never_given_up_as_silence() {
        let prober = Arc::new(Fake::default());
        let jobs = [job(7, Protocol::Tcp), job(1000, Protocol::Tcp)];
        let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 8), &|| {}).await;
        assert!(
            matches!(out[0].why, Why::NotServe(super::super::NotServe::Silent(_))),
            "{:?}",
            out[0]
        );
        assert_eq!(out[0].tries, 1 + NARROW_LOOKS, "the narrow looks");
    }

    #[tokio::test(start_paused = true)]
    async fn window_is_never_wider_than_asked() {
        let prober = Arc::new(Fake::default());
        let jobs: Vec<ProbeJob> = (0..200).map(|i| job(10 + i, Protocol::Tcp)).collect();
        let done = std::cell::Cell::new(0);
        let out = run(Arc::clone(&prober), &jobs, config(500, 0, 16), &|| {
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
        let prober = Arc::new(Fake::default());
        let jobs: Vec<ProbeJob> = (0..50).map(|_| job(1, Protocol::Tcp)).collect();
        let config = EngineConfig {
            rate: Some(100),
            ..config(1000, 0, 1000)
        };
        let started = Instant::now();
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
