//! TCP connections to `serve`: reading the challenge under deadlines, and the waiting
//! connections capped per source and evicted oldest first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::responder::{Answer, Responder, Source};
use crate::protocol::{Reject, PROBE_LEN};

/// How long a TCP client has to send its whole challenge after connecting.
pub(super) const CHALLENGE_DEADLINE: Duration = Duration::from_secs(3);
/// How long a TCP client has to send its first bytes: a client with the key sends its probe
/// with the handshake's last packet, so this leaves room for two retransmissions.
pub(super) const FIRST_BYTES_DEADLINE: Duration = Duration::from_secs(1);
/// How long a new TCP connection may take to send its probe before it counts as waiting: a
/// client with the key sends it right behind the handshake, so only a lost segment (or a
/// slowloris) takes longer.
pub(super) const WAITING_GRACE: Duration = Duration::from_millis(100);
/// Connections from one source (IPv4 address or IPv6 /64) still waiting for their first
/// probe, at most; a newer one closes the oldest. A keyed sweep's probes arrive with the
/// connection, so only slow or lossy ones ever wait.
pub const PER_SOURCE_WAITING: usize = 32;
/// The same for a source that has proved the key in this run: on a lossy link a wide keyed
/// sweep has tens of connections waiting for a retransmitted probe at any moment, and
/// closing them would only make the sweep send them again.
pub const PER_KEYED_SOURCE_WAITING: usize = 1024;

/// Why a waiting connection was closed by another.
#[derive(Debug, Clone, Copy)]
pub(super) enum Evicted {
    PerSource,
    ForDescriptor,
}

/// TCP connections that have not sent their probe yet, oldest first (ids only grow): per
/// source at most [`PER_SOURCE_WAITING`], and the oldest of all closes when descriptors run
/// out. Every operation is O(log n) or O(cap), whatever the number of sources.
#[derive(Default)]
pub(super) struct Waiting {
    pub(super) next: u64,
    all: BTreeMap<u64, (Source, oneshot::Sender<Evicted>)>,
    by_source: HashMap<Source, VecDeque<u64>>,
}

impl Waiting {
    /// Registers a waiting connection; closes its source's oldest if that is over the cap.
    pub(super) fn add(&mut self, source: Source, cap: usize) -> (u64, oneshot::Receiver<Evicted>) {
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        let queue = self.by_source.entry(source).or_default();
        if queue.len() >= cap {
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

    pub(super) fn remove(&mut self, id: u64, source: Source) {
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
    pub(super) fn evict_oldest(&mut self) -> bool {
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

/// What a connection's first bytes earn: the reply to send, or `None` (closed unanswered,
/// counted and logged here).
pub(super) fn judge(
    responder: &Responder,
    first: &[u8],
    from: SocketAddr,
    port: u16,
) -> Option<Answer> {
    let result = if first.is_empty() {
        Err(Reject::Truncated)
    } else {
        responder.answer(first, from, port)
    };
    match result {
        Ok(reply) => Some(reply),
        Err(why) => {
            let peer = from.ip();
            tracing::debug!(%peer, port, reason = why.as_str(), "closed TCP connection unanswered");
            responder.stats.reject(why);
            None
        }
    }
}

/// Reads the rest of a challenge (`filled` bytes of it are in `buf` already) within the
/// deadlines; answers it if valid, else closes silently.
pub(super) async fn handle_tcp(
    responder: &Responder,
    stream: TcpStream,
    from: SocketAddr,
    port: u16,
    mut buf: [u8; PROBE_LEN + 1],
    filled: usize,
) {
    let Some(filled) = read_challenge(responder, &stream, from.ip(), &mut buf, filled).await else {
        return;
    };
    if let Some(reply) = judge(responder, &buf[..filled], from, port) {
        let mut stream = stream;
        if stream.write_all(reply.bytes()).await.is_ok() {
            responder.stats.answered_tcp.fetch_add(1, Ordering::Relaxed);
        }
        // Dropping the stream closes it at once, the reply already on its way: waiting for
        // `check` to close first would save a FIN, but a slow client would then hold
        // serve's descriptors and stall everyone else's accepts.
    }
}

/// Fills `buf` with the client's first bytes (a probe, or one byte more if it sends more).
/// A client gets [`WAITING_GRACE`] to send them; one that makes serve wait longer is
/// registered as waiting, under the per-source cap, until its bytes arrive or a deadline
/// passes. `None`: closed without an answer, already counted.
pub(super) async fn read_challenge(
    responder: &Responder,
    stream: &TcpStream,
    peer: IpAddr,
    buf: &mut [u8; PROBE_LEN + 1],
    mut filled: usize,
) -> Option<usize> {
    let started = tokio::time::Instant::now();
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
    let cap = if responder.has_proved_the_key(source) {
        PER_KEYED_SOURCE_WAITING
    } else {
        PER_SOURCE_WAITING
    };
    let (id, evicted) = responder
        .waiting
        .lock()
        .expect("no panics while held")
        .add(source, cap);
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
pub(super) async fn read_until(
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

pub(super) enum Progress {
    /// A whole probe (or more), the end of the stream, or an error: judge what is there.
    Done,
    /// Nothing more for now.
    More,
}

/// Takes what the socket holds without waiting.
pub(super) fn read_ready(stream: &TcpStream, buf: &mut [u8], filled: &mut usize) -> Progress {
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
    use std::net::Ipv4Addr;

    #[test]
    fn waiting_connections_are_capped_per_source_and_evicted_oldest_first() {
        let mut w = Waiting::default();
        let a = Source::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = Source::V4(Ipv4Addr::new(192, 0, 2, 2));
        let (first_b, mut rx_b) = w.add(b, PER_SOURCE_WAITING);
        let mut receivers = Vec::new();
        for _ in 0..PER_SOURCE_WAITING {
            receivers.push(w.add(a, PER_SOURCE_WAITING));
        }
        assert!(receivers.iter_mut().all(|(_, rx)| rx.try_recv().is_err()));
        let _newest = w.add(a, PER_SOURCE_WAITING);
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
