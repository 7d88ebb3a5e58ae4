//! The hard deadline of a `check` run. Every probe is bounded inside the async runtime, but a
//! call the operating system never returns from (a socket layer that spins, a lookup that
//! hangs) stops the runtime itself. A thread outside it holds the deadline: if the run has not
//! written its report by then, the thread writes what the run has, every probe still inside
//! the OS as `unfinished`, names what was stuck, and ends the process with exit code 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::output::Delivery;
use crate::model::State;
use crate::pipeline::{Progress, Started};
use crate::plan::{PathPlan, Plan, ProbeJob};
use crate::probe::{Outcome, Why};
use crate::report::Report;
use crate::tr;
use crate::verdict::RunInfo;

/// Added to every stage's own bound: the run's bookkeeping, and a machine busy elsewhere.
pub(super) const MARGIN: Duration = Duration::from_secs(10);

/// How many stuck probes the log names one by one.
const NAMED: usize = 8;

/// The deadline's thread; dropping it lets the thread go.
pub(super) struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    /// Set by whoever writes the report: the run when it finishes, or the deadline.
    claimed: AtomicBool,
}

struct Inner {
    started: Instant,
    deadline: Instant,
    /// What the run is doing, for the log when it is stuck before probing.
    stage: &'static str,
    round: Option<Round>,
    delivery: Option<Delivery>,
    dropped: bool,
}

/// The round being probed: what its report is made from.
struct Round {
    plan: Plan,
    paths: Vec<PathPlan>,
    jobs: Vec<ProbeJob>,
    checked: usize,
    run: RunInfo,
    outcomes: Vec<Option<Outcome>>,
}

impl Watchdog {
    /// Starts the thread with a deadline `first` from now (plus [`MARGIN`]).
    pub(super) fn start(first: Duration, stage: &'static str) -> Watchdog {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                started: now,
                deadline: now + first + MARGIN,
                stage,
                round: None,
                delivery: None,
                dropped: false,
            }),
            changed: Condvar::new(),
            claimed: AtomicBool::new(false),
        });
        let watching = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("deadline".into())
            .spawn(move || watch(&watching))
            .map_or_else(
                // Without the thread the run is as it was without a deadline: say so, go on.
                |e| tracing::warn!("no deadline for this run: cannot start its thread: {e}"),
                drop,
            );
        Watchdog { shared }
    }

    /// A new stage that may take `limit`: the one before it is over, so the deadline is now
    /// this stage's end.
    pub(super) fn stage(&self, stage: &'static str, limit: Duration) {
        let mut inner = self.shared.lock();
        inner.stage = stage;
        inner.deadline = Instant::now() + limit + MARGIN;
        self.shared.changed.notify_all();
    }

    /// Where the report goes, whoever writes it.
    pub(super) fn deliver_to(&self, delivery: Delivery) {
        self.shared.lock().delivery = Some(delivery);
    }

    /// The run is about to write its report itself: where to. `None` when the deadline has
    /// come and is writing it: the caller must then leave the process to it.
    pub(super) fn claim(&self) -> Option<Delivery> {
        if self.shared.claimed.swap(true, Ordering::SeqCst) {
            return None;
        }
        self.shared.lock().delivery.take()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.changed.notify_all();
    }
}

impl Progress for Watchdog {
    fn resolving(&self, timeout: Duration) {
        self.stage("looking up names", timeout);
    }

    fn start(&self, started: &Started<'_>) {
        let mut inner = self.shared.lock();
        inner.round = Some(Round {
            plan: started.plan.clone(),
            paths: started.paths.to_vec(),
            jobs: started.jobs.to_vec(),
            checked: started.checked,
            run: started.run.clone(),
            outcomes: vec![None; started.jobs.len()],
        });
        drop(inner);
        self.stage("probing", started.bound);
        let inner = self.shared.lock();
        let total = inner.deadline.duration_since(inner.started);
        tracing::info!(
            "deadline: this run ends within {} (probes {} at most, plus {})",
            crate::probe::fmt_duration(total),
            crate::probe::fmt_duration(started.bound),
            crate::probe::fmt_duration(MARGIN)
        );
    }

    fn tracing(&self, bound: Duration) {
        self.stage("tracing paths", bound);
    }

    fn done(&self, index: usize, outcome: &Outcome) {
        if let Some(round) = &mut self.shared.lock().round {
            round.outcomes[index] = Some(outcome.clone());
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not also take the deadline down.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn watch(shared: &Shared) {
    let mut inner = shared.lock();
    loop {
        if inner.dropped {
            return;
        }
        let now = Instant::now();
        if now >= inner.deadline {
            break;
        }
        let wait = inner.deadline - now;
        inner = shared
            .changed
            .wait_timeout(inner, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    if shared.claimed.swap(true, Ordering::SeqCst) {
        // The run is writing its report: its own exit follows.
        return;
    }
    let after = inner.started.elapsed();
    let stage = inner.stage;
    let delivery = inner.delivery.take();
    let round = inner.round.take();
    drop(inner);
    let (Some(delivery), Some(round)) = (delivery, round) else {
        eprintln!(
            "automate-ports: error: the run reached its deadline of {} while {stage}, before any probe: the operating system did not return; nothing was checked (run it again; a security product that intercepts network calls can cause this)",
            crate::probe::fmt_duration(after)
        );
        std::process::exit(i32::from(crate::exit::FAILED));
    };
    let stuck = round.stuck();
    tracing::error!(
        "the run reached its deadline after {}: {} probe(s) had not returned from the operating system: {}",
        crate::probe::fmt_duration(after),
        stuck.len(),
        name_stuck(&stuck)
    );
    if let Err(e) = delivery.deliver(round.report(after)) {
        eprintln!("automate-ports: error: {:#}", e.into_inner());
    }
    std::process::exit(i32::from(crate::exit::FAILED));
}

impl Round {
    /// The jobs of the checks (not the canaries) that have no outcome yet.
    fn stuck(&self) -> Vec<&ProbeJob> {
        self.jobs[..self.checked]
            .iter()
            .zip(&self.outcomes)
            .filter(|(_, o)| o.is_none())
            .map(|(job, _)| job)
            .collect()
    }

    /// The report as far as the run got: what did not finish is `unfinished`.
    fn report(self, after: Duration) -> Report {
        let Round {
            plan,
            paths,
            jobs,
            checked,
            mut run,
            outcomes,
        } = self;
        let stuck = jobs[..checked]
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_none())
            .count();
        let outcomes: Vec<Outcome> = jobs[..checked]
            .iter()
            .zip(outcomes)
            .map(|(job, outcome)| {
                outcome.unwrap_or(Outcome {
                    state: State::Unfinished,
                    why: Why::Unfinished { after },
                    elapsed: after,
                    tries: 0,
                    keyed: job.keyed,
                })
            })
            .collect();
        run.duration = after;
        let mut report = crate::verdict::report(&plan, &paths, &outcomes, &run);
        let lang = run.lang;
        let time = lang.duration(after);
        report.notes.insert(
            0,
            tr!(
                lang,
                "the run was stopped at its deadline after {time}: {stuck} probe(s) had not returned from this machine's operating system (unfinished)",
                "der Lauf wurde nach {time} an seiner Frist beendet: {stuck} Probe(n) waren vom Betriebssystem dieses Rechners nicht zurückgekehrt (unfinished)"
            ),
        );
        report
    }
}

/// "UDP 127.0.0.1:75, TCP [::1]:443 and 3 more".
fn name_stuck(stuck: &[&ProbeJob]) -> String {
    let mut names: Vec<String> = stuck
        .iter()
        .take(NAMED)
        .map(|job| format!("{} {}", job.protocol.to_string().to_uppercase(), job.addr))
        .collect();
    if stuck.len() > NAMED {
        names.push(format!("and {} more", stuck.len() - NAMED));
    }
    names.join(", ")
}
