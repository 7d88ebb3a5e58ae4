//! Who a client of `serve` is (`Source`), and its TCP connections that have not sent their
//! probe yet: how long they may take, capped per source and evicted oldest first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use std::time::Duration;

use tokio::sync::oneshot;

/// How long a TCP client has to send its whole challenge after connecting.
pub(super) const CHALLENGE_DEADLINE: Duration = Duration::from_secs(3);
/// How long a TCP client has to send its first bytes: a client with the key sends its probe
/// with the handshake's last packet, so this leaves room for two retransmissions.
pub(super) const FIRST_BYTES_DEADLINE: Duration = Duration::from_secs(1);
/// How long a new TCP connection may take to send its probe before it counts as waiting: a
/// client with the key sends it right behind the handshake, so only a lost segment (or a
/// slowloris) takes longer.
pub(super) const WAITING_GRACE: Duration = Duration::from_millis(100);

/// Who a client is, for serve's limits: an IPv4 address, or an IPv6 /64 (one line is handed
/// a whole /64, so its single addresses would be unlimited sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Source {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl Source {
    pub(super) fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4),
            // IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(Source::V6Net((u128::from(v6) >> 64) as u64), Source::V4),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
