//! Probes of this machine itself: the loopback exchange (the agent's tray port) and whether
//! a service here listens on a port, with the process that holds it where the OS tells.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::socket::{bind_error, classify, local_error};
use super::{Attempt, Why};
use crate::model::{PortRange, Protocol, State};

/// Whether a service on this machine holds the port: TCP accepts a connect on `addr`; UDP
/// refuses our bind of `addr` (a free port is bound for a moment, then let go).
pub(super) async fn listening(addr: SocketAddr, protocol: Protocol, timeout: Duration) -> Attempt {
    match protocol {
        Protocol::Tcp => match TcpStream::connect(addr).await {
            Ok(_) => {
                let holder = holder(move || crate::sys::tcp_listener(addr.port()), timeout).await;
                Attempt::Answer(State::Open, Why::Listens(holder))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                Attempt::Answer(State::Closed, Why::NothingListens)
            }
            Err(e) => classify(&e, addr, Protocol::Tcp),
        },
        Protocol::Udp => match UdpSocket::bind(addr).await {
            Ok(_) => Attempt::Answer(State::Closed, Why::NothingListens),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let holder = holder(move || crate::sys::udp_holder(addr), timeout).await;
                Attempt::Answer(State::Open, Why::Listens(holder))
            }
            Err(e) => bind_error(&e, addr),
        },
    }
}

/// Binds the port on this machine's address and sends ourselves a datagram through it.
/// Where another program holds it and the check has an install range (`fallback`), which
/// port an install would take instead.
pub(super) async fn udp_loopback(
    addr: SocketAddr,
    fallback: Option<PortRange>,
    timeout: Duration,
) -> Attempt {
    let listener = match UdpSocket::bind(addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let holder = holder(move || crate::sys::udp_holder(addr), timeout).await;
            let agent = holder
                .as_ref()
                .is_some_and(|holder| holder.is_automate_agent());
            return Attempt::Answer(
                State::Open,
                match fallback {
                    Some(range) if !agent => Why::InstallMoves {
                        holder,
                        free: first_free(addr, range).await,
                        range,
                    },
                    _ => Why::InUse(holder),
                },
            );
        }
        Err(e) => return bind_error(&e, addr),
    };
    let sender = match UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await {
        Ok(s) => s,
        Err(e) => return local_error(&e, addr),
    };
    let token = nonce();
    if let Err(e) = sender.send_to(&token, addr).await {
        return classify(&e, addr, Protocol::Udp);
    }
    let mut buf = [0u8; 64];
    loop {
        match crate::sys::udp::recv_from(&listener, &mut buf).await {
            Ok((n, from)) if from == sender.local_addr().unwrap_or(from) && buf[..n] == token => {
                return Attempt::Answer(State::Open, Why::Exchanged)
            }
            // A stray datagram for the port (an agent waking up?) is not our proof; wait on.
            Ok(_) => {}
            Err(e) => return local_error(&e, addr),
        }
    }
}

/// The port an install takes when `addr`'s is taken: as the community install scripts do
/// (LabTech / ConnectWiseAutomateAgent PowerShell modules, Install-LTService), the next one
/// up, wrapping from the end of `range` to its start, until one is free. Each is bound for a
/// moment and let go.
async fn first_free(addr: SocketAddr, range: PortRange) -> Option<u16> {
    let from = addr.port();
    let order = (from..=range.end()).chain(range.start()..from);
    for port in order {
        if UdpSocket::bind(SocketAddr::new(addr.ip(), port))
            .await
            .is_ok()
        {
            return Some(port);
        }
    }
    None
}

/// Which process holds a port, asked of the OS off the runtime's workers and within half the
/// probe's timeout: a lookup that hangs costs the name, never the probe or the run.
async fn holder(
    lookup: impl FnOnce() -> Option<crate::sys::Holder> + Send + 'static,
    timeout: Duration,
) -> Option<Box<crate::sys::Holder>> {
    let asked = tokio::task::spawn_blocking(lookup);
    tokio::time::timeout(timeout / 2, asked)
        .await
        .ok()?
        .ok()?
        .map(Box::new)
}

pub(super) async fn tcp_loopback(addr: SocketAddr) -> Attempt {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Attempt::Answer(State::Open, Why::InUse(None))
        }
        Err(e) => return bind_error(&e, addr),
    };
    let (connected, _) = tokio::join!(TcpStream::connect(addr), listener.accept());
    match connected {
        Ok(_) => Attempt::Answer(State::Open, Why::Exchanged),
        Err(e) => classify(&e, addr, Protocol::Tcp),
    }
}

fn nonce() -> [u8; 16] {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let a = state.hash_one(std::time::SystemTime::now()).to_le_bytes();
    let b = state.hash_one(std::process::id()).to_le_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a);
    out[8..].copy_from_slice(&b);
    out
}
