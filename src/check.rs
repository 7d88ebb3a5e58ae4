//! The `check` pipeline end to end: plan → resolve → probe → verdict. No clap, no printing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::model::{Family, Profile};
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
    /// In-flight probes at most; already narrowed to the descriptor budget.
    pub concurrency: usize,
    pub full_ranges: bool,
    pub strict: bool,
}

/// Plans the profile's checks and runs them through `prober`.
///
/// Errors are the user's to fix (a target the role needs was not named); probe failures
/// are results in the report.
pub async fn run<P: Prober>(
    profile: &Profile,
    options: &Options,
    prober: Arc<P>,
) -> anyhow::Result<Report> {
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let clock = Instant::now();
    let plan = plan::build(profile, &options.targets, options.full_ranges)?;
    let resolved = dns::resolve_all(plan.hosts(), options.family, options.timeout).await;
    let (paths, jobs) = plan::expand(&plan, &resolved);
    tracing::debug!(
        jobs = jobs.len(),
        paths = paths.len(),
        width = options.concurrency,
        "probing"
    );
    let config = EngineConfig {
        timeout: options.timeout,
        retries: options.retries,
        concurrency: options.concurrency,
    };
    let keyed = prober.keyed();
    let outcomes = probe::run(prober, &jobs, config).await;
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
