//! `serve`'s counters, logged when it stops: what it answered, and what it ignored or
//! closed, by cause.

use std::sync::atomic::{AtomicU64, Ordering};

use super::waiting::{FIRST_BYTES_DEADLINE, PER_KEYED_SOURCE_WAITING, PER_SOURCE_WAITING};
use crate::protocol::Reject;

/// Counters, logged at the end: what was answered and what was ignored, by cause.
#[derive(Debug, Default)]
pub struct Stats {
    pub answered_tcp: AtomicU64,
    pub answered_udp: AtomicU64,
    /// Of those answered, refused as stale (MAC'd, with serve's clock).
    pub answered_stale: AtomicU64,
    /// Of those answered, mapped replies (the source address and port serve saw).
    pub answered_mapped: AtomicU64,
    rejected: [AtomicU64; Reject::ALL.len()],
    /// TCP connections closed without bytes within [`FIRST_BYTES_DEADLINE`].
    pub idle: AtomicU64,
    /// Closed while waiting: over the per-source cap, or to free a descriptor.
    pub evicted_per_source: AtomicU64,
    pub evicted_for_descriptors: AtomicU64,
}

impl Stats {
    pub(super) fn reject(&self, why: Reject) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected[why as usize].load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        let ignored: Vec<String> = Reject::ALL
            .iter()
            .filter(|r| self.rejected(**r) > 0)
            .map(|r| format!("{} {}", self.rejected(*r), r.as_str()))
            .collect();
        let stale = match self.answered_stale.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!(" ({n} refused as stale: the prober's clock differs)"),
        };
        let mapped = match self.answered_mapped.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!(" ({n} with the source address seen, for NAT checks)"),
        };
        let idle = format!(
            "sent nothing within {}",
            crate::lang::Lang::En.duration(FIRST_BYTES_DEADLINE)
        );
        let capped = format!(
            "over the cap of {PER_SOURCE_WAITING} waiting connections per source ({PER_KEYED_SOURCE_WAITING} for one that proved the key)"
        );
        let closed: Vec<String> = [
            (&self.idle, idle.as_str()),
            (&self.evicted_per_source, capped.as_str()),
            (&self.evicted_for_descriptors, "to free a descriptor"),
        ]
        .iter()
        .filter_map(|(n, why)| match n.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("{n} {why}")),
        })
        .collect();
        let closed = if closed.is_empty() {
            String::new()
        } else {
            format!("; closed unanswered: {}", closed.join(", "))
        };
        format!(
            "answered {} TCP and {} UDP probes{stale}{mapped}; ignored {}{closed}",
            self.answered_tcp.load(Ordering::Relaxed),
            self.answered_udp.load(Ordering::Relaxed),
            if ignored.is_empty() {
                "none".to_string()
            } else {
                ignored.join(", ")
            }
        )
    }
}
