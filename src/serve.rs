//! `serve`: the far side. Listens on every port a role's checks aim at this host and
//! answers only valid, fresh, keyed probes (PROTOCOL.md), so that `check --key` can tell
//! "open through the firewall" from "blocked" with certainty, UDP included.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::lang::Lang;
use crate::model::{Profile, Protocol};
use crate::plan::ports_to_probe;
use crate::protocol::{decode_probe, encode_reply, Key, Reject, FRESH_WINDOW, PROBE_LEN};
use crate::verdict::compact_ports;

/// How long a TCP client has to send its challenge after connecting.
const CHALLENGE_DEADLINE: Duration = Duration::from_secs(3);
/// Per source address: a burst large enough for a full sweep of every range, then a steady rate.
const RATE_BURST: f64 = 40_000.0;
const RATE_PER_SEC: f64 = 20_000.0;
/// Sources tracked by the rate limiter and nonces kept against replays, at most.
const MAX_SOURCES: usize = 10_000;
const MAX_NONCES: usize = 500_000;
/// Descriptors kept free for the runtime, stdio and at least this many connections at once.
/// Beyond what is left, connections wait in the kernel's accept queue (see `spawn_listener`).
const FD_RESERVE: u64 = 64 + 256;
/// How long an accept loop that ran out of descriptors waits for a connection to close
/// before it tries again anyway.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Options {
    pub key: Key,
    /// Addresses to listen on; empty means every address, IPv4 and IPv6.
    pub binds: Vec<IpAddr>,
    pub duration: Duration,
    pub full_ranges: bool,
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
    }
    for list in [&mut tcp, &mut udp] {
        list.sort_unstable();
        list.dedup();
    }
    (tcp, udp)
}

/// Counters, logged at the end: what was answered and what was ignored, by cause.
#[derive(Debug, Default)]
pub struct Stats {
    pub answered_tcp: AtomicU64,
    pub answered_udp: AtomicU64,
    rejected: [AtomicU64; Reject::ALL.len()],
}

impl Stats {
    fn reject(&self, why: Reject) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected[why as usize].load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        let ignored: Vec<String> = Reject::ALL
            .iter()
            .filter(|r| self.rejected(**r) > 0)
            .map(|r| format!("{} {}", self.rejected(*r), r.as_str()))
            .collect();
        format!(
            "answered {} TCP and {} UDP probes; ignored {}",
            self.answered_tcp.load(Ordering::Relaxed),
            self.answered_udp.load(Ordering::Relaxed),
            if ignored.is_empty() {
                "none".to_string()
            } else {
                ignored.join(", ")
            }
        )
    }
}

/// Shared state of the responder: key, counters, replay cache, rate limiter.
struct Responder {
    key: Key,
    stats: Arc<Stats>,
    nonces: Mutex<HashMap<[u8; 16], u64>>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// Signalled as each connection closes: an accept loop out of descriptors waits on it.
    freed: Notify,
}

impl Responder {
    /// The reply to `bytes` from `source` arriving on `port`, or why there is none.
    fn answer(
        &self,
        bytes: &[u8],
        source: IpAddr,
        port: u16,
    ) -> Result<[u8; crate::protocol::REPLY_LEN], Reject> {
        if !self.allow(source) {
            return Err(Reject::RateLimited);
        }
        let probe = decode_probe(&self.key, bytes, now_ms())?;
        self.fresh_nonce(probe.nonce, probe.timestamp_ms)?;
        Ok(encode_reply(&self.key, &probe.nonce, port))
    }

    fn fresh_nonce(&self, nonce: [u8; 16], timestamp_ms: u64) -> Result<(), Reject> {
        let mut nonces = self.nonces.lock().expect("no panics while held");
        if nonces.len() >= MAX_NONCES {
            // Nonces older than the freshness window can no longer be replayed: forget them.
            let oldest = now_ms().saturating_sub(FRESH_WINDOW.as_millis() as u64);
            nonces.retain(|_, t| *t >= oldest);
            if nonces.len() >= MAX_NONCES {
                return Err(Reject::RateLimited);
            }
        }
        match nonces.insert(nonce, timestamp_ms) {
            None => Ok(()),
            Some(_) => Err(Reject::Replayed),
        }
    }

    /// Token bucket per source address.
    fn allow(&self, source: IpAddr) -> bool {
        let source = canonical(source);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("no panics while held");
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            buckets.retain(|_, (_, seen)| now.duration_since(*seen) < Duration::from_secs(10));
            if buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (tokens, seen) = buckets.entry(source).or_insert((RATE_BURST, now));
        *tokens =
            (*tokens + now.duration_since(*seen).as_secs_f64() * RATE_PER_SEC).min(RATE_BURST);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d; count them as one source.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Binds, serves until `duration` has passed or Ctrl-C/SIGTERM, and returns the counters.
/// `status` receives the human start-up lines (listening, skipped and why, ready).
pub async fn run(
    profile: &Profile,
    options: &Options,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Arc<Stats>> {
    let running = start(profile, options, status)?;
    tokio::select! {
        () = tokio::time::sleep(options.duration) => {}
        () = shutdown_signal() => {}
    }
    Ok(running.stop().await)
}

/// A responder that is listening; [`Running::stop`] closes every socket.
pub struct Running {
    tasks: JoinSet<()>,
    stats: Arc<Stats>,
    /// Every port it listens on.
    pub listening: Vec<(Protocol, u16)>,
}

impl Running {
    pub async fn stop(mut self) -> Arc<Stats> {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.stats
    }
}

/// Binds every port and starts answering; returns once it is ready. Call it inside the
/// runtime: the listeners register with it.
pub fn start(
    profile: &Profile,
    options: &Options,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Running> {
    let (tcp, udp) = ports(profile, options.full_ranges);
    anyhow::ensure!(
        !tcp.is_empty() || !udp.is_empty(),
        "role '{}' aims no checks at a machine that serve could be: nothing to listen on",
        profile.role
    );
    let (addresses, dual) = bind_addresses(&options.binds);
    let needed = (tcp.len() + udp.len()) * addresses.len();
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX);
    anyhow::ensure!(
        needed as u64 + FD_RESERVE <= limit,
        "too few file descriptors: listening needs {needed} sockets plus {FD_RESERVE} in reserve, but the open-file limit is {limit}: raise it (ulimit -n) or drop --full-ranges"
    );

    let responder = Arc::new(Responder {
        key: options.key.clone(),
        stats: Arc::new(Stats::default()),
        nonces: Mutex::new(HashMap::new()),
        buckets: Mutex::new(HashMap::new()),
        freed: Notify::new(),
    });
    let mut tasks = JoinSet::new();
    let mut bound = 0usize;
    let mut all_listening = Vec::new();
    for &ip in &addresses {
        let where_ = match (ip, dual) {
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
                match bind(addr, protocol, dual) {
                    Ok(socket) => {
                        spawn_listener(&mut tasks, socket, port, &responder)?;
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
                    "skipped {}/{protocol} on {where_}: {why}",
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
            status(&format!("listening on {where_}: {}", parts.join("; ")));
        }
    }
    anyhow::ensure!(
        bound > 0,
        "every port was skipped: nothing to serve (see the lines above)"
    );
    status(&format!(
        "ready: {bound} sockets, answering only probes with the key, for {} (Ctrl-C stops)",
        humantime::format_duration(options.duration)
    ));

    Ok(Running {
        tasks,
        stats: Arc::clone(&responder.stats),
        listening: all_listening,
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Every address, on one dual-stack socket per port where the OS allows (half the
/// descriptors of separate IPv4 and IPv6 sockets), else IPv4 alone.
fn bind_addresses(binds: &[IpAddr]) -> (Vec<IpAddr>, bool) {
    if !binds.is_empty() {
        return (binds.to_vec(), false);
    }
    let dual_ok = Socket::new(Domain::IPV6, Type::DGRAM, None)
        .and_then(|s| s.set_only_v6(false))
        .is_ok();
    if dual_ok {
        (vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)], true)
    } else {
        (vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)], false)
    }
}

enum Listener {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

fn bind(addr: SocketAddr, protocol: Protocol, dual: bool) -> io::Result<Listener> {
    let (ty, proto) = match protocol {
        Protocol::Tcp => (Type::STREAM, socket2::Protocol::TCP),
        Protocol::Udp => (Type::DGRAM, socket2::Protocol::UDP),
    };
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // Set on purpose, not left to the OS default: dual-stack only for the wildcard.
        socket.set_only_v6(!dual)?;
    }
    // On Unix this only lets a restarted serve rebind past TIME_WAIT; on Windows it would
    // allow stealing a port in use, so it stays off there.
    #[cfg(unix)]
    if protocol == Protocol::Tcp {
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(match protocol {
        Protocol::Tcp => {
            socket.listen(1024)?;
            Listener::Tcp(socket.into())
        }
        Protocol::Udp => Listener::Udp(socket.into()),
    })
}

fn skip_reason(e: &io::Error, protocol: Protocol) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => match protocol {
            Protocol::Tcp => "in use on this machine, so left to the real service: check --key proves these through the service's own answer where the check has an application probe (TLS, Automate, HTTP, MySQL), and reports the others as 'not automate-ports serve'".to_string(),
            Protocol::Udp => "in use on this machine, so left to the real service: check --key reports these as silent (the real service does not answer the key)".to_string(),
        },
        io::ErrorKind::PermissionDenied => {
            "permission denied: ports below 1024 need root/Administrator (or setcap cap_net_bind_service=+ep on the binary)".to_string()
        }
        _ if e.raw_os_error() == Some(crate::probe::net::EMFILE) => {
            "too few file descriptors: raise the open-file limit (ulimit -n)".to_string()
        }
        _ => e.to_string(),
    }
}

fn spawn_listener(
    tasks: &mut JoinSet<()>,
    socket: Listener,
    port: u16,
    responder: &Arc<Responder>,
) -> io::Result<()> {
    let responder = Arc::clone(responder);
    match socket {
        Listener::Tcp(listener) => {
            let listener = TcpListener::from_std(listener)?;
            tasks.spawn(async move {
                loop {
                    let (stream, peer) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        // Out of descriptors: the connection stays in the kernel's accept
                        // queue (the client waits, it is not refused) until one closes.
                        Err(e) if e.raw_os_error() == Some(crate::probe::net::EMFILE) => {
                            let _ = tokio::time::timeout(ACCEPT_RETRY, responder.freed.notified())
                                .await;
                            continue;
                        }
                        // A transient error: back off instead of spinning.
                        Err(_) => {
                            tokio::time::sleep(ACCEPT_RETRY).await;
                            continue;
                        }
                    };
                    let responder = Arc::clone(&responder);
                    tokio::spawn(async move {
                        handle_tcp(&responder, stream, peer.ip(), port).await;
                        responder.freed.notify_one();
                    });
                }
            });
        }
        Listener::Udp(socket) => {
            let socket = UdpSocket::from_std(socket)?;
            tasks.spawn(async move {
                // One byte more than a probe: anything that fills it is oversized.
                let mut buf = [0u8; PROBE_LEN + 1];
                loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                        // ICMP errors from earlier replies surface here on some systems.
                        continue;
                    };
                    match responder.answer(&buf[..n], from.ip(), port) {
                        Ok(reply) => {
                            if socket.send_to(&reply, from).await.is_ok() {
                                responder.stats.answered_udp.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(why) => {
                            tracing::debug!(%from, port, reason = why.as_str(), "ignored UDP datagram");
                            responder.stats.reject(why);
                        }
                    }
                }
            });
        }
    }
    Ok(())
}

/// Reads one challenge within the deadline; answers it if valid, else closes silently.
async fn handle_tcp(responder: &Responder, mut stream: TcpStream, peer: IpAddr, port: u16) {
    let mut buf = [0u8; PROBE_LEN + 1];
    let mut filled = 0;
    let read = tokio::time::timeout(CHALLENGE_DEADLINE, async {
        while filled < PROBE_LEN {
            match stream.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
    })
    .await;
    let result = if read.is_err() && filled == 0 {
        Err(Reject::Truncated)
    } else {
        responder.answer(&buf[..filled], peer, port)
    };
    match result {
        Ok(reply) => {
            if stream.write_all(&reply).await.is_ok() {
                responder.stats.answered_tcp.fetch_add(1, Ordering::Relaxed);
            }
            // Dropping the stream closes it at once, the reply already on its way: waiting for
            // `check` to close first would save a FIN, but a slow client would then hold
            // serve's descriptors and stall everyone else's accepts.
        }
        Err(why) => {
            tracing::debug!(%peer, port, reason = why.as_str(), "closed TCP connection unanswered");
            responder.stats.reject(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles;

    #[test]
    fn serve_listens_where_check_aims() {
        let (tcp, udp) = ports(&profiles::builtin("server").unwrap(), false);
        for port in [443, 80, 8484, 8002, 70, 3306, 49152, 65535] {
            assert!(tcp.contains(&port), "{port}");
        }
        assert_eq!(tcp.len(), 6 + 32);
        assert_eq!(udp, vec![75]);
        let (tcp, _) = ports(&profiles::builtin("server").unwrap(), true);
        assert_eq!(tcp.len(), 6 + 16384);
        // The tunnel role's far side is the server and the peer, never the public mediator.
        let (tcp, udp) = ports(&profiles::builtin("tunnel").unwrap(), false);
        assert!(tcp.contains(&8002) && udp.len() == 32 && !udp.contains(&8002));
        // The agent's loopback check binds on this machine; serve has no part in it.
        let (_, udp) = ports(&profiles::builtin("agent").unwrap(), false);
        assert_eq!(udp, vec![75, 42000]);
    }

    #[test]
    fn replays_and_floods_are_refused() {
        let key = Key::derive("a shared secret of ours").unwrap();
        let r = Responder {
            key: key.clone(),
            stats: Arc::new(Stats::default()),
            nonces: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        };
        let probe = crate::protocol::Probe::new(443, now_ms()).encode(&key);
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(r.answer(&probe, source, 443).is_ok());
        assert_eq!(r.answer(&probe, source, 443), Err(Reject::Replayed));
        let mut answered = 0;
        for _ in 0..(RATE_BURST as usize + 10) {
            let p = crate::protocol::Probe::new(443, now_ms()).encode(&key);
            if r.answer(&p, source, 443).is_ok() {
                answered += 1;
            }
        }
        assert!(answered <= RATE_BURST as usize + 1000, "{answered}");
        let p = crate::protocol::Probe::new(443, now_ms()).encode(&key);
        assert!(
            r.answer(&p, "192.0.2.8".parse().unwrap(), 443).is_ok(),
            "other sources unaffected"
        );
    }
}
