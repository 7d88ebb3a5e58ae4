//! The run's hard deadline: a probe the operating system never returns from (made so in the
//! debug build by `AUTOMATE_PORTS_TEST_STALL=PORT`, which blocks the probing thread as Wine's
//! socket layer once did) must not hang the run. At the deadline the report is written, with
//! that probe `unfinished` and everything else as measured, and the exit code is 1.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, bin, results, run_json_with_stderr};

/// "deadline: this run ends within 11.8 s (…)" from the -v log, in seconds.
fn printed_deadline(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("deadline: this run ends within "))
        .unwrap_or_else(|| panic!("no deadline in the log: {stderr}"));
    let after = line.split("ends within ").nth(1).unwrap();
    let number: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().unwrap()
}

/// An open TCP port and a UDP port whose probe never returns, at a short timeout.
fn stuck_run(format: &str, extra: &[&str]) -> (std::process::Output, f64, u16, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let stuck = util::free_udp_port();
    let started = Instant::now();
    let out = bin()
        .env("AUTOMATE_PORTS_TEST_STALL", stuck.to_string())
        .args(["-v", "check", "--timeout", "300ms", "--format", format])
        .args(["--tcp", &format!("127.0.0.1:{open}")])
        .args(["--udp", &format!("127.0.0.1:{stuck}")])
        .args(extra)
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    drop(listener);
    (out, took, open, stuck)
}

#[test]
fn a_probe_stuck_in_the_os_ends_at_the_deadline_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let (out, took, open, stuck) = stuck_run("json", &["--output", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let deadline = printed_deadline(&stderr);
    // The bound at these flags: 6 tries of 300 ms, plus the 10 s margin.
    assert!(
        (11.0..14.0).contains(&deadline),
        "deadline {deadline}: {stderr}"
    );
    assert!(
        took >= deadline - 0.5 && took < deadline + 3.0,
        "took {took:.1} s against a deadline of {deadline} s: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report on stdout");
    util::assert_valid_report(&report, "the deadline's report");
    let udp = results(&report, &format!("udp-{stuck}"))[0];
    assert_eq!(udp["state"], "unfinished", "{udp}");
    assert_eq!(udp["verdict"], "fail");
    assert!(
        udp["reason"]
            .as_str()
            .unwrap()
            .starts_with("no result: the operating system did not return within "),
        "{udp}"
    );
    assert!(udp["hint"].as_str().unwrap().contains("deadline"), "{udp}");
    let tcp = results(&report, &format!("tcp-{open}"))[0];
    assert_eq!(
        tcp["state"], "open",
        "what finished is reported as measured: {tcp}"
    );
    assert_eq!(tcp["verdict"], "pass");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("the run was stopped at its deadline after "),
        "{}",
        report["notes"]
    );
    // The log names what was stuck; the --output file holds the same report.
    assert!(
        stderr.contains(&format!("UDP 127.0.0.1:{stuck}")),
        "{stderr}"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["checks"], report["checks"]);
}

#[test]
fn the_table_and_junit_show_the_unfinished_probe() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let (out, _, _, stuck) = stuck_run("table", &["--output", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.contains(&format!("{stuck}/udp")))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("FAIL") && row.contains("unfinished"), "{row}");
    assert!(table.contains("stopped at its deadline"), "{table}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<error"),
        "an unfinished probe is an error, not a failure: {xml}"
    );
}

#[test]
fn a_run_that_finishes_is_not_touched_by_its_deadline() {
    // The same flags without the stall: done in well under a second, exit 0, no note.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let (code, report, stderr) = run_json_with_stderr(
        bin()
            .args(["-v", "check", "--timeout", "300ms", "--format", "json"])
            .args(["--tcp", &format!("127.0.0.1:{open}")]),
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert_eq!(code, 0, "{stderr}");
    assert!(printed_deadline(&stderr) > 10.0);
    assert!(
        !report["notes"].to_string().contains("deadline"),
        "{report}"
    );
}
