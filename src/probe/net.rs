//! The real network behind [`Prober`]: TCP connects, UDP datagrams and loopback binds on
//! the operating system's sockets.

use std::io;
use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::app::AppConfig;
#[cfg(debug_assertions)]
use super::socket::stall_port;
use super::socket::{
    classify, local_error, stale, tcp_connect, unspecified, SELF_CONNECT_TRIES, UDP_PAYLOAD,
};
use super::{Attempt, Heard, Local, NotServe, Prober, Why};
use crate::model::{AppProbe, ProbeKind, Protocol, State};
use crate::plan::ProbeJob;
use crate::protocol::{self, Key, Probe, ReplyCheck, MAX_REPLY_LEN, REPLY_HEAD_LEN};

/// Probes over the operating system's network stack; with a key, every probe is the
/// authenticated challenge that `automate-ports serve` answers.
#[derive(Debug, Clone)]
pub struct NetProber {
    key: Option<Arc<Key>>,
    app: Arc<AppConfig>,
}

impl Default for NetProber {
    fn default() -> NetProber {
        NetProber::new(
            None,
            AppConfig::new(false, super::app::CERT_WARN_DAYS, None).expect("no CA file to read"),
        )
    }
}

impl NetProber {
    pub fn new(key: Option<Key>, app: AppConfig) -> NetProber {
        NetProber {
            key: key.map(Arc::new),
            app: Arc::new(app),
        }
    }
}

/// The run's deadline is tested with a probe the operating system never returns from: in
/// debug builds, `AUTOMATE_PORTS_TEST_STALL=PORT` blocks the thread that probes that port
/// for an hour, as Wine's socket layer once did.
#[cfg(debug_assertions)]
fn stall_for_tests(job: &ProbeJob) {
    if stall_port() == Some(job.addr.port()) {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

impl NetProber {
    /// The key, for a job that goes to a far side `serve` stands in for.
    fn key_for(&self, job: &ProbeJob) -> Option<&Key> {
        self.key.as_deref().filter(|_| job.keyed)
    }
}

impl Prober for NetProber {
    async fn attempt(&self, job: ProbeJob, timeout: Duration, heard: Heard) -> Attempt {
        #[cfg(debug_assertions)]
        stall_for_tests(&job);
        // Thousands of these are in flight at once, and an async fn is as large as its
        // largest branch: the plain TCP connect (the bulk of every sweep) stays inline and
        // small, the branches with buffers are boxed.
        let key = self.key_for(&job);
        match (job.kind, job.protocol) {
            (ProbeKind::Connect, Protocol::Tcp) => match key {
                None => tcp_connect(job.addr).await.0,
                Some(key) => Box::pin(tcp_keyed(job.addr, key, timeout, &heard)).await,
            },
            (ProbeKind::Connect, Protocol::Udp) => {
                Box::pin(udp_exchange(job.addr, key, timeout, &heard)).await
            }
            (ProbeKind::Loopback { .. }, Protocol::Tcp) => {
                Box::pin(super::local::tcp_loopback(job.addr)).await
            }
            (ProbeKind::Loopback { fallback }, Protocol::Udp) => {
                Box::pin(super::local::udp_loopback(job.addr, fallback, timeout)).await
            }
            (ProbeKind::Listening, protocol) => {
                Box::pin(super::local::listening(job.addr, protocol, timeout)).await
            }
            (ProbeKind::Nat { second }, _) => match key {
                Some(key) => {
                    Box::pin(super::nat::mapping(job.addr, second, key, timeout, &heard)).await
                }
                // The plan skips it without a key: only `serve` can say what it saw.
                None => Attempt::Answer(State::Error, Why::Local(Box::new(Local::NeedsKey))),
            },
            (ProbeKind::App(probe), _) if probe.is_web() && self.app.proxy.is_some() => {
                Box::pin(super::appnet::proxied(
                    probe, &job, &self.app, timeout, &heard,
                ))
                .await
            }
            (ProbeKind::App(probe), _) => match key {
                Some(key) => {
                    let work = serve_or_real_service(probe, &job, key, &self.app, timeout, &heard);
                    Box::pin(work).await
                }
                None => {
                    Box::pin(super::appnet::app_probe(
                        probe, &job, &self.app, timeout, &heard,
                    ))
                    .await
                }
            },
        }
    }

    fn phases(&self, job: &ProbeJob) -> u32 {
        let keyed = self.key_for(job).is_some();
        match job.kind {
            // The keyed exchange, then the application probe on a new connection.
            ProbeKind::App(probe) if keyed => 4 + u32::from(probe.is_tls()),
            // The proxy's answer, then the application inside the tunnel.
            ProbeKind::App(probe) if probe.is_web() && self.app.proxy.is_some() => 3,
            // Connect, then the application (and for TLS, the versions). Keyed TCP: connect,
            // then the exchange (keyed UDP
            // bounds itself, reading past datagrams that do not prove the key until its own
            // deadline). The NAT probe waits out its own timeout for the second port's reply,
            // then reports what the first saw: the engine must not cut that short.
            ProbeKind::App(probe) => 2 + u32::from(probe.is_tls()),
            ProbeKind::Nat { .. } => 2,
            ProbeKind::Connect if keyed => 2,
            ProbeKind::Connect | ProbeKind::Loopback { .. } | ProbeKind::Listening => 1,
        }
    }

    fn has_key(&self) -> bool {
        self.key.is_some()
    }

    async fn hop(
        &self,
        addr: SocketAddr,
        protocol: Protocol,
        ttl: u8,
        timeout: Duration,
    ) -> crate::model::HopAnswer {
        super::trace::hop(addr, protocol, ttl, timeout).await
    }

    fn trace_method(&self, addr: SocketAddr) -> crate::model::TraceMethod {
        super::trace::method(addr)
    }

    #[cfg(target_os = "linux")]
    fn sweeper(&self) -> Option<Box<dyn super::Sweeper>> {
        super::sweep::ConnectSweep::new(self.key.clone(), false)
            .map(|s| Box::new(s) as Box<dyn super::Sweeper>)
    }

    #[cfg(target_os = "linux")]
    fn thread_sweeper(&self) -> Option<Box<dyn super::Sweeper>> {
        super::sweep::ConnectSweep::new(self.key.clone(), true)
            .map(|s| Box::new(s) as Box<dyn super::Sweeper>)
    }
}

/// With a key, on a check that has an application probe: `serve` answers where it holds the
/// port; on a live server the real service holds it (serve skipped it as in use), and the
/// path is proven when that service answers its application probe.
async fn serve_or_real_service(
    probe: AppProbe,
    job: &ProbeJob,
    key: &Key,
    config: &AppConfig,
    timeout: Duration,
    heard: &Heard,
) -> Attempt {
    let keyed = tcp_keyed(job.addr, key, timeout, heard).await;
    if !matches!(keyed, Attempt::Answer(State::Open, Why::NotServe(_))) {
        return keyed;
    }
    // What answered instead of serve is reported by its own words when that proves the
    // path (it names the fix); anything else stays "not serve".
    if let Attempt::Answer(State::Open, Why::App(found)) =
        super::appnet::app_probe(probe, job, config, timeout, heard).await
    {
        if found.proves_the_path() {
            return Attempt::Answer(State::Open, Why::RealService(found));
        }
    }
    keyed
}

/// Connects (phase one, bounded by the timeout), then sends the challenge and waits for
/// the answer (phase two, bounded by the timeout again).
async fn tcp_keyed(addr: SocketAddr, key: &Key, timeout: Duration, heard: &Heard) -> Attempt {
    let Ok((attempt, stream)) = tokio::time::timeout(timeout, tcp_connect(addr)).await else {
        return Attempt::Silent;
    };
    let Some(mut stream) = stream else {
        return attempt;
    };
    heard.mark();
    let probe = Probe::new(addr.port(), crate::sys::now_ms());
    let exchange = async {
        stream.write_all(&probe.encode(key)).await?;
        // The head says how long the reply is (a stale reply is longer than a valid one).
        let mut reply = [0u8; MAX_REPLY_LEN];
        stream.read_exact(&mut reply[..REPLY_HEAD_LEN]).await?;
        let len = protocol::reply_len(&reply).unwrap_or(REPLY_HEAD_LEN);
        stream.read_exact(&mut reply[REPLY_HEAD_LEN..len]).await?;
        Ok::<_, io::Error>((reply, len))
    };
    let why = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Why::NotServe(NotServe::Silent(timeout)),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Why::NotServe(NotServe::Closed),
        Ok(Err(e)) => Why::NotServe(NotServe::Failed(e.to_string())),
        Ok(Ok((reply, len))) => match protocol::check_reply(key, &reply[..len], &probe) {
            ReplyCheck::Valid | ReplyCheck::Mapped(_) => Why::Verified,
            ReplyCheck::OtherPort(port) => Why::Redirected(port),
            ReplyCheck::Stale { responder_ms } => stale(&probe, responder_ms),
            ReplyCheck::Invalid => Why::NotServe(NotServe::BadProof),
        },
    };
    Attempt::Answer(State::Open, why)
}

async fn udp_exchange(
    addr: SocketAddr,
    key: Option<&Key>,
    timeout: Duration,
    heard: &Heard,
) -> Attempt {
    let mut socket = None;
    for _ in 0..SELF_CONNECT_TRIES {
        let s = match UdpSocket::bind(unspecified(addr.ip())).await {
            Ok(s) => s,
            Err(e) => return local_error(&e, addr),
        };
        if let Err(e) = s.connect(addr).await {
            return classify(&e, addr, Protocol::Udp);
        }
        // Our own datagram coming back would look like a reply.
        if s.local_addr().is_ok_and(|l| l == addr) {
            continue;
        }
        socket = Some(s);
        break;
    }
    let Some(socket) = socket else {
        return Attempt::Answer(
            State::Error,
            Why::Local(Box::new(Local::NoSourcePort(addr.port()))),
        );
    };
    let probe = Probe::new(addr.port(), crate::sys::now_ms());
    let sent = match key {
        Some(key) => socket.send(&probe.encode(key)).await,
        None => socket.send(UDP_PAYLOAD).await,
    };
    if let Err(e) = sent {
        return classify(&e, addr, Protocol::Udp);
    }
    let mut buf = [0u8; 512];
    let Some(key) = key else {
        return match crate::sys::udp::recv(&socket, &mut buf).await {
            Ok(_) => Attempt::Answer(State::Open, Why::Reply),
            Err(e) => classify(&e, addr, Protocol::Udp),
        };
    };
    // Keyed: anything can be sent to our port from the target's address (a spoofed or stray
    // datagram ahead of serve's reply), so read on until a reply proves the key or the
    // timeout ends the try; what came instead is reported only if nothing valid follows.
    let mut junk = 0u32;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received =
            match tokio::time::timeout_at(deadline, crate::sys::udp::recv(&socket, &mut buf)).await
            {
                Ok(received) => received,
                Err(_) if junk > 0 => {
                    tracing::debug!(%addr, junk, "only datagrams that do not prove the key");
                    return Attempt::Answer(State::Open, Why::NotServe(NotServe::BadUdpProof));
                }
                Err(_) => return Attempt::Silent,
            };
        match received {
            Ok(n) => match protocol::check_reply(key, &buf[..n], &probe) {
                ReplyCheck::Valid | ReplyCheck::Mapped(_) => {
                    if junk > 0 {
                        tracing::debug!(%addr, junk, "ignored datagrams ahead of the reply");
                    }
                    return Attempt::Answer(State::Open, Why::Verified);
                }
                ReplyCheck::OtherPort(port) => {
                    return Attempt::Answer(State::Open, Why::Redirected(port))
                }
                ReplyCheck::Stale { responder_ms } => {
                    return Attempt::Answer(State::Open, stale(&probe, responder_ms))
                }
                ReplyCheck::Invalid => {
                    junk += 1;
                    // Something answers: not silence for the engine to give up on.
                    heard.mark();
                }
            },
            Err(e) => return classify(&e, addr, Protocol::Udp),
        }
    }
}
