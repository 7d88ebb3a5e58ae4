//! The engine against a fake network: windows, silence, re-probes, narrow looks.

use super::*;
use crate::lang::Lang;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A fake network: answers by port, counts tries and the widest moment. Ports listed in
/// `lose` lose their first that many tries (the probe vanishes: no answer, ever).
#[derive(Default)]
struct Fake {
    in_flight: AtomicUsize,
    widest: AtomicUsize,
    tries: AtomicUsize,
    lose: Mutex<HashMap<u16, usize>>,
}

impl Prober for Fake {
    async fn attempt(&self, job: ProbeJob, timeout: Duration, heard: Heard) -> Attempt {
        // Counted down on drop: the engine cancels tries that run past the timeout.
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.widest.fetch_max(now, Ordering::SeqCst);
        self.tries.fetch_add(1, Ordering::SeqCst);
        let port = job.addr.port();
        let lost = {
            let mut lose = self.lose.lock().unwrap();
            match lose.get_mut(&port) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        // A millisecond of round trip, like a LAN.
        tokio::time::sleep(Duration::from_millis(1)).await;
        match port {
            _ if lost => hang().await,
            // Connects, then the far side never says a word (a plain listener).
            7 => {
                heard.mark();
                tokio::time::sleep(timeout).await;
                Attempt::Answer(
                    State::Open,
                    Why::NotServe(super::super::NotServe::Silent(timeout)),
                )
            }
            1 => Attempt::Answer(State::Open, Why::Connected),
            3 => Attempt::Silent,
            5 => Attempt::Answer(State::Open, Why::NotServe(super::super::NotServe::Closed)),
            2 | 1000.. => Attempt::Answer(State::Closed, Why::Refused),
            _ => hang().await,
        }
    }

    fn phases(&self, job: &ProbeJob) -> u32 {
        // Port 7 connects, then waits a whole timeout for an answer.
        if job.addr.port() == 7 {
            2
        } else {
            1
        }
    }
}

/// Only the engine's timeout (or its giving up) ends it.
async fn hang() -> Attempt {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Attempt::Silent
}

fn job(port: u16, protocol: Protocol) -> ProbeJob {
    job_at([192, 0, 2, 1], port, protocol)
}

fn job_at(ip: [u8; 4], port: u16, protocol: Protocol) -> ProbeJob {
    ProbeJob {
        addr: (ip, port).into(),
        protocol,
        kind: ProbeKind::Connect,
        host: None,
        keyed: false,
    }
}

fn config(timeout_ms: u64, retries: u8, concurrency: usize) -> EngineConfig {
    EngineConfig {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        concurrency,
        rate: None,
        narrow_rate: 10_000,
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_address_gets_the_full_timeout_and_the_retries() {
    let prober = Arc::new(Fake::default());
    let jobs = [job(3, Protocol::Udp), job(4, Protocol::Tcp)];
    let config = config(2000, 2, 8);
    let started = Instant::now();
    let out = run(Arc::clone(&prober), &jobs, config, &|_, _| {}).await;
    assert_eq!((out[0].state, out[0].tries), (State::OpenFiltered, 3));
    assert_eq!((out[1].state, out[1].tries), (State::Filtered, 3));
    assert_eq!(out[1].reason(Lang::En), "no answer in 2 s, 3 tries");
    assert_eq!(out[1].reason(Lang::De), "keine Antwort in 2 s, 3 Versuche");
    // Three full timeouts, one after the other.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(prober.tries.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn answers_are_final_and_in_job_order() {
    let prober = Arc::new(Fake::default());
    let jobs = [job(1, Protocol::Tcp), job(2, Protocol::Tcp)];
    let out = run(Arc::clone(&prober), &jobs, config(2000, 2, 8), &|_, _| {}).await;
    assert_eq!((out[0].state, out[0].tries), (State::Open, 1));
    assert_eq!((out[1].state, out[1].tries), (State::Closed, 1));
    assert_eq!(prober.tries.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_filter_on_a_live_address_is_given_up_early_after_one_more_try() {
    // 100 ports answer, 20 are dropped: the drops are tried twice, quickly.
    let prober = Arc::new(Fake::default());
    let mut jobs: Vec<ProbeJob> = (1000..1100).map(|p| job(p, Protocol::Tcp)).collect();
    jobs.extend((10..30).map(|p| job(p, Protocol::Tcp)));
    let started = Instant::now();
    let out = run(
        Arc::clone(&prober),
        &jobs,
        config(2000, 1, 1000),
        &|_, _| {},
    )
    .await;
    let took = started.elapsed();
    assert!(out[..100].iter().all(|o| o.state == State::Closed));
    for o in &out[100..] {
        assert_eq!((o.state, o.tries), (State::Filtered, 2), "{o:?}");
        assert!(o.elapsed < Duration::from_secs(1), "{o:?}");
    }
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn loss_on_a_live_address_is_recovered_without_full_timeouts() {
    // Every port answers, but some probes are lost once, twice or four times.
    let prober = Arc::new(Fake::default());
    {
        let mut lose = prober.lose.lock().unwrap();
        for p in 1000..1040 {
            lose.insert(p, 1);
        }
        lose.insert(1050, 2);
        lose.insert(1060, 4);
    }
    let jobs: Vec<ProbeJob> = (1000..1200).map(|p| job(p, Protocol::Tcp)).collect();
    let started = Instant::now();
    let out = run(
        Arc::clone(&prober),
        &jobs,
        config(2000, 1, 1000),
        &|_, _| {},
    )
    .await;
    let took = started.elapsed();
    assert!(out.iter().all(|o| o.state == State::Closed), "{out:?}");
    assert_eq!(out[0].tries, 2);
    assert_eq!(out[50].tries, 3);
    assert_eq!(out[60].tries, 5);
    // Four quiet times of 250 ms, not four timeouts of 2 s.
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lone_port_lost_twice_is_recovered_by_a_third_try() {
    // Nothing else is lost, so no recovery shows the loss: one port among 100 that answer.
    let prober = Arc::new(Fake::default());
    prober.lose.lock().unwrap().insert(1050, 2);
    let jobs: Vec<ProbeJob> = (1000..1100).map(|p| job(p, Protocol::Tcp)).collect();
    let out = run(
        Arc::clone(&prober),
        &jobs,
        config(2000, 1, 1000),
        &|_, _| {},
    )
    .await;
    assert_eq!((out[50].state, out[50].tries), (State::Closed, 3));
    assert_eq!(prober.tries.load(Ordering::SeqCst), 102);
}

#[tokio::test(start_paused = true)]
async fn a_lone_drop_is_confirmed_once_and_quickly() {
    // Port 20 is dropped by a rule, the 100 others answer: a third try, no more, and the
    // run still ends in quiet times, not timeouts.
    let prober = Arc::new(Fake::default());
    let mut jobs: Vec<ProbeJob> = (1000..1100).map(|p| job(p, Protocol::Tcp)).collect();
    jobs.push(job(20, Protocol::Tcp));
    let started = Instant::now();
    let out = run(
        Arc::clone(&prober),
        &jobs,
        config(2000, 1, 1000),
        &|_, _| {},
    )
    .await;
    let took = started.elapsed();
    assert_eq!((out[100].state, out[100].tries), (State::Filtered, 3));
    // Quiet times of 250 and 500 ms, then 250 ms more: a lone silence is no outage, so the
    // third try does not wait the strikes' doubled time (1 s).
    assert!(took < Duration::from_millis(1200), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn more_loss_than_the_cap_is_reported_with_its_tries() {
    let prober = Arc::new(Fake::default());
    prober.lose.lock().unwrap().insert(1001, 100);
    prober.lose.lock().unwrap().insert(1002, 1);
    let jobs: Vec<ProbeJob> = (1000..1010).map(|p| job(p, Protocol::Tcp)).collect();
    let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 100), &|_, _| {}).await;
    assert_eq!((out[1].state, out[1].tries), (State::Filtered, MAX_TRIES));
    assert_eq!(out[2].state, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn each_address_is_judged_by_its_own_answers() {
    // 192.0.2.1 answers; 192.0.2.9 is dead: its port waits the full timeout.
    let prober = Arc::new(Fake::default());
    let jobs = [
        job(1000, Protocol::Tcp),
        job(20, Protocol::Tcp),
        job_at([192, 0, 2, 9], 20, Protocol::Tcp),
    ];
    let out = run(Arc::clone(&prober), &jobs, config(2000, 0, 8), &|_, _| {}).await;
    assert_eq!(out[1].tries, 2);
    assert!(out[1].elapsed < Duration::from_secs(1));
    assert_eq!(out[2].tries, 1);
    assert!(out[2].elapsed >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn connected_without_a_valid_answer_gets_narrow_second_looks() {
    let prober = Arc::new(Fake::default());
    let jobs = [job(5, Protocol::Tcp), job(1000, Protocol::Tcp)];
    let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 8), &|_, _| {}).await;
    assert_eq!(out[0].tries, 1 + NARROW_LOOKS);
    assert!(matches!(out[0].why, Why::NotServe(_)), "{:?}", out[0]);
    assert_eq!(
        prober.tries.load(Ordering::SeqCst),
        usize::from(2 + NARROW_LOOKS)
    );
}

/// `n` addresses whose port 5 connects and closes without a valid answer, as `serve` does
/// with a source over its rate.
fn closing(n: u8) -> Vec<ProbeJob> {
    (0..n)
        .map(|i| job_at([192, 0, 2, i], 5, Protocol::Tcp))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn narrow_looks_start_no_faster_than_the_narrow_rate() {
    let prober = Arc::new(Fake::default());
    let jobs = closing(100);
    let config = EngineConfig {
        narrow_rate: 100,
        ..config(2000, 1, 1000)
    };
    let started = Instant::now();
    let out = run(Arc::clone(&prober), &jobs, config, &|_, _| {}).await;
    assert!(
        out.iter().all(|o| o.tries == 1 + NARROW_LOOKS),
        "{:?}",
        out[0]
    );
    // 200 looks at 100 a second: the last starts 1.99 s after the first.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1980) && took < Duration::from_millis(2100),
        "{took:?}"
    );
}

/// A part of a split run, beside another part that is still sweeping for `other_sweeps`.
fn part_beside_another(other_sweeps: Duration) -> (super::Part, super::state::Peers) {
    let peers = super::state::Peers::default();
    let this = super::Part {
        own_thread: false,
        sweeping: peers.join(),
    };
    let other = peers.join();
    tokio::spawn(async move {
        tokio::time::sleep(other_sweeps).await;
        drop(other);
    });
    (this, peers)
}

#[tokio::test(start_paused = true)]
async fn a_part_looks_only_once_every_part_has_swept() {
    let prober = Arc::new(Fake::default());
    // Another part sweeps for half a second more.
    let (this, peers) = part_beside_another(Duration::from_millis(500));
    let started = Instant::now();
    let jobs = closing(3);
    let out = super::run_whole(
        prober,
        &jobs,
        config(2000, 1, 100),
        None,
        Some(this),
        &|_, _| {},
    )
    .await;
    assert!(
        out.iter().all(|o| o.tries == 1 + NARROW_LOOKS),
        "{:?}",
        out[0]
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(peers.all_swept());
}

#[tokio::test(start_paused = true)]
async fn a_silent_port_is_looked_at_without_waiting() {
    // Silence after connecting is a lost probe or reply, not serve's rate: its looks wait
    // neither for the narrow rate nor for other parts.
    let prober = Arc::new(Fake::default());
    let (this, _) = part_beside_another(Duration::from_secs(60));
    let jobs: Vec<ProbeJob> = (0..3)
        .map(|i| job_at([192, 0, 2, i], 7, Protocol::Tcp))
        .collect();
    let config = EngineConfig {
        narrow_rate: 1,
        ..config(1000, 1, 100)
    };
    let started = Instant::now();
    let out = super::run_whole(prober, &jobs, config, None, Some(this), &|_, _| {}).await;
    assert!(
        out.iter().all(|o| o.tries == 1 + NARROW_LOOKS),
        "{:?}",
        out[0]
    );
    // One try of a second, two looks of two seconds each, all three ports at once.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fast_narrow_rate_is_kept_although_timers_wake_late() {
    let prober = Arc::new(Fake::default());
    // 2,000 jobs over 250 addresses (port 5 at each, and ports 1000.. answered).
    let mut jobs = closing(250);
    jobs.extend((0..1750).map(|i| job_at([192, 0, 2, 1], 1000 + i, Protocol::Tcp)));
    let config = EngineConfig {
        narrow_rate: 10_000,
        ..config(2000, 1, 4000)
    };
    let started = Instant::now();
    let out = run(Arc::clone(&prober), &jobs, config, &|_, _| {}).await;
    assert!(out[..250].iter().all(|o| o.tries == 1 + NARROW_LOOKS));
    // 500 looks at 10,000 a second take 50 ms; spaced 100 us apart, each behind a timer
    // that wakes on whole milliseconds, they would take half a second.
    let took = started.elapsed();
    assert!(took < Duration::from_millis(80), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_connected_try_is_never_given_up_as_silence() {
    let prober = Arc::new(Fake::default());
    let jobs = [job(7, Protocol::Tcp), job(1000, Protocol::Tcp)];
    let out = run(Arc::clone(&prober), &jobs, config(2000, 1, 8), &|_, _| {}).await;
    assert!(
        matches!(out[0].why, Why::NotServe(super::super::NotServe::Silent(_))),
        "{:?}",
        out[0]
    );
    assert_eq!(out[0].tries, 1 + NARROW_LOOKS, "the narrow looks");
}

#[tokio::test(start_paused = true)]
async fn window_is_never_wider_than_asked() {
    let prober = Arc::new(Fake::default());
    let jobs: Vec<ProbeJob> = (0..200).map(|i| job(10 + i, Protocol::Tcp)).collect();
    let done = AtomicUsize::new(0);
    let out = run(Arc::clone(&prober), &jobs, config(500, 0, 16), &|_, _| {
        done.fetch_add(1, Ordering::SeqCst);
    })
    .await;
    assert_eq!(done.load(Ordering::SeqCst), 200);
    assert_eq!(out.len(), 200);
    assert!(out.iter().all(|o| o.state == State::Filtered));
    assert_eq!(prober.widest.load(Ordering::SeqCst), 16);
}

#[tokio::test(start_paused = true)]
async fn rate_spaces_job_starts() {
    let prober = Arc::new(Fake::default());
    let jobs: Vec<ProbeJob> = (0..50).map(|_| job(1, Protocol::Tcp)).collect();
    let config = EngineConfig {
        rate: Some(100),
        ..config(1000, 0, 1000)
    };
    let started = Instant::now();
    let out = run(Arc::clone(&prober), &jobs, config, &|_, _| {}).await;
    assert!(out.iter().all(|o| o.state == State::Open));
    // 50 starts at 100 per second: the last one starts 0.49 s after the first.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[test]
fn the_bound_covers_every_try_of_every_window() {
    let jobs: Vec<ProbeJob> = (0..100).map(|i| job(10 + i, Protocol::Tcp)).collect();
    let one = |_: &ProbeJob| 1;
    // Six tries of 2 s, one window.
    assert_eq!(
        super::bound(&jobs, &config(2000, 1, 1000), one),
        Duration::from_secs(12)
    );
    // More retries than the engine's own cap raise the cap; four windows of 25.
    assert_eq!(
        super::bound(&jobs, &config(1000, 9, 25), one),
        Duration::from_secs(40)
    );
    // A keyed job adds its narrow looks (two, at twice the timeout), all times its phases,
    // and their starts at the narrow rate.
    let mut keyed = jobs.clone();
    keyed[3].keyed = true;
    let mut looks = config(1000, 1, 1000);
    looks.narrow_rate = 10;
    assert_eq!(
        super::bound(&keyed, &looks, |_| 2),
        Duration::from_secs(20) + Duration::from_millis(200)
    );
    // --rate spaces out every start of every try.
    let mut paced = config(1000, 1, 1000);
    paced.rate = Some(100);
    assert_eq!(super::bound(&jobs, &paced, one), Duration::from_secs(6 + 8));
    assert_eq!(super::bound(&[], &config(1000, 1, 10), one), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn no_run_takes_longer_than_its_bound() {
    // Silence everywhere at the widest retries: the slowest thing the engine does.
    let prober = Arc::new(Fake::default());
    let jobs: Vec<ProbeJob> = (0..40).map(|i| job(10 + i, Protocol::Udp)).collect();
    let config = config(500, 10, 7);
    let started = tokio::time::Instant::now();
    let out = run(Arc::clone(&prober), &jobs, config, &|_, _| {}).await;
    assert_eq!(out.len(), 40);
    assert!(started.elapsed() <= super::bound(&jobs, &config, |_| 1));
}
