//! Linux: the TCP connects of a sweep, keyed exchanges included, on an epoll instance of
//! their own, driven from the engine's task. A port refused while connect ran (loopback, a
//! LAN, a namespace) costs two `connect` calls on a reused socket; one that answers later
//! costs socket, connect, one `epoll_ctl`, `SO_ERROR` and close, as the floor
//! `bench/floor.c` does. A tokio task per port would add a registration and its removal, a
//! timer, and wake-ups of the other worker thread (BENCHMARKS.md, "Where the time goes"). A
//! keyed exchange is written as soon as the connect completes and read as the reply
//! arrives, with the same judgement as the task path in `net.rs`; its socket is then reset
//! and disconnected (`connect` with `AF_UNSPEC`, the same RST as a close with linger 0) and
//! connects the next keyed port, as the floor `bench/keyed-floor.c reuse` does.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::socket::{classify, local_error, stale, SELF_CONNECT_TRIES};
use super::{Attempt, Ended, Heard, NotServe, Sweeper, Why};
use crate::model::{ProbeKind, Protocol, State};
use crate::plan::ProbeJob;
use crate::protocol::{self, Key, Probe, ReplyCheck, MAX_REPLY_LEN, PROBE_LEN, REPLY_HEAD_LEN};

/// Events taken from the kernel per `epoll_wait`.
const BATCH: usize = 1024;

/// Keyed sockets kept per address family for the next keyed starts: as many as one batch of
/// events can end.
const KEYED_SPARES: usize = BATCH;

/// The epoll instance, as tokio watches it: readable when one of its sockets is ready.
struct EpollFd(Epoll);

/// Who waits on the epoll instance: the runtime's reactor, which wakes the engine's task
/// ([`Sweeper::poll_done`]), or the engine's own thread, blocking in `epoll_wait`
/// ([`Sweeper::wait`]) without the reactor's thread and a wake-up between them.
enum Watch {
    Reactor(AsyncFd<EpollFd>),
    Thread(Epoll),
}

impl Watch {
    fn epoll(&self) -> &Epoll {
        match self {
            Watch::Reactor(fd) => &fd.get_ref().0,
            Watch::Thread(epoll) => epoll,
        }
    }
}

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

/// A try under way.
struct Pending {
    socket: Socket,
    addr: SocketAddr,
    /// Tells the deadline queues' entries of this try from an earlier one of the same token.
    serial: u64,
    /// Times it landed on its own source port (loopback) and was started again.
    self_connects: usize,
    heard: Heard,
    keyed: bool,
    /// The handshake completed (and for a keyed try, the exchange's deadline runs).
    connected: bool,
    /// Closes with RST (linger 0) already: set once per socket, it outlives a disconnect.
    lingers: bool,
    /// The keyed exchange; its probe may have gone out with the connect.
    exchange: Option<Box<Exchange>>,
}

struct Exchange {
    probe: Probe,
    sent: usize,
    wire: [u8; PROBE_LEN],
    reply: [u8; MAX_REPLY_LEN],
    got: usize,
}

/// What a socket's event did to its try.
enum Step {
    Wait,
    Done(Attempt),
    /// Started again on a new socket (a self-connect): reports later.
    Restarted,
}

pub(super) struct ConnectSweep {
    key: Option<Arc<Key>>,
    epoll: Watch,
    /// By token (the engine's job index).
    pending: Vec<Option<Pending>>,
    running: usize,
    serial: u64,
    timeout: Duration,
    /// When each phase runs out, in the order tries entered it (one timeout for all, so
    /// each queue is sorted by time).
    connecting: VecDeque<(Instant, usize, u64)>,
    exchanging: VecDeque<(Instant, usize, u64)>,
    events: Vec<EpollEvent>,
    locals: Locals,
    spares: Spares,
}

impl ConnectSweep {
    /// `None` when the epoll instance cannot be made (no descriptors): every try then goes
    /// through its own task, which reports the cause. `own_thread`: the engine driving it
    /// runs on a thread of its own and waits in [`Sweeper::wait`].
    pub(super) fn new(key: Option<Arc<Key>>, own_thread: bool) -> Option<ConnectSweep> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| tracing::debug!(%e, "no epoll instance for the sweep"))
            .ok()?;
        let epoll = if own_thread {
            Watch::Thread(epoll)
        } else {
            // Deprecated because a type could close its descriptor while it is registered;
            // `EpollFd` owns its descriptor and gives it up only when the `AsyncFd` drops.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(EpollFd(epoll), tokio::io::Interest::READABLE)
                .map_err(|e| tracing::debug!(%e, "cannot watch the sweep's epoll instance"))
                .ok()?;
            Watch::Reactor(fd)
        };
        Some(ConnectSweep {
            key,
            epoll,
            pending: Vec::new(),
            running: 0,
            serial: 0,
            timeout: Duration::ZERO,
            connecting: VecDeque::new(),
            exchanging: VecDeque::new(),
            events: vec![EpollEvent::empty(); BATCH],
            locals: Locals::default(),
            spares: Spares::default(),
        })
    }

    fn connect(
        &mut self,
        token: usize,
        addr: SocketAddr,
        keyed: bool,
        heard: Heard,
        self_connects: usize,
    ) -> Option<Attempt> {
        let keyed_here = keyed && self.key.is_some();
        // A kept keyed socket is still in the epoll instance, disarmed, and lingers 0.
        let (socket, kept) = match start_connect(addr, keyed_here, &mut self.spares) {
            Ok(started) => started,
            Err(attempt) => return Some(attempt),
        };
        let mut exchange = self
            .key
            .as_deref()
            .filter(|_| keyed)
            .map(|key| Box::new(Exchange::new(addr.port(), key)));
        let mut connected = false;
        if let Some(exchange) = exchange.as_deref_mut() {
            // Nearby the handshake has often completed while connect ran: the probe goes out
            // now and the socket waits only for the reply. Still connecting, the write
            // would block, and the probe goes out when the connect completes.
            match (&socket).write(&exchange.wire) {
                Ok(n) => {
                    exchange.sent = n;
                    connected = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Some(classify(&e, addr, Protocol::Tcp)),
            }
        }
        if connected {
            if is_self_connect(&mut self.locals, &socket, addr) {
                drop(socket);
                return self.reconnect(token, addr, keyed, heard, self_connects);
            }
            heard.mark();
            // Closed with RST, as the task path does: no TIME_WAIT per probed port.
            if !kept {
                let _ = socket.set_linger(Some(Duration::ZERO));
            }
        }
        let mut event = EpollEvent::new(interest(connected, exchange.as_deref()), token as u64);
        let epoll = self.epoll.epoll();
        let registered = match kept.then(|| epoll.modify(&socket, &mut event)) {
            Some(Err(nix::errno::Errno::ENOENT)) | None => epoll.add(&socket, event),
            Some(modified) => modified,
        };
        if let Err(e) = registered {
            return Some(local_error(&io::Error::from(e), addr));
        }
        if self.pending.len() <= token {
            self.pending.resize_with(token + 1, || None);
        }
        self.serial += 1;
        let phase = if connected {
            &mut self.exchanging
        } else {
            &mut self.connecting
        };
        phase.push_back((Instant::now() + self.timeout, token, self.serial));
        self.pending[token] = Some(Pending {
            socket,
            addr,
            serial: self.serial,
            self_connects,
            heard,
            keyed,
            connected,
            lingers: kept || connected,
            exchange,
        });
        self.running += 1;
        None
    }

    /// Linux can pick the target port as the socket's own source port on loopback and
    /// "connect" to itself (simultaneous open); nothing listens there. Try again.
    fn reconnect(
        &mut self,
        token: usize,
        addr: SocketAddr,
        keyed: bool,
        heard: Heard,
        self_connects: usize,
    ) -> Option<Attempt> {
        if self_connects + 1 >= SELF_CONNECT_TRIES {
            return Some(Attempt::Answer(State::Closed, Why::Refused));
        }
        self.connect(token, addr, keyed, heard, self_connects + 1)
    }

    /// What an event on `token`'s socket means for its try.
    fn step(&mut self, token: usize) -> Step {
        let Some(pending) = self.pending.get_mut(token).and_then(Option::as_mut) else {
            return Step::Wait;
        };
        if !pending.connected {
            match pending.socket.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    return Step::Done(classify(&e, pending.addr, Protocol::Tcp));
                }
            }
            if is_self_connect(&mut self.locals, &pending.socket, pending.addr) {
                return self.self_connect(token);
            }
            // Closed with RST, as the task path does: no TIME_WAIT per probed port.
            if !pending.lingers {
                let _ = pending.socket.set_linger(Some(Duration::ZERO));
                pending.lingers = true;
            }
            if pending.exchange.is_none() {
                return Step::Done(Attempt::Answer(State::Open, Why::Connected));
            }
            pending.heard.mark();
            pending.connected = true;
            self.exchanging
                .push_back((Instant::now() + self.timeout, token, pending.serial));
        }
        let key = self.key.as_deref();
        let (Some(exchange), Some(key)) = (pending.exchange.as_deref_mut(), key) else {
            return Step::Wait;
        };
        match exchange.advance(&pending.socket, key) {
            Ok(None) => Step::Wait,
            Ok(Some(why)) => Step::Done(Attempt::Answer(State::Open, why)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Step::Done(Attempt::Answer(
                State::Open,
                Why::NotServe(NotServe::Closed),
            )),
            Err(e) => Step::Done(Attempt::Answer(
                State::Open,
                Why::NotServe(NotServe::Failed(e.to_string())),
            )),
        }
    }

    /// A connect event that found the socket connected to itself: start again.
    fn self_connect(&mut self, token: usize) -> Step {
        let Some(p) = self.pending[token].take() else {
            return Step::Wait;
        };
        self.running -= 1;
        drop(p.socket);
        match self.reconnect(token, p.addr, p.keyed, p.heard, p.self_connects) {
            Some(attempt) => Step::Done(attempt),
            None => Step::Restarted,
        }
    }

    /// Ends `token`'s try, handing back what it held (its socket closes when that drops).
    fn end(&mut self, token: usize) -> Option<Pending> {
        let pending = self.pending.get_mut(token).and_then(Option::take)?;
        self.running -= 1;
        Some(pending)
    }

    /// Ends `token`'s try, which reported. A keyed socket whose exchange ran is disconnected
    /// and kept for the next keyed start of its family, still in the epoll instance: the
    /// event that ended its try disarmed it (one-shot), so nothing of this try reaches the
    /// next, and the next re-arms it with one call instead of leaving and joining again. Any
    /// other socket is closed (which takes it out of the epoll instance).
    fn finish(&mut self, token: usize) {
        let Some(p) = self.end(token) else {
            return;
        };
        if p.connected && p.exchange.is_some() && crate::sys::disconnect(&p.socket).is_ok() {
            self.spares.keep_keyed(p.addr, p.socket);
        }
    }

    /// A keyed try still waits after its event: its one-shot registration is armed again
    /// (the kernel queues an event at once if the socket is ready meanwhile). `Some` ends the
    /// try: the epoll instance would not take it back.
    fn rearm(&mut self, token: usize) -> Option<Attempt> {
        let p = self.pending.get(token).and_then(Option::as_ref)?;
        let exchange = p.exchange.as_deref()?;
        let mut event = EpollEvent::new(interest(p.connected, Some(exchange)), token as u64);
        let e = self.epoll.epoll().modify(&p.socket, &mut event).err()?;
        Some(local_error(&io::Error::from(e), p.addr))
    }

    /// Every running try ends with `e`: the epoll instance itself failed.
    fn fail_all(&mut self, e: &io::Error, out: &mut Vec<Ended>) {
        let now = Instant::now();
        for (token, pending) in self.pending.iter_mut().enumerate() {
            if let Some(p) = pending.take() {
                out.push((token, local_error(e, p.addr), now));
            }
        }
        self.running = 0;
    }

    /// Ends tries whose phase in `queue` ran out by `now` with `attempt`.
    fn expire_phase(
        &mut self,
        exchange: bool,
        now: Instant,
        attempt: &Attempt,
        out: &mut Vec<Ended>,
    ) {
        loop {
            let queue = if exchange {
                &mut self.exchanging
            } else {
                &mut self.connecting
            };
            let Some(&(deadline, token, serial)) = queue.front() else {
                return;
            };
            if deadline > now {
                return;
            }
            queue.pop_front();
            let current = self
                .pending
                .get(token)
                .and_then(Option::as_ref)
                .is_some_and(|p| p.serial == serial && p.exchange.is_some() == exchange);
            if current {
                self.end(token);
                out.push((token, attempt.clone(), now));
            }
        }
    }
}

impl Exchange {
    fn new(port: u16, key: &Key) -> Exchange {
        let probe = Probe::new(port, crate::sys::now_ms());
        Exchange {
            probe,
            sent: 0,
            wire: probe.encode(key),
            reply: [0; MAX_REPLY_LEN],
            got: 0,
        }
    }

    /// Sends what is left of the probe, reads what has arrived of the reply: `Some` once
    /// the reply is whole and judged.
    fn advance(&mut self, socket: &Socket, key: &Key) -> io::Result<Option<Why>> {
        let mut socket = socket;
        while self.sent < self.wire.len() {
            match socket.write(&self.wire[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        loop {
            // The head says how long the reply is (a stale reply is longer than a valid one).
            let want = if self.got < REPLY_HEAD_LEN {
                REPLY_HEAD_LEN
            } else {
                protocol::reply_len(&self.reply).unwrap_or(REPLY_HEAD_LEN)
            };
            if self.got >= want {
                return Ok(Some(self.judge(key, want)));
            }
            // Everything there in one read: a reply whole at once is the usual case, and
            // bytes past `want` are never judged.
            match socket.read(&mut self.reply[self.got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn judge(&self, key: &Key, len: usize) -> Why {
        match protocol::check_reply(key, &self.reply[..len], &self.probe) {
            ReplyCheck::Valid | ReplyCheck::Mapped(_) => Why::Verified,
            ReplyCheck::OtherPort(port) => Why::Redirected(port),
            ReplyCheck::Stale { responder_ms } => stale(&self.probe, responder_ms),
            ReplyCheck::Invalid => Why::NotServe(NotServe::BadProof),
        }
    }
}

/// What a try's socket waits for. Edge-triggered: one event when the connect completes, one
/// per reply that arrives later, without changing the interest in between. A socket already
/// connected with its probe sent waits for the reply alone: asking for "writable" would wake
/// the epoll instance at once for nothing. A keyed socket's registration is one-shot, so the
/// event that ends its try leaves it disarmed for the next try to re-arm (`finish`).
fn interest(connected: bool, exchange: Option<&Exchange>) -> EpollFlags {
    let mut flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
    if !connected || exchange.is_some_and(|e| e.sent < e.wire.len()) {
        flags |= EpollFlags::EPOLLOUT;
    }
    if exchange.is_some() {
        flags |= EpollFlags::EPOLLONESHOT;
    }
    flags
}

/// A non-blocking connect to `addr` under way (or done), and whether its socket is a kept
/// keyed one (in the epoll instance, disarmed; lingering 0); `Err` is the try's result already.
fn start_connect(
    addr: SocketAddr,
    keyed: bool,
    spares: &mut Spares,
) -> Result<(Socket, bool), Attempt> {
    let spare = spares.take(addr, keyed);
    let reused = spare.is_some();
    let kept = reused && keyed;
    let socket = match spare {
        Some(socket) => socket,
        None => Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        )
        .map_err(|e| local_error(&e, addr))?,
    };
    if keyed {
        // The handshake's last ACK then waits for the probe and goes out with it: one
        // packet fewer each way through every firewall, and for serve's kernel.
        let _ = socket.set_tcp_quickack(false);
    }
    match socket.connect(&addr.into()) {
        // Connected at once: adding the socket to the epoll instance still queues its event.
        Ok(()) => Ok((socket, kept)),
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {
            if keyed {
                // A keyed try learns a refusal from writing its probe.
                return Ok((socket, kept));
            }
            // Nearby (loopback, a LAN, a namespace) the refusal has often arrived while
            // connect ran: read it now rather than through the epoll instance, whose
            // wake-up would also rouse the runtime's other thread. Asked by connecting
            // again, which on Linux also returns a refused socket to "unconnected", so the
            // next port reuses it: two system calls per closed port instead of socket,
            // connect, SO_ERROR and close, and no socket to allocate and free (about 40 %
            // of a closed port's kernel time here, BENCHMARKS.md).
            match socket.connect(&addr.into()) {
                Err(e) if e.raw_os_error() != Some(nix::libc::EALREADY) => {
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        spares.keep(addr, socket);
                    }
                    Err(classify(&e, addr, Protocol::Tcp))
                }
                // Still under way, or connected meanwhile: the epoll instance reports it.
                _ => Ok((socket, false)),
            }
        }
        // A reused socket the kernel will not connect again: the next spare or a fresh
        // socket decides (each spare is tried once, so this ends).
        Err(_) if reused => start_connect(addr, keyed, spares),
        Err(e) => Err(classify(&e, addr, Protocol::Tcp)),
    }
}

/// Sockets ready to connect again: a refused one per address family (Linux returns a TCP
/// socket whose connect failed to its unconnected state), for the next unkeyed try; and keyed
/// ones whose exchange is done, disconnected, for the next keyed tries. A spare replaces the
/// try that made it: a start that does not take one (the other family, a task's try) closes
/// one first, so the sweep never holds more descriptors than the tries it ran.
#[derive(Default)]
struct Spares {
    v4: Option<Socket>,
    v6: Option<Socket>,
    keyed_v4: Vec<Socket>,
    keyed_v6: Vec<Socket>,
}

impl Spares {
    fn slot(&mut self, addr: SocketAddr) -> &mut Option<Socket> {
        if addr.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        }
    }

    fn keyed(&mut self, addr: SocketAddr) -> &mut Vec<Socket> {
        if addr.is_ipv4() {
            &mut self.keyed_v4
        } else {
            &mut self.keyed_v6
        }
    }

    /// A spare for a try of `addr`; without one, a kept keyed socket is closed, as the new
    /// socket takes its descriptor.
    fn take(&mut self, addr: SocketAddr, keyed: bool) -> Option<Socket> {
        let spare = if keyed {
            self.keyed(addr).pop()
        } else {
            self.slot(addr).take()
        };
        if spare.is_none() {
            self.make_room();
        }
        spare
    }

    fn keep(&mut self, addr: SocketAddr, socket: Socket) {
        *self.slot(addr) = Some(socket);
    }

    fn keep_keyed(&mut self, addr: SocketAddr, socket: Socket) {
        let kept = self.keyed(addr);
        if kept.len() < KEYED_SPARES {
            kept.push(socket);
        }
    }

    /// Closes one kept keyed socket, of the family that has more.
    fn make_room(&mut self) {
        if self.keyed_v4.len() >= self.keyed_v6.len() {
            self.keyed_v4.pop();
        } else {
            self.keyed_v6.pop();
        }
    }
}

/// The peer of a connected socket is the address dialled, so comparing our own address with
/// it takes one system call instead of two; and only a connection to one of this machine's
/// own addresses can meet itself, so the others take none.
fn is_self_connect(locals: &mut Locals, socket: &Socket, dialled: SocketAddr) -> bool {
    locals.holds(dialled) && socket.local_addr().ok().and_then(|l| l.as_socket()) == Some(dialled)
}

/// Which addresses are this machine's own, asked once per address of a sweep: an address
/// a UDP socket can bind to is local.
#[derive(Default)]
struct Locals(Vec<(SocketAddr, bool)>);

impl Locals {
    /// Whether `dialled`'s address (with its IPv6 scope) is this machine's.
    fn holds(&mut self, dialled: SocketAddr) -> bool {
        let mut any_port = dialled;
        any_port.set_port(0);
        if let Some(&(_, local)) = self.0.iter().find(|(known, _)| *known == any_port) {
            return local;
        }
        // Only "not an address here" rules a self-connect out; any other failure (no
        // descriptors) keeps the check.
        let local = !matches!(
            std::net::UdpSocket::bind(any_port),
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable
        );
        self.0.push((any_port, local));
        local
    }
}

impl Sweeper for ConnectSweep {
    fn takes(&self, job: &ProbeJob) -> bool {
        // The deadline test stalls one port's probing thread; that port keeps its task.
        #[cfg(debug_assertions)]
        if super::socket::stall_port() == Some(job.addr.port()) {
            return false;
        }
        job.kind == ProbeKind::Connect && job.protocol == Protocol::Tcp
    }

    fn start(
        &mut self,
        token: usize,
        job: &ProbeJob,
        timeout: Duration,
        heard: Heard,
    ) -> Option<Attempt> {
        self.timeout = timeout;
        let keyed = job.keyed && self.key.is_some();
        self.connect(token, job.addr, keyed, heard, 0)
    }

    fn cancel(&mut self, token: usize) {
        // Closing the socket takes it out of the epoll instance: nothing of it is reported.
        self.end(token);
    }

    fn make_room(&mut self) {
        self.spares.make_room();
    }

    fn running(&self) -> usize {
        self.running
    }

    fn expire(&mut self, now: Instant, out: &mut Vec<Ended>) {
        self.expire_phase(false, now, &Attempt::Silent, out);
        let silent = Attempt::Answer(State::Open, Why::NotServe(NotServe::Silent(self.timeout)));
        self.expire_phase(true, now, &silent, out);
    }

    fn poll_done(&mut self, cx: &mut Context<'_>, out: &mut Vec<Ended>) -> Poll<()> {
        let Watch::Reactor(fd) = &self.epoll else {
            // Its engine waits in `wait`; here only what is there already.
            return match self.take_events(EpollTimeout::ZERO, out) {
                0 => Poll::Pending,
                _ => Poll::Ready(()),
            };
        };
        loop {
            let waited = match ready!(fd.poll_read_ready(cx)) {
                Ok(mut guard) => match fd.get_ref().0.wait(&mut self.events, EpollTimeout::ZERO) {
                    Ok(n) => {
                        if n < self.events.len() {
                            // Drained: the next poll waits for the kernel's next event.
                            guard.clear_ready();
                        }
                        Ok(n)
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => Err(io::Error::from(e)),
                },
                Err(e) => Err(e),
            };
            match waited {
                Ok(0) => continue,
                Ok(n) => self.handle(n, out),
                Err(e) => self.fail_all(&e, out),
            }
            return Poll::Ready(());
        }
    }

    fn wait(&mut self, timeout: Duration, out: &mut Vec<Ended>) -> bool {
        if matches!(self.epoll, Watch::Reactor(_)) {
            return false;
        }
        let timeout = EpollTimeout::try_from(timeout).unwrap_or(EpollTimeout::ZERO);
        self.take_events(timeout, out);
        true
    }
}

impl ConnectSweep {
    /// Waits up to `timeout` on the epoll instance itself and handles what it reports; how
    /// many events that was.
    fn take_events(&mut self, timeout: EpollTimeout, out: &mut Vec<Ended>) -> usize {
        match self.epoll.epoll().wait(&mut self.events, timeout) {
            Ok(n) => {
                self.handle(n, out);
                n
            }
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => {
                self.fail_all(&io::Error::from(e), out);
                1
            }
        }
    }

    /// What the first `n` events of the last wait mean, tries that ended going to `out`.
    fn handle(&mut self, n: usize, out: &mut Vec<Ended>) {
        let now = Instant::now();
        for i in 0..n {
            let token = usize::try_from(self.events[i].data()).unwrap_or(usize::MAX);
            let step = match self.step(token) {
                Step::Wait => self.rearm(token).map_or(Step::Wait, Step::Done),
                step => step,
            };
            match step {
                Step::Wait | Step::Restarted => {}
                Step::Done(attempt) => {
                    self.finish(token);
                    out.push((token, attempt, now));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_addresses_can_meet_themselves() {
        let mut locals = Locals::default();
        assert!(locals.holds("127.0.0.1:50000".parse().unwrap()));
        assert!(locals.holds("127.0.0.9:443".parse().unwrap()));
        // TEST-NET-2: no machine here holds it, and asking sends nothing.
        assert!(!locals.holds("198.51.100.77:50000".parse().unwrap()));
        // Asked once per address, whatever the port.
        assert!(!locals.holds("198.51.100.77:50001".parse().unwrap()));
        assert_eq!(locals.0.len(), 3);
    }

    #[test]
    fn a_refused_socket_connects_again_to_the_next_port() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut spares = Spares::default();
        // On loopback the refusal is in before connect returns, unless the machine is so
        // busy that the kernel defers it: then ask again, a bounded number of times.
        for _ in 0..50 {
            let Err(attempt) = start_connect(closed, false, &mut spares) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            assert!(matches!(
                attempt,
                Attempt::Answer(State::Closed, Why::Refused)
            ));
            break;
        }
        let kept = spares
            .v4
            .as_ref()
            .expect("the refused socket is kept")
            .as_raw_fd();
        assert!(spares.v6.is_none());
        let (socket, registered) =
            start_connect(open.local_addr().unwrap(), false, &mut spares).unwrap();
        assert_eq!(socket.as_raw_fd(), kept, "the spare is used");
        assert!(
            !registered,
            "a refused spare never joined the epoll instance"
        );
        assert!(spares.v4.is_none());
        // And the connection is real: the listener accepts it, from the socket's address.
        open.set_nonblocking(true).unwrap();
        let from = (0..250)
            .find_map(|_| {
                let accepted = open.accept().ok().map(|(_, from)| from);
                if accepted.is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                accepted
            })
            .expect("accepted within 5 s");
        assert_eq!(Some(from), socket.local_addr().unwrap().as_socket());
    }

    /// Accepts on `listener` within 5 s (the machine may be busy).
    fn accept_within(listener: &std::net::TcpListener) -> (std::net::TcpStream, SocketAddr) {
        listener.set_nonblocking(true).unwrap();
        (0..250)
            .find_map(|_| {
                let accepted = listener.accept().ok();
                if accepted.is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                accepted
            })
            .expect("accepted within 5 s")
    }

    #[test]
    fn a_kept_keyed_socket_was_reset_and_connects_the_next_port() {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut spares = Spares::default();
        let (socket, kept) = start_connect(first.local_addr().unwrap(), true, &mut spares).unwrap();
        assert!(!kept);
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        // Accepted once the handshake's last ACK arrives (held back for a probe, then sent
        // by the delayed-ACK timer): the connection is whole on both sides.
        let (mut far, from) = accept_within(&first);
        assert_eq!(Some(from), socket.local_addr().unwrap().as_socket());
        crate::sys::disconnect(&socket).unwrap();
        // The far side sees a reset, as from a close with linger 0: no TIME_WAIT anywhere.
        far.set_nonblocking(false).unwrap();
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read = far.read(&mut [0; 1]);
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
        let fd = socket.as_raw_fd();
        spares.keep_keyed(from, socket);
        let (again, kept) = start_connect(second.local_addr().unwrap(), true, &mut spares).unwrap();
        assert_eq!(again.as_raw_fd(), fd, "the kept socket is used");
        assert!(kept);
        // Linger 0 outlives the disconnect, so the sweep sets it once per socket.
        assert_eq!(again.linger().unwrap(), Some(Duration::ZERO));
        assert!(spares.keyed_v4.is_empty());
        let (_, from) = accept_within(&second);
        assert_eq!(Some(from), again.local_addr().unwrap().as_socket());
    }

    #[test]
    fn a_start_that_takes_no_kept_socket_closes_one() {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let mut spares = Spares::default();
        for _ in 0..2 {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            spares.keep_keyed(v4, socket);
        }
        // A keyed try of the other family makes a socket: one kept socket goes first.
        assert!(spares.take(v6, true).is_none());
        assert_eq!(spares.keyed_v4.len(), 1);
        // So does an unkeyed try without a refused spare ...
        assert!(spares.take(v4, false).is_none());
        assert!(spares.keyed_v4.is_empty());
        // ... and a try in a task of its own (the engine asks the sweeper).
        spares.keep_keyed(v6, Socket::new(Domain::IPV6, Type::STREAM, None).unwrap());
        spares.make_room();
        assert!(spares.keyed_v6.is_empty());
    }

    #[tokio::test]
    async fn a_sweep_on_its_own_thread_is_waited_for_there() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let job = ProbeJob {
            addr: open.local_addr().unwrap(),
            protocol: Protocol::Tcp,
            kind: ProbeKind::Connect,
            host: None,
            keyed: false,
        };
        let flags = Heard::flags(1);
        let mut sweep = ConnectSweep::new(None, true).expect("an epoll instance");
        let mut out = Vec::new();
        if let Some(at_once) = sweep.start(0, &job, Duration::from_secs(5), Heard::new(&flags, 0)) {
            panic!("a connect to a listener ended at once: {at_once:?}");
        }
        // The engine's thread blocks here, not in the runtime's reactor (bounded: 50 x 100 ms).
        for _ in 0..50 {
            assert!(sweep.wait(Duration::from_millis(100), &mut out));
            if !out.is_empty() {
                break;
            }
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, 0);
        assert!(matches!(
            out[0].1,
            Attempt::Answer(State::Open, Why::Connected)
        ));
        assert_eq!(sweep.running(), 0);
        // A sweeper the runtime watches is not waited for on a thread.
        let mut watched = ConnectSweep::new(None, false).expect("an epoll instance");
        assert!(!watched.wait(Duration::from_millis(1), &mut out));
    }

    #[test]
    fn keyed_tries_never_take_a_spare() {
        let closed = std::net::TcpListener::bind("[::1]:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let mut spares = Spares::default();
        let spare = Socket::new(Domain::IPV6, Type::STREAM.nonblocking(), None).unwrap();
        let fd = spare.as_raw_fd();
        spares.keep(closed, spare);
        // A keyed try's socket has quick-ACK off and learns a refusal from its write.
        if let Ok((socket, _)) = start_connect(closed, true, &mut spares) {
            assert_ne!(socket.as_raw_fd(), fd);
        }
        assert_eq!(spares.v6.as_ref().map(AsRawFd::as_raw_fd), Some(fd));
    }
}
