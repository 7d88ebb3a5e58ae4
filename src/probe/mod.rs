//! The probe stage: name resolution, the network seam ([`Prober`]) and the engine that runs
//! jobs through it in a bounded sliding window, with timeouts and retries enforced here
//! and nowhere else.

pub mod app;
mod appnet;
mod engine;
mod local;
mod nat;
pub mod net;
mod socket;
#[cfg(target_os = "linux")]
mod sweep;
mod trace;

pub use engine::{
    bound, narrow_rate, probe_width, run, trace, trace_bound, EngineConfig, Traced, MAX_HOPS,
    MAX_TRIES,
};

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::lang::Lang;
use crate::model::State;
use crate::plan::ProbeJob;

/// Why a probe ended the way it did; turned into words by [`Outcome::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// TCP handshake completed.
    Connected,
    /// A UDP reply arrived.
    Reply,
    /// Loopback probe: the port was bound here and traffic went through.
    Exchanged,
    /// Loopback probe: something on this machine already holds the port; which process, where
    /// the OS tells.
    InUse(Option<Box<crate::sys::Holder>>),
    /// Loopback probe with an install range, nothing installed yet: another program holds
    /// the port, so an install takes `free` instead, the first free port of `range` from the
    /// port on (`None`: every one is taken).
    InstallMoves {
        holder: Option<Box<crate::sys::Holder>>,
        free: Option<u16>,
        range: crate::model::PortRange,
    },
    /// Listening probe: a service here holds the port (which process, where the OS tells).
    Listens(Option<Box<crate::sys::Holder>>),
    /// Listening probe: nothing on this machine holds the port.
    NothingListens,
    /// TCP RST.
    Refused,
    /// ICMP port unreachable (UDP).
    PortUnreachable,
    /// ICMP host unreachable or administratively prohibited.
    HostUnreachable,
    /// This machine's own firewall refused to send (EPERM/EACCES).
    LocalFirewall,
    /// Nothing came back within the timeout, on every try.
    NoAnswer,
    /// Keyed UDP: nothing came back, though `serve` answers every valid probe.
    NoAnswerKeyed,
    /// Keyed: `automate-ports serve` answered with proof of the key, on the port aimed at.
    Verified,
    /// Keyed: a responder with the key answered, but the probe arrived on another port.
    Redirected(u16),
    /// Keyed: `serve` proved the key but refused the probe as stale: its clock differs from
    /// ours by `offset_ms` (positive: it is ahead), or it started after the probe was made.
    Stale { offset_ms: i64 },
    /// Keyed NAT probe: `serve` answered at one or both ports with the source it saw.
    Mapped(Box<crate::nat::NatMapping>),
    /// Keyed: something answered that is not `automate-ports serve`.
    NotServe(NotServe),
    /// An application probe ran on the open port.
    App(Box<app::AppResult>),
    /// Keyed: `serve` did not answer, but the real service proved itself through its
    /// application probe (serve leaves ports in use to it).
    RealService(Box<app::AppResult>),
    /// A local error: no route, no descriptors, bad address.
    Local(Box<Local>),
    /// The run reached its deadline `after` its start with this probe still inside the
    /// operating system.
    Unfinished { after: Duration },
}

impl Why {
    /// Connected, but no valid answer: a busy responder or a lost reply can cause it as
    /// well as a middlebox, so it earns a second look before it is believed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Why::NotServe(NotServe::Silent(_) | NotServe::Closed | NotServe::Failed(_))
        )
    }

    /// Something on the far side (or on the way) answered: the address is alive.
    pub fn from_the_network(&self) -> bool {
        matches!(
            self,
            Why::Connected
                | Why::Reply
                | Why::Refused
                | Why::PortUnreachable
                | Why::HostUnreachable
                | Why::Verified
                | Why::Mapped(_)
                | Why::Redirected(_)
                | Why::Stale { .. }
                | Why::NotServe(_)
                | Why::App(_)
                | Why::RealService(_)
        )
    }
}

/// Keyed probes: what the far side did instead of proving the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotServe {
    /// Connected, then silence for the whole timeout.
    Silent(Duration),
    /// Connected, then closed without a valid answer.
    Closed,
    /// Connected, then the exchange failed (the OS's words).
    Failed(String),
    /// An answer that does not prove the key (TCP).
    BadProof,
    /// A UDP reply that does not prove the key.
    BadUdpProof,
}

/// A problem on this machine that stopped a probe; the OS's own words where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    NoRoute(IpAddr),
    NoDescriptors,
    Probe(SocketAddr, String),
    NoSourcePort(u16),
    BindDenied(SocketAddr),
    NotOurs(IpAddr),
    Bind(SocketAddr, String),
    /// A probe only `serve` with the key can answer, run without one.
    NeedsKey,
}

/// What one try of a probe saw. Silence is the only outcome that is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answer(State, Why),
    Silent,
}

/// The result of a job after all its tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: State,
    pub why: Why,
    /// The round trip when something answered; the longest wait of a try when nothing did.
    pub elapsed: Duration,
    pub tries: u8,
    /// The probe carried the key (`serve` stands in for the far side).
    pub keyed: bool,
}

impl Outcome {
    /// Whether `serve` proved itself: `None` when the probe went without a key.
    pub fn verified(&self) -> Option<bool> {
        self.keyed
            .then_some(matches!(self.why, Why::Verified | Why::Mapped(_)))
    }

    /// Whether what answered proved itself: `serve` with the key, or the real service
    /// through its application where serve left the port to it. `None` without a key.
    pub fn proven(&self) -> Option<bool> {
        self.keyed.then_some(matches!(
            self.why,
            Why::Verified | Why::Mapped(_) | Why::RealService(_)
        ))
    }
}

/// Where a try tells the engine that the far side answered at the network level (a TCP
/// handshake completed) while the try goes on.
#[derive(Debug, Clone)]
pub struct Heard {
    flags: Arc<[AtomicBool]>,
    index: usize,
}

impl Heard {
    /// Flags for `n` jobs, all clear.
    pub fn flags(n: usize) -> Arc<[AtomicBool]> {
        (0..n).map(|_| AtomicBool::new(false)).collect()
    }

    /// The flag of job `index`, cleared for a new try.
    pub fn new(flags: &Arc<[AtomicBool]>, index: usize) -> Heard {
        flags[index].store(false, Ordering::Relaxed);
        Heard {
            flags: Arc::clone(flags),
            index,
        }
    }

    pub fn mark(&self) {
        self.flags[self.index].store(true, Ordering::Relaxed);
    }
}

/// Formats a duration in English, for logs and `serve`'s output.
pub fn fmt_duration(d: Duration) -> String {
    Lang::En.duration(d)
}

/// The network seam: one try of one job.
///
/// The engine cancels a try after `timeout` for each of its [`phases`](Prober::phases)
/// and counts that as silence; on an address whose other ports answer it may give up on a
/// silent try sooner. A prober with more than one phase (connect, then wait for the
/// responder's answer) bounds each phase by `timeout` itself and marks `heard` once the
/// first phase got an answer, so that a connection that opened but never answered is told
/// apart from one that never opened, and is never given up on as silence.
pub trait Prober: Send + Sync + 'static {
    fn attempt(
        &self,
        job: ProbeJob,
        timeout: Duration,
        heard: Heard,
    ) -> impl Future<Output = Attempt> + Send;

    /// How many timeouts one try of `job` may take.
    fn phases(&self, _job: &ProbeJob) -> u32 {
        1
    }

    /// Whether it holds a key: jobs marked [`ProbeJob::keyed`] then carry it.
    fn has_key(&self) -> bool {
        false
    }

    /// One try of one hop of a path trace: a probe of `protocol` to `addr` that may cross
    /// at most `ttl` routers, and what came back within `timeout`. A prober that cannot
    /// trace says so, and the report says the path was not traced.
    fn hop(
        &self,
        _addr: SocketAddr,
        _protocol: crate::model::Protocol,
        _ttl: u8,
        _timeout: Duration,
    ) -> impl Future<Output = crate::model::HopAnswer> + Send {
        std::future::ready(crate::model::HopAnswer::Unsupported)
    }

    /// What [`Prober::hop`] probes `addr` with: the port itself, or (where the port's own
    /// path cannot be traced without privileges) ICMP echo.
    fn trace_method(&self, _addr: SocketAddr) -> crate::model::TraceMethod {
        crate::model::TraceMethod::Port
    }

    /// Where the run's plain connects can go instead of a task each: one event loop over
    /// many sockets. `None` (the default, and off Linux): every try is an
    /// [`attempt`](Prober::attempt).
    fn sweeper(&self) -> Option<Box<dyn Sweeper>> {
        None
    }

    /// A sweeper for an engine that runs on a thread of its own and waits for it there
    /// ([`Sweeper::wait`]); `None` (the default): that engine uses [`sweeper`](Prober::sweeper).
    fn thread_sweeper(&self) -> Option<Box<dyn Sweeper>> {
        None
    }
}

/// A try a [`Sweeper`] ended: its token, what it saw, and when.
pub type Ended = (usize, Attempt, tokio::time::Instant);

/// Many single-phase tries driven from the engine's own task: no task, timer or wake-up of
/// another thread per port, which is most of what a sweep of closed ports costs. The engine
/// keeps every decision (windows, deadlines, quiet time, retries); a sweeper only starts,
/// cancels and reports tries, each named by the engine's `token`.
pub trait Sweeper: Send {
    /// Whether tries of `job` go through the sweeper rather than [`Prober::attempt`].
    fn takes(&self, job: &ProbeJob) -> bool;

    /// Starts a try of `job`, each of its phases bounded by `timeout` (reported through
    /// [`expire`](Sweeper::expire)), `heard` marked once the far side answered the first.
    /// An answer known at once (a local error) is returned rather than reported later.
    fn start(
        &mut self,
        token: usize,
        job: &ProbeJob,
        timeout: Duration,
        heard: Heard,
    ) -> Option<Attempt>;

    /// Forgets a running try (given up as silent): it reports nothing afterwards.
    fn cancel(&mut self, token: usize);

    /// A try is about to start outside the sweeper: a socket the sweeper keeps for reuse is
    /// closed first, so the run never holds more descriptors than tries.
    fn make_room(&mut self) {}

    /// Tries running.
    fn running(&self) -> usize;

    /// Ends the tries whose phase ran out of time by `now`, appending what each saw to `out`.
    fn expire(&mut self, now: tokio::time::Instant, out: &mut Vec<Ended>);

    /// Blocks for up to `timeout` until tries end, appending them to `out`; `false`, at once,
    /// for a sweeper the runtime watches (its engine waits in [`poll_done`](Sweeper::poll_done)).
    fn wait(&mut self, _timeout: Duration, _out: &mut Vec<Ended>) -> bool {
        false
    }

    /// Tries that ended since the last call, appended to `out` with when each ended;
    /// `Pending` when none has, with a wake-up registered unless the sweeper is waited for
    /// on its engine's own thread ([`wait`](Sweeper::wait)).
    fn poll_done(
        &mut self,
        cx: &mut std::task::Context<'_>,
        out: &mut Vec<Ended>,
    ) -> std::task::Poll<()>;
}
