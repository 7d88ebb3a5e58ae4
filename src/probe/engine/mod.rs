//! The engine: runs jobs through a [`Prober`] in a bounded sliding window. Timeouts,
//! retransmission and pacing are decided here and nowhere else.
//!
//! Silence is ambiguous: a firewall drops the probe, or the network lost it. Like nmap, the
//! engine tells the two apart by what the other ports on the same address do. While they
//! answer, a try that hears nothing for a few of their round trips is given up early and
//! sent again; re-probes continue while they keep recovering ports (loss) and stop as soon
//! as a round recovers none (a filter). An address where nothing answers gets the full
//! timeout and `--retries`.

mod shard;
mod state;
#[cfg(test)]
mod tests;
mod trace;
mod window;

pub use trace::{trace, trace_bound, Traced, MAX_HOPS};

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Attempt, Ended, Heard, Outcome, Prober, Sweeper, Why};
use crate::model::{ProbeKind, Protocol, State};
use crate::plan::ProbeJob;
use window::Engine;

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
    /// Narrow looks started per second at most: [`narrow_rate`], or this engine's share of it
    /// when a run is split into parts that look at the same addresses.
    pub narrow_rate: u32,
}

/// Most tries a silent port gets on an address where other ports answer and lost probes
/// are being recovered: at 4 % loss per exchange, six tries leave one port in 250 million.
pub const MAX_TRIES: u8 = 6;

/// The shortest silence, with the rest of the address quiet as well, that ends a try early.
/// Well above a LAN's or a WAN's round trip, and above the scheduling hiccups of a busy
/// two-core machine that runs both ends.
pub(super) const QUIET_FLOOR: Duration = Duration::from_millis(250);

/// How often running tries are held against their address's quiet time.
pub(super) const TICK: Duration = Duration::from_millis(20);

/// In flight at most for the second try of ports that connected but gave no valid answer:
/// if a busy responder caused it, a narrow second look does not repeat it.
pub(super) const NARROW_WIDTH: usize = 256;

/// Narrow looks a port gets before "connected, but no valid answer" is believed. Each waits
/// twice the timeout: after a busy sweep the OS remembers long round trips to the far side
/// and starts new connections with a long retransmission timeout, so one lost probe or reply
/// can take more than a timeout to repair.
pub(super) const NARROW_LOOKS: u8 = 2;

/// Narrow looks started per second at most, across a run: half the rate at which `serve`
/// answers one source after its burst. `serve` closes probes beyond that rate unanswered
/// (indistinguishable from a middlebox's silence), and sweeps in a row drain its burst; looks
/// at half its rate find it able to answer every one of them, so the second chance is real.
pub fn narrow_rate() -> u32 {
    crate::protocol::source_rate().1 / 2
}

/// Answers an address must have given for each port there that stayed silent twice, before
/// those ports get a third try although no loss was seen. Two tries leave a lossy link's
/// port silent now and then (2 % loss each way drops a handshake in 25, both tries in 600),
/// and with nothing else lost there is no recovery to show it; a firewall rule that drops
/// ports seldom drops fewer than one in 16 of those swept. So a lone silence costs one more
/// quiet time to confirm, and a filtered range costs nothing more.
pub(super) const LONE_SILENCE: usize = 16;

/// Tries started at most before the engine reads what has come back.
const BURST: usize = 256;

/// Descriptors kept free for the runtime, stdio, DNS and the report.
pub(super) const FD_RESERVE: u64 = 64;

/// Windows has no descriptor limit to narrow the default width, but every connect takes a
/// port from its dynamic range (16,384 by default, shared with every other program), so a
/// full sweep with all of them in flight would starve the machine: stay well below it.
pub(super) const WINDOWS_WIDTH: usize = 4096;

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

/// Runs every job and returns their outcomes in job order. `done` is called with each job's
/// index and outcome as it finishes (a progress bar, the run's watchdog). A big sweep runs as
/// parts on the runtime's workers ([`shard`]); `done` is still called from this task.
pub async fn run<P: Prober>(
    prober: Arc<P>,
    jobs: &[ProbeJob],
    config: EngineConfig,
    done: &Done<'_>,
) -> Vec<Outcome> {
    let sweeper = prober.sweeper();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let parts = sweeper
        .as_ref()
        .and_then(|s| shard::split(jobs, &config, |job| s.takes(job), cores));
    let Some(parts) = parts else {
        return run_whole(prober, jobs, config, sweeper, None, done).await;
    };
    shard::run(prober, jobs, config, sweeper, parts, done).await
}

/// A part of a split run, as its engine sees it.
struct Part {
    /// The engine has a thread of its own, and while only swept tries run it blocks in the
    /// sweeper's own wait rather than being woken by the runtime's reactor.
    own_thread: bool,
    /// Its membership among the parts still sweeping.
    sweeping: state::Sweeping,
}

/// Runs `jobs` in one engine, its sweeper (if any) taking what it can; `part` when it is one
/// part of a split run.
async fn run_whole<P: Prober>(
    prober: Arc<P>,
    jobs: &[ProbeJob],
    config: EngineConfig,
    sweeper: Option<Box<dyn Sweeper>>,
    part: Option<Part>,
    done: &Done<'_>,
) -> Vec<Outcome> {
    let own_thread = part.as_ref().is_some_and(|p| p.own_thread);
    let mut engine = Engine::new(jobs, config, sweeper, part.map(|p| p.sweeping));
    let width = config.concurrency.max(1);
    let mut set: JoinSet<Finished> = JoinSet::new();
    let mut ended = Vec::new();
    // --rate: job starts are spaced evenly; without it the window alone paces.
    let spacing = config
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let mut next_start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_tick = Instant::now() + TICK;
    loop {
        let mut burst = 0;
        while set.len() + engine.swept() < width {
            if spacing.is_some() && Instant::now() < next_start {
                break;
            }
            // Answers are read between bursts: a sweep that started every port before
            // reading any would hold them all open and stamp early answers late.
            if burst == BURST {
                break;
            }
            burst += 1;
            let Some((index, narrow)) = engine.next_job() else {
                break;
            };
            if let Some(spacing) = spacing {
                next_start += spacing;
            }
            // Narrow looks get their own task: twice the timeout, nothing else in flight.
            if !narrow && engine.sweeps(&jobs[index]) {
                engine.start_swept(index, done);
                continue;
            }
            let phases = prober.phases(&jobs[index]);
            engine.make_room();
            let abort = spawn_try(&mut set, &prober, &engine, index, narrow, phases);
            engine.started(index, Some(abort), narrow);
        }
        let room = engine.has_ready() && set.len() + engine.swept() < width;
        let paced = spacing.is_some() && room;
        let more = spacing.is_none() && room;
        let sweeping = engine.swept() > 0;
        let only_swept = sweeping && set.is_empty() && !more && !paced;
        if own_thread
            && only_swept
            && wait_on_own_thread(&mut engine, &mut ended, &mut next_tick, done)
        {
            continue;
        }
        // Tries in the sweeper have no timer of their own: the tick ends them.
        let watching = (engine.any_live() && !set.is_empty()) || sweeping;
        let look_at = engine.next_look_at();
        tokio::select! {
            // The tick first (it is due at most every 20 ms, so a stream of answers cannot
            // hold back deadlines), then answers, then new tries: the window only moves as
            // answers free it.
            biased;
            _ = tick.tick(), if watching => on_tick(&mut engine, &mut set, &mut ended, done).await,
            joined = set.join_next(), if !set.is_empty() => engine.joined(joined, done),
            () = poll_swept(&mut engine, &mut ended), if sweeping => engine.swept_done(&mut ended, done),
            () = tokio::time::sleep_until(next_start), if paced => {}
            () = tokio::time::sleep_until(look_at.unwrap_or(next_start)), if look_at.is_some() => {}
            () = std::future::ready(()), if more => {}
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

/// The tick's work: every answer that has arrived counts before anything is called quiet;
/// then tries past their time end, and silent ones on a quiet address are given up.
async fn on_tick(
    engine: &mut Engine<'_>,
    set: &mut JoinSet<Finished>,
    ended: &mut Vec<Ended>,
    done: &Done<'_>,
) {
    while let Some(joined) = set.try_join_next() {
        engine.joined(Some(joined), done);
    }
    if engine.swept() > 0 {
        std::future::poll_fn(|cx| {
            let _ = poll_swept_once(engine, ended, cx);
            std::task::Poll::Ready(())
        })
        .await;
        engine.swept_done(ended, done);
    }
    engine.expire_swept(ended, done);
    engine.give_up_quiet(done);
}

/// Only swept tries run, on the engine's own thread: waits for them on the sweeper itself,
/// up to `next_tick`, and does the tick's work when it is due. `false` if the sweeper cannot
/// be waited for there (the runtime watches it).
fn wait_on_own_thread(
    engine: &mut Engine<'_>,
    ended: &mut Vec<Ended>,
    next_tick: &mut Instant,
    done: &Done<'_>,
) -> bool {
    let now = Instant::now();
    if !engine.wait_swept(next_tick.saturating_duration_since(now), ended) {
        return false;
    }
    engine.swept_done(ended, done);
    if Instant::now() >= *next_tick {
        *next_tick = Instant::now() + TICK;
        engine.expire_swept(ended, done);
        engine.give_up_quiet(done);
    }
    true
}

/// Starts a try of job `index` in a task of its own, bounded by `phases` timeouts (twice
/// that for a narrow look).
fn spawn_try<P: Prober>(
    set: &mut JoinSet<Finished>,
    prober: &Arc<P>,
    engine: &Engine<'_>,
    index: usize,
    narrow: bool,
    phases: u32,
) -> tokio::task::AbortHandle {
    let prober = Arc::clone(prober);
    let job = engine.jobs[index].clone();
    let generation = engine.slots[index].generation;
    let timeout = if narrow {
        engine.config.timeout * 2
    } else {
        engine.config.timeout
    };
    let heard = Heard::new(&engine.heard, index);
    let starts = Arc::clone(&engine.starts);
    starts.clear(index);
    set.spawn(async move {
        // Stamped when the try really begins: a busy runtime may poll a spawned task much
        // later, and that wait is not the far side's silence.
        let started = starts.stamp(index);
        let attempt = tokio::time::timeout(timeout * phases, prober.attempt(job, timeout, heard))
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
    })
}

/// Waits until the sweeper reports tries that ended.
async fn poll_swept(engine: &mut Engine<'_>, ended: &mut Vec<Ended>) {
    std::future::poll_fn(|cx| poll_swept_once(engine, ended, cx)).await;
}

fn poll_swept_once(
    engine: &mut Engine<'_>,
    ended: &mut Vec<Ended>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<()> {
    match engine.sweeper.as_mut() {
        Some(sweeper) => sweeper.poll_done(cx, ended),
        None => std::task::Poll::Pending,
    }
}

/// Told each job's index and outcome as it finishes.
pub type Done<'a> = dyn Fn(usize, &Outcome) + Sync + 'a;

/// The longest [`run`] can take for `jobs`, whatever the far side does: every job given its
/// most tries and narrow looks, each cut by the engine at `timeout` × its phases, one window
/// of `config.concurrency` after another, no faster than `--rate` starts them, and every
/// keyed job's looks no faster than `config.narrow_rate` starts those. Far above
/// a real run's time; a run that passes it is stuck in the operating system.
pub fn bound(
    jobs: &[ProbeJob],
    config: &EngineConfig,
    phases: impl Fn(&ProbeJob) -> u32,
) -> Duration {
    let tries = u32::from(MAX_TRIES.max(config.retries.saturating_add(1)));
    let longest = jobs
        .iter()
        .map(|job| {
            // Narrow looks follow only a keyed exchange that connected without an answer.
            let narrow = if job.keyed {
                u32::from(NARROW_LOOKS) * 2
            } else {
                0
            };
            config.timeout * phases(job) * (tries + narrow)
        })
        .max()
        .unwrap_or_default();
    let windows = u32::try_from(jobs.len().div_ceil(config.concurrency.max(1))).unwrap_or(u32::MAX);
    let paced = config.rate.map_or(Duration::ZERO, |rate| {
        let starts = jobs.len() as f64 * f64::from(tries + u32::from(NARROW_LOOKS));
        Duration::from_secs_f64(starts / f64::from(rate.max(1)))
    });
    let keyed = jobs.iter().filter(|job| job.keyed).count();
    let looks = Duration::from_secs_f64(
        keyed as f64 * f64::from(NARROW_LOOKS) / f64::from(config.narrow_rate.max(1)),
    );
    longest.saturating_mul(windows.max(1)) + paced + looks
}

/// What a try's task hands back.
pub(super) struct Finished {
    pub(super) index: usize,
    pub(super) generation: u32,
    pub(super) attempt: Attempt,
    pub(super) elapsed: Duration,
    /// When it ended (not when the engine got round to it).
    pub(super) at: Instant,
}

/// What silence after every try means: a TCP SYN that gets nothing back is dropped; a UDP
/// datagram that gets nothing back may have reached a quiet service, unless it was keyed
/// (`serve` answers every valid probe).
pub(super) fn silence(job: &ProbeJob, waited: Duration, tries: u8) -> Outcome {
    let (state, why) = match (job.kind, job.protocol) {
        (ProbeKind::Connect, Protocol::Udp) | (ProbeKind::Nat { .. }, _) if job.keyed => {
            (State::Filtered, Why::NoAnswerKeyed)
        }
        (ProbeKind::Connect, Protocol::Udp) => (State::OpenFiltered, Why::NoAnswer),
        (
            ProbeKind::Connect
            | ProbeKind::App(_)
            | ProbeKind::Nat { .. }
            | ProbeKind::Loopback { .. }
            | ProbeKind::Listening,
            _,
        ) => (State::Filtered, Why::NoAnswer),
    };
    Outcome {
        state,
        why,
        elapsed: waited,
        tries,
        keyed: job.keyed,
    }
}
