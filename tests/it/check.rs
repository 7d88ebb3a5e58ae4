//! `check` against real sockets on loopback.

use std::net::TcpListener;

use predicates::prelude::*;

use serde_json::Value;

use crate::util::{
    self, bin, check_agent, check_block, check_cmd, check_json, profile, results, run_json,
};

/// `check --role agent --server SERVER --format json`: (exit code, report).
fn agent_check(server: &str) -> (i32, Value) {
    run_json(check_agent(server).args(["--format", "json"]))
}

#[test]
fn open_tcp_port_passes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = profile(&check_block("web", "tcp", &port.to_string(), true));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    let r = results(&report, "web");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["state"], "open");
    assert_eq!(r[0]["verdict"], "pass");
    assert_eq!(r[0]["hint"], Value::Null);
    assert!(r[0]["reason"].as_str().unwrap().starts_with("connected in"));
    assert!(r[0]["latency_ms"].as_f64().is_some());
    assert_eq!(code, 0);
    drop(listener);
}

#[test]
fn closed_tcp_port_fails_with_a_hint() {
    let port = util::free_tcp_port();
    let p = profile(&check_block("web", "tcp", &port.to_string(), true));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    let r = &results(&report, "web")[0];
    assert_eq!(r["state"], "closed");
    assert_eq!(r["verdict"], "fail");
    assert!(
        r["reason"].as_str().unwrap().starts_with("refused (RST)"),
        "{r}"
    );
    assert!(
        r["hint"].as_str().unwrap().contains(&format!("TCP {port}")),
        "{r}"
    );
    assert_eq!(code, 1);
}

#[test]
fn optional_failure_warns_and_exits_zero_unless_strict() {
    let port = util::free_tcp_port();
    let p = profile(&check_block("web", "tcp", &port.to_string(), false));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    assert_eq!(results(&report, "web")[0]["verdict"], "warn");
    assert_eq!(code, 0);
    let (code, report) = check_json(&p, "127.0.0.1", &["--strict"]);
    assert_eq!(results(&report, "web")[0]["verdict"], "fail");
    assert_eq!(report["strict"], true);
    assert_eq!(code, 1);
}

#[test]
fn udp_echo_is_open() {
    let echo = util::udp_echo();
    let p = profile(&check_block("echo", "udp", &echo.port().to_string(), true));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    let r = &results(&report, "echo")[0];
    assert_eq!(r["state"], "open", "{r}");
    assert!(r["reason"].as_str().unwrap().starts_with("reply in"));
    assert_eq!(code, 0);
}

#[test]
fn closed_udp_port_is_closed_not_open() {
    let port = util::free_udp_port();
    let p = profile(&check_block("quiet", "udp", &port.to_string(), true));
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    let r = &results(&report, "quiet")[0];
    assert_eq!(r["state"], "closed", "{r}");
    assert!(r["reason"]
        .as_str()
        .unwrap()
        .contains("ICMP port unreachable"));
    assert_eq!(code, 1);
}

#[test]
fn blocked_expectation_inverts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = util::free_tcp_port();
    let blocks = format!(
        "{}expect = \"blocked\"\n\n{}expect = \"blocked\"\n",
        check_block("exposed", "tcp", &open.to_string(), true),
        check_block("shut", "tcp", &closed.to_string(), true)
    );
    let p = profile(&blocks);
    let (code, report) = check_json(&p, "127.0.0.1", &[]);
    assert_eq!(results(&report, "exposed")[0]["verdict"], "fail");
    assert!(results(&report, "exposed")[0]["hint"]
        .as_str()
        .unwrap()
        .contains("must be blocked"));
    assert_eq!(results(&report, "shut")[0]["verdict"], "pass");
    assert_eq!(code, 1);
}

#[test]
fn unresolvable_name_is_a_fast_error_result() {
    let started = std::time::Instant::now();
    let (code, report) = agent_check("automate.invalid");
    // A DNS failure is a result in the report, not a hang: well inside one timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let r = &results(&report, "agent-https")[0];
    assert_eq!(r["state"], "error");
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["address"], Value::Null);
    assert!(
        r["reason"].as_str().unwrap().contains("automate.invalid"),
        "{r}"
    );
    assert!(r["hint"].as_str().unwrap().contains("DNS"), "{r}");
    assert_eq!(code, 1);
}

/// In a namespace whose resolver is offline, so the query for the public mediator never
/// leaves this machine.
#[test]
fn default_mediator_does_not_resolve_here_and_says_so() {
    crate::require_root!();
    let lab = crate::workflows::lab("medr");
    let (code, report) = lab.check(
        &[
            "--role",
            "tunnel",
            "--server",
            "lab-server",
            "--timeout",
            "500ms",
        ],
        false,
    );
    let r = &results(&report, "mediator-udp")[0];
    assert_eq!(r["host"], "mediator.labtechsoftware.com");
    assert_eq!(r["state"], "error");
    // Tunnels are optional: a warning, exit 0.
    assert_eq!(r["verdict"], "warn");
    // The mapping needs serve's word on what it saw: without the key it is skipped.
    assert_eq!(results(&report, "nat-mapping")[0]["verdict"], "skip");
    assert_eq!(code, 0);
}

#[test]
fn agent_role_json_has_the_documented_fields() {
    let (code, report) = agent_check("127.0.0.1");
    assert_eq!(report["schema"], 1);
    assert_eq!(report["tool"], "automate-ports");
    assert_eq!(report["role"], "agent");
    for key in [
        "version",
        "hostname",
        "started_at",
        "duration_ms",
        "summary",
        "checks",
    ] {
        assert!(!report[key].is_null(), "missing {key}");
    }
    for key in ["pass", "fail", "warn", "skip"] {
        assert!(report["summary"][key].is_u64(), "summary.{key}");
    }
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5);
    for c in checks {
        for key in [
            "id",
            "description",
            "protocol",
            "ports",
            "target",
            "host",
            "address",
            "required",
            "expect",
            "state",
            "verdict",
            "reason",
            "hint",
            "latency_ms",
        ] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
    let tray = &results(&report, "agent-tray")[0];
    assert_eq!(tray["address"], "127.0.0.1");
    assert_eq!(tray["ports"], "42000");
    // The agent tray port is free here: the tool binds it and talks to itself.
    assert_eq!(tray["state"], "open", "{tray}");
    assert_eq!(results(&report, "agent-wakeup")[0]["verdict"], "skip");
    let installer = &results(&report, "agent-installer")[0];
    assert_eq!(
        (installer["verdict"].as_str(), installer["reason"].as_str()),
        (Some("skip"), Some("not checked: no --installer given"))
    );
    assert_eq!(code, i32::from(report["summary"]["fail"] != 0));
}

#[test]
fn every_address_of_a_name_is_a_row_and_family_flags_restrict() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = profile(&check_block("web", "tcp", &port.to_string(), true));
    let (_, report) = check_json(&p, "localhost", &["-4"]);
    let rows = results(&report, "web");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["address"], "127.0.0.1");
    assert_eq!(rows[0]["host"], "localhost");
    // An IPv4 literal with -6 is an error result that names the flag.
    let (code, report) = check_json(&p, "127.0.0.1", &["-6"]);
    assert!(results(&report, "web")[0]["reason"]
        .as_str()
        .unwrap()
        .contains("-6"));
    assert_eq!(code, 1);
}

#[test]
fn ipv6_loopback_is_probed() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        crate::util::skipped("ipv6_loopback_is_probed: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let p = profile(&check_block("web6", "tcp", &port.to_string(), true));
    let (code, report) = check_json(&p, "::1", &[]);
    let r = &results(&report, "web6")[0];
    assert_eq!(r["address"], "::1");
    assert_eq!(r["state"], "open");
    assert_eq!(code, 0);
}

#[test]
fn table_is_plain_when_piped_and_names_the_summary() {
    check_agent("127.0.0.1")
        .env_remove("NO_COLOR")
        .assert()
        .stdout(predicate::str::contains("\u{1b}[").not())
        .stdout(predicate::str::contains("agent-tray"))
        .stdout(predicate::str::contains("role agent"))
        .stdout(predicate::str::contains("→ agent-https"));
}

#[test]
fn demo_runs_offline_and_matches_its_staging() {
    bin()
        .arg("demo")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("db-not-exposed"))
        .stdout(predicate::str::contains("relay-range"))
        .stderr(predicate::str::contains("every result matches the staging"));
}

#[test]
fn profiles_list_and_show() {
    let out = bin().args(["profiles", "list"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!(text);
    for role in ["agent", "server", "split-db", "tunnel", "screenconnect"] {
        bin()
            .args(["profiles", "show", role])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("role = \"{role}\"")));
    }
}

#[test]
fn web_and_relay_on_one_port_say_a_connect_confirms_neither() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let p = profile(&format!(
        "{}{}",
        check_block("sc-web", "tcp", &port, true),
        check_block("sc-relay", "tcp", &port, true)
    ));
    let (_, report) = check_json(&p, "127.0.0.1", &[]);
    for (id, other) in [("sc-web", "sc-relay"), ("sc-relay", "sc-web")] {
        let reason = results(&report, id)[0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            reason.contains(&format!("shares {port}/tcp with {other}")),
            "{reason}"
        );
    }
    assert_eq!(
        report["notes"],
        serde_json::json!([]),
        "no middlebox on loopback"
    );
}

#[test]
fn naming_a_target_twice_checks_both_hosts() {
    let (_, report) = run_json(&mut check_cmd(&[
        "--role",
        "agent",
        "--target",
        "server=127.0.0.1",
        "--target",
        "server=127.0.0.2",
    ]));
    let hosts: Vec<&str> = results(&report, "agent-https")
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["127.0.0.1", "127.0.0.2"]);
}

/// One-off checks like Test-NetConnection: `--tcp`/`--udp HOST:PORT`, alone or with a role.
#[test]
fn one_off_tcp_and_udp_checks_alone_and_with_a_role() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = crate::util::free_tcp_port();
    let echo = crate::util::udp_echo();
    let (code, report) = run_json(&mut check_cmd(&[
        "--tcp",
        &format!("127.0.0.1:{open_port}"),
        "--tcp",
        &format!("127.0.0.1:{closed}"),
        "--udp",
        &echo.to_string(),
        "--timeout",
        "500ms",
    ]));
    assert_eq!(report["role"], "quick");
    let open_r = &results(&report, &format!("tcp-{open_port}"))[0];
    assert_eq!(open_r["verdict"], "pass", "{open_r}");
    let closed_r = &results(&report, &format!("tcp-{closed}"))[0];
    assert_eq!(
        (closed_r["state"].as_str(), closed_r["verdict"].as_str()),
        (Some("closed"), Some("fail"))
    );
    assert!(
        closed_r["reason"]
            .as_str()
            .unwrap()
            .starts_with("refused (RST)"),
        "{closed_r}"
    );
    assert!(
        closed_r["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("Allow TCP {closed}")),
        "{closed_r}"
    );
    assert_eq!(
        results(&report, &format!("udp-{}", echo.port()))[0]["verdict"],
        "pass"
    );
    assert_eq!(code, 1);
    // With a role: its checks and the one-off one, in one report.
    let (_, report) = run_json(&mut check_cmd(&[
        "--role",
        "split-db",
        "--db",
        "127.0.0.1",
        "--tcp",
        &format!("[::1]:{closed}"),
        "--timeout",
        "500ms",
    ]));
    assert_eq!(report["role"], "split-db");
    assert_eq!(results(&report, "mysql").len(), 1);
    assert_eq!(
        results(&report, &format!("tcp-{closed}"))[0]["address"],
        "::1"
    );
    // A port out of range: one line, exit 2.
    let out = check_cmd(&["--tcp", "127.0.0.1:70000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("above 65535"));
    drop(open);
}

/// The ScreenConnect role with web and relay on one host and port (behind one router port):
/// the relay probe's silence confirms nothing, so both still say a connect confirms neither.
#[test]
fn screenconnect_web_and_relay_on_one_port_say_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        use std::io::{Read, Write};
        // Answers the web check's GET; the relay check's connection only listens.
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .ok();
            let mut buf = [0u8; 1024];
            if matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    let web = format!("web=127.0.0.1:{port}");
    let relay = format!("relay=127.0.0.1:{port}");
    let (_, report) = crate::util::run_json(
        crate::util::check_cmd(&[
            "--role",
            "screenconnect",
            "--target",
            &web,
            "--target",
            &relay,
        ])
        .args(["--timeout", "2s"]),
    );
    for (id, other) in [("sc-web", "sc-relay"), ("sc-relay", "sc-web")] {
        let reason = results(&report, id)[0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            reason.contains(&format!("shares {port}/tcp with {other}")),
            "{reason}"
        );
    }
    let _ = served.join();
}
