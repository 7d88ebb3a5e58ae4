//! `serve` on loopback: what it answers, what it ignores, how it starts and stops.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use automate_ports::protocol::{self, Key, Probe, ReplyCheck, PROBE_LEN, REPLY_LEN};

use serde_json::Value;

use crate::util::{
    self, bin, check_block, check_box, check_json, profile, results, run_json, serve, ProfileFile,
};

const KEY: &str = "loopback-key-4242";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `serve --profile P --bind 127.0.0.1 EXTRA` with `key`.
fn serve_profile(p: &ProfileFile, extra: &[&str], key: &str) -> util::Served {
    let path = p.path.to_str().unwrap();
    serve(
        &[],
        &[&["--profile", path, "--bind", "127.0.0.1"], extra].concat(),
        key,
    )
}

/// `check` of profile `p` on 127.0.0.1 with `key` in the environment: (exit code, report).
fn keyed_check(p: &ProfileFile, key: &str) -> (i32, Value) {
    run_json(
        check_box(p, "127.0.0.1")
            .args(["--format", "json"])
            .env("AUTOMATE_PORTS_KEY", key),
    )
}

/// A profile with one TCP and one UDP check on free loopback ports; serve listens on both.
fn served() -> (util::Served, ProfileFile, u16, u16) {
    let tcp = util::free_tcp_port();
    let udp = util::free_udp_port();
    let p = profile(&format!(
        "{}{}",
        check_block("t", "tcp", &tcp.to_string(), true),
        check_block("u", "udp", &udp.to_string(), true)
    ));
    let s = serve_profile(&p, &["--for", "1m"], KEY);
    (s, p, tcp, udp)
}

fn udp_reply(port: u16, datagram: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket.send_to(datagram, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn udp_answers_only_valid_fresh_keyed_probes_and_never_more_than_it_got() {
    let (responder, _p, _tcp, udp) = served();
    let key = Key::derive(KEY).unwrap();
    let wrong = Key::derive("some other key entirely").unwrap();
    let mut junk: Vec<Vec<u8>> = vec![
        b"automate-ports probe\n".to_vec(),
        vec![],
        vec![0xAB; 7],
        vec![0x55; 1400],
        vec![0x42; PROBE_LEN],
        Probe::new(udp, now_ms()).encode(&wrong).to_vec(),
        // Within the window but made before serve started: a recording from an earlier run.
        Probe::new(udp, now_ms() - 200_000).encode(&key).to_vec(),
    ];
    let valid = Probe::new(udp, now_ms()).encode(&key);
    junk.push(valid[..PROBE_LEN - 1].to_vec());
    let mut long = valid.to_vec();
    long.extend_from_slice(&[0; 64]);
    junk.push(long);
    for datagram in &junk {
        assert_eq!(
            udp_reply(udp, datagram),
            None,
            "answered {} junk bytes",
            datagram.len()
        );
    }
    // Junk did not stop it: a valid probe still gets a reply, smaller than the probe.
    let probe = Probe::new(udp, now_ms());
    let bytes = probe.encode(&key);
    let reply = udp_reply(udp, &bytes).expect("a valid probe is answered");
    assert!(reply.len() <= bytes.len());
    assert_eq!(reply.len(), REPLY_LEN);
    assert_eq!(
        protocol::check_reply(&key, &reply, &probe),
        ReplyCheck::Valid
    );
    // The same probe again is a replay.
    assert_eq!(udp_reply(udp, &bytes), None);
    // Outside the window, with the key (from a clock an hour ahead): a signed "stale" answer
    // with serve's clock, so the prober can name the clock difference; once per nonce, and
    // never larger than the probe.
    let old = Probe::new(udp, now_ms() + 3_600_000);
    let stale = udp_reply(udp, &old.encode(&key)).expect("a stale probe is answered as stale");
    assert!(stale.len() <= PROBE_LEN);
    match protocol::check_reply(&key, &stale, &old) {
        ReplyCheck::Stale { responder_ms } => {
            assert!(responder_ms.abs_diff(now_ms()) < 5_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(udp_reply(udp, &old.encode(&key)), None);
    // Everything ignored is counted, by cause, in its log.
    let printed = responder.stop().join("\n");
    assert!(
        printed.contains("answered 0 TCP and 2 UDP probes (1 refused as stale"),
        "{printed}"
    );
    for cause in [
        "4 truncated",
        "2 oversized",
        "1 malformed",
        "1 wrong key",
        "1 older than serve's start",
        "2 replayed",
    ] {
        assert!(printed.contains(cause), "{cause}: {printed}");
    }
}

/// What serve sends back on a new TCP connection for `probe`: nothing (an empty vector) if it
/// closes without an answer.
fn tcp_reply(port: u16, probe: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(probe).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

/// Probes recorded while one run of serve answered them get nothing from the next run, fresh
/// or stale: an answer would tell a replayer that serve runs again.
#[test]
fn a_probe_recorded_before_a_restart_gets_no_reply() {
    let (first, p, tcp, udp) = served();
    let key = Key::derive(KEY).unwrap();
    let recorded = [
        (tcp, Probe::new(tcp, now_ms())),
        (udp, Probe::new(udp, now_ms())),
    ];
    let first_reply = tcp_reply(tcp, &recorded[0].1.encode(&key));
    assert_eq!(
        protocol::check_reply(&key, &first_reply, &recorded[0].1),
        ReplyCheck::Valid
    );
    assert!(udp_reply(udp, &recorded[1].1.encode(&key)).is_some());
    drop(first);
    std::thread::sleep(Duration::from_millis(20));
    let second = serve_profile(&p, &["--for", "1m"], KEY);
    assert!(tcp_reply(tcp, &recorded[0].1.encode(&key)).is_empty());
    assert_eq!(udp_reply(udp, &recorded[1].1.encode(&key)), None);
    // Recorded beyond the window as well: no stale answer either.
    let old = Probe::new(udp, now_ms() - 400_000);
    assert_eq!(udp_reply(udp, &old.encode(&key)), None, "no stale answer");
    // The new run answers what is made for it.
    let fresh = Probe::new(udp, now_ms());
    assert!(udp_reply(udp, &fresh.encode(&key)).is_some());
    let printed = second.stop().join("\n");
    assert!(printed.contains("3 older than serve's start"), "{printed}");
}

#[test]
fn tcp_never_speaks_first_and_closes_on_junk() {
    let (_s, _p, tcp, _udp) = served();
    let key = Key::derive(KEY).unwrap();
    // Silent client: the responder says nothing, then closes after its deadline.
    let mut quiet = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut buf = [0u8; 128];
    assert_eq!(
        quiet.read(&mut buf).unwrap_or(0),
        0,
        "nothing before a challenge"
    );
    // Junk: closed without a byte.
    let mut junk = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    junk.write_all(&[0x42; PROBE_LEN]).unwrap();
    assert_eq!(junk.read(&mut buf).unwrap_or(0), 0);
    // A valid challenge is answered.
    let mut good = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let probe = Probe::new(tcp, now_ms());
    good.write_all(&probe.encode(&key)).unwrap();
    let mut reply = Vec::new();
    good.read_to_end(&mut reply).unwrap();
    assert_eq!(
        protocol::check_reply(&key, &reply, &probe),
        ReplyCheck::Valid
    );
}

#[test]
fn check_with_the_key_verifies_and_catches_a_plain_listener() {
    let (_s, p, tcp, udp) = served();
    let (code, report) = keyed_check(&p, KEY);
    for id in ["t", "u"] {
        let r = &results(&report, id)[0];
        assert_eq!(
            (r["state"].as_str(), r["verified"].as_bool()),
            (Some("open"), Some(true)),
            "{r}"
        );
    }
    assert_eq!(report["keyed"], true);
    assert_eq!(code, 0);
    let _ = (tcp, udp);

    // A plain listener is not serve: with the key, that is a failure with a reason.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = plain.local_addr().unwrap().port();
    let p = profile(&check_block("plain", "tcp", &port.to_string(), true));
    let (code, report) = check_json(&p, "127.0.0.1", &["--timeout", "300ms", "--key", KEY]);
    let r = &results(&report, "plain")[0];
    assert_eq!(r["verdict"], "fail", "{r}");
    assert_eq!(r["verified"], false);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("not automate-ports serve"),
        "{r}"
    );
    assert_eq!(code, 1);
    drop(plain);
}

#[test]
fn serve_says_what_it_skipped_and_stops_by_itself() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let free = util::free_tcp_port();
    let p = profile(&format!(
        "{}{}",
        check_block("busy", "tcp", &busy.to_string(), true),
        check_block("free", "tcp", &free.to_string(), true)
    ));
    let out = bin()
        .args([
            "serve",
            "--profile",
            p.path.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--for",
            "1s",
        ])
        .env("AUTOMATE_PORTS_KEY", KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("skipped {busy}/tcp on 127.0.0.1: in use")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("listening on 127.0.0.1: tcp {free}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("stopped: answered 0 TCP and 0 UDP probes"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(KEY) && !String::from_utf8_lossy(&out.stderr).contains(KEY),
        "key never echoed"
    );
    drop(held);
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let (mut s, _p, tcp, _udp) = served();
    let pid = s.child.id().to_string();
    util::run_ok("kill", &["-TERM", &pid]);
    let mut status = None;
    for _ in 0..100 {
        if let Some(st) = s.child.try_wait().unwrap() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    // Every socket closed with it.
    assert!(TcpStream::connect(("127.0.0.1", tcp)).is_err());
}

#[test]
fn serve_input_errors_are_one_line_exit_2() {
    for (args, key, needle) in [
        (
            vec!["serve", "--role", "server"],
            None,
            "AUTOMATE_PORTS_KEY",
        ),
        (
            vec!["serve", "--role", "server"],
            Some("short"),
            "too short",
        ),
        (
            vec!["serve", "--role", "server"],
            Some("aaaaaaaaaaaaaaa"),
            "serve --new-key makes one",
        ),
        (
            vec!["serve", "--role", "server"],
            Some("                "),
            "too short",
        ),
        (vec!["serve", "--role", "nope"], Some(KEY), "unknown role"),
        (
            vec!["serve", "--role", "server", "--for", "soon"],
            Some(KEY),
            "not a duration",
        ),
        (
            vec!["serve", "--role", "server", "--bind", "192.0.2.99"],
            Some(KEY),
            "not an address of this machine",
        ),
        (
            vec!["serve", "--role", "server", "--bind", "nowhere.invalid"],
            Some(KEY),
            "cannot resolve --bind",
        ),
    ] {
        let mut cmd = bin();
        cmd.args(&args);
        if let Some(k) = key {
            cmd.env("AUTOMATE_PORTS_KEY", k);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// `--key-file` on both sides: serve and check take the key from a file only its owner reads
/// (it wins over the environment); `--key` on the command line works but warns.
#[cfg(unix)]
#[test]
fn key_file_is_read_and_guarded() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("automate-ports.key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file_arg = file.to_str().unwrap();
    let tcp = util::free_tcp_port();
    let p = profile(&check_block("t", "tcp", &tcp.to_string(), true));
    // The environment holds another key: serve must answer with the file's.
    let _s = serve_profile(
        &p,
        &["--for", "1m", "--key-file", file_arg],
        "not-the-file-key-0000",
    );
    let out = check_box(&p, "127.0.0.1")
        .args(["--format", "json", "--key-file", file_arg])
        .env_remove("AUTOMATE_PORTS_KEY")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &results(&report, "t")[0];
    assert_eq!(r["verified"], true, "{r}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = check_box(&p, "127.0.0.1")
        .args(["--format", "json", "--key", KEY])
        .env_remove("AUTOMATE_PORTS_KEY")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results(&report, "t")[0]["verified"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --key is visible") && stderr.contains("--key-file"),
        "{stderr}"
    );
}

/// A key file others can read, a FIFO, an empty or missing file and both flags at once are
/// one-line errors, exit 2, at once.
#[cfg(unix)]
#[test]
fn key_file_mistakes_are_one_line_exit_2() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.key");
    std::fs::write(&good, KEY).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file_arg = good.to_str().unwrap();
    let open = dir.path().join("open.key");
    std::fs::write(&open, KEY).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fifo = dir.path().join("fifo.key");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let open = open.to_str().unwrap();
    let empty = empty.to_str().unwrap();
    let fifo = fifo.to_str().unwrap();
    for (args, needle) in [
        (vec!["check", "--key-file", open], "chmod 600"),
        (
            vec!["serve", "--role", "server", "--key-file", open],
            "mode 0644",
        ),
        (vec!["check", "--key-file", empty], "is empty"),
        (vec!["check", "--key-file", fifo], "not a regular file"),
        (
            vec!["check", "--key-file", "/nonexistent/key"],
            "cannot read --key-file",
        ),
        (vec!["check", "--key-file", file_arg, "--key", KEY], "--key"),
    ] {
        let started = std::time::Instant::now();
        let out = bin()
            .args(&args)
            .args(
                ["--role", "agent", "--server", "127.0.0.1"]
                    .iter()
                    .filter(|_| args[0] == "check"),
            )
            .env_remove("AUTOMATE_PORTS_KEY")
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} waited"
        );
    }
}

/// A responder on loopback that answers each probe with `junk` datagrams first (what a
/// spoofer racing serve's reply would send), then, if `valid`, the real reply.
fn racing_responder(junk: usize, valid: bool) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let key = Key::derive(KEY).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..16 {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let Ok(probe) = protocol::decode_probe(&key, &buf[..n], now_ms()) else {
                continue;
            };
            for i in 0..junk {
                let _ = socket.send_to(format!("junk {i}").as_bytes(), from);
            }
            if valid {
                let _ = socket.send_to(&protocol::encode_reply(&key, &probe.nonce, port), from);
            }
        }
    });
    port
}

#[test]
fn check_reads_past_datagrams_that_do_not_prove_the_key() {
    let raced = racing_responder(3, true);
    let only_junk = racing_responder(3, false);
    let p = profile(&format!(
        "{}{}",
        check_block("raced", "udp", &raced.to_string(), true),
        check_block("junk", "udp", &only_junk.to_string(), true)
    ));
    let (code, report) = keyed_check(&p, KEY);
    let raced = &results(&report, "raced")[0];
    assert_eq!(
        (raced["verified"].as_bool(), raced["verdict"].as_str()),
        (Some(true), Some("pass")),
        "{raced}"
    );
    let junk = &results(&report, "junk")[0];
    assert_eq!(junk["verified"], false, "{junk}");
    assert!(
        junk["reason"]
            .as_str()
            .unwrap()
            .contains("a UDP reply that does not prove the key"),
        "{junk}"
    );
    assert_eq!(code, 1);
}

/// `serve --new-key` prints a key (and how to set it) that both sides then accept.
#[test]
fn new_key_prints_a_key_that_works() {
    let out = bin().args(["serve", "--new-key"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text.lines().next().unwrap().to_string();
    assert_eq!(key.len(), 32, "{text}");
    assert!(
        text.contains(&format!("export AUTOMATE_PORTS_KEY='{key}'")),
        "{text}"
    );
    assert!(
        text.contains(&format!("$env:AUTOMATE_PORTS_KEY = '{key}'")),
        "{text}"
    );
    // Rotating a key: the old one is still in the environment.
    let again = bin()
        .args(["serve", "--new-key"])
        .env("AUTOMATE_PORTS_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_ne!(
        String::from_utf8_lossy(&again.stdout).lines().next(),
        Some(key.as_str())
    );

    let udp = util::free_udp_port();
    let p = profile(&check_block("u", "udp", &udp.to_string(), true));
    let _serve = serve_profile(&p, &["--for", "1m"], &key);
    let (code, report) = keyed_check(&p, &key);
    assert_eq!(results(&report, "u")[0]["verified"], true, "{report}");
    assert_eq!(code, 0);
}

/// `check` of profile `p` on 127.0.0.1 with the key, its wall clock moved by `skew` (a
/// faketime offset) when given.
fn check_with_clock(p: &ProfileFile, skew: Option<&str>) -> (i32, Value) {
    let mut cmd = match skew {
        Some(skew) => {
            let mut cmd = assert_cmd::Command::new("faketime");
            cmd.args(["-f", skew]).arg(util::bin_path());
            cmd
        }
        None => assert_cmd::Command::new(util::bin_path()),
    };
    cmd.args(["check", "--profile", p.path.to_str().unwrap()])
        .args([
            "--target",
            "box=127.0.0.1",
            "--format",
            "json",
            "--lang",
            "en",
        ])
        .env("AUTOMATE_PORTS_KEY", KEY)
        // Only the wall clock is wrong; timers run on as they should.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    run_json(&mut cmd)
}

/// Both checks of `report` are open, warned, and name clocks 600 s apart with `side` ahead.
fn assert_clocks_named(report: &Value, code: i32, side: &str, what: &str) {
    for id in ["t", "u"] {
        let r = &results(report, id)[0];
        let reason = r["reason"].as_str().unwrap();
        assert_eq!(
            (r["state"].as_str(), r["verdict"].as_str()),
            (Some("open"), Some("warn")),
            "{what}: {r}"
        );
        assert!(
            reason.contains(&format!("clocks differ by 600 s (the server is {side}")),
            "{what}: {reason}"
        );
        assert!(!reason.contains("firewall"), "{what}: {reason}");
    }
    assert_eq!(code, 0, "{what}: warnings only");
}

/// serve refuses a probe from a clock 600 s off, but says so with the key: check names the
/// clock difference and which side is ahead, instead of blaming a firewall. A probe dated
/// before serve started gets nothing (it could be a recording from an earlier run), and check
/// names a clock that is behind among the causes.
#[test]
fn a_wrong_clock_is_named_not_blamed_on_a_firewall() {
    if !util::installed("faketime", "faketime") {
        return;
    }
    let (served, p, _tcp, _udp) = served();
    let (code, report) = check_with_clock(&p, Some("+600s"));
    assert_clocks_named(&report, code, "behind", "check's clock ahead");

    // 600 s behind a serve that started a moment ago: dated before its start.
    let (code, report) = check_with_clock(&p, Some("-600s"));
    let r = &results(&report, "t")[0];
    let reason = r["reason"].as_str().unwrap();
    assert_eq!(
        (r["state"].as_str(), r["verified"].as_bool()),
        (Some("open"), Some(false)),
        "{r}"
    );
    assert!(reason.contains("clock behind serve's start"), "{reason}");
    assert_ne!(code, 0, "{report}");
    drop(served);

    // serve's clock jumps 600 s ahead two seconds after it started: check's probes are dated
    // after the start, and the difference is named.
    let s = serve(
        &[
            "env",
            "FAKETIME_START_AFTER_SECONDS=2",
            "FAKETIME_DONT_FAKE_MONOTONIC=1",
            "faketime",
            "-f",
            "+600s",
        ],
        &[
            "--profile",
            p.path.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--for",
            "1m",
        ],
        KEY,
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (code, report) = check_with_clock(&p, None);
    assert_clocks_named(&report, code, "ahead", "serve's clock ahead");
    drop(s);
}

/// Started as root, serve binds, then runs as nobody with no capabilities, and still answers.
#[test]
fn serve_started_as_root_answers_as_nobody_with_no_capabilities() {
    crate::require_root!();
    let (s, p, _tcp, _udp) = served();
    assert!(
        s.startup
            .iter()
            .any(|l| l.starts_with("left root after binding: running as nobody (uid 65534")),
        "{:?}",
        s.startup
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert!(!field("Gid:").contains(&"0"), "{status}");
    assert_eq!(
        field("Groups:"),
        ["65534"],
        "no supplementary groups: {status}"
    );
    for caps in ["CapEff:", "CapPrm:"] {
        assert_eq!(field(caps), ["0000000000000000"], "{caps} {status}");
    }
    let (code, report) = keyed_check(&p, KEY);
    for id in ["t", "u"] {
        assert_eq!(results(&report, id)[0]["verified"], true, "{report}");
    }
    assert_eq!(code, 0);
}

#[test]
fn serve_user_mistakes_are_one_line_exit_2() {
    crate::require_root!();
    let p = profile(&check_block(
        "t",
        "tcp",
        &util::free_tcp_port().to_string(),
        true,
    ));
    for (user, words) in [
        (
            "no-such-user-here",
            "no user 'no-such-user-here' on this machine",
        ),
        ("root", "--user root is root: name an unprivileged account"),
        ("0", "--user 0 is root"),
    ] {
        let out = bin()
            .args(["serve", "--profile", p.path.to_str().unwrap()])
            .args(["--bind", "127.0.0.1", "--for", "5s", "--user", user])
            .env("AUTOMATE_PORTS_KEY", KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{user}: {stderr}");
        assert!(stderr.contains(words), "{user}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    // Another unprivileged account works.
    let s = serve_profile(&p, &["--user", "daemon"], KEY);
    assert!(
        s.startup
            .iter()
            .any(|l| l.starts_with("left root after binding: running as daemon")),
        "{:?}",
        s.startup
    );
}
