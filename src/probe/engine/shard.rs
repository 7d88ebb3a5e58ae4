//! A big sweep split over the cores: one engine per part, each with a sweeper of its own.
//!
//! A sweep is bound by the kernel's work per port (a connect, for a keyed try a write and a
//! read, on loopback or a veth pair also the far side's receive path), which one sweeper
//! does on one thread. Two parts do it on two cores. A part takes whole addresses where
//! there are several (a dual-stack name's two families), so every address keeps the
//! judgement of one engine over all its ports; one address alone is dealt out port by port,
//! and each part judges its ports from the answers of thousands of others there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::state::Peers;
use super::{run_whole, Done, EngineConfig, Part};
use crate::plan::ProbeJob;
use crate::probe::{Outcome, Prober, Sweeper};

/// Swept tries a run needs before it is split: below it the sweep takes milliseconds and a
/// second engine costs more than it saves, and small checks keep one engine's judgement.
pub(super) const SPLIT_MIN: usize = 4096;

/// How long the run lets its parts' reports gather before it takes them. When every
/// outcome woke the run's task, the wakes were thousands of context switches per sweep
/// (3,000-17,000 for 16,384 verified ports, 8 % of the check's CPU; under 1,300 without
/// them); a progress bar and the watchdog need no finer step than this.
const REPORT_GAP: Duration = Duration::from_millis(10);

/// Parts at most. Each part's thread takes a core while it sweeps; two saturate the two
/// cores this was measured on (BENCHMARKS.md), where the far side's kernel work shares them.
/// More would each add an engine judging part of the same address, not measured here.
const MAX_PARTS: usize = 2;

/// How a run splits: the job indices of each part, in job order, or `None` to run it whole.
/// `swept` says which jobs a sweeper takes; `cores` is how many the machine has.
pub(super) fn split(
    jobs: &[ProbeJob],
    config: &EngineConfig,
    swept: impl Fn(&ProbeJob) -> bool,
    cores: usize,
) -> Option<Vec<Vec<usize>>> {
    let parts = cores.min(MAX_PARTS);
    // --rate paces starts across the run, and a narrow --concurrency is asked for: both keep
    // one engine, which alone can honour them exactly.
    if parts < 2 || config.rate.is_some() || config.concurrency < SPLIT_MIN {
        return None;
    }
    // Swept tries per address, in the order addresses first appear.
    let mut order: Vec<IpAddr> = Vec::new();
    let mut count: HashMap<IpAddr, usize> = HashMap::new();
    for job in jobs.iter().filter(|job| swept(job)) {
        let ip = job.addr.ip();
        *count.entry(ip).or_insert_with(|| {
            order.push(ip);
            0
        }) += 1;
    }
    let total: usize = count.values().sum();
    if total < SPLIT_MIN {
        return None;
    }
    // Whole addresses, the biggest first, each to the lightest part.
    let mut by_size = order.clone();
    by_size.sort_by_key(|ip| std::cmp::Reverse(count[ip]));
    let mut load = vec![0usize; parts];
    let mut part_of: HashMap<IpAddr, usize> = HashMap::new();
    for ip in by_size {
        let lightest = (0..parts).min_by_key(|&p| load[p]).unwrap_or(0);
        load[lightest] += count[&ip];
        part_of.insert(ip, lightest);
    }
    // Balanced enough when no part has more than three quarters of the work; otherwise one
    // address holds most of it and its ports are dealt out instead.
    let balanced = load.iter().all(|&l| l * 4 <= total * 3);
    let mut out = vec![Vec::new(); parts];
    let mut dealt = 0usize;
    for (index, job) in jobs.iter().enumerate() {
        let part = if balanced {
            part_of.get(&job.addr.ip()).copied().unwrap_or(0)
        } else if swept(job) {
            dealt += 1;
            dealt % parts
        } else {
            // Tries in tasks of their own (application probes, UDP) stay in the first part.
            0
        };
        out[part].push(index);
    }
    out.retain(|part| !part.is_empty());
    (out.len() >= 2).then_some(out)
}

/// Runs `parts` of `jobs`, each in an engine of its own on a thread of its own, `sweeper`
/// going to the first; `done` is called from this task. Outcomes in job order.
pub(super) async fn run<P: Prober>(
    prober: Arc<P>,
    jobs: &[ProbeJob],
    config: EngineConfig,
    sweeper: Option<Box<dyn Sweeper>>,
    parts: Vec<Vec<usize>>,
    done: &Done<'_>,
) -> Vec<Outcome> {
    // Only a multi-thread runtime has workers to drive the parts' sockets while their
    // threads run them.
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return run_whole(prober, jobs, config, sweeper, None, done).await;
    }
    tracing::debug!(parts = parts.len(), "sweeping in parts");
    let (told, tell) = tokio::sync::mpsc::unbounded_channel();
    // A part that ends says so here too, so the run does not sit out a report gap for it.
    let ended = Arc::new(Notify::new());
    // Each part's engine waits on a sweeper of its own, on its own thread, where the prober
    // has one; else on one the runtime watches.
    let mut sweeper = sweeper;
    let mut running = 0;
    let parts_len = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    // Every part is sweeping before any starts, so none looks before all have swept.
    let peers = Peers::default();
    let members: Vec<_> = parts.iter().map(|_| peers.join()).collect();
    for (part, sweeping) in parts.into_iter().zip(members) {
        let part_jobs: Vec<ProbeJob> = part.iter().map(|&i| jobs[i].clone()).collect();
        let config = EngineConfig {
            concurrency: width(&config, part.len(), jobs.len()),
            // The parts look at the same addresses at once.
            narrow_rate: (config.narrow_rate / parts_len).max(1),
            ..config
        };
        let (sweeper, own) = match prober.thread_sweeper() {
            Some(own) => (Some(own), true),
            None => (sweeper.take().or_else(|| prober.sweeper()), false),
        };
        let this = Part {
            own_thread: own,
            sweeping,
        };
        let spawned = spawn_part(
            Arc::clone(&prober),
            part,
            part_jobs,
            config,
            sweeper,
            this,
            told.clone(),
            Arc::clone(&ended),
            handle.clone(),
        );
        match spawned {
            Ok(_) => running += 1,
            Err(e) => {
                tracing::debug!(error = %e, "no thread for a part of the sweep");
            }
        }
    }
    drop(told);
    let (mut outcomes, finished) = gather(tell, &ended, jobs.len(), done).await;
    debug_assert_eq!(finished, running);
    // A part whose thread could not start runs here, whole.
    let left: Vec<usize> = (0..jobs.len()).filter(|&i| outcomes[i].is_none()).collect();
    if !left.is_empty() {
        let left_jobs: Vec<ProbeJob> = left.iter().map(|&i| jobs[i].clone()).collect();
        let found = run_whole(
            prober.clone(),
            &left_jobs,
            config,
            prober.sweeper(),
            None,
            &|i, o| {
                done(left[i], o);
            },
        )
        .await;
        for (index, outcome) in left.into_iter().zip(found) {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every part returns an outcome for each of its jobs"))
        .collect()
}

/// Takes the parts' reports until every part has ended: each outcome to `done` as it comes,
/// a report gap at a time, and the parts' outcomes by job index. Also says how many parts
/// finished.
async fn gather(
    mut tell: tokio::sync::mpsc::UnboundedReceiver<Told>,
    ended: &Notify,
    jobs: usize,
    done: &Done<'_>,
) -> (Vec<Option<Outcome>>, usize) {
    let mut outcomes = vec![None; jobs];
    let mut finished = 0;
    let mut take = |told: Told| match told {
        Told::Done(index, outcome) => done(index, &outcome),
        Told::Finished(part, found) => {
            finished += 1;
            for (index, outcome) in part.into_iter().zip(found) {
                outcomes[index] = Some(outcome);
            }
        }
        // A part's panic is the run's, as it would be in one engine.
        Told::Panicked(panic) => std::panic::resume_unwind(panic),
    };
    while let Some(first) = tell.recv().await {
        take(first);
        while let Ok(told) = tell.try_recv() {
            take(told);
        }
        tokio::select! {
            () = tokio::time::sleep(REPORT_GAP) => {}
            () = ended.notified() => {}
        }
    }
    (outcomes, finished)
}

/// Starts a part's engine on a thread of its own; what it finds goes to `told`.
#[allow(clippy::too_many_arguments)]
fn spawn_part<P: Prober>(
    prober: Arc<P>,
    part: Vec<usize>,
    part_jobs: Vec<ProbeJob>,
    config: EngineConfig,
    sweeper: Option<Box<dyn Sweeper>>,
    this: Part,
    told: tokio::sync::mpsc::UnboundedSender<Told>,
    ended: Arc<Notify>,
    handle: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // A thread of its own, not a task: the runtime keeps a woken task on the worker that
    // woke it, so two parts as tasks ran on one core (measured: no faster than one). While
    // only swept tries run, the engine waits on its sweeper right there (`Sweeper::wait`),
    // not woken through the runtime's reactor thread; a current-thread runtime of its own
    // per part was slower (BENCHMARKS.md).
    std::thread::Builder::new()
        .name("sweep".into())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(run_whole(
                    prober,
                    &part_jobs,
                    config,
                    sweeper,
                    Some(this),
                    &|i, o| {
                        let _ = told.send(Told::Done(part[i], o.clone()));
                    },
                ))
            }));
            let _ = told.send(match ran {
                Ok(outcomes) => Told::Finished(part, outcomes),
                Err(panic) => Told::Panicked(panic),
            });
            drop(told);
            ended.notify_one();
        })
}

/// What a part's thread tells the run.
enum Told {
    Done(usize, Outcome),
    Finished(Vec<usize>, Vec<Outcome>),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// A part's share of the run's width: in proportion to its jobs, at least one.
pub(super) fn width(config: &EngineConfig, part: usize, total: usize) -> usize {
    (config.concurrency.saturating_mul(part) / total.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProbeKind, Protocol};
    use std::net::SocketAddr;
    use std::time::Duration;

    fn job(ip: &str, port: u16, protocol: Protocol) -> ProbeJob {
        ProbeJob {
            addr: SocketAddr::new(ip.parse().unwrap(), port),
            protocol,
            kind: ProbeKind::Connect,
            host: None,
            keyed: true,
        }
    }

    fn config(concurrency: usize, rate: Option<u32>) -> EngineConfig {
        EngineConfig {
            timeout: Duration::from_secs(1),
            retries: 1,
            concurrency,
            rate,
            narrow_rate: 10_000,
        }
    }

    fn tcp(job: &ProbeJob) -> bool {
        job.protocol == Protocol::Tcp
    }

    fn range(ip: &str, n: u16) -> Vec<ProbeJob> {
        (0..n).map(|i| job(ip, 49152 + i, Protocol::Tcp)).collect()
    }

    #[test]
    fn two_families_each_go_whole_to_a_part() {
        let mut jobs = range("192.0.2.2", 8192);
        jobs.extend(range("2001:db8::2", 8192));
        let parts = split(&jobs, &config(20_000, None), tcp, 2).expect("split");
        assert_eq!(parts.len(), 2);
        for part in &parts {
            let ips: std::collections::HashSet<_> =
                part.iter().map(|&i| jobs[i].addr.ip()).collect();
            assert_eq!(ips.len(), 1, "an address is judged by one engine");
            assert_eq!(part.len(), 8192);
        }
    }

    #[test]
    fn one_address_is_dealt_out_port_by_port_and_its_other_tries_stay_first() {
        let mut jobs = vec![job("192.0.2.2", 75, Protocol::Udp)];
        jobs.extend(range("192.0.2.2", 16_384));
        let parts = split(&jobs, &config(20_000, None), tcp, 2).expect("split");
        assert_eq!(parts[0].len(), 8193);
        assert_eq!(parts[1].len(), 8192);
        assert!(parts[0].contains(&0), "the UDP try stays in the first part");
        // Every job exactly once, each part in job order.
        let mut all: Vec<usize> = parts.concat();
        assert!(parts.iter().all(|p| p.windows(2).all(|w| w[0] < w[1])));
        all.sort_unstable();
        assert_eq!(all, (0..jobs.len()).collect::<Vec<_>>());
    }

    #[test]
    fn small_paced_narrow_or_single_core_runs_stay_whole() {
        let jobs = range("192.0.2.2", 16_384);
        assert!(split(&jobs[..SPLIT_MIN - 1], &config(20_000, None), tcp, 2).is_none());
        assert!(split(&jobs, &config(20_000, Some(5000)), tcp, 2).is_none());
        assert!(split(&jobs, &config(1000, None), tcp, 2).is_none());
        assert!(split(&jobs, &config(20_000, None), tcp, 1).is_none());
        assert!(split(&jobs, &config(20_000, None), |_| false, 2).is_none());
    }

    #[test]
    fn a_part_gets_its_share_of_the_width() {
        assert_eq!(width(&config(20_000, None), 8192, 16_384), 10_000);
        assert_eq!(width(&config(1, None), 1, 16_384), 1);
    }
}
