//! Path traces: every TTL of a port's path probed at once, in a few short rounds.
//!
//! All TTLs go out together, so a trace takes about one round trip to the farthest hop that
//! answers, not thirty. A round ends when every TTL has ended, at the timeout, or once the
//! answers have gone quiet for a few of their own round trips (the hops past a filter never
//! answer, and waiting out the timeout for them would make every trace cost it). Routers
//! rate-limit their ICMP errors, so a TTL that stayed silent below the farthest answer (a
//! gap), and the one just past it (where the path seems to stop), are tried once more: a
//! stop is only believed when it was seen twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::model::{HopAnswer, Protocol, TraceMethod};
use crate::probe::Prober;

/// The most routers a trace looks past, as traceroute's default.
pub const MAX_HOPS: u8 = 30;

/// Tries per TTL at most.
const TRIES: u8 = 2;

/// Rounds per trace at most: the first, and retries of what stayed silent.
const ROUNDS: u32 = 3;

/// A round that heard answers ends this long after the last one at the least...
const QUIET_FLOOR: Duration = Duration::from_millis(250);

/// ...and at least this many of the slowest answer's round trips after it.
const QUIET_RTTS: u32 = 4;

/// What each TTL of a trace saw: `hops[ttl - 1]` is its best answer and its round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    pub hops: Vec<(HopAnswer, Option<Duration>)>,
    /// What the hops were probed with.
    pub method: TraceMethod,
}

/// The longest a trace with per-try `timeout` can take.
pub fn trace_bound(timeout: Duration) -> Duration {
    timeout * ROUNDS + Duration::from_secs(1)
}

/// Traces the path of `protocol` to `addr`. `rtt`, the round trip to the address where
/// something of it answered, lets rounds end once its answers are overdue rather than at
/// the timeout.
pub async fn trace<P: Prober>(
    prober: &Arc<P>,
    addr: SocketAddr,
    protocol: Protocol,
    timeout: Duration,
    rtt: Option<Duration>,
) -> Traced {
    let method = prober.trace_method(addr);
    let mut slowest = rtt;
    let mut hops: Vec<(HopAnswer, Option<Duration>)> =
        vec![(HopAnswer::Silent, None); usize::from(MAX_HOPS)];
    let mut tries = vec![0u8; usize::from(MAX_HOPS)];
    for _ in 0..ROUNDS {
        let wanted = to_try(&hops, &tries);
        if wanted.is_empty() {
            break;
        }
        for &ttl in &wanted {
            tries[usize::from(ttl - 1)] += 1;
        }
        let found = round(prober, addr, protocol, timeout, slowest, &wanted).await;
        if found
            .iter()
            .any(|(_, (answer, _))| *answer == HopAnswer::Unsupported)
        {
            return Traced {
                hops: vec![(HopAnswer::Unsupported, None)],
                method,
            };
        }
        for (ttl, answer) in found {
            if let Some(rtt) = answer.1 {
                slowest = slowest.max(Some(rtt));
            }
            if answer.0 != HopAnswer::Silent {
                hops[usize::from(ttl - 1)] = answer;
            }
        }
    }
    Traced { hops, method }
}

/// The TTLs to try next: all of them first; then silent ones up to one past the farthest
/// that answered, below the first that ended the path, each at most [`TRIES`] times.
fn to_try(hops: &[(HopAnswer, Option<Duration>)], tries: &[u8]) -> Vec<u8> {
    let ended = hops
        .iter()
        .position(|(a, _)| a.ends_path())
        .unwrap_or(hops.len());
    let farthest = hops[..ended]
        .iter()
        .rposition(|(a, _)| *a != HopAnswer::Silent)
        .map_or(0, |i| i + 1);
    (1..=MAX_HOPS)
        .filter(|&ttl| {
            let i = usize::from(ttl - 1);
            match tries[i] {
                0 => true,
                n => n < TRIES && i < ended && i <= farthest && hops[i].0 == HopAnswer::Silent,
            }
        })
        .collect()
}

/// One round: every wanted TTL at once, until all ended, the timeout, or quiet: a few of the
/// slowest round trips seen (in this round, or before it) after the last answer.
async fn round<P: Prober>(
    prober: &Arc<P>,
    addr: SocketAddr,
    protocol: Protocol,
    timeout: Duration,
    known: Option<Duration>,
    wanted: &[u8],
) -> Vec<(u8, (HopAnswer, Option<Duration>))> {
    let start = Instant::now();
    let quiet = |rtt: Duration| (rtt * QUIET_RTTS).max(QUIET_FLOOR);
    let mut set = JoinSet::new();
    for &ttl in wanted {
        let prober = Arc::clone(prober);
        set.spawn(async move {
            let answer = tokio::time::timeout(timeout, prober.hop(addr, protocol, ttl, timeout))
                .await
                .unwrap_or(HopAnswer::Silent);
            (ttl, answer, start.elapsed())
        });
    }
    let mut found = Vec::new();
    let mut slowest = known.unwrap_or_default();
    let mut end = start + known.map_or(timeout, |rtt| quiet(rtt).min(timeout));
    // The first TTL at which the path ended: the ones past it need not be waited for.
    let mut ended = u8::MAX;
    loop {
        let waiting = wanted
            .iter()
            .any(|&t| t < ended && !found.iter().any(|(f, _)| *f == t));
        if !waiting {
            break;
        }
        let Ok(Some(joined)) = tokio::time::timeout_at(end, set.join_next()).await else {
            break;
        };
        let Ok((ttl, answer, rtt)) = joined else {
            continue;
        };
        if answer == HopAnswer::Silent {
            found.push((ttl, (answer, None)));
            continue;
        }
        if answer.ends_path() {
            ended = ended.min(ttl);
        }
        slowest = slowest.max(rtt);
        end = (Instant::now() + quiet(slowest)).min(start + timeout);
        found.push((ttl, (answer, Some(rtt))));
    }
    set.abort_all();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(answers: &[HopAnswer]) -> Vec<(HopAnswer, Option<Duration>)> {
        let mut all: Vec<_> = answers.iter().map(|a| (a.clone(), None)).collect();
        all.resize(usize::from(MAX_HOPS), (HopAnswer::Silent, None));
        all
    }

    #[test]
    fn first_round_tries_every_ttl() {
        let none = hops(&[]);
        assert_eq!(to_try(&none, &[0; 30]).len(), 30);
    }

    #[test]
    fn retries_gaps_and_the_hop_past_the_last_answer_only() {
        let r: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let seen = hops(&[
            HopAnswer::Expired(r),
            HopAnswer::Silent,
            HopAnswer::Expired(r),
        ]);
        assert_eq!(to_try(&seen, &[1; 30]), vec![2, 4]);
        // Tried twice: believed.
        assert!(to_try(&seen, &[2; 30]).is_empty());
    }

    #[test]
    fn nothing_past_the_end_of_the_path_is_retried() {
        let r: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let seen = hops(&[HopAnswer::Silent, HopAnswer::Expired(r), HopAnswer::Reached]);
        assert_eq!(to_try(&seen, &[1; 30]), vec![1]);
    }

    #[test]
    fn with_no_answer_only_the_first_hop_is_retried() {
        assert_eq!(to_try(&hops(&[]), &[1; 30]), vec![1]);
    }
}

#[cfg(test)]
mod rounds {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::plan::ProbeJob;
    use crate::probe::{Attempt, Heard};

    /// Routers at TTL 1 and 2; the target drops everything past them. The router at TTL 2
    /// loses its first answer, as a router rationing ICMP does.
    #[derive(Default)]
    struct TwoRouters {
        second_router_asked: AtomicU32,
    }

    impl Prober for TwoRouters {
        async fn attempt(&self, _job: ProbeJob, _timeout: Duration, _heard: Heard) -> Attempt {
            Attempt::Silent
        }

        async fn hop(&self, _: SocketAddr, _: Protocol, ttl: u8, timeout: Duration) -> HopAnswer {
            let router = |n: u8| HopAnswer::Expired(IpAddr::from([10, 0, 0, n]));
            match ttl {
                1 => router(1),
                2 if self.second_router_asked.fetch_add(1, Ordering::SeqCst) > 0 => router(2),
                _ => {
                    tokio::time::sleep(timeout).await;
                    HopAnswer::Silent
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_asked_again_and_the_rounds_end_when_quiet() {
        let prober = Arc::new(TwoRouters::default());
        let start = Instant::now();
        let addr: SocketAddr = "198.51.100.2:8484".parse().unwrap();
        let traced = trace(&prober, addr, Protocol::Tcp, Duration::from_secs(2), None).await;
        let answers: Vec<&HopAnswer> = traced.hops.iter().map(|(a, _)| a).take(3).collect();
        assert_eq!(
            answers,
            [
                &HopAnswer::Expired(IpAddr::from([10, 0, 0, 1])),
                &HopAnswer::Expired(IpAddr::from([10, 0, 0, 2])),
                &HopAnswer::Silent
            ]
        );
        // Three short rounds (the last confirms TTL 3), none of them the whole timeout.
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_prober_that_cannot_trace_says_so_at_once() {
        struct Plain;
        impl Prober for Plain {
            async fn attempt(&self, _: ProbeJob, _: Duration, _: Heard) -> Attempt {
                Attempt::Silent
            }
        }
        let addr: SocketAddr = "198.51.100.2:75".parse().unwrap();
        let traced = trace(
            &Arc::new(Plain),
            addr,
            Protocol::Udp,
            Duration::from_secs(2),
            None,
        )
        .await;
        assert_eq!(traced.hops, vec![(HopAnswer::Unsupported, None)]);
        assert_eq!(traced.method, TraceMethod::Port);
    }
}
