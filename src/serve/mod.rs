//! `serve`: the far side. Listens on every port a role's checks aim at this host and
//! answers only valid, fresh, keyed probes (PROTOCOL.md), so that `check --key` can tell
//! "open through the firewall" from "blocked" with certainty, UDP included.

#[cfg(target_os = "linux")]
mod acceptor;
#[cfg(any(windows, test))]
mod firewall;
mod privileges;
mod responder;
mod sockets;
mod stats;
mod tcp;
mod waiting;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::lang::{compact_ports, Lang};
use crate::model::{ProbeKind, Profile, Protocol};
use crate::plan::ports_to_probe;
use crate::protocol::Key;
use crate::sys::now_ms;
use responder::Responder;
use sockets::{bind_addresses, bind_one, skip_reason, spawn_listener, Listener};
pub use stats::Stats;
pub use waiting::PER_SOURCE_WAITING;

/// Descriptors kept free for the runtime, stdio and at least this many connections at once.
/// Beyond what is left, connections wait in the kernel's accept queue (see `spawn_listener`).
const FD_RESERVE: u64 = 64 + 256;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub key: Key,
    /// Addresses to listen on; empty means every address, IPv4 and IPv6.
    pub binds: Vec<IpAddr>,
    pub duration: Duration,
    pub full_ranges: bool,
    /// Leave root (or file capabilities) once bound; off only where serve shares its
    /// process with `check` (the demo).
    pub drop_privileges: bool,
    /// Unix: the account to switch to after binding when started as root [default: nobody].
    pub user: Option<String>,
}

/// The ports a role's checks aim at the far side: every connect check, except those on
/// targets with a fixed default host (the public mediator, loopback) that `serve` cannot be.
pub fn ports(profile: &Profile, full_ranges: bool) -> (Vec<u16>, Vec<u16>) {
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for check in &profile.checks {
        if !profile.serve_stands_in(check) {
            continue;
        }
        let list = match check.protocol {
            Protocol::Tcp => &mut tcp,
            Protocol::Udp => &mut udp,
        };
        list.extend(ports_to_probe(check.ports, full_ranges));
        if let ProbeKind::Nat { second } = check.probe {
            list.push(second);
        }
    }
    for list in [&mut tcp, &mut udp] {
        list.sort_unstable();
        list.dedup();
    }
    (tcp, udp)
}

/// Serves what [`bind`] bound until `duration` has passed or Ctrl-C/SIGTERM, and returns
/// the counters. `status` receives the ready line.
pub async fn run(
    bound: Bound,
    config: &ServeConfig,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Arc<Stats>> {
    let stop = shutdown_signal();
    let running = start(bound, config, status)?;
    tokio::select! {
        () = tokio::time::sleep(config.duration) => {}
        () = stop => {}
    }
    Ok(running.stop().await)
}

/// Every socket serve listens on, bound but not yet answering: privileges can be dropped
/// between [`bind`] and [`start`], before the runtime starts threads that would keep them.
pub struct Bound {
    sockets: Vec<(Listener, u16)>,
    /// Every port it listens on.
    pub listening: Vec<(Protocol, u16)>,
}

/// A responder that is listening; [`Running::stop`] closes every socket.
pub struct Running {
    tasks: JoinSet<()>,
    /// The TCP listeners, on a thread of their own.
    #[cfg(target_os = "linux")]
    acceptor: Option<acceptor::Acceptor>,
    stats: Arc<Stats>,
    /// Every port it listens on.
    pub listening: Vec<(Protocol, u16)>,
}

impl Running {
    pub async fn stop(mut self) -> Arc<Stats> {
        #[cfg(target_os = "linux")]
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.stop().await;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.stats
    }
}

/// Binds every port the profile's far side needs (no runtime needed). `status` receives the
/// human start-up lines (listening, skipped and why, privileges).
pub fn bind(
    profile: &Profile,
    config: &ServeConfig,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Bound> {
    let (tcp, udp) = ports(profile, config.full_ranges);
    anyhow::ensure!(
        !tcp.is_empty() || !udp.is_empty(),
        "role '{}' aims no checks at a machine that serve could be: nothing to listen on",
        profile.role
    );
    let (addresses, dual) = bind_addresses(&config.binds);
    let needed = (tcp.len() + udp.len()) * addresses.len();
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX);
    anyhow::ensure!(
        needed as u64 + FD_RESERVE <= limit,
        "too few file descriptors: listening needs {needed} sockets plus {FD_RESERVE} in reserve, but the open-file limit is {limit}: raise it (ulimit -n) or drop --full-ranges"
    );

    let mut sockets = Vec::new();
    let mut bound = 0usize;
    let mut all_listening = Vec::new();
    for &ip in &addresses {
        let listen_on = match (ip, dual) {
            (IpAddr::V6(v6), true) if v6.is_unspecified() => "[::] (IPv4 and IPv6)".to_string(),
            (IpAddr::V6(_), _) => format!("[{ip}]"),
            (IpAddr::V4(_), _) => ip.to_string(),
        };
        let mut listening: Vec<(Protocol, Vec<u16>)> = Vec::new();
        for (protocol, list) in [(Protocol::Tcp, &tcp), (Protocol::Udp, &udp)] {
            let mut ok = Vec::new();
            let mut skipped: Vec<(String, Vec<u16>)> = Vec::new();
            for &port in list {
                let addr = SocketAddr::new(ip, port);
                match bind_one(addr, protocol, dual) {
                    Ok(socket) => {
                        sockets.push((socket, port));
                        ok.push(port);
                        all_listening.push((protocol, port));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => anyhow::bail!(
                        "cannot listen on {ip}: it is not an address of this machine (check --bind)"
                    ),
                    Err(e) => {
                        let why = skip_reason(&e, protocol);
                        match skipped.iter_mut().find(|(w, _)| *w == why) {
                            Some((_, ports)) => ports.push(port),
                            None => skipped.push((why, vec![port])),
                        }
                    }
                }
            }
            bound += ok.len();
            for (why, ports) in skipped {
                status(&format!(
                    "skipped {}/{protocol} on {listen_on}: {why}",
                    compact_ports(&ports, 12, Lang::En)
                ));
            }
            listening.push((protocol, ok));
        }
        let parts: Vec<String> = listening
            .iter()
            .filter(|(_, ports)| !ports.is_empty())
            .map(|(protocol, ports)| format!("{protocol} {}", compact_ports(ports, 12, Lang::En)))
            .collect();
        if !parts.is_empty() {
            status(&format!("listening on {listen_on}: {}", parts.join("; ")));
        }
    }
    anyhow::ensure!(
        bound > 0,
        "every port was skipped: nothing to serve (see the lines above)"
    );
    if config.drop_privileges {
        settle(config, status)?;
    }
    Ok(Bound {
        sockets,
        listening: all_listening,
    })
}

/// Once bound, as a standalone responder (not in the demo): leave root, and on Windows say
/// what its firewall does with inbound traffic to serve.
fn settle(config: &ServeConfig, status: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    if let Some(line) = privileges::drop(config.user.as_deref())? {
        status(&line);
    }
    #[cfg(windows)]
    if let Ok(exe) = std::env::current_exe() {
        let shell = crate::sys::FirewallShell::here();
        for line in firewall::lines(&exe, firewall::ask(&exe, shell), shell) {
            status(&line);
        }
    }
    Ok(())
}

/// Starts answering on what [`bind`] bound; returns once it is ready. Call it inside the
/// runtime: the listeners register with it.
pub fn start(
    bound: Bound,
    config: &ServeConfig,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Running> {
    let responder = Arc::new(Responder::new(config.key.clone(), now_ms()));
    let mut tasks = JoinSet::new();
    let mut tcp = Vec::new();
    let count = bound.sockets.len();
    for (socket, port) in bound.sockets {
        tcp.extend(spawn_listener(&mut tasks, socket, port, &responder)?);
    }
    #[cfg(target_os = "linux")]
    let acceptor = if tcp.is_empty() {
        None
    } else {
        Some(acceptor::Acceptor::start(tcp, Arc::clone(&responder))?)
    };
    status(&format!(
        "ready: {count} sockets, answering only probes with the key, for {} (Ctrl-C stops)",
        humantime::format_duration(config.duration)
    ));
    Ok(Running {
        tasks,
        #[cfg(target_os = "linux")]
        acceptor,
        stats: Arc::clone(&responder.stats),
        listening: bound.listening,
    })
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// it is first polled: a SIGTERM right after the ready line must stop serve cleanly, not
/// kill it with the default action.
// Elsewhere there is nothing to install first, and the body is a bare async block.
#[cfg_attr(not(unix), allow(clippy::manual_async_fn))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles;

    #[test]
    fn serve_listens_where_check_aims() {
        let (tcp, udp) = ports(&profiles::builtin("server").unwrap(), false);
        for port in [443, 80, 8484, 8002, 3306, 49152, 65535] {
            assert!(tcp.contains(&port), "{port}");
        }
        assert_eq!(tcp.len(), 5 + 32);
        assert_eq!(udp, vec![75]);
        let (tcp, _) = ports(&profiles::builtin("server").unwrap(), true);
        assert_eq!(tcp.len(), 5 + 16384);
        // The tunnel role's far side is the server, never the public mediator: the P2P
        // sample and both ports of the mapping check.
        let (tcp, udp) = ports(&profiles::builtin("tunnel").unwrap(), false);
        assert!(tcp.contains(&8002) && udp.len() == 33, "{udp:?}");
        assert!(udp.contains(&8002) && udp.contains(&40000));
        // The agent's loopback check binds on this machine; serve has no part in it.
        let (_, udp) = ports(&profiles::builtin("agent").unwrap(), false);
        assert_eq!(udp, vec![75, 42000]);
    }
}
