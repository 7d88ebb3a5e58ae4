//! What the engine keeps per address (round trips, quiet time) and per job (slots, tries,
//! when a try really began).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::QUIET_FLOOR;
use crate::model::State;
use crate::probe::Why;

/// What the engine has learnt about one address.
#[derive(Debug, Default)]
pub(super) struct PathState {
    /// Round trips of answers, for the quiet time.
    pub(super) samples: Vec<Duration>,
    /// The quiet time for `samples.len()` samples, computed once per new sample count.
    pub(super) quiet: Option<(usize, Duration)>,
    pub(super) last_answer: Option<Instant>,
    /// A port answered on a later try: silence here includes loss.
    pub(super) recovered: bool,
    /// Ports whose answer came from the network and was final.
    pub(super) answers: usize,
    /// Times tries were given up since the last answer: each doubles the quiet time, so a
    /// passing outage (a router rebooting, neighbour discovery retrying) is waited out
    /// instead of burning every try in a second.
    pub(super) strikes: u32,
}

impl PathState {
    pub(super) fn live(&self) -> bool {
        self.last_answer.is_some()
    }

    /// How long the address may stay silent before a running try counts as lost: twice the
    /// 90th-percentile round trip, within the floor and the timeout, doubled for each strike.
    pub(super) fn quiet_time(&mut self, timeout: Duration) -> Duration {
        self.base_quiet(timeout)
            .saturating_mul(1 << self.strikes.min(8))
            .min(timeout)
    }

    /// The quiet time before strikes: what a port needs to answer when the address is not
    /// in an outage.
    pub(super) fn base_quiet(&mut self, timeout: Duration) -> Duration {
        let n = self.samples.len();
        if n == 0 {
            return timeout;
        }
        match self.quiet {
            Some((count, quiet)) if count == n => quiet,
            _ => {
                let mut sorted = self.samples.clone();
                let at = (n * 9 / 10).min(n - 1);
                let (_, p90, _) = sorted.select_nth_unstable(at);
                let quiet = (*p90 * 2).clamp(QUIET_FLOOR.min(timeout), timeout);
                self.quiet = Some((n, quiet));
                quiet
            }
        }
    }

    pub(super) fn answered(&mut self, at: Instant) {
        self.last_answer = Some(self.last_answer.map_or(at, |last| last.max(at)));
        self.strikes = 0;
    }
}

/// One job's progress through its tries.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) path: usize,
    pub(super) tries: u8,
    /// Bumped when a try is given up, so its late result is ignored.
    pub(super) generation: u32,
    pub(super) running: Option<Running>,
    /// A "connected, but no valid answer" outcome, reported if later tries hear nothing.
    pub(super) held: Option<(State, Why, Duration)>,
    /// Narrow looks it has had.
    pub(super) narrowed: u8,
    /// Its running try confirms a lone silence: it waits the base quiet time, not the
    /// strikes' (the others answered, so this is no outage).
    pub(super) confirming: bool,
    pub(super) longest_wait: Duration,
    pub(super) done: bool,
}

#[derive(Debug)]
pub(super) struct Running {
    /// The try's task; `None` for a try in the prober's [`Sweeper`](crate::probe::Sweeper).
    pub(super) abort: Option<AbortHandle>,
    /// Narrow tries run to their full timeout.
    pub(super) narrow: bool,
}

/// When each job's running try began on the network, for `give_up_quiet`.
pub(super) struct Starts {
    pub(super) epoch: Instant,
    /// Nanoseconds after `epoch`, plus one; zero while the try has not begun.
    pub(super) nanos: Box<[AtomicU64]>,
}

impl Starts {
    pub(super) fn new(n: usize) -> Starts {
        Starts {
            epoch: Instant::now(),
            nanos: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(super) fn clear(&self, index: usize) {
        self.nanos[index].store(0, Ordering::Relaxed);
    }

    pub(super) fn stamp(&self, index: usize) -> Instant {
        let now = Instant::now();
        let nanos = now.duration_since(self.epoch).as_nanos() as u64 + 1;
        self.nanos[index].store(nanos, Ordering::Relaxed);
        now
    }

    pub(super) fn get(&self, index: usize) -> Option<Instant> {
        match self.nanos[index].load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }
}

/// The parts of a split run still sweeping, that is not yet down to their narrow looks. A
/// part's narrow looks wait until none is: `serve` rates a source, not a part, and a part
/// still sweeping would spend the rate the looks need.
#[derive(Clone, Default)]
pub(super) struct Peers(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Peers {
    /// One more part sweeping, until the returned membership is dropped.
    pub(super) fn join(&self) -> Sweeping {
        self.0.fetch_add(1, Ordering::SeqCst);
        Sweeping(self.clone())
    }

    pub(super) fn all_swept(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

/// A part's membership among the [`Peers`] still sweeping; dropped when it is down to its
/// narrow looks, or ends, or its thread never starts.
pub(super) struct Sweeping(Peers);

impl Sweeping {
    pub(super) fn peers(&self) -> Peers {
        self.0.clone()
    }
}

impl Drop for Sweeping {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::SeqCst);
    }
}
