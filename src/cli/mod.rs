//! The command line: clap definitions ([`args`]), one adapter per subcommand, and terminal
//! output. The only part of the crate that knows about arguments, stdout and exit codes.

pub mod args;
mod check;
mod demo;
mod output;
mod parsers;
mod serve;
mod watchdog;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::{exit, profiles};
pub use args::{Cli, Command, FormatArg, ProfilesCommand};
use output::{
    asks_for_json, clap_exit, init_logging, one_line, write_json_error, write_stdout, Failed,
};

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
    output::set_color(cli.color);
    init_logging(cli.verbose, cli.quiet);
    match cli.command {
        Command::Check(args) if args.format == FormatArg::Nagios => {
            // A monitoring system reads every problem from stdout, with UNKNOWN (3) for its own.
            check::run(&args, cli.quiet).or_else(|e| {
                write_stdout(&format!("AUTOMATE-PORTS UNKNOWN - {:#}\n", e.into_inner()))?;
                Ok(ExitCode::from(exit::NAGIOS_UNKNOWN))
            })
        }
        Command::Check(args) if args.format == FormatArg::Json => check::run(&args, cli.quiet)
            .map_err(|failed| match failed {
                Failed::BeforeReport(e) => {
                    let _ = write_json_error("input", &format!("error: {e:#}"));
                    e
                }
                Failed::AfterReport(e) => e,
            }),
        Command::Check(args) => check::run(&args, cli.quiet).map_err(Failed::into_inner),
        Command::Profiles(ProfilesCommand::List) => write_stdout(&profile_list()?),
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
        Command::Serve(args) => serve::run(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "automate-ports", &mut out);
            write_stdout(&String::from_utf8_lossy(&out))
        }
        Command::Man { subcommand, dir } => man(subcommand.as_deref(), dir.as_deref()),
        Command::Demo(args) => demo::run(&args),
        Command::Fleet(args) => {
            let fleet = crate::fleet::read(&args.paths);
            let format = args.format.into();
            write_stdout(&crate::fleet::render(&fleet, format))?;
            if format == crate::fleet::FleetFormat::Csv {
                // A CSV is rows of machines; the files that were none are said beside it.
                eprint!("{}", crate::fleet::skipped_lines(&fleet));
            }
            Ok(ExitCode::from(if fleet.all_passed() {
                exit::OK
            } else {
                exit::FAILED
            }))
        }
    }
}

/// The man pages: `automate-ports` and one per subcommand (`automate-ports-check`, ...), so
/// `man automate-ports-check` documents every option of `check`.
fn man(subcommand: Option<&str>, dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let root = Cli::command();
    let render = |cmd: clap::Command| -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .context("cannot render the man page")?;
        Ok(out)
    };
    let page = |name: &str| -> Option<clap::Command> {
        let sub = root.find_subcommand(name)?.clone();
        // clap keeps static names; a man run is one-shot, so the few bytes are leaked.
        let page_name: &'static str = Box::leak(format!("automate-ports-{name}").into_boxed_str());
        Some(sub.name(page_name).version(env!("CARGO_PKG_VERSION")))
    };
    let names: Vec<String> = root
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create {}: check the path and permissions",
                dir.display()
            )
        })?;
        let mut pages = vec![("automate-ports".to_string(), root.clone())];
        pages.extend(
            names
                .iter()
                .filter_map(|n| Some((format!("automate-ports-{n}"), page(n)?))),
        );
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            replace_file(dir, &path, &render(cmd)?).with_context(|| {
                format!(
                    "cannot write {}: check the path and permissions",
                    path.display()
                )
            })?;
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let cmd = match subcommand {
        None => root.clone(),
        Some(name) => page(name).ok_or_else(|| {
            anyhow::anyhow!("no subcommand '{name}': the pages are {}", names.join(", "))
        })?,
    };
    write_stdout(&String::from_utf8_lossy(&render(cmd)?))
}

/// Writes `bytes` to a temporary file in `dir` and renames it over `path`: a link planted at
/// `path` is replaced, never written through, and a reader never sees half a page.
fn replace_file(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    // A temporary file is private to its owner; a man page is for everyone to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `profiles list`: each built-in role, its number of checks and what it is for.
fn profile_list() -> anyhow::Result<String> {
    let mut text = String::new();
    let width = profiles::BUILTIN
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, source) in profiles::BUILTIN {
        let p = profiles::parse(name, source)?;
        let n = p.checks.len();
        let noun = if n == 1 { "check " } else { "checks" };
        let _ = writeln!(text, "{:<width$} {n:>2} {noun}  {}", p.role, p.description);
    }
    Ok(text)
}
