//! Receiving a UDP datagram without trusting that readiness and `recv` agree.
//!
//! tokio's `recv` loops "wait until readable, try, clear readiness" without yielding while the
//! try says "would block", and it never clears a *closed* readiness. Wine 8 flags a UDP
//! socket that got an ICMP port unreachable as closed, yet its `recv` keeps saying "would
//! block" instead of returning WSAECONNRESET as Windows does: tokio's loop then spins on one
//! worker forever, and no timeout around it is ever polled. These helpers ask the socket's
//! pending error in that case, and otherwise yield between tries, so every caller's deadline
//! holds whatever the OS does.
//!
//! Wine 8 also loses the readiness altogether now and then (about one try in seven on a
//! loopback port, both tries of a probe about one in fifty): the ICMP error sits on the socket
//! and no poll ever reports it, so a closed port would read silent. On Windows a connected
//! socket's pending error is therefore also asked for on a slow timer while it waits.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The pause between tries while the OS says "ready" and `recv` says "would block": long
/// enough not to burn a core, short against any probe's timeout.
const DISAGREE_PAUSE: Duration = Duration::from_millis(10);

/// The first look at a waiting socket's pending error, and the longest gap between looks:
/// a closed port answers within a round trip, so the first look comes early; the gaps then
/// double, a few system calls per try in all.
#[cfg(windows)]
const ERROR_LOOK_FIRST: Duration = Duration::from_millis(25);
#[cfg(windows)]
const ERROR_LOOK_MAX: Duration = Duration::from_millis(400);

/// One datagram from the connected peer.
pub async fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    let mut look = ErrorLook::new();
    loop {
        let ready = tokio::select! {
            ready = socket.ready(Interest::READABLE | Interest::ERROR) => ready?,
            () = look.next() => {
                if let Some(e) = socket.take_error()? {
                    return Err(e);
                }
                continue;
            }
        };
        match socket.try_recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => disagree(socket, ready).await?,
            other => return other,
        }
    }
}

/// One datagram from anyone, with its source.
pub async fn recv_from(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    loop {
        let ready = socket.ready(Interest::READABLE | Interest::ERROR).await?;
        match socket.try_recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => disagree(socket, ready).await?,
            other => return other,
        }
    }
}

/// Readiness said "readable" and `recv` had nothing. A plain spurious wake is cleared by
/// tokio and costs nothing; a closed or error readiness stays set, so the socket's pending
/// error is the answer, or else a short pause before the next try.
async fn disagree(socket: &UdpSocket, ready: tokio::io::Ready) -> io::Result<()> {
    if !(ready.is_read_closed() || ready.is_error()) {
        return Ok(());
    }
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    tracing::trace!(?ready, "readiness without a datagram or an error");
    tokio::time::sleep(DISAGREE_PAUSE).await;
    Ok(())
}

/// When to look at a connected socket's pending error without being told to (see the module
/// comment): on a doubling timer on Windows, never elsewhere.
struct ErrorLook {
    #[cfg(windows)]
    gap: Duration,
}

impl ErrorLook {
    fn new() -> Self {
        ErrorLook {
            #[cfg(windows)]
            gap: ERROR_LOOK_FIRST,
        }
    }

    #[cfg(windows)]
    async fn next(&mut self) {
        tokio::time::sleep(self.gap).await;
        self.gap = (self.gap * 2).min(ERROR_LOOK_MAX);
    }

    #[cfg(not(windows))]
    async fn next(&mut self) {
        std::future::pending::<()>().await;
    }
}
