//! The lab: `serve` in one network namespace, `check` in another, real iptables rules
//! between them. Needs root (CI runs as root and requires these tests to run).

use serde_json::Value;

use crate::require_root;
use crate::util::{
    check_block, profile, result_at, results, Lab, PlainListener, ProfileFile, Served, SERVER_V4,
    SERVER_V6,
};

const FAST: [&str; 4] = ["--timeout", "500ms", "--retries", "0"];

/// A lab with `serve --role server` running in its server namespace.
fn served_lab(tag: &str) -> (Lab, Served) {
    let lab = Lab::new(tag);
    let served = lab.serve(&["--role", "server", "--for", "2m"]);
    (lab, served)
}

fn server_check(lab: &Lab, host: &str, extra: &[&str], key: bool) -> (i32, Value) {
    let mut args = vec!["--role", "server", "--server", host];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    lab.check(&args, key)
}

/// `check --profile P --target box=192.0.2.2 EXTRA` from the client namespace.
fn box_check(lab: &Lab, p: &ProfileFile, extra: &[&str], key: bool) -> (i32, Value) {
    let target = format!("box={SERVER_V4}");
    let mut args = vec!["--profile", p.path.to_str().unwrap(), "--target", &target];
    args.extend_from_slice(extra);
    lab.check(&args, key)
}

#[test]
fn correct_firewall_passes_everything_on_both_families() {
    require_root!();
    let (lab, _serve) = served_lab("ok");
    // A hardened firewall: the database and plain HTTP are not forwarded.
    for tool in ["iptables", "ip6tables"] {
        lab.server
            .rule(tool, "-A INPUT -p tcp --dport 3306 -j DROP");
        lab.server.rule(
            tool,
            "-A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
        );
    }
    let (code, report) = server_check(&lab, "lab-server", &[], true);
    assert_eq!(report["summary"]["fail"], 0, "{report}");
    assert_eq!(report["summary"]["warn"], 0, "{report}");
    for address in [SERVER_V4, SERVER_V6] {
        for id in [
            "server-https",
            "control-center",
            "server-heartbeat",
            "relay-range",
        ] {
            let r = result_at(&report, id, address);
            assert_eq!(r["state"], "open", "{r}");
            assert_eq!(r["verified"], true, "{r}");
        }
        assert_eq!(
            result_at(&report, "db-not-exposed", address)["state"],
            "filtered"
        );
    }
    assert_eq!(code, 0);
}

#[test]
fn no_firewall_exposes_the_database() {
    require_root!();
    let (lab, _serve) = served_lab("db");
    let (code, report) = server_check(&lab, SERVER_V4, &[], true);
    let r = result_at(&report, "db-not-exposed", SERVER_V4);
    assert_eq!(
        (r["state"].as_str(), r["verdict"].as_str()),
        (Some("open"), Some("fail")),
        "{r}"
    );
    assert_eq!(code, 1);
}

#[test]
fn tcp_drop_is_filtered_and_reject_is_closed() {
    require_root!();
    let (lab, _serve) = served_lab("tcp");
    lab.server
        .rule("iptables", "-A INPUT -p tcp --dport 8484 -j DROP");
    lab.server.rule(
        "iptables",
        "-A INPUT -p tcp --dport 443 -j REJECT --reject-with tcp-reset",
    );
    let (code, report) = server_check(&lab, SERVER_V4, &[], true);
    let cc = result_at(&report, "control-center", SERVER_V4);
    assert_eq!(
        (cc["state"].as_str(), cc["verdict"].as_str()),
        (Some("filtered"), Some("fail")),
        "{cc}"
    );
    assert!(cc["hint"].as_str().unwrap().contains("8484"));
    let https = result_at(&report, "server-https", SERVER_V4);
    assert_eq!(https["state"], "closed", "{https}");
    assert!(https["reason"].as_str().unwrap().contains("refused (RST)"));
    assert_eq!(
        result_at(&report, "tunnel-relay", SERVER_V4)["verified"],
        true
    );
    assert_eq!(code, 1);
}

#[test]
fn udp_drop_is_filtered_with_a_key_and_open_filtered_without() {
    require_root!();
    let (lab, _serve) = served_lab("udpd");
    // Before the rule: the heartbeat is verified open, which no plain UDP probe can show.
    let (_, report) = server_check(&lab, SERVER_V4, &[], true);
    assert_eq!(
        result_at(&report, "server-heartbeat", SERVER_V4)["state"],
        "open"
    );
    lab.server
        .rule("iptables", "-A INPUT -p udp --dport 75 -j DROP");
    let (code, report) = server_check(&lab, SERVER_V4, &[], true);
    let hb = result_at(&report, "server-heartbeat", SERVER_V4);
    assert_eq!(
        (hb["state"].as_str(), hb["verdict"].as_str()),
        (Some("filtered"), Some("warn")),
        "{hb}"
    );
    assert_eq!(hb["verified"], false);
    assert_eq!(code, 1, "3306 is still exposed in this lab");
    let (_, report) = server_check(&lab, SERVER_V4, &[], false);
    let hb = result_at(&report, "server-heartbeat", SERVER_V4);
    assert_eq!(hb["state"], "open|filtered", "{hb}");
    assert_eq!(hb["verified"], Value::Null);
    // Optional, so only --strict turns the warning into exit 1 on its own.
    let p = profile(&check_block("hb", "udp", "75", false));
    let (code, _) = box_check(&lab, &p, &["--timeout", "500ms"], true);
    assert_eq!(code, 0);
    let (code, _) = box_check(&lab, &p, &["--timeout", "500ms", "--strict"], true);
    assert_eq!(code, 1);
}

#[test]
fn udp_reject_is_closed() {
    require_root!();
    let (lab, _serve) = served_lab("udpr");
    lab.server.rule(
        "iptables",
        "-A INPUT -p udp --dport 75 -j REJECT --reject-with icmp-port-unreachable",
    );
    let (_, report) = server_check(&lab, SERVER_V4, &[], true);
    let hb = result_at(&report, "server-heartbeat", SERVER_V4);
    assert_eq!(hb["state"], "closed", "{hb}");
    assert!(hb["reason"]
        .as_str()
        .unwrap()
        .contains("ICMP port unreachable"));
}

#[test]
fn client_egress_rule_is_blamed_on_this_machine() {
    require_root!();
    let (lab, _serve) = served_lab("egr");
    lab.client
        .rule("iptables", "-A OUTPUT -p tcp --dport 8484 -j DROP");
    lab.client
        .rule("iptables", "-A OUTPUT -p udp --dport 75 -j REJECT");
    let (code, report) = server_check(&lab, SERVER_V4, &[], true);
    let cc = result_at(&report, "control-center", SERVER_V4);
    assert_eq!(cc["state"], "filtered", "{cc}");
    assert_eq!(cc["verdict"], "fail");
    let hb = result_at(&report, "server-heartbeat", SERVER_V4);
    assert_ne!(hb["state"], "open", "{hb}");
    // Refused by this machine's own firewall: a rule to run here, for this platform.
    assert!(
        hb["hint"].as_str().unwrap().contains(
            "`nft insert rule inet filter output ip daddr 192.0.2.2 udp dport { 75 } accept` (or: `ufw allow out to 192.0.2.2 port 75 proto udp`)"
        ),
        "{hb}"
    );
    assert_eq!(
        result_at(&report, "server-https", SERVER_V4)["verified"],
        true
    );
    assert_eq!(code, 1);
}

#[test]
fn ipv6_only_rule_fails_one_address_and_passes_the_other() {
    require_root!();
    let (lab, _serve) = served_lab("v6");
    lab.server
        .rule("ip6tables", "-A INPUT -p tcp --dport 8484 -j DROP");
    let (code, report) = server_check(&lab, "lab-server", &[], true);
    assert_eq!(
        result_at(&report, "control-center", SERVER_V4)["verdict"],
        "pass"
    );
    let v6 = result_at(&report, "control-center", SERVER_V6);
    assert_eq!(
        (v6["state"].as_str(), v6["verdict"].as_str()),
        (Some("filtered"), Some("fail")),
        "{v6}"
    );
    assert_eq!(code, 1);
    // -4 leaves the IPv6 path out: only the database exposure fails then.
    let (_, report) = server_check(&lab, "lab-server", &["-4"], true);
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["address"] == SERVER_V4));
}

#[test]
fn drop_on_part_of_a_range_lists_exactly_those_ports() {
    require_root!();
    let lab = Lab::new("rng");
    let p = profile(&check_block("relay", "tcp", "49152-49651", true));
    let path = p.path.to_str().unwrap();
    let _serve = lab.serve(&["--profile", path, "--full-ranges", "--for", "2m"]);
    lab.server
        .rule("iptables", "-A INPUT -p tcp --dport 49200:49299 -j DROP");
    let (code, report) = box_check(
        &lab,
        &p,
        &["--full-ranges", "--timeout", "500ms", "--retries", "0"],
        true,
    );
    let r = &results(&report, "relay")[0];
    let expected: Vec<Value> = (49200..=49299).map(Value::from).collect();
    assert_eq!(r["failed_ports"].as_array().unwrap(), &expected, "{r}");
    assert_eq!(r["counts"]["open"], 400);
    assert_eq!(r["counts"]["filtered"], 100);
    assert_eq!(r["state"], "filtered");
    assert_eq!(code, 1);
}

#[test]
fn redirect_to_a_plain_listener_is_caught_with_a_key() {
    require_root!();
    let lab = Lab::new("rdr");
    // No serve at all: every TCP port is redirected to one listener that is not serve.
    let plain = PlainListener::start(&lab.server, "0.0.0.0", 9999);
    lab.server.rule(
        "iptables",
        "-t nat -A PREROUTING -p tcp -j REDIRECT --to-ports 9999",
    );
    let (code_plain, without_key) = server_check(&lab, SERVER_V4, &[], false);
    let (code_keyed, with_key) = server_check(&lab, SERVER_V4, &[], true);
    drop(plain);
    // Without a key the middlebox fools a port probe: everything looks open.
    assert_eq!(
        result_at(&without_key, "control-center", SERVER_V4)["verdict"],
        "pass"
    );
    assert_eq!(code_plain, 1, "3306 looks exposed too");
    // With a key it is caught on every TCP check.
    let cc = result_at(&with_key, "control-center", SERVER_V4);
    assert_eq!(
        (cc["state"].as_str(), cc["verdict"].as_str()),
        (Some("open"), Some("fail")),
        "{cc}"
    );
    assert_eq!(cc["verified"], false);
    assert!(
        cc["reason"]
            .as_str()
            .unwrap()
            .contains("not automate-ports serve"),
        "{cc}"
    );
    assert!(cc["hint"].as_str().unwrap().contains("proxy"), "{cc}");
    // The canary ports answered too: said once, at the top.
    let notes = with_key["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{with_key}");
    assert!(notes[0]
        .as_str()
        .unwrap()
        .contains("every port on 192.0.2.2 seems to answer"));
    let relay = result_at(&with_key, "relay-range", SERVER_V4);
    assert_eq!(
        relay["failed_ports"].as_array().unwrap().len(),
        32,
        "{relay}"
    );
    assert_eq!(code_keyed, 1);
}

#[test]
fn redirect_to_serve_on_another_port_is_named() {
    require_root!();
    let (lab, _serve) = served_lab("fwd");
    // A wrong port forward: 8484 lands on serve's 443.
    lab.server.rule(
        "iptables",
        "-t nat -A PREROUTING -p tcp --dport 8484 -j REDIRECT --to-ports 443",
    );
    let (_, report) = server_check(&lab, SERVER_V4, &[], true);
    let cc = result_at(&report, "control-center", SERVER_V4);
    assert_eq!(cc["verdict"], "fail", "{cc}");
    assert!(
        cc["reason"].as_str().unwrap().contains("for port 443"),
        "{cc}"
    );
}

#[test]
fn nft_rules_work_the_same() {
    require_root!();
    let (lab, _serve) = served_lab("nft");
    for cmd in [
        "add table inet lab",
        "add chain inet lab input { type filter hook input priority 0 ; }",
        "add rule inet lab input udp dport 75 drop",
        "add rule inet lab input tcp dport 443 reject with tcp reset",
    ] {
        lab.server.rule("nft", cmd);
    }
    let (code, report) = server_check(&lab, "lab-server", &[], true);
    for address in [SERVER_V4, SERVER_V6] {
        assert_eq!(
            result_at(&report, "server-heartbeat", address)["state"],
            "filtered"
        );
        assert_eq!(
            result_at(&report, "server-https", address)["state"],
            "closed"
        );
        assert_eq!(
            result_at(&report, "control-center", address)["verified"],
            true
        );
    }
    assert_eq!(code, 1);
}

#[test]
fn progress_bar_only_on_a_terminal_for_slow_table_runs() {
    require_root!();
    let lab = Lab::new("bar");
    // Everything dropped, the canary ports too: nothing on the address answers, so every
    // try waits its whole timeout and the run is slow enough for a bar.
    lab.server.rule("iptables", "-A INPUT -p tcp -j DROP");
    let p = profile(&check_block("slow", "tcp", "40000-40009", true));
    let check = format!(
        "ip netns exec {} {} check --profile {} --target box={SERVER_V4} --timeout 1500ms --retries 0",
        lab.client.name,
        crate::util::bin_path().display(),
        p.path.display()
    );
    // `script` gives the command a terminal; its transcript is what a person would see.
    let on_terminal = |extra: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{check} {extra}"), "/dev/null"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_terminal("");
    assert!(shown.contains("probing"), "no bar on a terminal: {shown}");
    assert!(shown.contains("slow"), "{shown}");
    for extra in ["--format json", "-q"] {
        let text = on_terminal(extra);
        assert!(!text.contains("probing"), "bar with {extra}: {text}");
    }
    // Piped: never.
    let out = lab
        .client
        .bin()
        .args(["check", "--profile", p.path.to_str().unwrap()])
        .args([
            "--target",
            &format!("box={SERVER_V4}"),
            "--timeout",
            "1500ms",
            "--retries",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("probing"));
    assert_eq!(out.status.code(), Some(1));
}

/// The tray port taken by another program, no agent installed (as on any Linux lab machine):
/// the check warns, names the program and its PID and the port an install would take
/// (42001, the next free one, as the install scripts choose); every port of 42000-42009
/// taken, it fails; free again, it passes. A tray check without an install range (an
/// installed agent's fixed port; here a profile of its own) fails on the same program. In an
/// empty namespace (nothing else can hold 42000 there), three runs each.
#[test]
fn a_foreign_program_on_the_tray_port_is_named() {
    require_root!();
    let lab = Lab::new("tray");
    let tray = |run: usize| {
        let (_, report) = lab.check(&["--role", "agent", "--server", "127.0.0.1"], false);
        let r = results(&report, "agent-tray")[0].clone();
        eprintln!("run {run}: {r}");
        r
    };
    for run in 1..=3 {
        let r = tray(run);
        assert_eq!(
            (r["state"].as_str(), r["verdict"].as_str()),
            (Some("open"), Some("pass")),
            "run {run}: {r}"
        );
    }
    let holder = crate::util::Script::start(
        &lab.client,
        "hold_udp.py",
        &["127.0.0.1", "42000"],
        "holding",
    );
    for run in 1..=3 {
        let r = tray(run);
        let reason = r["reason"].as_str().unwrap();
        assert_eq!(
            (r["state"].as_str(), r["verdict"].as_str()),
            (Some("open"), Some("warn")),
            "run {run}: {r}"
        );
        assert!(
            reason.contains("held by python3 (PID ")
                && reason.contains("not the Automate agent")
                && reason.contains("an agent install would take UDP 42001 instead (the first free port in 42000-42009"),
            "run {run}: {reason}"
        );
        let hint = r["hint"].as_str().unwrap();
        assert!(
            hint.contains("python3 (PID") && hint.contains("SERVICEPORT=42001"),
            "run {run}: {r}"
        );
    }
    drop(holder);
    let all = crate::util::Script::start(
        &lab.client,
        "hold_udp.py",
        &["127.0.0.1", "42000", "42009"],
        "holding",
    );
    for run in 1..=3 {
        let r = tray(run);
        assert_eq!(r["verdict"], "fail", "run {run}: {r}");
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .contains("every port in 42000-42009 is taken"),
            "run {run}: {r}"
        );
    }
    drop(all);
    let r = tray(4);
    assert_eq!(r["verdict"], "pass", "free again: {r}");
}

/// An installed agent's tray port is fixed (the install range is dropped when its settings
/// are found): a loopback check without `fallback-ports` fails on a foreign program and
/// names it, three runs.
#[test]
fn a_fixed_tray_port_held_by_a_foreign_program_fails() {
    require_root!();
    let lab = Lab::new("trayfix");
    let holder = crate::util::Script::start(
        &lab.client,
        "hold_udp.py",
        &["127.0.0.1", "42000"],
        "holding",
    );
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed-tray.toml");
    std::fs::write(
        &fixed,
        "role = \"custom\"\ndescription = \"tray\"\n[targets.loopback]\ndescription = \"here\"\ndefault = \"127.0.0.1\"\n[[check]]\nid = \"tray\"\ndescription = \"tray\"\nprotocol = \"udp\"\nports = \"42000\"\ntarget = \"loopback\"\nrequired = true\nprobe = \"loopback\"\nsource = \"test\"\n",
    )
    .unwrap();
    for run in 1..=3 {
        let (code, report) = lab.check(&["--profile", fixed.to_str().unwrap()], false);
        let r = &results(&report, "tray")[0];
        assert_eq!(
            (code, r["verdict"].as_str()),
            (1, Some("fail")),
            "run {run}: {r}"
        );
        assert!(
            r["hint"].as_str().unwrap().contains("python3 (PID"),
            "run {run}: {r}"
        );
    }
    drop(holder);
}

/// `server-local` on a server whose services are down, then up (a python process holding
/// 443, 8484 and 8002 TCP and 75 UDP on every address): named by process, three runs each.
#[test]
fn server_local_names_what_listens_and_what_does_not() {
    require_root!();
    let ns = crate::util::Netns::new("srvl");
    let check_with = |extra: &[&str]| {
        crate::util::run_json(
            ns.bin()
                .args(["check", "--role", "server-local", "--format", "json"])
                .args(extra),
        )
    };
    let check = || check_with(&[]);
    for run in 1..=3 {
        let (code, report) = check();
        // The outbound HTTPS check waits for a host to be named: none is guessed.
        assert_eq!(
            report["summary"],
            serde_json::json!({"pass": 0, "fail": 2, "warn": 2, "skip": 1}),
            "run {run}: {report}"
        );
        let out = &results(&report, "https-out")[0];
        assert_eq!(
            out["reason"], "not checked: no --target upstream=HOST given",
            "run {run}: {out}"
        );
        let https = &results(&report, "https-listens")[0];
        assert_eq!(https["state"], "closed", "run {run}: {https}");
        assert!(
            https["hint"].as_str().unwrap().starts_with(
                "Nothing listens on TCP 443 on this server. Start IIS and the ConnectWise Automate web site"
            ),
            "run {run}: {https}"
        );
        assert_eq!(code, 1);
    }
    let _services =
        crate::util::Script::start(&ns, "hold_ports.py", &["443,8484,8002", "75"], "holding");
    for run in 1..=3 {
        let (code, report) = check();
        for id in [
            "https-listens",
            "control-center-listens",
            "heartbeat-listens",
            "tunnel-relay-listens",
        ] {
            let r = &results(&report, id)[0];
            assert_eq!(
                (r["state"].as_str(), r["verdict"].as_str()),
                (Some("open"), Some("pass")),
                "run {run}: {r}"
            );
            assert!(
                r["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("listening here: python3 (PID "),
                "run {run}: {r}"
            );
        }
        assert_eq!(code, 0, "run {run}");
        // Named, the outbound check connects (here to this namespace's own 443).
        let (_, report) = check_with(&["--target", "upstream=127.0.0.1"]);
        let out = &results(&report, "https-out")[0];
        assert_eq!(out["verdict"], "pass", "run {run}: {out}");
    }
}

/// One of `ns`'s TCP counters so far, by its name in `/proc/net/snmp` (`Tcp:`) or
/// `/proc/net/netstat` (`TcpExt:`); IPv4 and IPv6 share them.
fn tcp_counter(ns: &crate::util::Netns, file: &str, prefix: &str, name: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat", file])
        .output()
        .expect("ip netns exec");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = text.lines().filter(|l| l.starts_with(prefix));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let column = names.split_whitespace().position(|n| n == name).unwrap();
    values
        .split_whitespace()
        .nth(column)
        .unwrap()
        .parse()
        .unwrap()
}

/// What `ns` has sent so far: all TCP segments, and those a timer sent rather than the
/// exchange (retransmissions, and ACKs whose delay ran out because the program was slow
/// to write behind them, which a loaded machine causes and no design avoids).
#[derive(Clone, Copy, Debug)]
struct Sent {
    segments: u64,
    by_timer: u64,
    opens: u64,
}

fn sent(ns: &crate::util::Netns) -> Sent {
    let snmp = |name| tcp_counter(ns, "/proc/net/snmp", "Tcp:", name);
    let ext = |name| tcp_counter(ns, "/proc/net/netstat", "TcpExt:", name);
    Sent {
        segments: snmp("OutSegs"),
        by_timer: snmp("RetransSegs") + ext("DelayedACKs"),
        opens: snmp("ActiveOpens"),
    }
}

#[test]
fn a_keyed_exchange_takes_five_segments_on_the_wire() {
    require_root!();
    // SYN, SYN-ACK, the handshake's last ACK with the probe, the reply with serve's FIN, the
    // client's RST: three from the client and two from serve, where a naive exchange takes
    // nine (a bare ACK, serve's ACK of the probe, reply and FIN apart, ...). Segments a timer
    // sent are not counted: on a loaded machine (CI runs the suite in parallel) the client's
    // write can come after the delayed ACK's timer, about one exchange in three here with six
    // busy loops on two cores; the design is what this test guards, not the machine's load.
    let lab = Lab::new("seg");
    let ports = 400;
    let p = profile(&check_block("range", "tcp", "50000-50399", true));
    let path = p.path.to_str().unwrap();
    let _served = lab.serve(&["--profile", path, "--full-ranges", "--for", "2m"]);
    for round in 0..2 {
        let before = (sent(&lab.client), sent(&lab.server));
        let (code, report) = box_check(&lab, &p, &["--full-ranges"], true);
        let after = (sent(&lab.client), sent(&lab.server));
        let r = &results(&report, "range")[0];
        assert_eq!(code, 0, "round {round}: {r}");
        assert_eq!(r["counts"]["open"], ports, "round {round}: {r}");
        // A few more for the run's canary ports, never one more per exchange.
        let designed =
            |now: Sent, then: Sent| (now.segments - then.segments) - (now.by_timer - then.by_timer);
        let (client, server) = (designed(after.0, before.0), designed(after.1, before.1));
        let said = format!(
            "round {round}: client {:?} to {:?}, serve {:?} to {:?}",
            before.0, after.0, before.1, after.1
        );
        let opens = after.0.opens - before.0.opens;
        assert!(
            (ports..ports + ports / 10).contains(&opens),
            "{said}: the client opened {opens} connections for {ports} exchanges"
        );
        assert!(
            (3 * ports..3 * ports + ports / 10).contains(&client),
            "{said}: the client sent {client} segments for {ports} exchanges"
        );
        assert!(
            (2 * ports..2 * ports + ports / 10).contains(&server),
            "{said}: serve sent {server} segments for {ports} exchanges"
        );
    }
}
