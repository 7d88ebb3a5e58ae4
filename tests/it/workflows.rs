//! Workflows end to end, the way a technician, an onboarding script or a CI job runs them:
//! the real binary in the lab at its default timeout, retries and width, on the dual-stack
//! name `lab-server`, with the exact expected result on both of its addresses. Repeated
//! runs must come out the same every time. Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::require_root;
use crate::servers::{days_from_now, mysql_greeting, Ca, AUTOMATE_ANSWER};
use crate::util::{
    check_block, profile, result_at, results, write_file, Lab, NsTcpServer, ProfileFile, SERVER_V4,
    SERVER_V6,
};

/// The two addresses `lab-server` resolves to in the client namespace.
pub(crate) const BOTH: [&str; 2] = [SERVER_V4, SERVER_V6];

/// A web server that is not Automate (ScreenConnect's web port, say).
const WEB_PAGE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: lab-sc\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// A lab whose client resolves nothing outside its hosts file.
pub(crate) fn lab(tag: &str) -> Lab {
    let lab = Lab::new(tag);
    lab.offline_dns();
    lab
}

/// A result on one line, for failure messages (a full sweep's report runs to megabytes).
pub(crate) fn brief(r: &Value) -> String {
    let failed = r["failed_ports"].as_array().map_or(String::new(), |f| {
        let head: Vec<String> = f.iter().take(12).map(ToString::to_string).collect();
        format!(" failed_ports[{}]: {}", f.len(), head.join(","))
    });
    format!(
        "{} {} state={} verdict={} verified={} counts={} reason={:?}{failed}",
        r["id"],
        r["address"],
        r["state"],
        r["verdict"],
        r["verified"],
        r["counts"],
        r["reason"].as_str().unwrap_or_default()
    )
}

/// Every result on its own line, then the notes.
pub(crate) fn overview(report: &Value) -> String {
    let mut lines: Vec<String> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(brief)
        .collect();
    lines.push(format!("notes: {}", report["notes"]));
    lines.join("\n")
}

/// `serve` answered check `id` on `address`: open, verified, pass.
pub(crate) fn assert_verified_pass(report: &Value, id: &str, address: &str, run: usize) {
    let r = result_at(report, id, address);
    assert_eq!(
        (
            r["state"].as_str(),
            r["verified"].as_bool(),
            r["verdict"].as_str()
        ),
        (Some("open"), Some(true), Some("pass")),
        "run {run}: {}",
        brief(r)
    );
}

/// A swept range where `serve` answered every one of its `ports` ports.
fn assert_range_verified(report: &Value, id: &str, address: &str, ports: usize, run: usize) {
    let r = result_at(report, id, address);
    // assert! rather than assert_eq!: the brief names the first ports, not all thousands.
    assert!(r["failed_ports"] == json!([]), "run {run}: {}", brief(r));
    assert_eq!(
        r["counts"],
        json!({ "open": ports }),
        "run {run}: {}",
        brief(r)
    );
    assert_eq!(
        (r["verified"].as_bool(), r["verdict"].as_str()),
        (Some(true), Some("pass")),
        "run {run}: {}",
        brief(r)
    );
}

/// A state and verdict, exactly.
fn assert_outcome(report: &Value, id: &str, address: &str, expected: (&str, &str), run: usize) {
    let r = result_at(report, id, address);
    assert_eq!(
        (r["state"].as_str(), r["verdict"].as_str()),
        (Some(expected.0), Some(expected.1)),
        "run {run}: {}",
        brief(r)
    );
}

fn assert_summary(report: &Value, pass: u64, warn: u64, skip: u64, run: usize) {
    assert_eq!(
        report["summary"],
        json!({ "pass": pass, "fail": 0, "warn": warn, "skip": skip }),
        "run {run}:\n{}",
        overview(report)
    );
}

/// The database port is not forwarded: dropped on both families.
pub(crate) fn block_database(lab: &Lab) {
    for tool in ["iptables", "ip6tables"] {
        lab.server
            .rule(tool, "-A INPUT -p tcp --dport 3306 -j DROP");
    }
}

/// A private CA and a certificate for `lab-server` from it, as PEM files.
pub(crate) struct LabCert {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    pub(crate) chain: PathBuf,
    pub(crate) key: PathBuf,
}

impl LabCert {
    pub(crate) fn new() -> LabCert {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new();
        let (chain, key) = ca.leaf_pem(&["lab-server"], days_from_now(-1), days_from_now(90));
        LabCert {
            ca: write_file(dir.path(), "ca.pem", &ca.pem),
            chain: write_file(dir.path(), "chain.pem", &chain),
            key: write_file(dir.path(), "key.pem", &key),
            _dir: dir,
        }
    }

    pub(crate) fn ca_file(&self) -> &str {
        self.ca.to_str().expect("utf-8 path")
    }

    /// An Automate-like HTTPS endpoint on 443 in the server namespace, IPv4 and IPv6.
    fn automate(&self, lab: &Lab) -> NsTcpServer {
        self.automate_on(lab)
    }

    pub(crate) fn automate_on(&self, lab: &Lab) -> NsTcpServer {
        NsTcpServer::https(&lab.server, 443, AUTOMATE_ANSWER, &self.chain, &self.key)
    }
}

// ------------------------------------------------------------------------------ agent

#[test]
fn agent_with_a_key_passes_three_runs_in_a_row() {
    require_root!();
    let lab = lab("wfak");
    let _serve = lab.serve(&["--role", "agent", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(&["--role", "agent", "--server", "lab-server"], true);
        for address in BOTH {
            assert_verified_pass(&report, "agent-https", address, run);
            assert_verified_pass(&report, "agent-heartbeat", address, run);
        }
        let wakeup = results(&report, "agent-wakeup");
        assert_eq!(wakeup.len(), 1, "{}", overview(&report));
        assert_eq!(wakeup[0]["verdict"], "skip", "{}", brief(wakeup[0]));
        // The tray check binds 42000/udp on this machine: serve has no part in it, a key
        // changes nothing about it.
        let tray = result_at(&report, "agent-tray", "127.0.0.1");
        assert_eq!(
            (tray["state"].as_str(), tray["verdict"].as_str()),
            (Some("open"), Some("pass")),
            "run {run}: {}",
            brief(tray)
        );
        assert_summary(&report, 5, 0, 2, run);
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn agent_wakeup_to_a_peer_is_verified_three_runs_in_a_row() {
    require_root!();
    let lab = lab("wfaw");
    let _serve = lab.serve(&["--role", "agent", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(
            &[
                "--role",
                "agent",
                "--server",
                "lab-server",
                "--peer",
                "lab-server",
            ],
            true,
        );
        for address in BOTH {
            assert_verified_pass(&report, "agent-wakeup", address, run);
            assert_verified_pass(&report, "agent-https", address, run);
            assert_verified_pass(&report, "agent-heartbeat", address, run);
        }
        assert_outcome(&report, "agent-tray", "127.0.0.1", ("open", "pass"), run);
        assert_summary(&report, 7, 0, 1, run);
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn agent_without_a_key_against_a_real_automate_server() {
    require_root!();
    let lab = lab("wfar");
    let cert = LabCert::new();
    let _automate = cert.automate(&lab);
    // Nothing on 75/udp: the server namespace answers ICMP port unreachable.
    let (code, report) = lab.check(
        &[
            "--role",
            "agent",
            "--server",
            "lab-server",
            "--ca-file",
            cert.ca_file(),
        ],
        false,
    );
    for address in BOTH {
        assert_outcome(&report, "agent-https", address, ("open", "pass"), 1);
        let https = result_at(&report, "agent-https", address);
        assert_eq!(https["verified"], Value::Null);
        assert_eq!(https["app"]["automate_version"], "200.264", "{https}");
        assert!(
            https["reason"]
                .as_str()
                .unwrap()
                .starts_with("ConnectWise Automate 200.264 answered (TLS 1."),
            "{}",
            brief(https)
        );
        // Optional: a closed heartbeat port warns and leaves the exit code alone.
        assert_outcome(&report, "agent-heartbeat", address, ("closed", "warn"), 1);
    }
    assert_outcome(&report, "agent-tray", "127.0.0.1", ("open", "pass"), 1);
    assert_eq!(results(&report, "agent-wakeup")[0]["verdict"], "skip");
    assert_summary(&report, 3, 2, 2, 1);
    assert_eq!(code, 0);
}

// ----------------------------------------------------------------------------- server

/// The server role's results besides server-https, identical on both addresses: serve
/// answers everything, the database is dropped, plain HTTP answers (serve listens on 80, and
/// 80 may be open or closed). A server set up as the source document says: no warning.
pub(crate) fn assert_server_role(report: &Value, range_ports: usize, run: usize) {
    for address in BOTH {
        assert_range_verified(report, "relay-range", address, range_ports, run);
        for id in ["control-center", "tunnel-relay", "server-heartbeat"] {
            assert_verified_pass(report, id, address, run);
        }
        assert_outcome(report, "db-not-exposed", address, ("filtered", "pass"), run);
        assert_outcome(report, "server-http", address, ("open", "pass"), run);
    }
    assert_summary(report, 14, 0, 0, run);
}

fn full_server_check(lab: &Lab) -> (i32, Value) {
    lab.check(
        &[
            "--role",
            "server",
            "--server",
            "lab-server",
            "--full-ranges",
        ],
        true,
    )
}

#[test]
fn pre_install_full_sweep_passes_three_runs_in_a_row() {
    require_root!();
    let lab = lab("wfpi");
    block_database(&lab);
    let _serve = lab.serve(&["--role", "server", "--full-ranges", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = full_server_check(&lab);
        for address in BOTH {
            assert_verified_pass(&report, "server-https", address, run);
        }
        assert_server_role(&report, 16_384, run);
        assert_eq!(code, 0, "run {run}");
    }
}

/// The acceptance of the keyed-sweep fix, as a user would check it: ten in a row, dual-stack,
/// default flags, not one false failure.
#[test]
fn pre_install_full_sweep_has_no_false_failures_in_ten_runs() {
    require_root!();
    let lab = lab("wfpx");
    block_database(&lab);
    let _serve = lab.serve(&["--role", "server", "--full-ranges", "--for", "5m"]);
    let mut false_failures = Vec::new();
    for run in 1..=10 {
        let started = Instant::now();
        let (_, report) = full_server_check(&lab);
        for address in BOTH {
            let r = result_at(&report, "relay-range", address);
            if r["failed_ports"] != json!([]) || r["verified"] != true {
                false_failures.push(format!("run {run}: {}", brief(r)));
            }
        }
        eprintln!("run {run}: {:.1} s", started.elapsed().as_secs_f64());
    }
    assert!(false_failures.is_empty(), "{}", false_failures.join("\n"));
}

#[test]
fn live_server_with_iis_on_443_and_serve_beside_it() {
    require_root!();
    let lab = lab("wfls");
    block_database(&lab);
    let cert = LabCert::new();
    let _iis = cert.automate(&lab);
    let serve = lab.serve(&["--role", "server", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(
            &[
                "--role",
                "server",
                "--server",
                "lab-server",
                "--ca-file",
                cert.ca_file(),
            ],
            true,
        );
        for address in BOTH {
            let https = result_at(&report, "server-https", address);
            assert_eq!(https["verdict"], "pass", "run {run}: {}", brief(https));
            assert!(
                https["reason"]
                    .as_str()
                    .unwrap()
                    .contains("the real service answered (serve does not hold this port)"),
                "run {run}: {}",
                brief(https)
            );
        }
        assert_server_role(&report, 32, run);
        assert_eq!(code, 0, "run {run}");
    }
    let startup = serve.startup.join("\n");
    assert!(
        serve
            .startup
            .iter()
            .any(|line| line.contains("left to the real service") && line.contains("443")),
        "{startup}"
    );
}

// --------------------------------------------------------------------------- split-db

#[test]
fn split_db_real_mysql_answers_without_a_key() {
    require_root!();
    let lab = lab("wfdb");
    let _mysql = NsTcpServer::greeting(&lab.server, 3306, &mysql_greeting(b"8.0.36"));
    for run in 1..=3 {
        let (code, report) = lab.check(&["--role", "split-db", "--db", "lab-server"], false);
        for address in BOTH {
            assert_outcome(&report, "mysql", address, ("open", "pass"), run);
            let r = result_at(&report, "mysql", address);
            assert_eq!(r["reason"], "MySQL 8.0.36 answered", "{}", brief(r));
            assert_eq!(r["app"]["server"], "8.0.36");
        }
        assert_summary(&report, 2, 0, 0, run);
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn split_db_before_install_is_verified_with_a_key() {
    require_root!();
    let lab = lab("wfdk");
    let _serve = lab.serve(&["--role", "split-db", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(&["--role", "split-db", "--db", "lab-server"], true);
        for address in BOTH {
            assert_verified_pass(&report, "mysql", address, run);
        }
        assert_summary(&report, 2, 0, 0, run);
        assert_eq!(code, 0, "run {run}");
    }
}

// ----------------------------------------------------------------------------- tunnel

#[test]
fn tunnel_full_sweep_names_exactly_the_dropped_p2p_ports_three_runs_in_a_row() {
    require_root!();
    let lab = lab("wftn");
    for tool in ["iptables", "ip6tables"] {
        lab.server
            .rule(tool, "-A INPUT -p udp --dport 40100:40199 -j DROP");
    }
    let _serve = lab.serve(&["--role", "tunnel", "--full-ranges", "--for", "3m"]);
    let dropped: Vec<Value> = (40100..=40199).map(Value::from).collect();
    for run in 1..=3 {
        let (code, report) = lab.check(
            &[
                "--role",
                "tunnel",
                "--server",
                "lab-server",
                "--full-ranges",
            ],
            true,
        );
        for address in BOTH {
            let p2p = result_at(&report, "p2p", address);
            assert!(
                p2p["failed_ports"].as_array() == Some(&dropped),
                "run {run}: {}",
                brief(p2p)
            );
            assert_eq!(
                p2p["counts"],
                json!({ "open": 901, "filtered": 100 }),
                "run {run}: {}",
                brief(p2p)
            );
            assert_eq!(
                (p2p["state"].as_str(), p2p["verdict"].as_str()),
                (Some("filtered"), Some("warn")),
                "run {run}: {}",
                brief(p2p)
            );
            // P2P leaves each site outbound: the fix never asks for an inbound forward.
            let hint = p2p["hint"].as_str().unwrap_or_default();
            assert!(
                hint.contains("outbound UDP 40100-40199 at both sites")
                    && !hint.contains("forward it"),
                "run {run}: {hint}"
            );
            assert_eq!(
                result_at(&report, "nat-mapping", address)["nat"]["mapping"],
                "none"
            );
            assert_range_verified(&report, "relay-range", address, 16_384, run);
            assert_verified_pass(&report, "relay-tcp", address, run);
        }
        // The public mediator does not resolve in the lab; keyed probes would never go
        // there anyway (serve cannot run on it), and the report says so.
        for id in ["mediator-udp", "mediator-tcp"] {
            let mediator = results(&report, id);
            assert_eq!(mediator.len(), 1, "run {run}:\n{}", overview(&report));
            assert_eq!(
                (
                    mediator[0]["state"].as_str(),
                    mediator[0]["verdict"].as_str()
                ),
                (Some("error"), Some("warn")),
                "run {run}: {}",
                brief(mediator[0])
            );
        }
        let notes = report["notes"].as_array().expect("notes");
        assert!(
            notes
                .iter()
                .any(|n| n.as_str().unwrap_or_default().contains("without the key")),
            "run {run}: {}",
            report["notes"]
        );
        assert_summary(&report, 6, 4, 0, run);
        for tunnel in report["tunnels"].as_array().expect("tunnel paths") {
            assert_eq!(tunnel["route"], "relay", "run {run}: {}", report["notes"]);
        }
        assert_eq!(code, 0, "run {run}: every tunnel check is optional");
    }
}

// ---------------------------------------------------------------------- screenconnect

const SC_CHECK: [&str; 4] = ["--role", "screenconnect", "--screenconnect", "lab-server"];

#[test]
fn screenconnect_with_a_key_is_verified() {
    require_root!();
    let lab = lab("wfsk");
    let _serve = lab.serve(&["--role", "screenconnect", "--for", "2m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(&SC_CHECK, true);
        for address in BOTH {
            assert_verified_pass(&report, "sc-web", address, run);
            assert_verified_pass(&report, "sc-relay", address, run);
        }
        assert_summary(&report, 4, 0, 0, run);
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn screenconnect_without_a_key_against_its_web_and_relay_ports() {
    require_root!();
    let lab = lab("wfsu");
    let _web = NsTcpServer::http(&lab.server, 8040, WEB_PAGE);
    let _relay = NsTcpServer::hold(&lab.server, 8041);
    for run in 1..=3 {
        let (code, report) = lab.check(&SC_CHECK, false);
        for address in BOTH {
            assert_outcome(&report, "sc-web", address, ("open", "pass"), run);
            let web = result_at(&report, "sc-web", address);
            assert_eq!(web["app"]["http_status"], 200, "{web}");
            assert_eq!(web["app"]["server"], "lab-sc", "{web}");
            assert_outcome(&report, "sc-relay", address, ("open", "pass"), run);
        }
        assert_summary(&report, 4, 0, 0, run);
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn ci_smoke_waits_for_a_server_that_is_still_starting() {
    require_root!();
    let lab = lab("wfwt");
    let mut args = SC_CHECK.to_vec();
    args.extend_from_slice(&["--wait", "30s"]);
    for run in 1..=3 {
        let (code, report) = std::thread::scope(|scope| {
            let check = scope.spawn(|| lab.check(&args, true));
            std::thread::sleep(Duration::from_secs(3));
            let _serve = lab.serve(&["--role", "screenconnect", "--for", "2m"]);
            check.join().expect("check ran")
        });
        for address in BOTH {
            assert_verified_pass(&report, "sc-web", address, run);
            assert_verified_pass(&report, "sc-relay", address, run);
        }
        assert!(
            report["wait"]["rounds"].as_u64().is_some_and(|r| r > 1),
            "run {run}: {}",
            report["wait"]
        );
        assert_eq!(code, 0, "run {run}");
    }
}

// ------------------------------------------------------------------------------- loss

/// 2 % of all packets dropped at random, each way, IPv4 and IPv6.
const LOSS: &str = "0.02";

fn loss_check(lab: &Lab, p: &ProfileFile, extra: &[&str], key: bool) -> (i32, Value) {
    let mut args = vec![
        "--profile",
        p.path.to_str().expect("utf-8 path"),
        "--target",
        "box=lab-server",
        "--full-ranges",
    ];
    args.extend_from_slice(extra);
    lab.check(&args, key)
}

/// A keyed sweep of `ports` through 2 % loss each way: every port verified on both
/// addresses, three runs in a row.
fn keyed_sweep_through_loss(tag: &str, id: &str, protocol: &str, ports: &str, count: usize) {
    let lab = lab(tag);
    let p = profile(&check_block(id, protocol, ports, true));
    let path = p.path.to_str().unwrap();
    let serve = lab.serve(&["--profile", path, "--full-ranges", "--for", "3m"]);
    lab.add_loss(LOSS);
    let mut failures = Vec::new();
    for run in 1..=3 {
        let (code, report) = loss_check(&lab, &p, &[], true);
        for address in BOTH {
            let r = result_at(&report, id, address);
            if r["failed_ports"] != json!([]) || r["counts"] != json!({ "open": count }) {
                failures.push(format!("run {run}: {}", brief(r)));
            }
        }
        if code != 0 {
            failures.push(format!("run {run}: exit {code}"));
        }
    }
    // serve's own count of what it ignored, and why, says which side lost the exchange.
    let log = serve.stop();
    assert!(
        failures.is_empty(),
        "{}\nserve: {log:?}",
        failures.join("\n")
    );
}

#[test]
fn loss_keyed_tcp_sweep_verifies_every_port_three_runs_in_a_row() {
    require_root!();
    keyed_sweep_through_loss("wflt", "relay", "tcp", "49152-65535", 16_384);
}

#[test]
fn loss_keyed_udp_sweep_verifies_every_port_three_runs_in_a_row() {
    require_root!();
    keyed_sweep_through_loss("wflu", "p2p", "udp", "40000-41000", 1001);
}

#[test]
fn loss_unkeyed_sweep_of_closed_ports_is_closed_everywhere_three_runs_in_a_row() {
    require_root!();
    let lab = lab("wflc");
    let p = profile(&check_block("relay", "tcp", "49152-65535", true));
    lab.add_loss(LOSS);
    for run in 1..=3 {
        let (code, report) = loss_check(&lab, &p, &["--timeout", "1s"], false);
        for address in BOTH {
            let r = result_at(&report, "relay", address);
            assert_eq!(
                r["counts"],
                json!({ "closed": 16_384 }),
                "run {run}: {}",
                brief(r)
            );
            assert_outcome(&report, "relay", address, ("closed", "fail"), run);
        }
        assert_eq!(code, 1, "run {run}: a required range is closed");
    }
}
