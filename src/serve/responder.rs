//! `serve`'s answer to a probe: the MAC first, then freshness, replays and a rate per keyed
//! source. A stranger costs one HMAC and leaves no state behind.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lru::LruCache;
use tokio::sync::Notify;

use super::stats::Stats;
use super::waiting::{Source, Waiting};
use crate::protocol::{
    authenticate, encode_mapped, encode_reply, encode_stale, is_fresh, source_rate, Key, Reject,
    FRESH_WINDOW, MAPPED_LEN, REPLY_LEN, STALE_LEN,
};
use crate::sys::now_ms;

/// Keyed sources whose rate is tracked (least recently used forgotten first; a forgotten
/// source starts again with a full burst), and nonces kept against replays, at most.
pub(super) const MAX_SOURCES: usize = 10_000;
pub(super) const MAX_NONCES: usize = 500_000;

/// Nonces kept at most: [`MAX_NONCES`]; in a debug build AUTOMATE_PORTS_TEST_NONCES, so that a
/// lab test fills the table with a few sweeps rather than half a million probes.
fn max_nonces() -> usize {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("AUTOMATE_PORTS_TEST_NONCES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    MAX_NONCES
}

/// What `serve` sends back to a probe with a valid MAC.
pub(super) enum Answer {
    Fresh([u8; REPLY_LEN]),
    /// A fresh probe that asked what source address and port serve saw.
    Mapped([u8; MAPPED_LEN]),
    Stale([u8; STALE_LEN]),
}

impl Answer {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Answer::Fresh(b) => b,
            Answer::Mapped(b) => b,
            Answer::Stale(b) => b,
        }
    }
}

/// Each nonce seen, with when it may be forgotten (milliseconds), and the same by time, so
/// that forgetting those past their time costs a heap pop each. (A sweep of table scans
/// when the table filled with nonces still in their time took a core for minutes and
/// refused every probe meanwhile: one scan of half a million per probe.)
#[derive(Default)]
pub(super) struct Nonces {
    until: HashMap<[u8; 16], u64>,
    expiry: BinaryHeap<Reverse<(u64, [u8; 16])>>,
}

impl Nonces {
    /// Forgets the nonces whose time has passed: they only return in probes that are stale
    /// anyway (or older than serve's start).
    fn forget_past(&mut self, now: u64) {
        while let Some(&Reverse((until, nonce))) = self.expiry.peek() {
            if until >= now {
                break;
            }
            self.expiry.pop();
            self.until.remove(&nonce);
        }
    }

    fn forget_soonest(&mut self) {
        if let Some(Reverse((_, nonce))) = self.expiry.pop() {
            self.until.remove(&nonce);
        }
    }
}

/// A keyed source's token bucket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    seen: Instant,
    /// It sent a fresh probe with the key: its TCP connections get the keyed cap. A stale
    /// answer alone does not grant that: a recording replayed later is stale too.
    proved: bool,
}

/// Shared state of the responder: key, counters, replay cache, rate limiter.
pub(super) struct Responder {
    pub(super) key: Key,
    /// Probes made before this (serve's start) are not answered: the nonces of an earlier
    /// run are forgotten, so its recorded probes could otherwise be replayed.
    started_ms: u64,
    pub(super) stats: Arc<Stats>,
    nonces: Mutex<Nonces>,
    /// [`max_nonces`], read once.
    max_nonces: usize,
    buckets: Mutex<LruCache<Source, Bucket>>,
    /// Per keyed source, a burst and then a steady rate a second: the protocol's, which
    /// clients pace their retries by ([`source_rate`], read once).
    rate: (f64, f64),
    pub(super) waiting: Mutex<Waiting>,
    /// Signalled as each connection closes: an accept loop out of descriptors waits on it.
    pub(super) freed: Notify,
}

impl Responder {
    pub(super) fn new(key: Key, started_ms: u64) -> Responder {
        Responder {
            key,
            started_ms,
            stats: Arc::new(Stats::default()),
            nonces: Mutex::new(Nonces::default()),
            max_nonces: max_nonces(),
            buckets: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_SOURCES).expect("not zero"),
            )),
            rate: {
                let (burst, rate) = source_rate();
                (f64::from(burst), f64::from(rate))
            },
            waiting: Mutex::new(Waiting::default()),
            freed: Notify::new(),
        }
    }

    /// The reply to `bytes` from `source` arriving on `port`, or why there is none.
    /// The MAC comes first: a stranger costs one HMAC and leaves no state behind, so no
    /// number of spoofed sources can crowd out the ones with the key.
    pub(super) fn answer(
        &self,
        bytes: &[u8],
        from: SocketAddr,
        port: u16,
    ) -> Result<Answer, Reject> {
        let probe = authenticate(&self.key, bytes)?;
        let now = now_ms();
        let in_window = is_fresh(probe.timestamp_ms, now, 0);
        if probe.timestamp_ms < self.started_ms {
            // Dated before serve started: a recording replayed after a restart, or a prober
            // whose clock lags by more than serve's uptime, which serve cannot tell apart. No
            // answer: it would tell a replayer that serve runs again (check's words for a
            // silent serve name a clock that is behind).
            return Err(Reject::BeforeStart);
        }
        // A fresh probe stays fresh until its own timestamp leaves the window (a prober whose
        // clock is ahead sends probes that stay fresh longer than the window from now): its
        // nonce is kept as long. A stale one is answered once, and kept a window from now.
        let keep_until = if in_window {
            probe.timestamp_ms.max(now) + FRESH_WINDOW.as_millis() as u64
        } else {
            now + FRESH_WINDOW.as_millis() as u64
        };
        self.first_sight(probe.nonce, now, keep_until)?;
        if !self.allow(Source::of(from.ip()), in_window) {
            return Err(Reject::RateLimited);
        }
        if in_window && probe.mapped {
            self.stats.answered_mapped.fetch_add(1, Ordering::Relaxed);
            Ok(Answer::Mapped(encode_mapped(
                &self.key,
                &probe.nonce,
                port,
                from,
            )))
        } else if in_window {
            Ok(Answer::Fresh(encode_reply(&self.key, &probe.nonce, port)))
        } else {
            // Proven with the key but outside the window: the clocks differ. Say so, once
            // per nonce, instead of a silence the prober would blame on a firewall.
            self.stats.answered_stale.fetch_add(1, Ordering::Relaxed);
            Ok(Answer::Stale(encode_stale(
                &self.key,
                &probe.nonce,
                port,
                now,
            )))
        }
    }

    /// Remembers a nonce until `keep_until`; `Replayed` if it is remembered already.
    pub(super) fn first_sight(
        &self,
        nonce: [u8; 16],
        now: u64,
        keep_until: u64,
    ) -> Result<(), Reject> {
        let mut nonces = self.nonces.lock().expect("no panics while held");
        nonces.forget_past(now);
        if nonces.until.contains_key(&nonce) {
            return Err(Reject::Replayed);
        }
        if nonces.until.len() >= self.max_nonces {
            // Full of nonces still in their time: only a client with the key can fill it
            // (the MAC comes first), with sweeps in a row (`--wait`, a lab's loop). Refusing
            // every probe until the oldest expire would fail its checks for minutes; the
            // nonce nearest its end is forgotten instead, so its probe could be answered
            // once more, and only until its few remaining moments run out.
            nonces.forget_soonest();
        }
        nonces.until.insert(nonce, keep_until);
        nonces.expiry.push(Reverse((keep_until, nonce)));
        Ok(())
    }

    /// Whether `source` sent a fresh valid probe lately (the rate table holds only sources
    /// that proved the key). TCP can't be spoofed, so a stranger cannot borrow this.
    pub(super) fn has_proved_the_key(&self, source: Source) -> bool {
        self.buckets
            .lock()
            .expect("no panics while held")
            .peek(&source)
            .is_some_and(|b| b.proved)
    }

    /// Token bucket per keyed source; `fresh` marks it as having proved the key.
    pub(super) fn allow(&self, source: Source, fresh: bool) -> bool {
        let now = Instant::now();
        let (burst, rate) = self.rate;
        let mut buckets = self.buckets.lock().expect("no panics while held");
        let bucket = buckets.get_or_insert_mut(source, || Bucket {
            tokens: burst,
            seen: now,
            proved: false,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.seen).as_secs_f64() * rate).min(burst);
        bucket.seen = now;
        bucket.proved |= fresh;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PROBE_LEN;
    use std::net::{IpAddr, Ipv4Addr};

    fn key() -> Key {
        static KEY: std::sync::OnceLock<Key> = std::sync::OnceLock::new();
        KEY.get_or_init(|| Key::derive("a shared secret of ours").unwrap())
            .clone()
    }

    /// A client's address: the port does not matter to anything but a mapped reply.
    fn at(ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, 40_001)
    }

    fn probe(at: u64) -> [u8; PROBE_LEN] {
        crate::protocol::Probe::new(443, at).encode(&key())
    }

    #[test]
    fn replays_and_floods_are_refused() {
        let r = Responder::new(key(), now_ms() - 1000);
        let probe = probe(now_ms());
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!r.has_proved_the_key(Source::of(source)));
        assert!(matches!(
            r.answer(&probe, at(source), 443),
            Ok(Answer::Fresh(_))
        ));
        assert!(
            r.has_proved_the_key(Source::of(source)),
            "its TCP waits get the keyed cap"
        );
        assert!(matches!(
            r.answer(&probe, at(source), 443),
            Err(Reject::Replayed)
        ));
        let mut answered = 0;
        for _ in 0..(crate::protocol::SOURCE_BURST as usize + 10) {
            if r.answer(&self::probe(now_ms()), at(source), 443).is_ok() {
                answered += 1;
            }
        }
        assert!(
            answered <= crate::protocol::SOURCE_BURST as usize + 1000,
            "{answered}"
        );
        assert!(
            r.answer(
                &self::probe(now_ms()),
                at("192.0.2.8".parse().unwrap()),
                443
            )
            .is_ok(),
            "other sources unaffected"
        );
    }

    #[test]
    fn a_mapped_probe_learns_the_source_serve_saw() {
        let r = Responder::new(key(), now_ms() - 1000);
        let probe = crate::protocol::Probe::new_mapped(8002, now_ms());
        let from: SocketAddr = "[::ffff:198.51.100.4]:61234".parse().unwrap();
        let Ok(Answer::Mapped(bytes)) = r.answer(&probe.encode(&key()), from, 8002) else {
            panic!("no mapped answer");
        };
        assert_eq!(
            crate::protocol::check_reply(&key(), &bytes, &probe),
            crate::protocol::ReplyCheck::Mapped("198.51.100.4:61234".parse().unwrap())
        );
        assert_eq!(r.stats.answered_mapped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn strangers_leave_no_trace_and_cannot_crowd_out_the_key() {
        let r = Responder::new(key(), now_ms() - 1000);
        // More spoofed sources than the table holds, each with junk or a wrong key.
        let wrong = Key::derive("somebody else's key!").unwrap();
        for i in 0..(MAX_SOURCES as u32 * 2) {
            let from = IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i));
            let bytes = crate::protocol::Probe::new(75, now_ms()).encode(&wrong);
            assert_eq!(r.answer(&bytes, at(from), 75).err(), Some(Reject::WrongKey));
            assert_eq!(r.answer(&[1], at(from), 75).err(), Some(Reject::Truncated));
        }
        assert_eq!(
            r.buckets.lock().unwrap().len(),
            0,
            "strangers are forgotten"
        );
        assert!(!r.has_proved_the_key(Source::of("198.18.0.1".parse().unwrap())));
        assert!(r
            .answer(&probe(now_ms()), at("192.0.2.9".parse().unwrap()), 75)
            .is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_least_recent_source() {
        let r = Responder::new(key(), now_ms() - 1000);
        let first: IpAddr = "192.0.2.1".parse().unwrap();
        // Drain the first source's bucket, then let keyed newcomers fill the table.
        r.buckets
            .lock()
            .unwrap()
            .get_or_insert_mut(Source::of(first), || Bucket {
                tokens: 0.0,
                seen: Instant::now(),
                proved: true,
            })
            .tokens = 0.0;
        for i in 0..MAX_SOURCES as u32 {
            assert!(
                r.allow(Source::V4(Ipv4Addr::from(0x0A00_0000 + i)), true),
                "newcomer {i} refused"
            );
        }
        assert_eq!(r.buckets.lock().unwrap().len(), MAX_SOURCES);
        assert!(
            r.allow(Source::of(first), true),
            "forgotten, so it starts with a full burst"
        );
    }

    #[test]
    fn ipv6_sources_count_by_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn stale_probes_get_a_signed_stale_answer_and_older_runs_none() {
        let now = now_ms();
        // Up for an hour: a probe from a clock 400 s behind is dated after the start.
        let r = Responder::new(key(), now - 3_600_000);
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        let far = crate::protocol::Probe::new(443, now - 400_000);
        match r.answer(&far.encode(&key()), at(source), 443) {
            Ok(Answer::Stale(bytes)) => {
                let crate::protocol::ReplyCheck::Stale { responder_ms } =
                    crate::protocol::check_reply(&key(), &bytes, &far)
                else {
                    panic!("not a stale reply");
                };
                assert!(responder_ms >= now);
            }
            _ => panic!("no stale answer"),
        }
        assert_eq!(
            r.answer(&far.encode(&key()), at(source), 443).err(),
            Some(Reject::Replayed),
            "one stale answer per nonce"
        );
        // Made before serve started, within the window or beyond it: a recording from an
        // earlier run gets nothing, not even a stale answer.
        let restarted = Responder::new(key(), now - 10_000);
        for age in [20_000, 400_000] {
            assert_eq!(
                restarted.answer(&probe(now - age), at(source), 443).err(),
                Some(Reject::BeforeStart),
                "{age} ms old"
            );
        }
        assert_eq!(r.stats.answered_stale.load(Ordering::Relaxed), 1);
        assert_eq!(restarted.stats.answered_stale.load(Ordering::Relaxed), 0);
    }

    /// A stale answer (a replayed recording, or a wrong clock) does not move its source into
    /// the keyed class; a fresh one does.
    #[test]
    fn only_a_fresh_probe_proves_the_key() {
        let now = now_ms();
        let r = Responder::new(key(), now - 10_000);
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        // From a clock 400 s ahead: beyond the window, dated after the start.
        let far = crate::protocol::Probe::new(443, now + 400_000);
        assert!(matches!(
            r.answer(&far.encode(&key()), at(source), 443),
            Ok(Answer::Stale(_))
        ));
        assert!(!r.has_proved_the_key(Source::of(source)));
        assert!(r.answer(&probe(now_ms()), at(source), 443).is_ok());
        assert!(r.has_proved_the_key(Source::of(source)));
    }

    /// A nonce is kept until its probe's timestamp leaves the window, not a window after it
    /// was first seen: a probe from a prober whose clock is ahead stays fresh that long.
    #[test]
    fn a_nonce_is_kept_while_its_probe_is_fresh() {
        let now = now_ms();
        let r = Responder::new(key(), now - 10_000);
        let window = FRESH_WINDOW.as_millis() as u64;
        let ahead = crate::protocol::Probe::new(443, now + window - 1_000);
        let source: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(matches!(
            r.answer(&ahead.encode(&key()), at(source), 443),
            Ok(Answer::Fresh(_))
        ));
        let until = r.nonces.lock().unwrap().until[&ahead.nonce];
        assert!(until >= now + 2 * window - 1_000, "{until}");
        // Later, the table full of nonces past their time: the next new one makes it forget
        // them, and the fresh probe's nonce survives.
        let later = now + window + 1_000;
        for i in 0..MAX_NONCES as u64 - 1 {
            let mut old = [0xee; 16];
            old[..8].copy_from_slice(&i.to_be_bytes());
            r.first_sight(old, now, later - 1).unwrap();
        }
        // Full, every nonce still in its time: a replay is named as one; a new nonce is
        // taken, and the one nearest its end (the first of the old ones) is forgotten.
        assert!(matches!(
            r.first_sight(ahead.nonce, later - 2, later + window),
            Err(Reject::Replayed)
        ));
        r.first_sight([8; 16], later - 2, later + window).unwrap();
        {
            let nonces = r.nonces.lock().unwrap();
            assert_eq!(nonces.until.len(), MAX_NONCES);
            let mut first = [0xee; 16];
            first[..8].copy_from_slice(&0u64.to_be_bytes());
            assert!(!nonces.until.contains_key(&first));
            assert!(nonces.until.contains_key(&ahead.nonce));
        }
        r.first_sight([7; 16], later, later + window).unwrap();
        let nonces = r.nonces.lock().unwrap();
        assert!(nonces.until.contains_key(&ahead.nonce));
        assert_eq!(
            nonces.until.len(),
            3,
            "the expired ones are forgotten: [8; 16], [7; 16] and the early one are left"
        );
        assert_eq!(nonces.expiry.len(), 3);
    }
}
