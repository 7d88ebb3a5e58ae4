//! `serve`: bind, leave root, then answer probes until the time is up or a signal comes.

use std::net::ToSocketAddrs;
use std::process::ExitCode;

use super::args::ServeArgs;
use super::check::key;
use super::output::{runtime, write_stdout};
use crate::protocol::Key;
use crate::{exit, profiles, serve};

pub(super) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if args.new_key {
        let key = Key::generate();
        return write_stdout(&format!(
            "{key}\n\n# the same key on both sides, in a file only you can read, or in the environment (both stay out of process lists):\n(umask 077; echo '{key}' > automate-ports.key)   # then --key-file automate-ports.key\nexport AUTOMATE_PORTS_KEY='{key}'      # Linux, macOS\n$env:AUTOMATE_PORTS_KEY = '{key}'    # Windows PowerShell\n"
        ));
    }
    let profile = profiles::load(args.role.as_deref(), args.profile.as_deref())?;
    let Some(key) = key(&args.key)? else {
        anyhow::bail!("serve needs the shared key: pass --key-file PATH or set AUTOMATE_PORTS_KEY (the same key as check's)");
    };
    let mut binds = Vec::new();
    for host in &args.bind {
        if let Some(ip) = host.ip() {
            host.scope().map_err(anyhow::Error::msg)?;
            crate::model::push_new(&mut binds, ip);
            continue;
        }
        let name = host.to_string();
        if let Some(why) = crate::resolve::never_resolves(&name) {
            anyhow::bail!("cannot resolve --bind {host}: {why}; give an address of this machine");
        }
        let found = (name.as_str(), 0).to_socket_addrs().map_err(|e| {
            anyhow::anyhow!("cannot resolve --bind {host}: {e}; give an address of this machine")
        })?;
        for addr in found {
            crate::model::push_new(&mut binds, addr.ip());
        }
    }
    let options = serve::ServeConfig {
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
