//! The `check` pipeline end to end: plan → resolve → probe → verdict. No clap, no printing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::model::{Family, ProbeKind, Profile};
use crate::plan;
use crate::probe::{self, dns, EngineConfig, Prober};
use crate::report::Report;
use crate::verdict::{self, RunInfo};

/// Everything a check run needs besides the profile.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target name → host, as named on the command line.
    pub targets: BTreeMap<String, String>,
    pub family: Family,
    pub timeout: Duration,
    pub retries: u8,
    /// In-flight probes at most; `None` is as wide as the open-file limit allows.
    pub concurrency: Option<usize>,
    /// New probes per second at most.
    pub rate: Option<u32>,
    pub full_ranges: bool,
    pub strict: bool,
}

/// Where a run reports how far it got; the command line shows a progress bar with it.
pub trait Progress {
    fn start(&self, _total: u64) {}
    fn inc(&self) {}
    fn finish(&self) {}
}

/// No progress shown.
impl Progress for () {}

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
    let resolved = dns::resolve_all(plan.hosts(), options.family, options.timeout).await;
    let (paths, jobs) = plan::expand(&plan, &resolved);
    // A loopback probe holds a second socket: keep a descriptor for each.
    let two_sockets = jobs
        .iter()
        .filter(|j| j.kind == ProbeKind::Loopback)
        .count();
    let width = probe::probe_width(options.concurrency, two_sockets)?;
    tracing::debug!(jobs = jobs.len(), paths = paths.len(), width, "probing");
    let config = EngineConfig {
        timeout: options.timeout,
        retries: options.retries,
        concurrency: width,
        rate: options.rate,
    };
    let keyed = prober.keyed();
    progress.start(jobs.len() as u64);
    let outcomes = probe::run(prober, &jobs, config, &|| progress.inc()).await;
    progress.finish();
    let run = RunInfo {
        started_at,
        duration: clock.elapsed(),
        timeout: options.timeout,
        strict: options.strict,
        full_ranges: options.full_ranges,
        keyed,
    };
    Ok(verdict::report(&plan, &paths, &outcomes, &run))
}
