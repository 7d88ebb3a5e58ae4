//! The sliding window: which job starts next, what a finished try means, when a silent
//! try is given up and sent again, and when a port gets a narrow look.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinError};
use tokio::time::Instant;

use crate::model::ProbeKind;
use crate::plan::ProbeJob;

use super::state::{PathState, Peers, Running, Slot, Starts, Sweeping};
use super::{
    silence, Attempt, Done, EngineConfig, Finished, Heard, Outcome, LONE_SILENCE, MAX_TRIES,
    NARROW_LOOKS, NARROW_WIDTH,
};
use crate::probe::{Ended, NotServe, Sweeper, Why};

/// How far behind the narrow rate the engine may fall and still catch up at once.
const LOOKS_OWED: Duration = Duration::from_millis(5);

/// How often narrow looks that wait for other parts' sweeps see whether those have ended.
const PEERS_POLL: Duration = Duration::from_millis(5);

pub(super) struct Engine<'a> {
    pub(super) jobs: &'a [ProbeJob],
    pub(super) config: EngineConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) paths: Vec<PathState>,
    pub(super) ready: VecDeque<usize>,
    /// Ports for a narrow look that connected and then heard nothing.
    pub(super) narrow: VecDeque<usize>,
    /// Ports for a narrow look whose connection was closed without a valid answer, which is
    /// what `serve` does with a source over its rate: these looks are paced.
    pub(super) closed: VecDeque<usize>,
    pub(super) narrow_running: usize,
    /// When the next narrow look may start (`config.narrow_rate` spaces them).
    pub(super) next_look: Instant,
    /// A part of a split run: its membership among the parts still sweeping (given up once
    /// only narrow looks are left), and the others, whose sweeps its looks wait for.
    pub(super) sweeping: Option<Sweeping>,
    pub(super) peers: Option<Peers>,
    /// Tries running, narrow ones included.
    pub(super) running: usize,
    pub(super) parked: Vec<usize>,
    pub(super) outcomes: Vec<Option<Outcome>>,
    /// Set by a running try once the far side answered its first phase.
    pub(super) heard: Arc<[AtomicBool]>,
    pub(super) starts: Arc<Starts>,
    /// The prober's event loop for plain connects, where it has one.
    pub(super) sweeper: Option<Box<dyn Sweeper>>,
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        jobs: &'a [ProbeJob],
        config: EngineConfig,
        sweeper: Option<Box<dyn Sweeper>>,
        sweeping: Option<Sweeping>,
    ) -> Engine<'a> {
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
            closed: VecDeque::new(),
            narrow_running: 0,
            next_look: Instant::now(),
            peers: sweeping.as_ref().map(Sweeping::peers),
            sweeping,
            running: 0,
            parked: Vec::new(),
            outcomes: vec![None; jobs.len()],
            heard: Heard::flags(jobs.len()),
            starts: Arc::new(Starts::new(jobs.len())),
            sweeper,
        }
    }

    /// Whether the next try of `job` goes to the sweeper.
    pub(super) fn sweeps(&self, job: &ProbeJob) -> bool {
        self.sweeper.as_ref().is_some_and(|s| s.takes(job))
    }

    /// A try is about to start in a task: the sweeper gives up a descriptor it keeps.
    pub(super) fn make_room(&mut self) {
        if let Some(sweeper) = self.sweeper.as_mut() {
            sweeper.make_room();
        }
    }

    /// Waits on the sweeper itself for up to `timeout` (an engine on a thread of its own);
    /// `false` if its sweeper is watched by the runtime instead.
    pub(super) fn wait_swept(&mut self, timeout: Duration, ended: &mut Vec<Ended>) -> bool {
        self.sweeper
            .as_mut()
            .is_some_and(|s| s.wait(timeout, ended))
    }

    /// Tries running in the sweeper.
    pub(super) fn swept(&self) -> usize {
        self.sweeper.as_ref().map_or(0, |s| s.running())
    }

    /// Starts a try of job `index` in the sweeper.
    pub(super) fn start_swept(&mut self, index: usize, done: &Done<'_>) {
        let heard = Heard::new(&self.heard, index);
        self.starts.clear(index);
        self.starts.stamp(index);
        self.started(index, None, false);
        let timeout = self.config.timeout;
        let Some(sweeper) = self.sweeper.as_mut() else {
            return;
        };
        if let Some(attempt) = sweeper.start(index, &self.jobs[index], timeout, heard) {
            self.swept_ended(index, attempt, Instant::now(), done);
        }
    }

    /// A try in the sweeper ended with `attempt` at `at`.
    fn swept_ended(&mut self, index: usize, attempt: Attempt, at: Instant, done: &Done<'_>) {
        let started = self.starts.get(index).unwrap_or(at);
        let generation = self.slots[index].generation;
        self.finished(
            Finished {
                index,
                generation,
                attempt,
                elapsed: at.saturating_duration_since(started),
                at,
            },
            done,
        );
    }

    /// Tries the sweeper reported ended.
    pub(super) fn swept_done(&mut self, ended: &mut Vec<Ended>, done: &Done<'_>) {
        for (index, attempt, at) in ended.drain(..) {
            self.swept_ended(index, attempt, at, done);
        }
    }

    /// Tries in the sweeper whose phase ran out of time.
    pub(super) fn expire_swept(&mut self, ended: &mut Vec<Ended>, done: &Done<'_>) {
        if let Some(sweeper) = self.sweeper.as_mut() {
            sweeper.expire(Instant::now(), ended);
        }
        self.swept_done(ended, done);
    }

    pub(super) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
            || (self.narrow_has_room()
                && (!self.narrow.is_empty() || (!self.closed.is_empty() && self.closed_due())))
    }

    /// Narrow tries wait until nothing else in this engine runs: a responder still busy with
    /// the sweep is what they give a second chance to.
    fn narrow_has_room(&self) -> bool {
        self.running == self.narrow_running
            && self.narrow_running < NARROW_WIDTH.min(self.config.concurrency.max(1))
    }

    /// A look at a port closed unanswered waits for the other parts of a split run as well
    /// (`serve` rates a source, not a part), and for its turn at the narrow rate.
    fn closed_due(&self) -> bool {
        self.peers_swept() && Instant::now() >= self.next_look
    }

    fn peers_swept(&self) -> bool {
        self.peers.as_ref().is_none_or(Peers::all_swept)
    }

    /// When a look at a port closed unanswered may start, if it waits for nothing but its
    /// turn (a moment that may have passed already: the clock is not read twice, so a look
    /// never falls between "not yet" and "no longer waiting"). While other parts still sweep,
    /// a while later: they do not say when they are done.
    pub(super) fn next_look_at(&mut self) -> Option<Instant> {
        self.leave_sweepers();
        if self.closed.is_empty() || !self.narrow.is_empty() || !self.narrow_has_room() {
            return None;
        }
        if self.peers_swept() {
            Some(self.next_look)
        } else {
            Some(Instant::now() + PEERS_POLL)
        }
    }

    /// Once this engine is down to its narrow looks (or done), the other parts' looks need
    /// not wait for it.
    fn leave_sweepers(&mut self) {
        if self.ready.is_empty() && self.running == self.narrow_running {
            self.sweeping = None;
        }
    }

    pub(super) fn any_live(&self) -> bool {
        self.paths.iter().any(PathState::live)
    }

    /// The next job to start, and whether it is a narrow try.
    pub(super) fn next_job(&mut self) -> Option<(usize, bool)> {
        if let Some(index) = self.ready.pop_front() {
            return Some((index, false));
        }
        self.leave_sweepers();
        if !self.narrow_has_room() {
            return None;
        }
        if let Some(index) = self.narrow.pop_front() {
            return Some((index, true));
        }
        if self.closed.is_empty() || !self.closed_due() {
            return None;
        }
        // A timer wakes the engine a millisecond late at best: looks fall due in small
        // batches, and the ones a late wake-up owes start together, so the rate holds.
        let spacing = Duration::from_secs_f64(1.0 / f64::from(self.config.narrow_rate.max(1)));
        let owed = Instant::now()
            .checked_sub(LOOKS_OWED)
            .unwrap_or(self.next_look);
        self.next_look = self.next_look.max(owed) + spacing;
        self.closed.pop_front().map(|index| (index, true))
    }

    pub(super) fn started(&mut self, index: usize, abort: Option<AbortHandle>, narrow: bool) {
        self.running += 1;
        if narrow {
            self.narrow_running += 1;
        }
        self.slots[index].running = Some(Running { abort, narrow });
    }

    pub(super) fn joined(&mut self, joined: Option<Result<Finished, JoinError>>, done: &Done<'_>) {
        match joined {
            Some(Ok(finished)) => self.finished(finished, done),
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Given up by `give_up_quiet`, already accounted for.
            Some(Err(_)) | None => {}
        }
    }

    pub(super) fn finished(&mut self, finished: Finished, done: &Done<'_>) {
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
                let silent = matches!(why, Why::NotServe(NotServe::Silent(_)));
                slot.held = Some((state, why, elapsed));
                if slot.narrowed >= NARROW_LOOKS {
                    self.finish(index, done);
                } else {
                    slot.narrowed += 1;
                    if silent {
                        self.narrow.push_back(index);
                    } else {
                        self.closed.push_back(index);
                    }
                }
            }
            Attempt::Answer(state, why) => {
                if why.from_the_network() {
                    path.answered(at);
                    path.answers += 1;
                    if slot.tries > 1 {
                        path.recovered = true;
                    }
                    if job.kind == ProbeKind::Connect {
                        path.samples.push(elapsed);
                    }
                }
                let outcome = Outcome {
                    state,
                    why,
                    elapsed,
                    tries: slot.tries,
                    keyed: job.keyed,
                };
                done(index, &outcome);
                self.outcomes[index] = Some(outcome);
                slot.done = true;
            }
            Attempt::Silent => self.silent(index, done),
        }
    }

    /// Running tries on an address that has gone quiet: everything that was going to answer
    /// has, so these are lost or dropped. Give them up and decide on another try.
    pub(super) fn give_up_quiet(&mut self, done: &Done<'_>) {
        let now = Instant::now();
        let timeout = self.config.timeout;
        // Per address, (quiet time, base quiet time), each only once it has passed.
        let quiet: Vec<(Option<Duration>, Option<Duration>)> = self
            .paths
            .iter_mut()
            .map(|p| {
                let Some(last) = p.last_answer else {
                    return (None, None);
                };
                let since = now.duration_since(last);
                let passed = |quiet: Duration| (since > quiet).then_some(quiet);
                (passed(p.quiet_time(timeout)), passed(p.base_quiet(timeout)))
            })
            .collect();
        let mut struck = vec![false; self.paths.len()];
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(running) = &slot.running else {
                continue;
            };
            let (quiet, base) = quiet[slot.path];
            let Some(quiet) = (if slot.confirming { base } else { quiet }) else {
                continue;
            };
            let Some(started) = self.starts.get(index) else {
                continue;
            };
            let waited = now.duration_since(started);
            // Connected tries are not silence (a keyed exchange or an application probe is
            // under way); loopback tries are local; narrow tries get their whole time.
            let connected = self.heard[index].load(Ordering::Relaxed);
            if connected || running.narrow || !self.jobs[index].kind.is_remote() || waited <= quiet
            {
                continue;
            }
            match &running.abort {
                Some(task) => task.abort(),
                None => {
                    if let Some(sweeper) = self.sweeper.as_mut() {
                        sweeper.cancel(index);
                    }
                }
            }
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
    pub(super) fn silent(&mut self, index: usize, done: &Done<'_>) {
        match self.another_try(index) {
            Some(true) => self.ready.push_back(index),
            Some(false) => self.parked.push(index),
            None => self.finish(index, done),
        }
    }

    /// `Some(true)`: try again now; `Some(false)`: not unless the address shows loss later;
    /// `None`: no more tries.
    pub(super) fn another_try(&self, index: usize) -> Option<bool> {
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

    /// When nothing runs any more: parked jobs whose address has since shown loss go again,
    /// and so do lone silences (see [`LONE_SILENCE`]) for a third try. Returns whether any did.
    pub(super) fn unpark(&mut self) -> bool {
        let parked = std::mem::take(&mut self.parked);
        let mut silent = vec![0usize; self.paths.len()];
        for &index in &parked {
            silent[self.slots[index].path] += 1;
        }
        for index in parked {
            let slot = &self.slots[index];
            let path = &self.paths[slot.path];
            let lone = slot.tries == 2 && silent[slot.path] * LONE_SILENCE <= path.answers;
            self.slots[index].confirming = lone;
            if lone || self.another_try(index) == Some(true) {
                self.ready.push_back(index);
            } else {
                self.parked.push(index);
            }
        }
        !self.ready.is_empty()
    }

    /// Ends a job with what it has: the held answer, else silence.
    pub(super) fn finish(&mut self, index: usize, done: &Done<'_>) {
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
        done(index, &outcome);
        self.outcomes[index] = Some(outcome);
        slot.done = true;
    }

    pub(super) fn finish_parked(&mut self, done: &Done<'_>) {
        for index in std::mem::take(&mut self.parked) {
            self.finish(index, done);
        }
    }

    pub(super) fn into_outcomes(self) -> Vec<Outcome> {
        let tries: usize = self.slots.iter().map(|s| usize::from(s.tries)).sum();
        let strikes: u32 = self.paths.iter().map(|p| p.strikes).sum();
        tracing::debug!(jobs = self.jobs.len(), tries, strikes, "probing done");
        self.outcomes
            .into_iter()
            .map(|o| o.expect("every job reports"))
            .collect()
    }
}
