//! The network side of a path trace: one probe of the port itself with a limited TTL, and who
//! answered it.
//!
//! On Linux this needs no privileges: the probe is an ordinary TCP connect or UDP datagram,
//! and `IP_RECVERR` / `IPV6_RECVERR` put the ICMP error a router sends back for it (time
//! exceeded, destination unreachable) on the socket's error queue with the router's
//! address, as `tracepath` reads it. Elsewhere the port's path is not traced.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::{HopAnswer, Protocol};

/// One TTL-limited probe of `protocol` to `addr`, waited for at most `timeout`.
// Elsewhere than Linux the body has nothing to wait for, but callers await it on every target.
#[cfg_attr(not(target_os = "linux"), allow(clippy::unused_async))]
pub(super) async fn hop(
    addr: SocketAddr,
    protocol: Protocol,
    ttl: u8,
    timeout: Duration,
) -> HopAnswer {
    #[cfg(target_os = "linux")]
    {
        linux::hop(addr, protocol, ttl, timeout).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (addr, protocol, ttl, timeout);
        HopAnswer::Unsupported
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use nix::libc;
    use nix::sys::socket::{self as nixsock, sockopt, ControlMessageOwned, MsgFlags};
    use socket2::{Domain, Socket, Type};
    use tokio::io::Interest;

    use crate::model::{HopAnswer, Protocol, Rejection};

    /// What a UDP trace probe carries: the same words as the port's own plain probe.
    const PAYLOAD: &[u8] = super::super::net::UDP_PAYLOAD;

    pub(super) async fn hop(
        addr: SocketAddr,
        protocol: Protocol,
        ttl: u8,
        timeout: Duration,
    ) -> HopAnswer {
        let tried = match protocol {
            Protocol::Tcp => tcp(addr, ttl, timeout).await,
            Protocol::Udp => udp(addr, ttl, timeout).await,
        };
        tried.unwrap_or_else(|e| HopAnswer::Local(e.to_string()))
    }

    fn open(addr: SocketAddr, ty: Type, ttl: u8) -> io::Result<Socket> {
        let protocol = if ty == Type::STREAM {
            socket2::Protocol::TCP
        } else {
            socket2::Protocol::UDP
        };
        let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
        socket.set_nonblocking(true)?;
        if addr.is_ipv4() {
            socket.set_ttl_v4(u32::from(ttl))?;
            nixsock::setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?;
        } else {
            socket.set_unicast_hops_v6(u32::from(ttl))?;
            nixsock::setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?;
        }
        Ok(socket)
    }

    async fn tcp(addr: SocketAddr, ttl: u8, timeout: Duration) -> io::Result<HopAnswer> {
        let socket = open(addr, Type::STREAM, ttl)?;
        // A probe that got through is closed with a reset at once: a trace never holds a
        // connection to the service.
        socket.set_linger(Some(Duration::ZERO))?;
        match socket.connect(&addr.into()) {
            Ok(()) => return Ok(HopAnswer::Reached),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Ok(HopAnswer::Local(e.to_string())),
        }
        // Still connecting: tokio waits for the connect to end, as its own connect does.
        let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(socket))?;
        let interest = Interest::WRITABLE | Interest::ERROR;
        let Ok(ready) = tokio::time::timeout(timeout, stream.ready(interest)).await else {
            return Ok(HopAnswer::Silent);
        };
        ready?;
        if let Some(answer) = error_queue(&stream, addr)? {
            return Ok(answer);
        }
        Ok(match stream.take_error()? {
            None => HopAnswer::Reached,
            Some(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => HopAnswer::Reached,
            Some(e) => HopAnswer::Local(e.to_string()),
        })
    }

    async fn udp(addr: SocketAddr, ttl: u8, timeout: Duration) -> io::Result<HopAnswer> {
        let socket = open(addr, Type::DGRAM, ttl)?;
        let sent = socket
            .connect(&addr.into())
            .and_then(|()| socket.send(PAYLOAD));
        if let Err(e) = sent {
            return Ok(HopAnswer::Local(e.to_string()));
        }
        let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
        let interest = Interest::READABLE | Interest::ERROR;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Ok(ready) = tokio::time::timeout_at(deadline, socket.ready(interest)).await else {
                return Ok(HopAnswer::Silent);
            };
            ready?;
            if let Some(answer) = error_queue(&socket, addr)? {
                return Ok(answer);
            }
            let mut buf = [0u8; 64];
            match socket.try_recv(&mut buf) {
                Ok(_) => return Ok(HopAnswer::Reached),
                // Readiness and the socket disagree now and then (tokio clears it): wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Ok(HopAnswer::Local(e.to_string())),
            }
        }
    }

    /// The ICMP error on the socket's error queue, if one came: who sent it and what it says.
    fn error_queue(socket: &impl AsRawFd, target: SocketAddr) -> io::Result<Option<HopAnswer>> {
        let mut data = [0u8; 256];
        let mut iov = [io::IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let msg = match nixsock::recvmsg::<nixsock::SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            flags,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        for cmsg in msg.cmsgs()? {
            let (err, from) = match cmsg {
                ControlMessageOwned::Ipv4RecvErr(err, from) => (
                    err,
                    from.map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))),
                ),
                ControlMessageOwned::Ipv6RecvErr(err, from) => (
                    err,
                    from.map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr))),
                ),
                _ => continue,
            };
            return Ok(Some(classify(&err, from, target.ip())));
        }
        Ok(None)
    }

    fn classify(err: &libc::sock_extended_err, from: Option<IpAddr>, target: IpAddr) -> HopAnswer {
        let icmp = match err.ee_origin {
            libc::SO_EE_ORIGIN_ICMP => Icmp::from_v4(err.ee_type, err.ee_code),
            libc::SO_EE_ORIGIN_ICMP6 => Icmp::from_v6(err.ee_type, err.ee_code),
            _ => None,
        };
        let (Some(icmp), Some(from)) = (icmp, from) else {
            return HopAnswer::Local(
                io::Error::from_raw_os_error(err.ee_errno.cast_signed()).to_string(),
            );
        };
        super::answer(icmp, from, target)
    }

    /// The ICMP messages a trace tells apart.
    #[derive(Clone, Copy)]
    pub(super) enum Icmp {
        TimeExceeded,
        Unreachable(Rejection),
    }

    impl Icmp {
        fn from_v4(kind: u8, code: u8) -> Option<Icmp> {
            Some(match (kind, code) {
                (11, _) => Icmp::TimeExceeded,
                (3, 0) => Icmp::Unreachable(Rejection::Network),
                (3, 1) => Icmp::Unreachable(Rejection::Host),
                (3, 3) => Icmp::Unreachable(Rejection::Port),
                (3, 9 | 10 | 13) => Icmp::Unreachable(Rejection::Prohibited),
                (3, _) => Icmp::Unreachable(Rejection::Other),
                _ => return None,
            })
        }

        fn from_v6(kind: u8, code: u8) -> Option<Icmp> {
            Some(match (kind, code) {
                (3, _) => Icmp::TimeExceeded,
                (1, 0) => Icmp::Unreachable(Rejection::Network),
                (1, 3) => Icmp::Unreachable(Rejection::Host),
                (1, 4) => Icmp::Unreachable(Rejection::Port),
                (1, 1 | 5 | 6) => Icmp::Unreachable(Rejection::Prohibited),
                (1, _) => Icmp::Unreachable(Rejection::Other),
                _ => return None,
            })
        }
    }
}

#[cfg(target_os = "linux")]
use linux::Icmp;

/// What an ICMP error from `from` means for a probe of `target`: the target's own port
/// unreachable is the target answering; the same from a router is a rejection in its name.
#[cfg(target_os = "linux")]
fn answer(icmp: Icmp, from: std::net::IpAddr, target: std::net::IpAddr) -> HopAnswer {
    use crate::model::Rejection;
    match icmp {
        Icmp::TimeExceeded => HopAnswer::Expired(from),
        Icmp::Unreachable(Rejection::Port) if from == target => HopAnswer::Reached,
        Icmp::Unreachable(why) => HopAnswer::Rejected { by: from, why },
    }
}
