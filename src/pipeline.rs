//! The `check` pipeline end to end: plan → resolve → probe → verdict. No clap, no printing.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::net::{IpAddr, SocketAddr};

use crate::lang::Lang;
use crate::model::{Family, ProbeKind, Profile, Protocol, State};
use crate::plan;
use crate::plan::ProbeJob;
use crate::probe::{self, EngineConfig, Prober};
use crate::report::{Report, Verdict};
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
    /// Which results' paths are traced.
    pub trace: TraceMode,
}

/// Which results' paths a run traces (`--trace`, `--no-trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// The first few results that did not pass because nothing answered.
    Filtered,
    /// Every result on a remote address, up to a cap.
    All,
    Off,
}

/// Paths traced in a run at most, by default and with `--trace`: each trace is thirty
/// sockets and an ICMP error from every router on the way, which routers ration.
const TRACES: usize = 3;
const TRACES_ALL: usize = 16;

/// Where a run reports how far it got: the command line shows a progress bar with it, and
/// its watchdog keeps what a report of an unfinished run is made from.
pub trait Progress: Sync {
    /// A round begins: names are looked up, each within `timeout`.
    fn resolving(&self, _timeout: Duration) {}
    /// The jobs are planned and about to run.
    fn start(&self, _started: &Started<'_>) {}
    /// Job `index` finished.
    fn done(&self, _index: usize, _outcome: &probe::Outcome) {}
    fn finish(&self) {}
    /// Paths are being traced, for at most `bound`.
    fn tracing(&self, _bound: Duration) {}
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
    fn tracing(&self, bound: Duration) {
        (**self).tracing(bound);
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
    fn tracing(&self, bound: Duration) {
        self.0.tracing(bound);
        self.1.tracing(bound);
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
        narrow_rate: probe::narrow_rate(),
    };
    let mut run = RunInfo {
        started_at,
        duration: Duration::ZERO,
        timeout: options.timeout,
        strict: options.strict,
        full_ranges: options.full_ranges,
        keyed,
        lang: options.lang,
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
    };
    progress.start(&Started {
        plan: &plan,
        paths: &paths,
        jobs: &jobs,
        checked: first_canary,
        run: &run,
        bound: probe::bound(&jobs, &config, |job| prober.phases(job)),
    });
    let outcomes = probe::run(Arc::clone(&prober), &jobs, config, &|index, outcome| {
        progress.done(index, outcome);
    })
    .await;
    progress.finish();
    let mut report = verdict::report(&plan, &paths, &outcomes[..first_canary], &run);
    let wanted = wanted_traces(&report, &paths, &jobs, &outcomes, options.trace);
    if !wanted.is_empty() {
        progress.tracing(probe::trace_bound(options.timeout));
        trace_paths(&mut report, &wanted, &jobs, &outcomes, &prober, options).await;
    }
    run.duration = clock.elapsed();
    report.duration_ms = verdict::round_ms(run.duration);
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
    let mut hosts: Vec<String> = Vec::new();
    for planned in plan
        .checks
        .iter()
        .filter(|c| !c.served && c.check.probe.is_remote())
    {
        if let Some(host) = &planned.host {
            crate::model::push_new(&mut hosts, host.to_string());
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

/// A result whose path is to be traced: which result, and the port and address of it.
struct Wanted {
    result: usize,
    addr: SocketAddr,
    protocol: Protocol,
}

/// The results to trace: by default those that did not pass because nothing answered (or a
/// router refused), failures first, one per address, port and protocol.
fn wanted_traces(
    report: &Report,
    paths: &[plan::PathPlan],
    jobs: &[ProbeJob],
    outcomes: &[probe::Outcome],
    mode: TraceMode,
) -> Vec<Wanted> {
    let stopped = |o: &probe::Outcome| matches!(o.state, State::Filtered | State::OpenFiltered);
    let mut wanted: Vec<(Verdict, Wanted)> = Vec::new();
    for (result, (checked, path)) in report.checks.iter().zip(paths).enumerate() {
        let plan::Work::Probe(range) = &path.work else {
            continue;
        };
        // A range traces one port that ended silent (or, with --trace, its first).
        let pick = range.clone().find(|&j| stopped(&outcomes[j]));
        let pick = match mode {
            TraceMode::Off => None,
            TraceMode::Filtered => pick.filter(|_| checked.verdict != Verdict::Pass),
            TraceMode::All => pick.or(Some(range.start)),
        };
        let Some(job) = pick.map(|j| &jobs[j]) else {
            continue;
        };
        let traceable = match job.kind {
            ProbeKind::Connect | ProbeKind::App(_) => true,
            ProbeKind::Nat { .. } | ProbeKind::Loopback { .. } | ProbeKind::Listening => false,
        };
        let seen = wanted
            .iter()
            .any(|(_, w)| w.addr == job.addr && w.protocol == job.protocol);
        if traceable && !seen {
            wanted.push((
                checked.verdict,
                Wanted {
                    result,
                    addr: job.addr,
                    protocol: job.protocol,
                },
            ));
        }
    }
    // Failures before warnings; the order of the checks otherwise.
    wanted.sort_by_key(|(verdict, _)| *verdict != Verdict::Fail);
    let cap = if mode == TraceMode::All {
        TRACES_ALL
    } else {
        TRACES
    };
    wanted.into_iter().take(cap).map(|(_, w)| w).collect()
}

/// Traces the wanted paths at once, and beside each address's first a TCP port of it that
/// answered (a reset is best: no service is touched), whose trace measures how far the
/// address is. Each result gets its judged trace and the hint names the firewall.
async fn trace_paths<P: Prober>(
    report: &mut Report,
    wanted: &[Wanted],
    jobs: &[ProbeJob],
    outcomes: &[probe::Outcome],
    prober: &Arc<P>,
    options: &Options,
) {
    let mut targets: Vec<(SocketAddr, Protocol)> =
        wanted.iter().map(|w| (w.addr, w.protocol)).collect();
    let mut references: Vec<(IpAddr, SocketAddr)> = Vec::new();
    for w in wanted {
        let ip = w.addr.ip();
        if references.iter().any(|(r, _)| *r == ip) {
            continue;
        }
        let answered = |refused: bool| {
            jobs.iter().zip(outcomes).find(|(j, o)| {
                j.addr.ip() == ip
                    && j.protocol == Protocol::Tcp
                    && j.kind.is_remote()
                    && (o.why == probe::Why::Refused) == refused
                    && matches!(o.state, State::Open | State::Closed)
            })
        };
        if let Some((job, _)) = answered(true).or_else(|| answered(false)) {
            references.push((ip, job.addr));
            targets.push((job.addr, Protocol::Tcp));
        }
    }
    // The slowest answer from each address: how long its routers' answers can take.
    let rtt = |ip: IpAddr| {
        jobs.iter()
            .zip(outcomes)
            .filter(|(j, o)| j.addr.ip() == ip && o.why.from_the_network())
            .map(|(_, o)| o.elapsed)
            .max()
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, &(addr, protocol)) in targets.iter().enumerate() {
        let (prober, timeout, rtt) = (Arc::clone(prober), options.timeout, rtt(addr.ip()));
        set.spawn(async move { (i, probe::trace(&prober, addr, protocol, timeout, rtt).await) });
    }
    let mut traced: Vec<Option<probe::Traced>> = vec![None; targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, found)) = joined {
            traced[i] = Some(found);
        }
    }
    let distance = |ip: IpAddr| {
        let at = references.iter().position(|(r, _)| *r == ip)?;
        let hops = &traced[wanted.len() + at].as_ref()?.hops;
        let reached = hops
            .iter()
            .position(|(a, _)| *a == crate::model::HopAnswer::Reached)?;
        Some((reached + 1) as u8)
    };
    for (w, found) in wanted.iter().zip(&traced) {
        let Some(found) = found else { continue };
        let trail = verdict::Trail {
            traced: found,
            protocol: w.protocol,
            port: w.addr.port(),
            target: w.addr.ip(),
            target_hops: distance(w.addr.ip()),
        };
        let trace = verdict::judge_trace(&trail, options.lang);
        verdict::attach_trace(&mut report.checks[w.result], trace, options.lang);
    }
}
