//! `check`: the profile and the targets from the command line (see [`crate::overrides`]),
//! the probe settings, the run with a progress bar, then the report on stdout and in files.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::args::{CheckArgs, FormatArg, KeyArg, ProbeArgs};
use super::output::{runtime, Delivery, Failed};
use super::watchdog::Watchdog;
use crate::model::Family;
use crate::pipeline::{self, Options};
use crate::probe::app::proxy::{Credentials, Proxy};
use crate::probe::app::AppConfig;
use crate::probe::net::NetProber;
use crate::protocol::Key;
use crate::{overrides, profiles};

/// Runs the check and delivers its report; the error says whether the report reached stdout.
pub(super) fn run(args: &CheckArgs, quiet: bool) -> Result<ExitCode, Failed> {
    let (watchdog, report) = probe(args, quiet).map_err(Failed::BeforeReport)?;
    let Some(delivery) = watchdog.claim() else {
        // The deadline came as the run ended: its thread writes the report and exits.
        loop {
            std::thread::park();
        }
    };
    delivery.deliver(report)
}

/// Everything up to the report: the profile, the targets, the probe settings, and the run
/// under the watchdog that is returned with it (it delivers the report if the run hangs).
fn probe(args: &CheckArgs, quiet: bool) -> anyhow::Result<(Watchdog, crate::report::Report)> {
    // Armed before anything asks the operating system (the agent's settings, a proxy's name).
    let watchdog = Watchdog::start(Duration::ZERO, "reading the command line");
    let credentials = proxy_credentials(args.proxy_user.as_deref())?;
    let quick = !args.tcp.is_empty() || !args.udp.is_empty();
    let base = if quick && args.role.is_none() && args.profile.is_none() {
        None
    } else {
        Some(profiles::load(
            args.role.as_deref(),
            args.profile.as_deref(),
        )?)
    };
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
    let mut profile = crate::quick::add(base, &args.tcp, &args.udp, &mut targets);
    let lang = args.lang.resolve();
    watchdog.stage("reading the installed agent's settings", AGENT_READ_LIMIT);
    let mut unread = false;
    let read = || {
        crate::sys::within(AGENT_READ_LIMIT, crate::agentconfig::read).unwrap_or_else(|| {
            unread = true;
            None
        })
    };
    let mut installed = overrides::from_installed_agent(&mut profile, &mut targets, read, lang)?;
    if unread {
        let limit = lang.duration(AGENT_READ_LIMIT);
        installed.notes.push(crate::tr!(
            lang,
            "the installed agent's settings did not come back from Windows within {limit}: checked without them (name the server with --server)",
            "die Einstellungen des installierten Agenten kamen nicht innerhalb von {limit} von Windows zurück: ohne sie geprüft (den Server mit --server angeben)"
        ));
    }
    installer_target(&args.installer, &profile, &mut targets)?;
    let relay = args.screenconnect_relay.as_ref();
    relay_targets(relay, &profile, &mut targets, &mut installed.notes, lang)?;
    // The interface a zone names is looked up here, once every host is known and before
    // anything is probed: a wrong one is the user's to fix (exit 2), not a path's failure.
    for endpoint in targets.values().flatten() {
        endpoint.host.scope().map_err(anyhow::Error::msg)?;
    }
    let options = pipeline_options(targets, &args.probe, args.strict, lang);
    let mut app = AppConfig::new(args.insecure, args.cert_warn_days, args.ca_file.as_deref())?;
    app.installer_token.clone_from(&args.installer.token);
    if profile.role == "agent" && cfg!(windows) {
        watchdog.stage("reading the agent's TLS settings", AGENT_READ_LIMIT);
        app.agent_offer = agent_offer(&mut installed.notes, lang);
    }
    watchdog.stage("resolving the proxy", RESOLVE_LIMIT);
    let (proxy, proxy_notes) = proxy(args, installed.proxy.as_ref(), credentials, lang)?;
    app.proxy = proxy;
    let prober = NetProber::new(key(&args.key)?, app);
    // Before any probe: a report that cannot be written is known now, not after a sweep.
    let files = crate::outputs::open_all(&args.outputs, args.profile.as_deref())?;
    watchdog.deliver_to(Delivery {
        format: args.format.into(),
        files,
        notes: installed.notes.into_iter().chain(proxy_notes).collect(),
        agent: installed.agent,
    });
    // The bar is for people watching a terminal: never in JSON, when piped, or with -q.
    let bar = Bar::new(!quiet && args.format == FormatArg::Table && io::stderr().is_terminal());
    let report = runtime()?.block_on_shutdown(pipeline::run_waiting(
        &profile,
        &options,
        Arc::new(prober),
        &(bar, &watchdog),
        args.wait,
    ))?;
    Ok((watchdog, report))
}

/// What the agent here offers in TLS (Windows), from its settings read within a limit, and
/// the note that says so.
fn agent_offer(
    notes: &mut Vec<String>,
    lang: crate::lang::Lang,
) -> Option<crate::tlsoffer::AgentOffer> {
    let settings = crate::sys::within(AGENT_READ_LIMIT, crate::agentconfig::read_tls)?;
    let offer = crate::tlsoffer::judge(&settings);
    notes.push(crate::words::tls::agent_offer_note(&settings, &offer, lang));
    Some(offer)
}

/// `--screenconnect-relay HOST[:PORT]` (443 by default, as hosted instances relay), else for
/// `screenconnect-client` the relay of every installed client.
fn relay_targets(
    flag: Option<&crate::endpoint::Endpoint>,
    profile: &crate::model::Profile,
    targets: &mut crate::plan::Targets,
    notes: &mut Vec<String>,
    lang: crate::lang::Lang,
) -> anyhow::Result<()> {
    if let Some(relay) = flag {
        anyhow::ensure!(
            profile.target("relay").is_some(),
            "--screenconnect-relay goes with --role screenconnect or screenconnect-client: add one"
        );
        let relay = if relay.port.is_some() || relay.scheme.is_some() {
            relay.clone()
        } else {
            crate::endpoint::Endpoint {
                port: Some(443),
                ..relay.clone()
            }
        };
        targets.insert("relay".into(), vec![relay]);
        return Ok(());
    }
    if profile.role != "screenconnect-client" || targets.contains_key("relay") {
        return Ok(());
    }
    let found = crate::screenconnect::find();
    anyhow::ensure!(
        !found.is_empty(),
        "no ScreenConnect client is installed here (no 'ScreenConnect Client (...)' service, no /opt/screenconnect-*/ClientLaunchParameters.txt): name the relay with --screenconnect-relay HOST[:PORT]"
    );
    let mut relays = Vec::new();
    for instance in found {
        let host = crate::endpoint::Host::parse(&instance.host).map_err(|e| {
            anyhow::anyhow!(
                "the ScreenConnect client {} names its relay '{}' in {}: {e}; name the relay with --screenconnect-relay HOST[:PORT]",
                instance.thumbprint,
                instance.host,
                instance.source
            )
        })?;
        let relay = crate::endpoint::Endpoint {
            host,
            scheme: None,
            port: Some(instance.port),
        };
        let (thumb, source) = (&instance.thumbprint, &instance.source);
        notes.push(crate::tr!(
            lang,
            "ScreenConnect client {thumb}: relay {relay} (from {source})",
            "ScreenConnect-Client {thumb}: Relay {relay} (aus {source})"
        ));
        relays.push(relay);
    }
    targets.insert("relay".into(), relays);
    Ok(())
}

/// `--installer`: the download goes to every server the agent check goes to.
fn installer_target(
    args: &super::args::InstallerArgs,
    profile: &crate::model::Profile,
    targets: &mut crate::plan::Targets,
) -> anyhow::Result<()> {
    if !args.wanted && args.token.is_none() {
        return Ok(());
    }
    anyhow::ensure!(
        profile.target("installer").is_some(),
        "--installer goes with --role agent (its installer download check): add --role agent"
    );
    if let Some(servers) = targets.get("server").cloned() {
        targets.insert("installer".into(), servers);
    }
    Ok(())
}

/// The longest the installed agent's settings (registry, Service Control Manager) may take.
const AGENT_READ_LIMIT: Duration = Duration::from_secs(10);

/// The longest the OS resolver may take for the proxy's name.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// Where `--proxy-user` finds its password. An environment variable, because a command
/// line is visible to every user of the machine (the process list) and stays in shell
/// history.
const PROXY_PASSWORD_VAR: &str = "AUTOMATE_PORTS_PROXY_PASSWORD";

/// `--proxy-user` with the password from [`PROXY_PASSWORD_VAR`]; read before anything else
/// so that a missing password stops the run at once.
fn proxy_credentials(user: Option<&str>) -> anyhow::Result<Option<Credentials>> {
    let Some(user) = user else {
        return Ok(None);
    };
    match std::env::var(PROXY_PASSWORD_VAR) {
        Ok(password) if !password.is_empty() => Ok(Some(Credentials::basic(user, &password))),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!(
            "{PROXY_PASSWORD_VAR} is not valid Unicode: set it to the proxy password for --proxy-user {user}"
        ),
        _ => anyhow::bail!(
            "--proxy-user {user} needs the proxy password in the environment variable {PROXY_PASSWORD_VAR} (never on the command line): set it, or drop --proxy-user"
        ),
    }
}

/// The proxy for HTTP and HTTPS checks: `--proxy`, else (agent role, Windows) the agent's
/// own unless `--no-proxy`; resolved once, here, so a wrong name is a clear error up front.
fn proxy(
    args: &CheckArgs,
    agent: Option<&crate::agentconfig::AgentProxy>,
    credentials: Option<Credentials>,
    lang: crate::lang::Lang,
) -> anyhow::Result<(Option<Proxy>, Vec<String>)> {
    let (url, from_agent) = match (&args.proxy, agent) {
        (Some(url), _) => (url.clone(), false),
        (None, Some(agent)) if !args.no_proxy => {
            let url = super::parsers::parse_proxy(&agent.url).map_err(|e| {
                anyhow::anyhow!("the installed agent's proxy setting (ProxyServerURL) is unusable: {e}; pass --proxy URL or --no-proxy")
            })?;
            (url, true)
        }
        _ if credentials.is_some() => {
            let why = if args.no_proxy {
                "--no-proxy connects directly"
            } else {
                "no proxy is in use (no --proxy, and no agent's proxy here)"
            };
            anyhow::bail!(
                "--proxy-user signs in to a proxy, but {why}: give --proxy http://HOST:PORT, or drop --proxy-user"
            );
        }
        _ => return Ok((None, Vec::new())),
    };
    let port = url.web_port().unwrap_or(80);
    let addr = resolve_once(&url.host, port).map_err(|e| {
        let origin = if from_agent {
            "the agent's proxy"
        } else {
            "--proxy"
        };
        anyhow::anyhow!(
            "cannot resolve the proxy {} ({origin}): {e}: check the name",
            url.host
        )
    })?;
    let agent_signs_in = from_agent && agent.is_some_and(|a| a.credentials);
    let url = url.to_string();
    let notes = proxy_notes(
        &url,
        from_agent,
        agent_signs_in,
        args.proxy_user.as_deref(),
        lang,
    );
    Ok((
        Some(Proxy {
            url,
            addr,
            credentials,
        }),
        notes,
    ))
}

/// The report's note on the proxy: which one, whose, and how this run signs in to it.
fn proxy_notes(
    url: &str,
    from_agent: bool,
    agent_signs_in: bool,
    user: Option<&str>,
    lang: crate::lang::Lang,
) -> Vec<String> {
    use crate::tr;
    let mut note = match (from_agent, agent_signs_in) {
        (true, true) => tr!(
            lang,
            "HTTP and HTTPS checks go through the agent's proxy {url} (from its settings, with credentials configured for the agent; --no-proxy connects directly)",
            "HTTP- und HTTPS-Prüfungen laufen über den Proxy des Agenten {url} (aus seinen Einstellungen, mit Anmeldedaten für den Agenten; --no-proxy verbindet direkt)"
        ),
        (true, false) => tr!(
            lang,
            "HTTP and HTTPS checks go through the agent's proxy {url} (from its settings; --no-proxy connects directly)",
            "HTTP- und HTTPS-Prüfungen laufen über den Proxy des Agenten {url} (aus seinen Einstellungen; --no-proxy verbindet direkt)"
        ),
        (false, _) => tr!(
            lang,
            "HTTP and HTTPS checks go through the proxy {url}",
            "HTTP- und HTTPS-Prüfungen laufen über den Proxy {url}"
        ),
    };
    if let Some(user) = user {
        note += &tr!(lang, ", signing in as {user}", ", angemeldet als {user}");
    }
    let mut notes = vec![note];
    if agent_signs_in && user.is_none() {
        notes.push(tr!(
            lang,
            "the agent keeps its proxy password encrypted, so this tool cannot use it: give --proxy-user USER with the password in AUTOMATE_PORTS_PROXY_PASSWORD to sign in as the agent does; without them a 407 from the proxy is expected",
            "der Agent speichert sein Proxy-Passwort verschlüsselt, daher kann dieses Werkzeug es nicht nutzen: --proxy-user BENUTZER mit dem Passwort in AUTOMATE_PORTS_PROXY_PASSWORD angeben, um sich wie der Agent anzumelden; ohne sie ist ein 407 des Proxys zu erwarten"
        ));
    }
    notes
}

/// The proxy's address: the OS resolver, once, within [`RESOLVE_LIMIT`] (a hung resolver
/// must not hang the run), through the same stage as every other name.
fn resolve_once(host: &crate::endpoint::Host, port: u16) -> Result<std::net::SocketAddr, String> {
    crate::resolve::resolve_blocking(host, Family::Any, RESOLVE_LIMIT)
        .map(|ips| std::net::SocketAddr::new(ips[0], port))
        .map_err(|e| e.text(crate::lang::Lang::En))
}

/// The shared key: `--key-file`, else `--key` (with a warning: process lists show it), else
/// AUTOMATE_PORTS_KEY; `None` without any.
pub(super) fn key(arg: &KeyArg) -> anyhow::Result<Option<Key>> {
    let (text, from) = match (&arg.key_file, &arg.key) {
        (Some(path), _) => (read_key_file(path)?, "--key-file"),
        (None, Some(key)) => {
            eprintln!("automate-ports: warning: --key is visible to every user of this machine in the process list; use --key-file PATH or the AUTOMATE_PORTS_KEY variable instead");
            (key.clone(), "--key")
        }
        (None, None) => match std::env::var("AUTOMATE_PORTS_KEY") {
            Ok(key) => (key, "AUTOMATE_PORTS_KEY"),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!(
                "AUTOMATE_PORTS_KEY is not valid text: set it to the key serve --new-key printed"
            ),
        },
    };
    Key::derive(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e} ({from})"))
}

/// The longest key file read: a key is a line of text, and a path that leads to something
/// endless (a device, a huge file) must not be read whole.
const KEY_FILE_MAX: u64 = 4096;

/// The first line of a key file that is a regular file only its owner can read.
fn read_key_file(path: &std::path::Path) -> anyhow::Result<String> {
    let shown = path.display();
    let (bytes, meta) =
        crate::sys::read_regular(path, KEY_FILE_MAX).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => anyhow::anyhow!(
                "--key-file {shown} is not a regular file: give the file that holds the key"
            ),
            _ => anyhow::anyhow!("cannot read --key-file {shown}: {e}"),
        })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        let group_and_others = mode & 0o077;
        anyhow::ensure!(
            group_and_others == 0,
            "--key-file {shown} can be read by other users (mode {mode:04o}): run chmod 600 {shown}"
        );
    }
    // Windows: the file's ACL is not judged here (README).
    #[cfg(not(unix))]
    let _ = meta;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!("--key-file {shown} does not hold text: put the key serve --new-key printed on its first line")
    })?;
    let key = text.lines().next().unwrap_or_default().trim();
    anyhow::ensure!(
        !key.is_empty(),
        "--key-file {shown} is empty: put the key serve --new-key printed on its first line"
    );
    Ok(key.to_string())
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
        trace: match (probe.paths.trace, probe.paths.no_trace) {
            (true, _) => crate::pipeline::TraceMode::All,
            (_, true) => crate::pipeline::TraceMode::Off,
            _ => crate::pipeline::TraceMode::Filtered,
        },
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
    fn start(&self, started: &pipeline::Started<'_>) {
        let Some(bar) = &self.bar else { return };
        bar.set_length(started.jobs.len() as u64);
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

    fn done(&self, _: usize, _: &crate::probe::Outcome) {
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
