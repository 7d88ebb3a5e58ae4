//! Ranges: the sample, and full sweeps with nothing listening (no false open), including
//! the OS's ephemeral port range on loopback.

use std::net::TcpListener;

use serde_json::Value;

use crate::require_root;
use crate::util::{
    check_block, check_json, profile, results, run_json, Netns, PlainListener, ProfileFile,
};

#[test]
fn sampled_range_reports_exactly_the_ports_that_failed() {
    // Listen on every port of a small range but one.
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = first.local_addr().unwrap().port();
    let mut held = vec![first];
    let mut gap = None;
    // The gap is bound but never listens: closed (RST), and no other test running in
    // parallel can take it for a listener or a connection's source port meanwhile.
    let mut gap_holder = None;
    let mut end = base;
    for port in base + 1..base + 8 {
        if port == base + 4 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
            if socket.bind(&addr.into()).is_err() {
                break;
            }
            gap_holder = Some(socket);
            gap = Some(port);
        } else if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        } else {
            break;
        }
        end = port;
    }
    if end < base + 5 {
        crate::util::skipped("sampled_range: could not hold a run of ports");
        return;
    }
    let gap = gap.unwrap();
    let p = profile(&check_block("run", "tcp", &format!("{base}-{end}"), true));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    let r = &results(&report, "run")[0];
    assert_eq!(r["failed_ports"], serde_json::json!([gap]), "{r}");
    assert_eq!(r["counts"]["open"], u64::from(end - base));
    assert_eq!(r["counts"]["closed"], 1);
    assert_eq!(r["verdict"], "fail");
    assert!(r["hint"].as_str().unwrap().contains(&gap.to_string()));
    assert_eq!(code, 1);
    drop(gap_holder);
}

/// `check --profile P --target box=127.0.0.1 --full-ranges --format json EXTRA` inside `ns`.
fn sweep_in(ns: &Netns, p: &ProfileFile, extra: &[&str]) -> (i32, Value) {
    run_json(
        ns.bin()
            .args(["check", "--profile", p.path.to_str().unwrap()])
            .args([
                "--target",
                "box=127.0.0.1",
                "--full-ranges",
                "--format",
                "json",
            ])
            .args(extra),
    )
}

fn assert_no_open(r: &Value, total: u64) {
    let counts = r["counts"].as_object().unwrap();
    assert!(counts.get("open").is_none(), "false open: {r}");
    let sum: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, total, "{r}");
    assert_eq!(r["failed_ports"].as_array().unwrap().len() as u64, total);
}

#[test]
fn full_range_sweep_in_an_empty_namespace_finds_nothing_open() {
    require_root!();
    let ns = Netns::new("range");
    let p = profile(&format!(
        "{}{}",
        check_block("relay", "tcp", "49152-65535", true),
        check_block("p2p", "udp", "40000-41000", false)
    ));
    let (code, report) = sweep_in(&ns, &p, &["--timeout", "500ms", "--retries", "0"]);
    let relay = &results(&report, "relay")[0];
    assert_no_open(relay, 16384);
    // Loopback RSTs come back at once: every port is closed, none merely filtered.
    assert_eq!(relay["counts"]["closed"], 16384, "{relay}");
    assert_eq!(relay["probed_ports"], 16384);
    let p2p = &results(&report, "p2p")[0];
    assert_no_open(p2p, 1001);
    assert_eq!(code, 1);
}

#[test]
fn full_range_finds_the_one_listener_in_the_ephemeral_range() {
    require_root!();
    let ns = Netns::new("one");
    // A listener inside the namespace, on a port in the middle of the ephemeral range.
    let listener = PlainListener::start(&ns, "127.0.0.1", 50001);
    let p = profile(&check_block("relay", "tcp", "49152-65535", false));
    let (_, report) = sweep_in(&ns, &p, &["--timeout", "500ms"]);
    drop(listener);
    let relay = &results(&report, "relay")[0];
    assert_eq!(relay["counts"]["open"], 1, "{relay}");
    assert_eq!(relay["counts"]["closed"], 16383, "{relay}");
    assert!(!relay["failed_ports"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(50001)));
    assert_eq!(relay["verdict"], "warn");
}
