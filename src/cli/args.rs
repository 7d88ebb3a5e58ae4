//! Command-line arguments (clap derive), and `--output`'s parser beside the formats it names;
//! the other value parsers are in `parsers.rs`. Nothing outside `cli/` knows about clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::parsers::{
    parse_endpoint, parse_installer_token, parse_lifetime, parse_proxy, parse_proxy_user,
    parse_server, parse_target, parse_timeout,
};
use crate::endpoint::{Endpoint, Host};

const EXIT_CODES: &str = "\
Exit codes:
  0  no required check failed
  1  at least one required check failed (with --strict, warnings count as failures)
  2  bad input: usage, profile, value, or a local resource problem";

#[derive(Debug, Parser)]
#[command(
    name = "automate-ports",
    version,
    about = "Checks every network path ConnectWise Automate and ScreenConnect need, and says which one is blocked and what to change",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, global = true, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

const CHECK_EXAMPLES: &str = "\
Examples:
  automate-ports check --role agent --server automate.example.com
  automate-ports check --role server --server automate.example.com --key KEY --format json
  automate-ports check --tcp automate.example.com:8484 --udp automate.example.com:75";

const CHECK_DEADLINE: &str = "\
Deadline:
  Every run ends within a hard deadline, whatever the operating system does: the name
  lookups (--timeout), every probe at its most tries (--timeout x 6 tries, x 2 to 4 phases for
  keyed and application probes, per window of --concurrency, paced by --rate), --wait, plus
  10 s. At the deadline the report is written with each probe still running as 'unfinished',
  and the exit code is 1. -v prints the run's deadline.";

const SERVE_EXAMPLES: &str = "\
Examples:
  automate-ports serve --new-key
  AUTOMATE_PORTS_KEY=KEY automate-ports serve --role server --for 1h
  automate-ports serve --role tunnel --bind 192.0.2.2 --full-ranges";

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the paths a role needs from this machine.
    #[command(after_help = format!("{CHECK_EXAMPLES}\n\n{CHECK_DEADLINE}\n\n{EXIT_CODES}"))]
    Check(CheckArgs),
    /// List or show the built-in role profiles.
    #[command(
        subcommand,
        after_help = "Examples:\n  automate-ports profiles list\n  automate-ports profiles show agent\n  automate-ports profiles show --profile my-role.toml"
    )]
    Profiles(ProfilesCommand),
    /// Answer authenticated probes on every port a role's checks aim at this machine.
    #[command(
        after_help = format!("{SERVE_EXAMPLES}\n\nThe key can come from AUTOMATE_PORTS_KEY instead of --key (it is never printed).\n\nExit codes:\n  0  stopped after --for, Ctrl-C or SIGTERM\n  2  bad input, or nothing could be listened on")
    )]
    Serve(ServeArgs),
    /// One picture of many machines' JSON reports: a matrix of machines and checks, per check
    /// the machines failing and the common cause.
    #[command(
        after_help = "Examples:\n  automate-ports fleet reports/\n  automate-ports fleet reports/*.json --format html > customer.html\n  automate-ports fleet reports/ --format csv > customer.csv\n\nExit codes:\n  0  every machine passed and every file was a report\n  1  a machine failed, or a file was not a report (listed, skipped)\n  2  bad input"
    )]
    Fleet(FleetArgs),
    /// Print shell completions to stdout.
    #[command(
        after_help = "Examples:\n  automate-ports completions bash > /etc/bash_completion.d/automate-ports\n  automate-ports completions powershell >> $PROFILE"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout, or write every page to a directory.
    #[command(
        after_help = "Examples:\n  automate-ports man | man -l -\n  automate-ports man check | man -l -\n  automate-ports man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// The subcommand whose page to print (check, serve, profiles, demo, completions, man).
        subcommand: Option<String>,
        /// Write every page (automate-ports.1, automate-ports-check.1, ...) into this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
        dir: Option<PathBuf>,
    },
    /// Stage a pretend Automate server on loopback and check the `server` role against it (no network needed).
    #[command(
        after_help = "Examples:\n  automate-ports demo\n  automate-ports demo --lang de --format markdown\n\nExit codes:\n  0  every result came out as the demo staged it\n  1  a result differs from the staging (something on this machine interferes)\n  2  bad input"
    )]
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Report files (check --format json), or folders searched for *.json.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FleetFormatArg::Table)]
    pub format: FleetFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetFormatArg {
    Table,
    Markdown,
    Csv,
    Html,
}

impl From<FleetFormatArg> for crate::fleet::FleetFormat {
    fn from(f: FleetFormatArg) -> Self {
        match f {
            FleetFormatArg::Table => Self::Table,
            FleetFormatArg::Markdown => Self::Markdown,
            FleetFormatArg::Csv => Self::Csv,
            FleetFormatArg::Html => Self::Html,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in roles.
    List,
    /// Print a role's profile (TOML), built-in or from --profile.
    Show {
        /// Role name.
        role: Option<String>,
        /// Show this profile file instead of a built-in one.
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Role of this machine: agent, server, server-local, split-db, tunnel, screenconnect, screenconnect-client (or the role of --profile).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// The Automate server: a name or address, or the agent's URL form (https://host:8443,
    /// http://host), whose scheme and port the agent check then uses.
    #[arg(long, value_name = "HOST|URL", value_parser = parse_server)]
    pub server: Option<Endpoint>,
    /// The tunnel mediator [default: mediator.labtechsoftware.com].
    #[arg(long, value_name = "HOST", value_parser = Endpoint::parse_host)]
    pub mediator: Option<Endpoint>,
    /// The database server of a split installation.
    #[arg(long, value_name = "HOST", value_parser = Endpoint::parse_host)]
    pub db: Option<Endpoint>,
    /// A peer PC: another agent (wake-up) or the other end of a tunnel.
    #[arg(long, value_name = "HOST", value_parser = Endpoint::parse_host)]
    pub peer: Option<Endpoint>,
    /// The ScreenConnect server [default: the --server host].
    #[arg(long, value_name = "HOST", value_parser = Endpoint::parse_host)]
    pub screenconnect: Option<Endpoint>,
    /// A ScreenConnect relay: HOST[:PORT] (443 when no port is given, as hosted instances
    /// relay); the relay of --role screenconnect or screenconnect-client.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_endpoint)]
    pub screenconnect_relay: Option<Endpoint>,
    /// Any target of the profile by name; repeatable.
    #[arg(long = "target", value_name = "NAME=HOST", value_parser = parse_target)]
    pub targets: Vec<(String, Endpoint)>,
    /// A one-off TCP check, like Test-NetConnection (repeatable; with or without --role).
    #[arg(long = "tcp", value_name = "HOST:PORT", value_parser = crate::quick::parse)]
    pub tcp: Vec<(Host, u16)>,
    /// A one-off UDP check (repeatable; with or without --role).
    #[arg(long = "udp", value_name = "HOST:PORT", value_parser = crate::quick::parse)]
    pub udp: Vec<(Host, u16)>,
    /// Use this profile file instead of a built-in role.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Also write a report to a file (repeatable): FORMAT:FILE, or FILE ending in .json, .xml (JUnit), .md or .txt.
    #[arg(long = "output", value_name = "[FORMAT:]FILE", value_parser = parse_output)]
    pub outputs: Vec<(crate::report::Format, PathBuf)>,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub key: KeyArg,
    /// Application probes: accept a certificate no trust store accepts (a self-signed lab server); the report says so.
    #[arg(long)]
    pub insecure: bool,
    /// Application probes: warn when a certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = crate::probe::app::CERT_WARN_DAYS, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub cert_warn_days: u32,
    /// Application probes: also trust this CA (PEM), e.g. the private CA of an on-prem server.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// HTTP and HTTPS checks go through this HTTP proxy (CONNECT), as agents on proxied
    /// networks do: http://HOST:PORT. On Windows the agent role uses the agent's own proxy
    /// unless this or --no-proxy is given.
    #[arg(long, value_name = "URL", value_parser = parse_proxy, conflicts_with = "no_proxy")]
    pub proxy: Option<Endpoint>,
    /// Connect directly, even where the installed agent has a proxy set.
    #[arg(long)]
    pub no_proxy: bool,
    /// Sign in to the proxy (--proxy, or the agent's) as this user, with Basic
    /// authentication; the password is read from the environment variable
    /// AUTOMATE_PORTS_PROXY_PASSWORD, never from the command line.
    #[arg(long, value_name = "USER", value_parser = parse_proxy_user)]
    pub proxy_user: Option<String>,
    #[command(flatten)]
    pub installer: InstallerArgs,
    /// Repeat the checks until no required one fails or this much time has passed (CI: a lab server still booting).
    #[arg(long, value_name = "DURATION", value_parser = parse_lifetime)]
    pub wait: Option<Duration>,
    /// Fail on warnings too (optional checks and UDP silence).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub lang: LangArg,
}

/// `check --installer`: can this PC download the agent installer?
#[derive(Debug, Args, Clone)]
pub struct InstallerArgs {
    /// Agent role: also download the first bytes of the agent installer from each server, as
    /// an install script does (/LabTech/Deployment.aspx, through the proxy if any): passes on
    /// an MSI, names a web filter's block page, a sign-in page, a 404 or a redirect.
    #[arg(long = "installer")]
    pub wanted: bool,
    /// The installer download asks for this installer token (Deployment.aspx?InstallerToken=...); implies --installer.
    #[arg(long = "installer-token", value_name = "TOKEN", value_parser = parse_installer_token)]
    pub token: Option<String>,
}

/// The language of the report's words (shared by `check` and `demo`).
#[derive(Debug, Args, Clone, Copy)]
pub struct LangArg {
    /// Language of verdicts, reasons and hints [default: from LC_ALL, LC_MESSAGES or LANG; on Windows the display language]. JSON keys and states stay English.
    #[arg(long = "lang", value_enum, value_name = "LANG")]
    pub lang: Option<LangName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LangName {
    /// English.
    En,
    /// Deutsch.
    De,
}

impl LangArg {
    /// The language asked for, else the environment's.
    pub fn resolve(self) -> crate::lang::Lang {
        match self.lang {
            Some(LangName::En) => crate::lang::Lang::En,
            Some(LangName::De) => crate::lang::Lang::De,
            None => crate::lang::Lang::from_env(),
        }
    }
}

/// Probe settings shared by `check` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct ProbeArgs {
    /// The longest a try waits for an answer (e.g. 500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Extra tries, each with the whole timeout, for silence where nothing on the address
    /// answers. Where other ports answer, silent ports are re-probed sooner, up to 6 tries
    /// while the re-probes keep recovering lost ones.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=10))]
    pub retries: u8,
    /// Probes in flight at most [default: as many as the open-file limit allows].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub concurrency: Option<u32>,
    /// New probes per second at most, for polite sweeps across a customer's WAN.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate: Option<u32>,
    /// Probe every port of a range instead of a 32-port sample.
    #[arg(long)]
    pub full_ranges: bool,
    #[command(flatten)]
    pub paths: TraceArgs,
    /// IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// Which paths a check traces: by default the first few results that ended filtered.
#[derive(Debug, Args, Clone, Copy)]
pub struct TraceArgs {
    /// Trace the path of every result, not only of the first few that ended filtered
    /// (at most 16 paths; Linux, no privileges needed).
    #[arg(long, conflicts_with = "no_trace")]
    pub trace: bool,
    /// Trace no path, not even of a filtered result.
    #[arg(long)]
    pub no_trace: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Role whose far side this machine is (the same role `check` runs with).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Use this profile file instead of a built-in role.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArg,
    /// Listen only on this address (repeatable) [default: every address, IPv4 and IPv6].
    #[arg(long, value_name = "ADDR", value_parser = Host::parse)]
    pub bind: Vec<Host>,
    /// Stop by itself after this long.
    #[arg(long = "for", value_name = "DURATION", default_value = "30m", value_parser = parse_lifetime)]
    pub duration: Duration,
    /// Listen on every port of a range instead of the 32-port sample `check` probes.
    #[arg(long)]
    pub full_ranges: bool,
    /// Started as root (Unix): the account to run as once the ports are bound [default: nobody].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Print a new random key (and how to set it on both sides), then exit.
    // Not in conflict with the key: rotating one means AUTOMATE_PORTS_KEY is already set.
    #[arg(long, conflicts_with_all = ["role", "profile", "bind", "full_ranges", "user"])]
    pub new_key: bool,
}

/// The shared key of `check` and `serve`.
#[derive(Debug, Args, Clone)]
pub struct KeyArg {
    /// Shared key with `serve` on the far side (at least 16 characters; `serve --new-key` makes one). Every user of this machine can read it in the process list: prefer --key-file or the AUTOMATE_PORTS_KEY variable.
    // Not read from the environment by clap: `key()` tells a key typed on the command line
    // (which earns a warning) from one in the environment.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Read the shared key from this file (its first line), which only its owner may read
    /// (chmod 600); stays out of process lists.
    #[arg(long, value_name = "PATH", conflicts_with = "key")]
    pub key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    #[command(flatten)]
    pub lang: LangArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A table grouped by target, coloured on a terminal.
    Table,
    /// One JSON object (schema 1) on stdout.
    Json,
    /// JUnit XML: a testsuite per target, a testcase per check and address.
    Junit,
    /// Markdown, for pasting into a ticket.
    Markdown,
    /// One Nagios/Icinga plugin line; exit codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Nagios,
    /// One self-contained HTML page (inline CSS, no scripts), to hand to a customer.
    Html,
}

impl From<FormatArg> for crate::report::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Table => crate::report::Format::Table,
            FormatArg::Json => crate::report::Format::Json,
            FormatArg::Junit => crate::report::Format::Junit,
            FormatArg::Markdown => crate::report::Format::Markdown,
            FormatArg::Nagios => crate::report::Format::Nagios,
            FormatArg::Html => crate::report::Format::Html,
        }
    }
}

/// `--output`: `FORMAT:FILE`, or a file whose extension names the format
/// (.json, .xml for JUnit, .md, .html, .txt for the table).
pub(super) fn parse_output(s: &str) -> Result<(crate::report::Format, PathBuf), String> {
    if let Some((name, path)) = s.split_once(':') {
        if let Ok(format) = FormatArg::from_str(name, true) {
            if path.is_empty() {
                return Err(format!("'{s}' names no file after '{name}:'"));
            }
            return Ok((format.into(), PathBuf::from(path)));
        }
    }
    let path = PathBuf::from(s);
    crate::report::Format::from_extension(&path).map(|f| (f, path)).ok_or_else(|| {
        format!("cannot tell the format of '{s}': use .json, .xml (JUnit), .md, .html or .txt, or write FORMAT:FILE (e.g. junit:report.xml)")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
