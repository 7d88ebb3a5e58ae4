//! `check`: the profile and the targets from the command line (see [`crate::overrides`]),
//! the probe settings, the run with a progress bar, then the report on stdout and in files.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use super::args::{CheckArgs, FormatArg, KeyArg, ProbeArgs};
use super::output::{runtime, write_report};
use crate::model::Family;
use crate::pipeline::{self, Options};
use crate::probe::app::AppConfig;
use crate::probe::net::NetProber;
use crate::protocol::Key;
use crate::{overrides, profiles};

/// `reported` turns true once the report is on stdout (a file that fails after it does not
/// take it back).
pub(super) fn run(args: &CheckArgs, quiet: bool, reported: &mut bool) -> anyhow::Result<ExitCode> {
    let mut profile = profiles::load(args.role.as_deref(), args.profile.as_deref())?;
    let mut targets = overrides::from_command_line(
        [
            args.server.as_ref(),
            args.mediator.as_ref(),
            args.db.as_ref(),
            args.peer.as_ref(),
            args.screenconnect.as_ref(),
        ],
        &args.targets,
    );
    let lang = args.lang.resolve();
    let installed = overrides::from_installed_agent(
        &mut profile,
        &mut targets,
        crate::agentconfig::read,
        lang,
    )?;
    let options = pipeline_options(targets, &args.probe, args.strict, lang);
    let app = AppConfig::new(args.insecure, args.cert_warn_days, args.ca_file.as_deref())?;
    let prober = NetProber::new(key(&args.key)?, app);
    // Before any probe: a report that cannot be written is known now, not after a sweep.
    let files = crate::outputs::open_all(&args.outputs, args.profile.as_deref())?;
    // The bar is for people watching a terminal: never in JSON, when piped, or with -q.
    let bar = Bar::new(!quiet && args.format == FormatArg::Table && io::stderr().is_terminal());
    let mut report = runtime()?.block_on_shutdown(pipeline::run_waiting(
        &profile,
        &options,
        Arc::new(prober),
        &bar,
        args.wait,
    ))?;
    report.notes.splice(0..0, installed.notes);
    report.agent = installed.agent;
    // The report on stdout first: a file that fails now (a full disk) loses nothing else.
    let code = write_report(&report, args.format.into())?;
    *reported = true;
    for file in files {
        file.write(&report)?;
    }
    Ok(code)
}

pub(super) fn key(arg: &KeyArg) -> anyhow::Result<Option<Key>> {
    arg.key
        .as_deref()
        .map(Key::derive)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e} (--key or AUTOMATE_PORTS_KEY)"))
}

fn pipeline_options(
    targets: crate::plan::Targets,
    probe: &ProbeArgs,
    strict: bool,
    lang: crate::lang::Lang,
) -> Options {
    Options {
        targets,
        family: match (probe.ipv4, probe.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        },
        timeout: probe.timeout,
        retries: probe.retries,
        concurrency: probe.concurrency.map(|n| n as usize),
        rate: probe.rate,
        full_ranges: probe.full_ranges,
        strict,
        lang,
    }
}

/// A progress bar on stderr that shows itself only once a run has taken a second.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(enabled: bool) -> Bar {
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} probing {pos}/{len} paths [{bar:30}] {elapsed}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Bar { bar }
    }
}

impl pipeline::Progress for Bar {
    fn start(&self, total: u64) {
        let Some(bar) = &self.bar else { return };
        bar.set_length(total);
        // Quick runs never flash a bar: it appears after a second, ticking even while every
        // probe is still waiting on its timeout.
        let bar = bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if !bar.is_finished() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
            }
        });
    }

    fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
