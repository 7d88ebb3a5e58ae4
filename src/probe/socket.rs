//! What every socket probe shares: a TCP connect with its self-connect guard, and what an
//! operating system's error or a stale reply says about the path, as an [`Attempt`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::{Attempt, Local, Why};
use crate::model::{Protocol, State};
use crate::protocol::Probe;

/// Sent in every plain UDP probe. Some services answer anything; silence is handled by
/// the engine as `open|filtered`.
pub(super) const UDP_PAYLOAD: &[u8] = b"automate-ports probe\n";

/// How often a loopback connect may land on its own source port before we give up.
pub(super) const SELF_CONNECT_TRIES: usize = 4;

#[cfg(debug_assertions)]
pub(super) fn stall_port() -> Option<u16> {
    static PORT: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        std::env::var("AUTOMATE_PORTS_TEST_STALL")
            .ok()?
            .parse()
            .ok()
    })
}

/// `serve` refused the probe as stale: by how much its clock differs from ours, taking
/// its answer to have been made halfway between our send and now.
pub(super) fn stale(probe: &Probe, responder_ms: u64) -> Why {
    let midway = i128::from(probe.timestamp_ms)
        + (i128::from(crate::sys::now_ms()) - i128::from(probe.timestamp_ms)) / 2;
    let offset = i128::from(responder_ms) - midway;
    Why::Stale {
        offset_ms: offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
    }
}

/// A plain connect. Returns the stream when the handshake completed, for a keyed exchange.
pub(super) async fn tcp_connect(addr: SocketAddr) -> (Attempt, Option<TcpStream>) {
    for _ in 0..SELF_CONNECT_TRIES {
        let socket = match new_tcp_socket(addr) {
            Ok(s) => s,
            Err(e) => return (local_error(&e, addr), None),
        };
        match socket.connect(addr).await {
            Ok(stream) if is_self_connect(&stream, addr) => {
                // Linux can pick the target port as our own source port on loopback and
                // "connect" to itself (simultaneous open); nothing listens there. Try again.
                drop(stream);
            }
            Ok(stream) => {
                // Close with RST, not FIN: no TIME_WAIT left behind per probed port, and half
                // the teardown packets on a sweep of thousands of open ports.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return (Attempt::Answer(State::Open, Why::Connected), Some(stream));
            }
            Err(e) => return (classify(&e, addr, Protocol::Tcp), None),
        }
    }
    (Attempt::Answer(State::Closed, Why::Refused), None)
}

fn new_tcp_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
}

/// The peer of a connected stream is the address we dialled, so comparing our own address
/// with it takes one system call instead of two.
fn is_self_connect(stream: &TcpStream, dialled: SocketAddr) -> bool {
    stream.local_addr().is_ok_and(|local| local == dialled)
}

pub(super) fn unspecified(ip: IpAddr) -> SocketAddr {
    match ip {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

/// Maps a socket error to what it says about the path.
pub(super) fn classify(e: &io::Error, addr: SocketAddr, protocol: Protocol) -> Attempt {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => match protocol {
            Protocol::Tcp => Attempt::Answer(State::Closed, Why::Refused),
            Protocol::Udp => Attempt::Answer(State::Closed, Why::PortUnreachable),
        },
        // Windows reports ICMP port unreachable on a UDP socket as WSAECONNRESET (10054).
        K::ConnectionReset if protocol == Protocol::Udp => {
            Attempt::Answer(State::Closed, Why::PortUnreachable)
        }
        K::ConnectionReset => Attempt::Answer(State::Closed, Why::Refused),
        K::HostUnreachable => Attempt::Answer(State::Filtered, Why::HostUnreachable),
        K::PermissionDenied if e.raw_os_error() == crate::sys::EACCES_REMOTE => {
            Attempt::Answer(State::Filtered, Why::HostUnreachable)
        }
        // Netfilter's OUTPUT chain (or a local policy) dropping the packet shows as EPERM.
        K::PermissionDenied => Attempt::Answer(State::Filtered, Why::LocalFirewall),
        // The kernel gave up on the SYN before our timeout: as good as silence.
        K::TimedOut => Attempt::Silent,
        _ => local_error(e, addr),
    }
}

pub(super) fn local_error(e: &io::Error, addr: SocketAddr) -> Attempt {
    let local = match e.kind() {
        io::ErrorKind::NetworkUnreachable => Local::NoRoute(addr.ip()),
        _ if e.raw_os_error() == Some(crate::sys::EMFILE) => Local::NoDescriptors,
        _ => Local::Probe(addr, e.to_string()),
    };
    Attempt::Answer(State::Error, Why::Local(Box::new(local)))
}

pub(super) fn bind_error(e: &io::Error, addr: SocketAddr) -> Attempt {
    let local = match e.kind() {
        io::ErrorKind::PermissionDenied => Local::BindDenied(addr),
        io::ErrorKind::AddrNotAvailable => Local::NotOurs(addr.ip()),
        _ => Local::Bind(addr, e.to_string()),
    };
    Attempt::Answer(State::Error, Why::Local(Box::new(local)))
}
