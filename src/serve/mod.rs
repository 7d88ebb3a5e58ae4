//! `serve`: the far side. Listens on every port a role's checks aim at this host and
//! answers only valid, fresh, keyed probes (PROTOCOL.md), so that `check --key` can tell
//! "open through the firewall" from "blocked" with certainty, UDP included.

mod privileges;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lru::LruCache;
use socket2::{Domain, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;

use crate::lang::Lang;
use crate::model::{Profile, Protocol};
use crate::plan::ports_to_probe;
use crate::protocol::{
    authenticate, encode_reply, encode_stale, is_fresh, Key, Reject, FRESH_WINDOW, PROBE_LEN,
    REPLY_LEN, STALE_LEN,
};
use crate::verdict::compact_ports;

/// How long a TCP client has to send its whole challenge after connecting.
const CHALLENGE_DEADLINE: Duration = Duration::from_secs(3);
/// How long a TCP client has to send its first bytes: a client with the key sends its probe
/// with the handshake's last packet, so this leaves room for two retransmissions.
const FIRST_BYTES_DEADLINE: Duration = Duration::from_secs(1);
/// How long a new TCP connection may take to send its probe before it counts as waiting: a
/// client with the key sends it right behind the handshake, so only a lost segment (or a
/// slowloris) takes longer.
const WAITING_GRACE: Duration = Duration::from_millis(100);
/// Connections from one source (IPv4 address or IPv6 /64) still waiting for their first
/// probe, at most; a newer one closes the oldest. A keyed sweep's probes arrive with the
/// connection, so only slow or lossy ones ever wait.
pub const PER_SOURCE_WAITING: usize = 32;
/// Per keyed source: a burst large enough for a full sweep of every range, then a steady rate.
const RATE_BURST: f64 = 40_000.0;
const RATE_PER_SEC: f64 = 20_000.0;
/// Keyed sources whose rate is tracked (least recently used forgotten first; a forgotten
/// source starts again with a full burst), and nonces kept against replays, at most.
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
    /// Of those answered, refused as stale (MAC'd, with serve's clock).
    pub answered_stale: AtomicU64,
    rejected: [AtomicU64; Reject::ALL.len()],
    /// TCP connections closed without bytes within [`FIRST_BYTES_DEADLINE`].
    pub idle: AtomicU64,
    /// Closed while waiting: over the per-source cap, or to free a descriptor.
    pub evicted_per_source: AtomicU64,
    pub evicted_for_descriptors: AtomicU64,
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
        let stale = match self.answered_stale.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!(" ({n} refused as stale: the prober's clock differs)"),
        };
        let closed: Vec<String> = [
            (&self.idle, "sent nothing within 1 s"),
            (
                &self.evicted_per_source,
                "over the cap of 32 waiting connections per source",
            ),
            (&self.evicted_for_descriptors, "to free a descriptor"),
        ]
        .iter()
        .filter_map(|(n, why)| match n.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("{n} {why}")),
        })
        .collect();
        let closed = if closed.is_empty() {
            String::new()
        } else {
            format!("; closed unanswered: {}", closed.join(", "))
        };
        format!(
            "answered {} TCP and {} UDP probes{stale}; ignored {}{closed}",
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

/// Who a source is, for rate limits and connection caps: an IPv4 address, or an IPv6 /64
/// (one line is handed a whole /64, so its single addresses would be unlimited sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4),
            // IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(Source::V6Net((u128::from(v6) >> 64) as u64), Source::V4),
        }
    }
}

/// What `serve` sends back to a probe with a valid MAC.
enum Answer {
    Fresh([u8; REPLY_LEN]),
    Stale([u8; STALE_LEN]),
}

impl Answer {
    fn bytes(&self) -> &[u8] {
        match self {
            Answer::Fresh(b) => b,
            Answer::Stale(b) => b,
        }
    }
}

/// Why a waiting connection was closed by another.
#[derive(Debug, Clone, Copy)]
enum Evicted {
    PerSource,
    ForDescriptor,
}

/// TCP connections that have not sent their probe yet, oldest first (ids only grow): per
/// source at most [`PER_SOURCE_WAITING`], and the oldest of all closes when descriptors run
/// out. Every operation is O(log n) or O(cap), whatever the number of sources.
#[derive(Default)]
struct Waiting {
    next: u64,
    all: BTreeMap<u64, (Source, oneshot::Sender<Evicted>)>,
    by_source: HashMap<Source, VecDeque<u64>>,
}

impl Waiting {
    /// Registers a waiting connection; closes its source's oldest if that is over the cap.
    fn add(&mut self, source: Source) -> (u64, oneshot::Receiver<Evicted>) {
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        let queue = self.by_source.entry(source).or_default();
        if queue.len() >= PER_SOURCE_WAITING {
            if let Some(oldest) = queue.pop_front() {
                if let Some((_, tx)) = self.all.remove(&oldest) {
                    let _ = tx.send(Evicted::PerSource);
                }
            }
        }
        queue.push_back(id);
        self.all.insert(id, (source, tx));
        (id, rx)
    }

    fn remove(&mut self, id: u64, source: Source) {
        if self.all.remove(&id).is_none() {
            return;
        }
        if let Some(queue) = self.by_source.get_mut(&source) {
            queue.retain(|&other| other != id);
            if queue.is_empty() {
                self.by_source.remove(&source);
            }
        }
    }

    /// Closes the connection that has waited longest; false if none waits.
    fn evict_oldest(&mut self) -> bool {
        let Some((id, (source, tx))) = self.all.pop_first() else {
            return false;
        };
        if let Some(queue) = self.by_source.get_mut(&source) {
            queue.retain(|&other| other != id);
            if queue.is_empty() {
                self.by_source.remove(&source);
            }
        }
        let _ = tx.send(Evicted::ForDescriptor);
        true
    }
}

/// Shared state of the responder: key, counters, replay cache, rate limiter.
struct Responder {
    key: Key,
    /// Probes made before this (serve's start) are not answered: the nonces of an earlier
    /// run are forgotten, so its recorded probes could otherwise be replayed.
    started_ms: u64,
    stats: Arc<Stats>,
    nonces: Mutex<HashMap<[u8; 16], u64>>,
    buckets: Mutex<LruCache<Source, (f64, Instant)>>,
    waiting: Mutex<Waiting>,
    /// Signalled as each connection closes: an accept loop out of descriptors waits on it.
    freed: Notify,
}

impl Responder {
    fn new(key: Key, started_ms: u64) -> Responder {
        Responder {
            key,
            started_ms,
            stats: Arc::new(Stats::default()),
            nonces: Mutex::new(HashMap::new()),
            buckets: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_SOURCES).expect("not zero"),
            )),
            waiting: Mutex::new(Waiting::default()),
            freed: Notify::new(),
        }
    }

    /// The reply to `bytes` from `source` arriving on `port`, or why there is none.
    /// The MAC comes first: a stranger costs one HMAC and leaves no state behind, so no
    /// number of spoofed sources can crowd out the ones with the key.
    fn answer(&self, bytes: &[u8], source: IpAddr, port: u16) -> Result<Answer, Reject> {
        let probe = authenticate(&self.key, bytes)?;
        let now = now_ms();
        let in_window = is_fresh(probe.timestamp_ms, now, 0);
        if in_window && probe.timestamp_ms < self.started_ms {
            // Within the window, yet made before serve started: a recording replayed after
            // a restart (a prober's clock can hardly lag by more than serve's uptime). No
            // answer: it would tell the replayer that serve runs again.
            return Err(Reject::BeforeStart);
        }
        self.first_sight(probe.nonce, now)?;
        if !self.allow(Source::of(source)) {
            return Err(Reject::RateLimited);
        }
        if in_window {
            Ok(Answer::Fresh(encode_reply(&self.key, &probe.nonce, port)))
        } else {
            // Proven with the key but outside the window: the clocks differ. Say so, once
            // per nonce, instead of a silence the prober would blame on a firewall.
            self.stats.answered_stale.fetch_add(1, Ordering::Relaxed);
            Ok(Answer::Stale(encode_stale(
                &self.key,
                &probe.nonce,
                port,
                now,
            )))
        }
    }

    /// Remembers a nonce for the freshness window after it was first seen.
    fn first_sight(&self, nonce: [u8; 16], now: u64) -> Result<(), Reject> {
        let mut nonces = self.nonces.lock().expect("no panics while held");
        if nonces.len() >= MAX_NONCES {
            // A nonce first seen longer ago than the window only returns in probes that are
            // stale anyway (or older than serve's start): forget it.
            let oldest = now.saturating_sub(FRESH_WINDOW.as_millis() as u64);
            nonces.retain(|_, seen| *seen >= oldest);
            if nonces.len() >= MAX_NONCES {
                return Err(Reject::RateLimited);
            }
        }
        match nonces.insert(nonce, now) {
            None => Ok(()),
            Some(_) => Err(Reject::Replayed),
        }
    }

    /// Token bucket per keyed source.
    fn allow(&self, source: Source) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("no panics while held");
        let (tokens, seen) = buckets.get_or_insert_mut(source, || (RATE_BURST, now));
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serves what [`bind`] bound until `duration` has passed or Ctrl-C/SIGTERM, and returns
/// the counters. `status` receives the ready line.
pub async fn run(
    bound: Bound,
    options: &Options,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Arc<Stats>> {
    let stop = shutdown_signal();
    let running = start(bound, options, status)?;
    tokio::select! {
        () = tokio::time::sleep(options.duration) => {}
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

/// Binds every port the profile's far side needs (no runtime needed). `status` receives the
/// human start-up lines (listening, skipped and why, privileges).
pub fn bind(
    profile: &Profile,
    options: &Options,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Bound> {
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

    let mut sockets = Vec::new();
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
    if options.drop_privileges {
        if let Some(line) = privileges::drop(options.user.as_deref())? {
            status(&line);
        }
    }
    Ok(Bound {
        sockets,
        listening: all_listening,
    })
}

/// Starts answering on what [`bind`] bound; returns once it is ready. Call it inside the
/// runtime: the listeners register with it.
pub fn start(
    bound: Bound,
    options: &Options,
    status: &mut dyn FnMut(&str),
) -> anyhow::Result<Running> {
    let responder = Arc::new(Responder::new(options.key.clone(), now_ms()));
    let mut tasks = JoinSet::new();
    let count = bound.sockets.len();
    for (socket, port) in bound.sockets {
        spawn_listener(&mut tasks, socket, port, &responder)?;
    }
    status(&format!(
        "ready: {count} sockets, answering only probes with the key, for {} (Ctrl-C stops)",
        humantime::format_duration(options.duration)
    ));
    Ok(Running {
        tasks,
        stats: Arc::clone(&responder.stats),
        listening: bound.listening,
    })
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// it is first polled: a SIGTERM right after the ready line must stop serve cleanly, not
/// kill it with the default action.
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

fn bind_one(addr: SocketAddr, protocol: Protocol, dual: bool) -> io::Result<Listener> {
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
                        // queue (the client waits, it is not refused). The connection that
                        // has waited longest for its probe is closed to make room, else one
                        // that is being answered will close soon.
                        Err(e) if e.raw_os_error() == Some(crate::probe::net::EMFILE) => {
                            let evicted = responder
                                .waiting
                                .lock()
                                .expect("no panics while held")
                                .evict_oldest();
                            if evicted {
                                responder
                                    .stats
                                    .evicted_for_descriptors
                                    .fetch_add(1, Ordering::Relaxed);
                            }
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
                            if socket.send_to(reply.bytes(), from).await.is_ok() {
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

/// Reads one challenge within the deadlines; answers it if valid, else closes silently.
async fn handle_tcp(responder: &Responder, stream: TcpStream, peer: IpAddr, port: u16) {
    let mut buf = [0u8; PROBE_LEN + 1];
    let Some(filled) = read_challenge(responder, &stream, peer, &mut buf).await else {
        return;
    };
    let result = if filled == 0 {
        Err(Reject::Truncated)
    } else {
        responder.answer(&buf[..filled], peer, port)
    };
    match result {
        Ok(reply) => {
            let mut stream = stream;
            if stream.write_all(reply.bytes()).await.is_ok() {
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

/// Fills `buf` with the client's first bytes (a probe, or one byte more if it sends more).
/// A client gets [`WAITING_GRACE`] to send them; one that makes serve wait longer is
/// registered as waiting, under the per-source cap, until its bytes arrive or a deadline
/// passes. `None`: closed without an answer, already counted.
async fn read_challenge(
    responder: &Responder,
    stream: &TcpStream,
    peer: IpAddr,
    buf: &mut [u8; PROBE_LEN + 1],
) -> Option<usize> {
    let started = tokio::time::Instant::now();
    let mut filled = 0;
    let deadline = |filled: usize| {
        started
            + if filled == 0 {
                FIRST_BYTES_DEADLINE
            } else {
                CHALLENGE_DEADLINE
            }
    };
    // A client with the key sends its probe right behind the handshake: most are read here,
    // without touching shared state.
    let quick = read_until(stream, buf, &mut filled, |_| started + WAITING_GRACE).await;
    if quick.is_ok() {
        return Some(filled);
    }
    let source = Source::of(peer);
    let (id, evicted) = responder
        .waiting
        .lock()
        .expect("no panics while held")
        .add(source);
    let outcome = tokio::select! {
        read = read_until(stream, buf, &mut filled, deadline) => Some(read),
        why = evicted => {
            match why {
                Ok(Evicted::PerSource) => &responder.stats.evicted_per_source,
                // The sender gone without a word cannot happen while we are registered.
                Ok(Evicted::ForDescriptor) | Err(_) => &responder.stats.evicted_for_descriptors,
            }
            .fetch_add(1, Ordering::Relaxed);
            None
        }
    };
    responder
        .waiting
        .lock()
        .expect("no panics while held")
        .remove(id, source);
    if outcome?.is_err() && filled == 0 {
        responder.stats.idle.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    // A whole probe, or part of one and then nothing: judged on what came (truncated).
    Some(filled)
}

/// Reads until [`Progress::Done`], or `Err` once `deadline(filled)` has passed.
async fn read_until(
    stream: &TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    deadline: impl Fn(usize) -> tokio::time::Instant,
) -> Result<(), ()> {
    loop {
        if let Progress::Done = read_ready(stream, buf, filled) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline(*filled), stream.readable())
            .await
            .is_err()
        {
            return Err(());
        }
    }
}

enum Progress {
    /// A whole probe (or more), the end of the stream, or an error: judge what is there.
    Done,
    /// Nothing more for now.
    More,
}

/// Takes what the socket holds without waiting.
fn read_ready(stream: &TcpStream, buf: &mut [u8], filled: &mut usize) -> Progress {
    while *filled < PROBE_LEN {
        match stream.try_read(&mut buf[*filled..]) {
            Ok(0) => return Progress::Done,
            Ok(n) => *filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::More,
            Err(_) => return Progress::Done,
        }
    }
    Progress::Done
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

    fn key() -> Key {
        static KEY: std::sync::OnceLock<Key> = std::sync::OnceLock::new();
        KEY.get_or_init(|| Key::derive("a shared secret of ours").unwrap())
            .clone()
    }

    fn probe(at: u64) -> [u8; PROBE_LEN] {
        crate::protocol::Probe::new(443, at).encode(&key())
    }

    #[test]
    fn replays_and_floods_are_refused() {
        let r = Responder::new(key(), now_ms() - 1000);
        let probe = probe(now_ms());
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(matches!(
            r.answer(&probe, source, 443),
            Ok(Answer::Fresh(_))
        ));
        assert!(matches!(
            r.answer(&probe, source, 443),
            Err(Reject::Replayed)
        ));
        let mut answered = 0;
        for _ in 0..(RATE_BURST as usize + 10) {
            if r.answer(&self::probe(now_ms()), source, 443).is_ok() {
                answered += 1;
            }
        }
        assert!(answered <= RATE_BURST as usize + 1000, "{answered}");
        assert!(
            r.answer(&self::probe(now_ms()), "192.0.2.8".parse().unwrap(), 443)
                .is_ok(),
            "other sources unaffected"
        );
    }

    #[test]
    fn strangers_leave_no_trace_and_cannot_crowd_out_the_key() {
        let r = Responder::new(key(), now_ms() - 1000);
        // More spoofed sources than the table holds, each with junk or a wrong key.
        let wrong = Key::derive("somebody else's key!").unwrap();
        for i in 0..(MAX_SOURCES as u32 * 2) {
            let from = IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i));
            let bytes = crate::protocol::Probe::new(75, now_ms()).encode(&wrong);
            assert_eq!(r.answer(&bytes, from, 75).err(), Some(Reject::WrongKey));
            assert_eq!(r.answer(&[1], from, 75).err(), Some(Reject::Truncated));
        }
        assert_eq!(
            r.buckets.lock().unwrap().len(),
            0,
            "strangers are forgotten"
        );
        assert!(r
            .answer(&probe(now_ms()), "192.0.2.9".parse().unwrap(), 75)
            .is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_least_recent_source() {
        let r = Responder::new(key(), now_ms() - 1000);
        let first: IpAddr = "192.0.2.1".parse().unwrap();
        // Drain the first source's bucket, then let keyed newcomers fill the table.
        *r.buckets
            .lock()
            .unwrap()
            .get_or_insert_mut(Source::of(first), || (0.0, Instant::now())) = (0.0, Instant::now());
        for i in 0..MAX_SOURCES as u32 {
            assert!(
                r.allow(Source::V4(Ipv4Addr::from(0x0A00_0000 + i))),
                "newcomer {i} refused"
            );
        }
        assert_eq!(r.buckets.lock().unwrap().len(), MAX_SOURCES);
        assert!(
            r.allow(Source::of(first)),
            "forgotten, so it starts with a full burst"
        );
    }

    #[test]
    fn ipv6_sources_count_by_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn stale_probes_get_a_signed_stale_answer_and_older_runs_none() {
        let now = now_ms();
        let r = Responder::new(key(), now - 10_000);
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        let far = crate::protocol::Probe::new(443, now - 400_000);
        match r.answer(&far.encode(&key()), source, 443) {
            Ok(Answer::Stale(bytes)) => {
                let crate::protocol::ReplyCheck::Stale { responder_ms } =
                    crate::protocol::check_reply(&key(), &bytes, &far)
                else {
                    panic!("not a stale reply");
                };
                assert!(responder_ms >= now);
            }
            _ => panic!("no stale answer"),
        }
        assert_eq!(
            r.answer(&far.encode(&key()), source, 443).err(),
            Some(Reject::Replayed),
            "one stale answer per nonce"
        );
        // Within the window, but made before serve started: a recording from an earlier run.
        assert_eq!(
            r.answer(&probe(now - 20_000), source, 443).err(),
            Some(Reject::BeforeStart)
        );
        assert_eq!(r.stats.answered_stale.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn waiting_connections_are_capped_per_source_and_evicted_oldest_first() {
        let mut w = Waiting::default();
        let a = Source::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = Source::V4(Ipv4Addr::new(192, 0, 2, 2));
        let (first_b, mut rx_b) = w.add(b);
        let mut receivers = Vec::new();
        for _ in 0..PER_SOURCE_WAITING {
            receivers.push(w.add(a));
        }
        assert!(receivers.iter_mut().all(|(_, rx)| rx.try_recv().is_err()));
        let _newest = w.add(a);
        assert!(matches!(receivers[0].1.try_recv(), Ok(Evicted::PerSource)));
        assert!(receivers[1].1.try_recv().is_err());
        assert!(
            rx_b.try_recv().is_err(),
            "another source keeps its connection"
        );
        assert_eq!(w.by_source[&a].len(), PER_SOURCE_WAITING);
        // Out of descriptors: the oldest of all goes first, whatever its source.
        assert!(w.evict_oldest());
        assert!(matches!(rx_b.try_recv(), Ok(Evicted::ForDescriptor)));
        w.remove(first_b, b);
        assert!(!w.by_source.contains_key(&b));
        for (id, _) in &receivers {
            w.remove(*id, a);
        }
        assert_eq!(w.all.len(), 1);
    }
}
