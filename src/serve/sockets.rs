//! `serve`'s sockets: binding every port (dual-stack where the OS allows), why a port was
//! skipped, the UDP receive loop, a just-accepted connection answered on the spot (Linux)
//! and the accept loop elsewhere.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
#[cfg(target_os = "linux")]
use tokio::io::AsyncWriteExt;
#[cfg(not(target_os = "linux"))]
use tokio::net::TcpListener;
#[cfg(target_os = "linux")]
use tokio::net::TcpStream;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::responder::Responder;
use super::tcp::handle_tcp;
#[cfg(target_os = "linux")]
use super::tcp::judge;
use crate::model::Protocol;
use crate::protocol::PROBE_LEN;
use crate::sys::EMFILE;

/// How long an accept loop that ran out of descriptors waits for a connection to close
/// before it tries again anyway.
pub(super) const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Every address, on one dual-stack socket per port where the OS allows (half the
/// descriptors of separate IPv4 and IPv6 sockets), else IPv4 alone.
pub(super) fn bind_addresses(binds: &[IpAddr]) -> (Vec<IpAddr>, bool) {
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

pub(super) enum Listener {
    /// Bound, not yet listening: until serve starts answering, a connection is refused rather
    /// than queued (its probe would be older than serve's start, and go unanswered).
    Tcp(Socket),
    Udp(std::net::UdpSocket),
}

pub(super) fn bind_one(addr: SocketAddr, protocol: Protocol, dual: bool) -> io::Result<Listener> {
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
        Protocol::Tcp => Listener::Tcp(socket),
        Protocol::Udp => Listener::Udp(socket.into()),
    })
}

pub(super) fn skip_reason(e: &io::Error, protocol: Protocol) -> String {
    skip_reason_on(e, protocol, cfg!(windows))
}

/// Why a port could not be bound, for the platform serve runs on: Windows refuses a port
/// with WSAEACCES when a Hyper-V/WinNAT range reserves it or another program holds it
/// exclusively; below 1024 needs no Administrator there.
fn skip_reason_on(e: &io::Error, protocol: Protocol, windows: bool) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied if windows => {
            let proto = if protocol == Protocol::Tcp { "tcp" } else { "udp" };
            format!("reserved by Windows or held exclusively by another program (see `netsh int ipv4 show excludedportrange protocol={proto}`; Hyper-V and WinNAT reserve ranges): pick the role's other ports, or free the range")
        }
        io::ErrorKind::AddrInUse => match protocol {
            Protocol::Tcp => "in use on this machine, so left to the real service: check --key proves these through the service's own answer where the check has an application probe (TLS, Automate, HTTP, MySQL), and reports the others as 'not automate-ports serve'".to_string(),
            Protocol::Udp => "in use on this machine, so left to the real service: check --key reports these as silent (the real service does not answer the key)".to_string(),
        },
        io::ErrorKind::PermissionDenied => {
            "permission denied: ports below 1024 need root/Administrator (or setcap cap_net_bind_service=+ep on the binary)".to_string()
        }
        _ if e.raw_os_error() == Some(EMFILE) => {
            "too few file descriptors: raise the open-file limit (ulimit -n)".to_string()
        }
        _ => e.to_string(),
    }
}

/// Starts answering on `socket`: a UDP socket (and elsewhere a TCP listener) as a task in
/// `tasks`. On Linux a TCP listener comes back, listening, for the accept thread
/// (`acceptor.rs`).
pub(super) fn spawn_listener(
    tasks: &mut JoinSet<()>,
    socket: Listener,
    port: u16,
    responder: &Arc<Responder>,
) -> io::Result<Option<(Socket, u16)>> {
    let responder = Arc::clone(responder);
    match socket {
        Listener::Tcp(socket) => {
            socket.listen(1024)?;
            // A connection reaches `accept` with its probe (after a second without one, the
            // kernel hands it over anyway), and the probe's ACK rides on the reply instead of
            // going out alone. Both are only ever a speed-up, so a refusal is ignored.
            #[cfg(target_os = "linux")]
            {
                let _ = crate::sys::defer_accept(&socket, 1);
                let _ = socket.set_tcp_quickack(false);
            }
            #[cfg(target_os = "linux")]
            return Ok(Some((socket, port)));
            #[cfg(not(target_os = "linux"))]
            tasks.spawn(accept_tasks(
                TcpListener::from_std(socket.into())?,
                port,
                responder,
            ));
        }
        Listener::Udp(socket) => {
            let socket = UdpSocket::from_std(socket)?;
            tasks.spawn(async move {
                // One byte more than a probe: anything that fills it is oversized.
                let mut buf = [0u8; PROBE_LEN + 1];
                loop {
                    let Ok((n, from)) = crate::sys::udp::recv_from(&socket, &mut buf).await else {
                        // ICMP errors from earlier replies surface here on some systems.
                        continue;
                    };
                    match responder.answer(&buf[..n], from, port) {
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
    Ok(None)
}

/// Out of descriptors: the connection stays in the kernel's accept queue (the client waits,
/// it is not refused). The connection that has waited longest for its probe is closed to make
/// room, else one that is being answered will close soon.
pub(super) async fn out_of_descriptors(responder: &Responder) {
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
    let _ = tokio::time::timeout(ACCEPT_RETRY, responder.freed.notified()).await;
}

/// Reads what a just-accepted connection holds without waiting; a whole probe is judged and
/// answered at once, anything less goes to a task with the deadlines of [`handle_tcp`].
#[cfg(target_os = "linux")]
pub(super) fn answer_accepted(
    responder: &Arc<Responder>,
    stream: Socket,
    from: SocketAddr,
    port: u16,
) {
    use nix::errno::Errno;
    use nix::sys::socket::{recv, send, MsgFlags};
    use std::os::fd::AsRawFd;

    let fd = stream.as_raw_fd();
    let mut buf = [0u8; PROBE_LEN + 1];
    let mut filled = 0;
    let complete = loop {
        if filled >= PROBE_LEN {
            break true;
        }
        match recv(fd, &mut buf[filled..], MsgFlags::MSG_DONTWAIT) {
            Ok(0) => break true,
            Ok(n) => filled += n,
            Err(Errno::EAGAIN) => break false,
            Err(Errno::EINTR) => {}
            Err(_) => break true,
        }
    };
    if !complete {
        // Too slow for the fast path: the same deadlines, caps and judgement as on every
        // other platform, from the bytes read so far.
        let Some(stream) = into_tokio(stream) else {
            return;
        };
        let responder = Arc::clone(responder);
        tokio::spawn(async move {
            handle_tcp(&responder, stream, from, port, buf, filled).await;
            responder.freed.notify_one();
        });
        return;
    }
    let Some(reply) = judge(responder, &buf[..filled], from, port) else {
        return;
    };
    let bytes = reply.bytes();
    // MSG_MORE holds the reply back for the FIN that closing adds: one segment, not two. A
    // fresh connection's send buffer is empty, so the reply goes in one call.
    let more = MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
    let sent = match send(
        fd,
        bytes,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL | more,
    ) {
        Ok(n) if n == bytes.len() => {
            responder.stats.answered_tcp.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(n) => n,
        Err(Errno::EAGAIN) => 0,
        Err(_) => return,
    };
    // The rest of a reply that did not fit, written as the socket drains.
    let Some(mut stream) = into_tokio(stream) else {
        return;
    };
    let rest = bytes[sent..].to_vec();
    let responder = Arc::clone(responder);
    tokio::spawn(async move {
        if stream.write_all(&rest).await.is_ok() {
            responder.stats.answered_tcp.fetch_add(1, Ordering::Relaxed);
        }
        drop(stream);
        responder.freed.notify_one();
    });
}

/// A just-accepted connection handed to the runtime; `None` if it cannot take it (closed).
#[cfg(target_os = "linux")]
fn into_tokio(stream: Socket) -> Option<TcpStream> {
    stream
        .set_nonblocking(true)
        .and_then(|()| TcpStream::from_std(stream.into()))
        .ok()
}

/// The accept loop elsewhere: a task per connection.
#[cfg(not(target_os = "linux"))]
async fn accept_tasks(listener: TcpListener, port: u16, responder: Arc<Responder>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if e.raw_os_error() == Some(EMFILE) => {
                out_of_descriptors(&responder).await;
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
            handle_tcp(&responder, stream, from, port, [0; PROBE_LEN + 1], 0).await;
            responder.freed.notify_one();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_bind_is_explained_for_the_platform() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(
            skip_reason_on(&denied, Protocol::Tcp, false).contains("ports below 1024 need root")
        );
        let windows = skip_reason_on(&denied, Protocol::Udp, true);
        assert!(
            windows.contains("netsh int ipv4 show excludedportrange protocol=udp")
                && !windows.contains("below 1024"),
            "{windows}"
        );
    }
}
