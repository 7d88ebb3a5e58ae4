//! Wires the command line to the pipeline: parses arguments, sets up logging and the
//! runtime, runs a command, writes its output and decides the exit code.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::check::{self, Options};
use crate::cli::{
    CheckArgs, Cli, Command, FormatArg, KeyArg, ProbeArgs, ProfilesCommand, ServeArgs,
};
use crate::model::Family;
use crate::probe::app::AppConfig;
use crate::probe::net::NetProber;
use crate::protocol::Key;
use crate::report::{self, Format, Report};
use crate::{demo, exit, profiles, serve};

/// Runs the program; `Err` is always the user's to fix and exits with [`exit::USAGE`].
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<ExitCode> {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = clap_exit(&e);
            // A fleet collector saves stdout as the machine's report: give it JSON to read.
            if code == ExitCode::from(exit::USAGE) && asks_for_json(&args) {
                write_json_error("usage", &one_line(&e.render().to_string()))?;
            }
            return Ok(code);
        }
    };
    init_logging(cli.verbose, cli.quiet);
    match cli.command {
        Command::Check(args) if args.format == FormatArg::Nagios => {
            // A monitoring system reads every problem from stdout, with UNKNOWN (3) for its own.
            run_check(&args, cli.quiet, &mut false).or_else(|e| {
                write_stdout(&format!("AUTOMATE-PORTS UNKNOWN - {e:#}\n"))?;
                Ok(ExitCode::from(exit::NAGIOS_UNKNOWN))
            })
        }
        Command::Check(args) if args.format == FormatArg::Json => {
            let mut reported = false;
            run_check(&args, cli.quiet, &mut reported).inspect_err(|e| {
                if !reported {
                    let _ = write_json_error("input", &format!("error: {e:#}"));
                }
            })
        }
        Command::Check(args) => run_check(&args, cli.quiet, &mut false),
        Command::Profiles(ProfilesCommand::List) => {
            let mut text = String::new();
            for (name, source) in profiles::BUILTIN {
                let p = profiles::parse(name, source)?;
                let n = p.checks.len();
                let noun = if n == 1 { "check " } else { "checks" };
                let _ = writeln!(text, "{:<14} {n:>2} {noun}  {}", p.role, p.description);
            }
            write_stdout(&text)
        }
        Command::Profiles(ProfilesCommand::Show { role, profile }) => {
            let text = match (role.as_deref(), profile) {
                (_, Some(path)) => {
                    profiles::from_file(&path)?;
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?
                }
                (Some(role), None) => {
                    profiles::builtin(role)?;
                    profiles::builtin_text(role)
                        .expect("checked above")
                        .to_string()
                }
                (None, None) => anyhow::bail!(
                    "name a role to show: one of {}, or --profile FILE",
                    profiles::builtin_names()
                ),
            };
            write_stdout(&text)
        }
        Command::Serve(args) => run_serve(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "automate-ports", &mut out);
            write_stdout(&String::from_utf8_lossy(&out))
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("cannot render the man page")?;
            write_stdout(&String::from_utf8_lossy(&out))
        }
        Command::Demo(args) => run_demo(&args),
    }
}

fn run_demo(args: &crate::cli::DemoArgs) -> anyhow::Result<ExitCode> {
    let lang = args.lang.resolve();
    let demo::Demo {
        report,
        description: stage_text,
        mismatches,
    } = runtime()?.block_on_shutdown(demo::run(lang))?;
    let format = Format::from(args.format);
    if format == Format::Table {
        write_stdout(&format!("{stage_text}\n\n"))?;
    } else {
        eprintln!("{stage_text}");
    }
    // The demo's exit code says whether the staging held, not whether checks passed.
    write_report(&report, format)?;
    if mismatches.is_empty() {
        let line = if stage_text.contains("\nnote: skipped") {
            lang.pick(
                "demo: every result matches the staging (the FAIL and WARN lines above are staged on purpose, or ports the demo could not stage: see the notes)",
                "demo: jedes Ergebnis entspricht dem Aufbau (die FEHLER- und WARNUNG-Zeilen oben sind Absicht, oder Ports, die die Demo nicht aufbauen konnte: siehe die Notizen)",
            )
        } else {
            lang.pick(
                "demo: every result matches the staging (the FAIL and WARN lines above are staged on purpose)",
                "demo: jedes Ergebnis entspricht dem Aufbau (die FEHLER- und WARNUNG-Zeilen oben sind Absicht)",
            )
        };
        eprintln!("{line}");
        Ok(ExitCode::from(exit::OK))
    } else {
        for m in &mismatches {
            eprintln!("demo: {m}");
        }
        eprintln!("demo: something on this machine (a local firewall?) changes loopback traffic");
        Ok(ExitCode::from(exit::FAILED))
    }
}

/// `reported` turns true once the report is on stdout (a file that fails after it does not
/// take it back).
fn run_check(args: &CheckArgs, quiet: bool, reported: &mut bool) -> anyhow::Result<ExitCode> {
    let mut profile = profiles::load(args.role.as_deref(), args.profile.as_deref())?;
    let mut targets = BTreeMap::new();
    for (name, host) in [
        ("server", &args.server),
        ("mediator", &args.mediator),
        ("db", &args.db),
        ("peer", &args.peer),
        ("screenconnect", &args.screenconnect),
    ] {
        if let Some(host) = host {
            targets.insert(name.to_string(), vec![host.clone()]);
        }
    }
    for (name, host) in &args.targets {
        // Naming a target again adds a host: each one is checked.
        let hosts = targets.entry(name.clone()).or_insert_with(Vec::new);
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    let lang = args.lang.resolve();
    let notes = if profile.role == "agent" && !targets.contains_key("server") {
        from_installed_agent(&mut profile, &mut targets, lang)?
    } else {
        Vec::new()
    };
    let options = options(targets, &args.probe, args.strict, lang);
    let app = AppConfig::new(
        args.insecure,
        args.cert_warn_days,
        args.ca_file.as_deref(),
        lang,
    )?;
    let prober = NetProber::new(key(&args.key)?, app);
    // Before any probe: a report that cannot be written is known now, not after a sweep.
    let files = crate::outputs::open_all(&args.outputs, args.profile.as_deref())?;
    // The bar is for people watching a terminal: never in JSON, when piped, or with -q.
    let bar = Bar::new(!quiet && args.format == FormatArg::Table && io::stderr().is_terminal());
    let mut report = runtime()?.block_on_shutdown(check::run_waiting(
        &profile,
        &options,
        Arc::new(prober),
        &bar,
        args.wait,
    ))?;
    report.notes.splice(0..0, notes);
    // The report on stdout first: a file that fails now (a full disk) loses nothing else.
    let code = write_report(&report, args.format.into())?;
    *reported = true;
    for file in files {
        file.write(&report)?;
    }
    Ok(code)
}

/// `check --role agent` without `--server` on a PC with the agent: its own settings name
/// the servers and the tray port. Returns notes for the report (where the settings came
/// from, and whether the agent's services run). Elsewhere nothing is found and the plan
/// asks for `--server`.
fn from_installed_agent(
    profile: &mut crate::model::Profile,
    targets: &mut crate::plan::Targets,
    lang: crate::lang::Lang,
) -> anyhow::Result<Vec<String>> {
    let Some(found) = crate::agentconfig::read() else {
        return Ok(Vec::new());
    };
    anyhow::ensure!(
        !found.servers.is_empty(),
        "the installed agent's settings (HKLM\\SOFTWARE\\LabTech\\Service) name no server: pass --server HOST"
    );
    let servers = found.servers.join(", ");
    let mut notes = vec![crate::tr!(
        lang,
        "servers from the installed agent's settings: {servers}",
        "Server aus den Einstellungen des installierten Agenten: {servers}"
    )];
    targets.insert("server".into(), found.servers);
    if let Some(port) = found.tray_port {
        for check in &mut profile.checks {
            if check.probe == crate::model::ProbeKind::Loopback {
                check.ports =
                    crate::model::PortRange::single(port).expect("parse_tray_port rejects 0");
            }
        }
        notes.push(crate::tr!(
            lang,
            "tray port {port} from the installed agent's settings",
            "Tray-Port {port} aus den Einstellungen des installierten Agenten"
        ));
    }
    let services: Vec<String> = found
        .services
        .iter()
        .map(|(name, state)| format!("{name} {}", state.to_lowercase()))
        .collect();
    let services = services.join(", ");
    notes.push(crate::tr!(
        lang,
        "agent services: {services}",
        "Dienste des Agenten: {services}"
    ));
    Ok(notes)
}

fn key(arg: &KeyArg) -> anyhow::Result<Option<Key>> {
    arg.key
        .as_deref()
        .map(Key::derive)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e} (--key or AUTOMATE_PORTS_KEY)"))
}

fn run_serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if args.new_key {
        let key = Key::generate();
        return write_stdout(&format!(
            "{key}\n\n# the same key on both sides, in the environment (it stays out of process lists):\nexport AUTOMATE_PORTS_KEY='{key}'      # Linux, macOS\n$env:AUTOMATE_PORTS_KEY = '{key}'    # Windows PowerShell\n"
        ));
    }
    let profile = profiles::load(args.role.as_deref(), args.profile.as_deref())?;
    let Some(key) = key(&args.key)? else {
        anyhow::bail!("serve needs the shared key: set AUTOMATE_PORTS_KEY or pass --key KEY (the same as for check --key)");
    };
    let mut binds = Vec::new();
    for host in &args.bind {
        let found = (host.as_str(), 0).to_socket_addrs().map_err(|e| {
            anyhow::anyhow!("cannot resolve --bind {host}: {e}; give an address of this machine")
        })?;
        for addr in found {
            if !binds.contains(&addr.ip()) {
                binds.push(addr.ip());
            }
        }
    }
    let options = serve::Options {
        key,
        binds,
        duration: args.duration,
        full_ranges: args.full_ranges,
        drop_privileges: true,
        user: args.user.clone(),
    };
    let mut status = |line: &str| {
        let _ = write_stdout(&format!("{line}\n"));
    };
    // Bound and unprivileged before the runtime starts its threads.
    let bound = serve::bind(&profile, &options, &mut status)?;
    let counts =
        runtime()?.block_on_shutdown(async { serve::run(bound, &options, &mut status).await })?;
    write_stdout(&format!("stopped: {}\n", counts.summary()))?;
    Ok(ExitCode::from(exit::OK))
}

fn options(
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

fn write_report(report: &Report, format: Format) -> anyhow::Result<ExitCode> {
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

/// Writes to stdout through anstream (which drops colour when piped or NO_COLOR is set). A
/// closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = anstream::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Whether the command line asks for `--format json` (read from the raw arguments: used when
/// they did not parse).
fn asks_for_json(args: &[OsString]) -> bool {
    args.iter()
        .zip(args.iter().skip(1).map(Some).chain([None]))
        .any(|(arg, next)| {
            arg == "--format=json" || (arg == "--format" && next.is_some_and(|n| n == "json"))
        })
}

/// The JSON report's stand-in when there is no report: schema 1, `error.kind` is `usage`
/// (the command line) or `input` (a profile, a name, a file, a local resource), `message`
/// is the line also printed on stderr.
fn write_json_error(kind: &str, message: &str) -> anyhow::Result<ExitCode> {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let value = serde_json::json!({
        "schema": 1,
        "error": { "kind": kind, "message": message },
    });
    write_stdout(&format!("{value}\n"))
}

/// Help and version go to stdout with exit 0; usage errors become one line on stderr.
fn clap_exit(e: &clap::Error) -> ExitCode {
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
fn one_line(rendered: &str) -> String {
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

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("automate_ports={level}")));
    let ansi = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
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

impl check::Progress for Bar {
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

/// Two workers: a sweep of thousands of ports spends most of its time in socket system
/// calls, and a second thread finishes probes while the first is still starting them (on
/// this 2-core machine it measured faster and with a lower peak RSS than one thread; see
/// BENCHMARKS.md).
struct Runtime(tokio::runtime::Runtime);

fn runtime() -> anyhow::Result<Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    Ok(Runtime(rt))
}

impl Runtime {
    /// Runs `f`, then shuts down without waiting for a resolver thread stuck in the OS
    /// (its timeout has already been reported).
    fn block_on_shutdown<F: std::future::Future>(self, f: F) -> F::Output {
        let out = self.0.block_on(f);
        self.0.shutdown_background();
        out
    }
}
