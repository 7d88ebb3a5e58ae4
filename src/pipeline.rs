//! The `check` pipeline end to end: plan → resolve → probe → verdict. No clap, no printing.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::net::{IpAddr, SocketAddr};

use crate::lang::Lang;
use crate::model::{Family, ProbeKind, Profile, Protocol, State};
use crate::plan;
use crate::plan::ProbeJob;
use crate::probe::{self, EngineConfig, Prober};
use crate::report::Report;
use crate::resolve;
use crate::tr;
use crate::verdict::{self, RunInfo};

/// Everything a check run needs besides the profile.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target name → hosts, as named on the command line (or found in an agent's settings).
    pub targets: plan::Targets,
    pub family: Family,
    pub timeout: Duration,
    pub retries: u8,
    /// In-flight probes at most; `None` is as wide as the open-file limit allows.
    pub concurrency: Option<usize>,
    /// New probes per second at most.
    pub rate: Option<u32>,
    pub full_ranges: bool,
    pub strict: bool,
    /// The language of reasons, hints and notes.
    pub lang: Lang,
}

/// Where a run reports how far it got: the command line shows a progress bar with it, and
/// its watchdog keeps what a report of an unfinished run is made from.
pub trait Progress {
    /// A round begins: names are looked up, each within `timeout`.
    fn resolving(&self, _timeout: Duration) {}
    /// The jobs are planned and about to run.
    fn start(&self, _started: &Started<'_>) {}
    /// Job `index` finished.
    fn done(&self, _index: usize, _outcome: &probe::Outcome) {}
    fn finish(&self) {}
}

/// A round of probing as it starts: everything [`verdict::report`] needs but the outcomes.
pub struct Started<'a> {
    pub plan: &'a plan::Plan,
    pub paths: &'a [plan::PathPlan],
    /// The checks' jobs, then the canaries (which no check's verdict reads).
    pub jobs: &'a [ProbeJob],
    pub checked: usize,
    /// The run's settings; its duration is still zero.
    pub run: &'a RunInfo,
    /// The longest the probing can take ([`probe::bound`]).
    pub bound: Duration,
}

/// No progress shown.
impl Progress for () {}

impl<P: Progress + ?Sized> Progress for &P {
    fn resolving(&self, timeout: Duration) {
        (**self).resolving(timeout);
    }
    fn start(&self, started: &Started<'_>) {
        (**self).start(started);
    }
    fn done(&self, index: usize, outcome: &probe::Outcome) {
        (**self).done(index, outcome);
    }
    fn finish(&self) {
        (**self).finish();
    }
}

/// Both are told everything, the first first.
impl<A: Progress, B: Progress> Progress for (A, B) {
    fn resolving(&self, timeout: Duration) {
        self.0.resolving(timeout);
        self.1.resolving(timeout);
    }
    fn start(&self, started: &Started<'_>) {
        self.0.start(started);
        self.1.start(started);
    }
    fn done(&self, index: usize, outcome: &probe::Outcome) {
        self.0.done(index, outcome);
        self.1.done(index, outcome);
    }
    fn finish(&self) {
        self.0.finish();
        self.1.finish();
    }
}

/// Plans the profile's checks and runs them through `prober`.
///
/// Errors are the user's to fix (a target the role needs was not named); probe failures
/// are results in the report.
pub async fn run<P: Prober>(
    profile: &Profile,
    options: &Options,
    prober: Arc<P>,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let clock = Instant::now();
    let plan = plan::build(profile, &options.targets, options.full_ranges)?;
    progress.resolving(options.timeout);
    let resolved = resolve::resolve_all(plan.hosts(), options.family, options.timeout).await;
    let keyed = prober.has_key();
    let (paths, mut jobs) = plan::expand(&plan, &resolved, keyed);
    let canaries = canary_jobs(&jobs);
    let first_canary = jobs.len();
    jobs.extend(canaries.iter().cloned());
    // A loopback probe holds a second socket: keep a descriptor for each.
    let two_sockets = jobs
        .iter()
        .filter(|j| matches!(j.kind, ProbeKind::Loopback { .. }))
        .count();
    let width = probe::probe_width(options.concurrency, two_sockets)?;
    tracing::debug!(jobs = jobs.len(), paths = paths.len(), width, "probing");
    let config = EngineConfig {
        timeout: options.timeout,
        retries: options.retries,
        concurrency: width,
        rate: options.rate,
    };
    let mut run = RunInfo {
        started_at,
        duration: Duration::ZERO,
        timeout: options.timeout,
        strict: options.strict,
        full_ranges: options.full_ranges,
        keyed,
        lang: options.lang,
    };
    progress.start(&Started {
        plan: &plan,
        paths: &paths,
        jobs: &jobs,
        checked: first_canary,
        run: &run,
        bound: probe::bound(&jobs, &config, |job| prober.phases(job)),
    });
    let outcomes = probe::run(prober, &jobs, config, &|index, outcome| {
        progress.done(index, outcome);
    })
    .await;
    progress.finish();
    run.duration = clock.elapsed();
    let mut report = verdict::report(&plan, &paths, &outcomes[..first_canary], &run);
    // The run's own notes first; the verdict's conclusions (the tunnel path) last.
    let conclusions = std::mem::take(&mut report.notes);
    report.notes = canary_notes(&canaries, &outcomes[first_canary..], options.lang);
    if keyed {
        report.notes.extend(unkeyed_note(&plan, options.lang));
    }
    report.notes.extend(conclusions);
    Ok(report)
}

/// Runs the checks; with `wait`, runs them again (a second apart) until no required check
/// fails or the time is up, for a lab server that is still booting. The report says how
/// long it waited and how many rounds it took.
pub async fn run_waiting<P: Prober>(
    profile: &Profile,
    options: &Options,
    prober: Arc<P>,
    progress: &dyn Progress,
    wait: Option<Duration>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut rounds = 1;
    loop {
        let mut report = run(profile, options, Arc::clone(&prober), progress).await?;
        let Some(wait) = wait else { return Ok(report) };
        let waited = started.elapsed();
        if !report.failed() || waited >= wait {
            report.wait = Some(crate::report::Waited {
                rounds,
                waited_ms: (waited.as_secs_f64() * 1000.0).round(),
                limit_ms: (wait.as_secs_f64() * 1000.0).round(),
            });
            return Ok(report);
        }
        tracing::info!(rounds, "required checks still fail; trying again");
        tokio::time::sleep(Duration::from_secs(1).min(wait.saturating_sub(waited))).await;
        rounds += 1;
    }
}

/// Ports almost nothing listens on. When every one of them answers as open on an address,
/// something in the path answers for every port (an every-port-open firewall, a REDIRECT,
/// a SYN proxy) and an "open" from that address proves nothing by itself.
pub const CANARY_PORTS: [u16; 3] = [1, 4, 6];

fn canary_jobs(jobs: &[ProbeJob]) -> Vec<ProbeJob> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    for job in jobs {
        let remote_tcp = job.protocol == Protocol::Tcp && job.kind.is_remote();
        if remote_tcp && !addresses.contains(&job.addr.ip()) {
            addresses.push(job.addr.ip());
        }
    }
    addresses
        .into_iter()
        .flat_map(|ip| {
            CANARY_PORTS.into_iter().map(move |port| ProbeJob {
                addr: SocketAddr::new(ip, port),
                protocol: Protocol::Tcp,
                kind: ProbeKind::Connect,
                host: None,
                // A plain connect is all a canary needs; serve never listens there.
                keyed: false,
            })
        })
        .collect()
}

fn canary_notes(canaries: &[ProbeJob], outcomes: &[probe::Outcome], lang: Lang) -> Vec<String> {
    let mut notes = Vec::new();
    for (jobs, outcomes) in canaries
        .chunks(CANARY_PORTS.len())
        .zip(outcomes.chunks(CANARY_PORTS.len()))
    {
        if outcomes.iter().all(|o| o.state == State::Open) {
            let ip = jobs[0].addr.ip();
            let ports = CANARY_PORTS.map(|p| p.to_string()).join(", ");
            notes.push(tr!(
                lang,
                "every port on {ip} seems to answer: TCP {ports} (ports nothing uses) connected too. A firewall, REDIRECT or SYN proxy answers for every port, so an open port there proves nothing by itself; run automate-ports serve on the far side and check with --key.",
                "auf {ip} scheint jeder Port zu antworten: auch TCP {ports} (Ports, die nichts nutzt) ließen sich verbinden. Eine Firewall, ein REDIRECT oder ein SYN-Proxy antwortet dort für jeden Port, ein offener Port beweist also für sich allein nichts; automate-ports serve auf der Gegenseite starten und mit --key prüfen."
            ));
        }
    }
    notes
}

/// With a key, the hosts probed without it (serve never stands in for them), said once.
fn unkeyed_note(plan: &plan::Plan, lang: Lang) -> Option<String> {
    let mut hosts: Vec<&str> = Vec::new();
    for planned in plan
        .checks
        .iter()
        .filter(|c| !c.served && c.check.probe.is_remote())
    {
        if let Some(host) = planned.host.as_deref() {
            crate::model::push_new(&mut hosts, host);
        }
    }
    if hosts.is_empty() {
        return None;
    }
    let hosts = hosts.join(", ");
    Some(tr!(
        lang,
        "{hosts} probed without the key: automate-ports serve does not stand in for it, so an open port there is not verified",
        "{hosts} ohne Schlüssel geprüft: automate-ports serve steht dafür nicht ein, ein offener Port dort ist also nicht verifiziert"
    ))
}
