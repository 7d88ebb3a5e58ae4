//! The network side of a path trace: one probe of the port itself with a limited TTL, and who
//! answered it.
//!
//! On Linux this needs no privileges: the probe is an ordinary TCP connect or UDP datagram,
//! and `IP_RECVERR` / `IPV6_RECVERR` put the ICMP error a router sends back for it (time
//! exceeded, destination unreachable) on the socket's error queue with the router's
//! address, as `tracepath` reads it.
//!
//! On Windows an administrator may open a raw ICMP socket: the same TCP or UDP probe goes
//! out with a limited TTL, and the raw socket receives the ICMP errors, matched to the probe
//! by the packet they quote (addresses, protocol, ports). Without administrator rights only
//! ICMP echo can be sent with a TTL (`IcmpSendEcho2`): the routers on the way are seen, but
//! not the port's own path, and the trace says so ([`TraceMethod::IcmpEcho`]). Elsewhere the
//! port's path is not traced.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::{HopAnswer, Protocol, TraceMethod};

/// One TTL-limited probe of `protocol` to `addr`, waited for at most `timeout`.
// Elsewhere than Linux and Windows the body has nothing to wait for, but callers await it.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(clippy::unused_async))]
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
    #[cfg(windows)]
    {
        windows::hop(addr, protocol, ttl, timeout).await
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = (addr, protocol, ttl, timeout);
        HopAnswer::Unsupported
    }
}

/// What [`hop`] probes `addr` with on this machine.
pub(super) fn method(addr: SocketAddr) -> TraceMethod {
    #[cfg(windows)]
    {
        windows::method(addr.is_ipv4())
    }
    #[cfg(not(windows))]
    {
        let _ = addr;
        TraceMethod::Port
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

    use super::Icmp;
    use crate::model::{HopAnswer, Protocol};

    /// What a UDP trace probe carries: the same words as the port's own plain probe.
    const PAYLOAD: &[u8] = super::super::socket::UDP_PAYLOAD;

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
}

/// The ICMP messages a trace tells apart.
#[cfg(any(target_os = "linux", windows, test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Icmp {
    TimeExceeded,
    Unreachable(crate::model::Rejection),
}

#[cfg(any(target_os = "linux", windows, test))]
impl Icmp {
    /// From an ICMP (IPv4) type and code.
    fn from_v4(kind: u8, code: u8) -> Option<Icmp> {
        use crate::model::Rejection;
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

    /// From an ICMPv6 type and code.
    fn from_v6(kind: u8, code: u8) -> Option<Icmp> {
        use crate::model::Rejection;
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

/// What an ICMP error from `from` means for a probe of `target`: the target's own port
/// unreachable is the target answering; the same from a router is a rejection in its name.
#[cfg(any(target_os = "linux", windows, test))]
fn answer(icmp: Icmp, from: std::net::IpAddr, target: std::net::IpAddr) -> HopAnswer {
    use crate::model::Rejection;
    match icmp {
        Icmp::TimeExceeded => HopAnswer::Expired(from),
        Icmp::Unreachable(Rejection::Port) if from == target => HopAnswer::Reached,
        Icmp::Unreachable(why) => HopAnswer::Rejected { by: from, why },
    }
}

/// An ICMP error as a raw socket receives it, and the probe it quotes: the IPv4 header
/// comes first on IPv4 (Windows and Linux both hand it over), none on IPv6.
#[cfg(any(windows, test))]
#[derive(Debug, PartialEq, Eq)]
struct Quoted {
    icmp: Icmp,
    /// The quoted probe's transport protocol (6 TCP, 17 UDP).
    protocol: u8,
    /// Where the quoted probe was going.
    to: SocketAddr,
    /// The quoted probe's source port: which of this machine's probes it was.
    from_port: u16,
}

#[cfg(any(windows, test))]
fn quoted(packet: &[u8], v4: bool) -> Option<Quoted> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let icmp = if v4 {
        let header = usize::from(packet.first()? & 0x0f) * 4;
        if packet.first()? >> 4 != 4 || *packet.get(9)? != 1 {
            return None;
        }
        packet.get(header..)?
    } else {
        packet
    };
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    // After the ICMP header's 8 bytes, the probe's own IP header and transport ports.
    let inner = icmp.get(8..)?;
    let (icmp, protocol, to, transport) = if v4 {
        let header = usize::from(inner.first()? & 0x0f) * 4;
        if inner.first()? >> 4 != 4 {
            return None;
        }
        let to: [u8; 4] = inner.get(16..20)?.try_into().ok()?;
        (
            Icmp::from_v4(kind, code)?,
            *inner.get(9)?,
            std::net::IpAddr::V4(Ipv4Addr::from(to)),
            inner.get(header..)?,
        )
    } else {
        if inner.first()? >> 4 != 6 {
            return None;
        }
        let to: [u8; 16] = inner.get(24..40)?.try_into().ok()?;
        (
            Icmp::from_v6(kind, code)?,
            *inner.get(6)?,
            std::net::IpAddr::V6(Ipv6Addr::from(to)),
            inner.get(40..)?,
        )
    };
    let port = |at: usize| {
        Some(u16::from_be_bytes([
            *transport.get(at)?,
            *transport.get(at + 1)?,
        ]))
    };
    Some(Quoted {
        icmp,
        protocol,
        to: SocketAddr::new(to, port(2)?),
        from_port: port(0)?,
    })
}

/// An ICMP echo's IP status (`IcmpSendEcho2`) from `from` as a hop: an echo reply, or a
/// port unreachable, from the target is the target reached.
#[cfg(any(windows, test))]
fn echo_answer(status: u32, from: std::net::IpAddr, target: std::net::IpAddr) -> HopAnswer {
    use crate::model::Rejection;
    // ipexport.h: IP_SUCCESS, IP_DEST_NET_UNREACHABLE .. IP_DEST_PORT_UNREACHABLE (11004 is
    // also IPv6's IP_DEST_PROHIBITED), IP_TTL_EXPIRED_TRANSIT, IP_TTL_EXPIRED_REASSEM.
    let icmp = match status {
        0 => return HopAnswer::Reached,
        11013 | 11014 => Icmp::TimeExceeded,
        11002 => Icmp::Unreachable(Rejection::Network),
        11003 => Icmp::Unreachable(Rejection::Host),
        11004 => Icmp::Unreachable(Rejection::Prohibited),
        11005 => Icmp::Unreachable(Rejection::Port),
        _ => Icmp::Unreachable(Rejection::Other),
    };
    answer(icmp, from, target)
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use socket2::{Domain, Socket, Type};

    use crate::model::{HopAnswer, Protocol, TraceMethod};

    const PAYLOAD: &[u8] = super::super::socket::UDP_PAYLOAD;

    /// The pause before an ICMP echo that failed is sent once more.
    const ECHO_AGAIN: Duration = Duration::from_millis(50);

    /// Raw ICMP sockets open for administrators only: then the port's own path is traced,
    /// else ICMP echo stands in. Asked once per family: a system may lack one family's raw
    /// ICMP socket (Wine has no ICMPv6 one). `AUTOMATE_PORTS_TRACE_METHOD=icmp-echo` chooses
    /// the echo where raw sockets would open (the lab tests it so under Wine, as root).
    pub(super) fn method(v4: bool) -> TraceMethod {
        static METHODS: [OnceLock<TraceMethod>; 2] = [OnceLock::new(), OnceLock::new()];
        *METHODS[usize::from(v4)].get_or_init(|| {
            let forced =
                std::env::var("AUTOMATE_PORTS_TRACE_METHOD").is_ok_and(|m| m == "icmp-echo");
            let raw = if v4 {
                Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::ICMPV4))
            } else {
                Socket::new(Domain::IPV6, Type::RAW, Some(socket2::Protocol::ICMPV6))
            };
            if forced || raw.is_err() {
                TraceMethod::IcmpEcho
            } else {
                TraceMethod::Port
            }
        })
    }

    pub(super) async fn hop(
        addr: SocketAddr,
        protocol: Protocol,
        ttl: u8,
        timeout: Duration,
    ) -> HopAnswer {
        let tried = match method(addr.is_ipv4()) {
            TraceMethod::Port => port(addr, protocol, ttl, timeout).await,
            TraceMethod::IcmpEcho => echo(addr, ttl, timeout).await,
        };
        tried.unwrap_or_else(|e| HopAnswer::Local(e.to_string()))
    }

    /// This machine's address on the way to `addr` (a UDP connect sends nothing).
    fn source(addr: SocketAddr) -> io::Result<IpAddr> {
        let any: IpAddr = match addr {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
        socket.connect(addr)?;
        Ok(socket.local_addr()?.ip())
    }

    async fn echo(addr: SocketAddr, ttl: u8, timeout: Duration) -> io::Result<HopAnswer> {
        let from = source(addr)?;
        let target = addr.ip();
        let echo_once = move || {
            tokio::task::spawn_blocking(move || crate::sys::echo(target, from, ttl, timeout))
        };
        let mut sent = echo_once().await.map_err(io::Error::other)?;
        if let Err(e) = &sent {
            // One failure is not yet "this system has no ICMP echo": Wine's echo failed
            // once in a loaded CI run where it answers every time otherwise.
            tracing::debug!(%target, ttl, error = %e, "ICMP echo failed; once more");
            tokio::time::sleep(ECHO_AGAIN).await;
            sent = echo_once().await.map_err(io::Error::other)?;
        }
        Ok(match sent {
            Ok(Some((status, by))) => super::echo_answer(status, by, target),
            Ok(None) => HopAnswer::Silent,
            // No ICMP echo at all here (Wine has none for IPv6): the path is not traced.
            Err(e) => {
                tracing::debug!(%target, ttl, error = %e, "no ICMP echo here");
                HopAnswer::Unsupported
            }
        })
    }

    /// The port's own probe with a limited TTL, and the ICMP error it drew, read from a raw
    /// socket opened (and bound: Windows gives an unbound raw socket nothing) before it.
    async fn port(
        addr: SocketAddr,
        protocol: Protocol,
        ttl: u8,
        timeout: Duration,
    ) -> io::Result<HopAnswer> {
        let local = source(addr)?;
        let (domain, icmp) = if addr.is_ipv4() {
            (Domain::IPV4, socket2::Protocol::ICMPV4)
        } else {
            (Domain::IPV6, socket2::Protocol::ICMPV6)
        };
        let raw = Socket::new(domain, Type::RAW, Some(icmp))?;
        raw.bind(&SocketAddr::new(local, 0).into())?;
        // Short reads, so the listener sees the probe end soon after it does.
        raw.set_read_timeout(Some(Duration::from_millis(50)))?;
        let raw = UdpSocket::from(raw);

        let (ty, transport) = match protocol {
            Protocol::Tcp => (Type::STREAM, socket2::Protocol::TCP),
            Protocol::Udp => (Type::DGRAM, socket2::Protocol::UDP),
        };
        let socket = Socket::new(Domain::for_address(addr), ty, Some(transport))?;
        if addr.is_ipv4() {
            socket.set_ttl_v4(u32::from(ttl))?;
        } else {
            socket.set_unicast_hops_v6(u32::from(ttl))?;
        }
        socket.bind(&SocketAddr::new(local, 0).into())?;
        let from_port = socket.local_addr()?.as_socket().map_or(0, |a| a.port());
        socket.set_nonblocking(true)?;

        let done = Arc::new(AtomicBool::new(false));
        let heard = {
            let done = Arc::clone(&done);
            let wanted = match protocol {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            };
            tokio::task::spawn_blocking(move || {
                listen(&raw, addr, wanted, from_port, timeout, &done)
            })
        };
        let own = async {
            match protocol {
                Protocol::Tcp => {
                    // A probe that got through is reset at once: a trace holds no connection.
                    socket.set_linger(Some(Duration::ZERO))?;
                    let stream = tokio::net::TcpSocket::from_std_stream(socket.into());
                    match stream.connect(addr).await {
                        Ok(_) => Ok(Some(HopAnswer::Reached)),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            Ok(Some(HopAnswer::Reached))
                        }
                        // Other ends (unreachable, timed out) are the raw socket's to tell.
                        Err(_) => Ok(None),
                    }
                }
                Protocol::Udp => {
                    let udp = tokio::net::UdpSocket::from_std(socket.into())?;
                    udp.connect(addr).await?;
                    udp.send(PAYLOAD).await?;
                    let mut buf = [0u8; 64];
                    // A reply is the target reached; an error (the ICMP the raw socket reads
                    // too) is left to it.
                    Ok(udp.recv(&mut buf).await.ok().map(|_| HopAnswer::Reached))
                }
            }
        };
        let answer = tokio::time::timeout(timeout, async {
            tokio::pin!(own);
            let mut heard = heard;
            let mut own_done = false;
            loop {
                tokio::select! {
                    found = &mut own, if !own_done => match found {
                        Ok(Some(answer)) => return Ok(answer),
                        Ok(None) => own_done = true,
                        Err(e) => return Err(e),
                    },
                    got = &mut heard => return Ok(got.ok().flatten().unwrap_or(HopAnswer::Silent)),
                }
            }
        })
        .await
        .unwrap_or(Ok(HopAnswer::Silent));
        done.store(true, Ordering::Relaxed);
        answer
    }

    /// Reads ICMP errors until one quotes this probe (`wanted` protocol from `from_port` to
    /// `target`), the timeout, or `done`.
    fn listen(
        raw: &UdpSocket,
        target: SocketAddr,
        wanted: u8,
        from_port: u16,
        timeout: Duration,
        done: &AtomicBool,
    ) -> Option<HopAnswer> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
            let (n, from) = match raw.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => return None,
            };
            let Some(q) = super::quoted(&buf[..n], target.is_ipv4()) else {
                continue;
            };
            if q.protocol == wanted && q.to == target && q.from_port == from_port {
                return Some(super::answer(q.icmp, from.ip(), target.ip()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::model::Rejection;

    /// An ICMP error of `kind`/`code` quoting a probe from port 40000 to `to`, as a raw
    /// socket of the family receives it.
    fn packet(kind: u8, code: u8, protocol: u8, to: SocketAddr) -> Vec<u8> {
        let mut icmp = vec![kind, code, 0, 0, 0, 0, 0, 0];
        match to.ip() {
            IpAddr::V4(ip) => {
                let mut inner = vec![0x45, 0, 0, 48, 0, 0, 0, 0, 1, protocol, 0, 0];
                inner.extend([192, 168, 77, 2]);
                inner.extend(ip.octets());
                icmp.extend(inner);
            }
            IpAddr::V6(ip) => {
                let mut inner = vec![0x60, 0, 0, 0, 0, 8, protocol, 1];
                inner.extend([0xfd, 0x77, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
                inner.extend(ip.octets());
                icmp.extend(inner);
            }
        }
        icmp.extend(40000u16.to_be_bytes());
        icmp.extend(to.port().to_be_bytes());
        icmp.extend([0, 0, 0, 0]);
        if to.is_ipv4() {
            let mut outer = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            outer.extend([192, 168, 77, 1, 192, 168, 77, 2]);
            outer.extend(icmp);
            outer
        } else {
            icmp
        }
    }

    #[test]
    fn a_quoted_probe_is_read_on_both_families() {
        let v4: SocketAddr = "198.51.100.2:8484".parse().unwrap();
        assert_eq!(
            quoted(&packet(11, 0, 6, v4), true),
            Some(Quoted {
                icmp: Icmp::TimeExceeded,
                protocol: 6,
                to: v4,
                from_port: 40000
            })
        );
        let v6: SocketAddr = "[2001:db8:2::2]:75".parse().unwrap();
        assert_eq!(
            quoted(&packet(1, 1, 17, v6), false),
            Some(Quoted {
                icmp: Icmp::Unreachable(Rejection::Prohibited),
                protocol: 17,
                to: v6,
                from_port: 40000
            })
        );
    }

    #[test]
    fn other_icmp_and_cut_packets_are_not_probes() {
        let v4: SocketAddr = "198.51.100.2:8484".parse().unwrap();
        // An echo reply, and an ICMP error cut before the quoted ports.
        assert_eq!(quoted(&packet(0, 0, 6, v4), true), None);
        let whole = packet(11, 0, 6, v4);
        for cut in 0..whole.len() - 4 {
            assert_eq!(quoted(&whole[..cut], true), None, "cut at {cut}");
        }
        // An IPv6 packet read as IPv4.
        let v6: SocketAddr = "[2001:db8:2::2]:75".parse().unwrap();
        assert_eq!(quoted(&packet(3, 0, 17, v6), true), None);
    }

    #[test]
    fn echo_statuses_are_hops() {
        let router: IpAddr = "192.168.77.1".parse().unwrap();
        let target: IpAddr = "198.51.100.2".parse().unwrap();
        assert_eq!(
            echo_answer(11013, router, target),
            HopAnswer::Expired(router)
        );
        assert_eq!(echo_answer(0, target, target), HopAnswer::Reached);
        assert_eq!(echo_answer(11005, target, target), HopAnswer::Reached);
        assert_eq!(
            echo_answer(11004, router, target),
            HopAnswer::Rejected {
                by: router,
                why: Rejection::Prohibited
            }
        );
    }
}
