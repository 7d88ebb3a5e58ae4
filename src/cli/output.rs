//! Terminal output: reports and errors on stdout and stderr, clap's errors in one line,
//! logging, and the async runtime the commands run in.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;

use crate::exit;
use crate::report::{self, Format, Report};

/// `--color`: anstream follows it on stdout; stderr's logs and the progress bar ask [`stderr_color`].
pub(super) fn set_color(choice: super::args::ColorArg) {
    use super::args::ColorArg;
    anstream::ColorChoice::write_global(match choice {
        ColorArg::Auto => anstream::ColorChoice::Auto,
        ColorArg::Always => anstream::ColorChoice::Always,
        ColorArg::Never => anstream::ColorChoice::Never,
    });
}

/// Colour on stderr: as `--color` says, else on a terminal unless NO_COLOR is set.
pub(super) fn stderr_color() -> bool {
    match anstream::ColorChoice::global() {
        anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
        anstream::ColorChoice::Never => false,
        anstream::ColorChoice::Auto => {
            io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

pub(super) fn write_report(report: &Report, format: Format) -> anyhow::Result<ExitCode> {
    let color = anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never;
    write_stdout(&report::render(report, format, color))?;
    if format == Format::Nagios {
        return Ok(ExitCode::from(report::nagios::exit_code(report)));
    }
    Ok(ExitCode::from(if report.failed() {
        exit::FAILED
    } else {
        exit::OK
    }))
}

/// Where a finished `check` report goes and what it gains on the way: the notes and agent
/// found before probing, stdout in the chosen format, then every `--output` file.
pub(super) struct Delivery {
    pub(super) format: Format,
    pub(super) files: Vec<crate::outputs::ReportFile>,
    pub(super) notes: Vec<String>,
    pub(super) agent: Option<crate::agentconfig::AgentInfo>,
}

impl Delivery {
    /// `reported` turns true once the report is on stdout (a file that fails after it does
    /// not take it back).
    pub(super) fn deliver(self, mut report: Report) -> Result<ExitCode, Failed> {
        report.notes.splice(0..0, self.notes);
        report.agent = self.agent;
        if let Some(evidence) = report.agent.as_ref().and_then(|a| a.evidence.as_ref()) {
            crate::evidence::beside(&mut report.checks, evidence, report.lang);
        }
        // The report on stdout first: a file that fails now (a full disk) loses nothing else.
        let code = write_report(&report, self.format).map_err(Failed::BeforeReport)?;
        for file in self.files {
            file.write(&report).map_err(Failed::AfterReport)?;
        }
        Ok(code)
    }
}

/// Why `check` failed: before its report reached stdout (which then holds none, or an
/// error in the report's format), or after it (a file that failed does not take it back).
#[derive(Debug)]
pub(super) enum Failed {
    BeforeReport(anyhow::Error),
    AfterReport(anyhow::Error),
}

impl Failed {
    pub(super) fn into_inner(self) -> anyhow::Error {
        match self {
            Failed::BeforeReport(e) | Failed::AfterReport(e) => e,
        }
    }
}

/// Writes to stdout through anstream (which drops colour when piped or NO_COLOR is set). A
/// closed pipe (`| head`) is not an error.
pub(super) fn write_stdout(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = anstream::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Whether the command line asks for `--format json` (read from the raw arguments: used when
/// they did not parse).
pub(super) fn asks_for_json(args: &[OsString]) -> bool {
    args.iter()
        .zip(args.iter().skip(1).map(Some).chain([None]))
        .any(|(arg, next)| {
            arg == "--format=json" || (arg == "--format" && next.is_some_and(|n| n == "json"))
        })
}

/// The JSON report's stand-in when there is no report: schema 1, `error.kind` is `usage`
/// (the command line) or `input` (a profile, a name, a file, a local resource), `message`
/// is the line also printed on stderr.
pub(super) fn write_json_error(kind: &str, message: &str) -> anyhow::Result<ExitCode> {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let value = serde_json::json!({
        "schema": 1,
        "error": { "kind": kind, "message": message },
    });
    write_stdout(&format!("{value}\n"))
}

/// Help and version go to stdout with exit 0; usage errors become one line on stderr.
pub(super) fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = write_stdout(&e.render().to_string());
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::from(exit::USAGE)
        }
        _ => {
            eprintln!("automate-ports: {}", one_line(&e.render().to_string()));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Folds clap's multi-line error into one line: the error, its tip, and where to look.
pub(super) fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .to_string();
    let rest: Vec<&str> = lines.collect();
    // A tip, or else the values a flag takes: either tells how to fix it.
    let tip = rest
        .iter()
        .find_map(|l| l.strip_prefix("tip: ").map(str::to_string))
        .or_else(|| {
            rest.iter().find_map(|l| {
                l.strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .filter(|l| l.starts_with("possible values: "))
                    .map(str::to_string)
            })
        });
    let usage_of = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .and_then(|u| u.split_whitespace().nth(1))
        .filter(|cmd| !cmd.starts_with('[') && !cmd.starts_with('-') && !cmd.starts_with('<'))
        .map_or_else(String::new, |cmd| format!(" {cmd}"));
    match tip {
        Some(tip) => format!("{first} ({tip}); see 'automate-ports{usage_of} --help'"),
        None => format!("{first}; see 'automate-ports{usage_of} --help'"),
    }
}

pub(super) fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("automate_ports={level}")));
    let ansi = stderr_color();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}

/// One worker per core, at most [`MAX_WORKERS`]: a sweep's event loop is one task, and the
/// other workers finish the tries that run as tasks (application probes, UDP, and on Windows
/// every try) and `serve`'s slow connections while it runs. On a 2-core machine two workers
/// measured faster and with a lower peak RSS than one (BENCHMARKS.md); past a few, only
/// wake-ups between them grow.
pub(super) struct Runtime(tokio::runtime::Runtime);

/// The most worker threads the runtime starts, however many cores there are.
const MAX_WORKERS: usize = 4;

pub(super) fn runtime() -> anyhow::Result<Runtime> {
    let workers = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(MAX_WORKERS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    Ok(Runtime(rt))
}

impl Runtime {
    /// Runs `f`, then shuts down without waiting for a resolver thread stuck in the OS
    /// (its timeout has already been reported).
    pub(super) fn block_on_shutdown<F: std::future::Future>(self, f: F) -> F::Output {
        let out = self.0.block_on(f);
        self.0.shutdown_background();
        out
    }
}
