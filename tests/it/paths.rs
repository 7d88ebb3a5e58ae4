//! Path traces in a chain of namespaces: client → r1 → r2 → server, with a firewall at one
//! place at a time. The check runs as an unprivileged user (nobody), at default flags, on
//! both families, three runs in a row (without the key, with it, without it), and must name
//! the hop where the path stops, in the trace and in the hint.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::require_root;
use crate::util::{bin_path, result_at, run_json, run_ok, serve, Netns, Served, LAB_KEY};

const SERVER: [&str; 2] = ["198.51.100.2", "2001:db8:2::2"];
/// r1 as the client sees it (this site's router, private addresses).
const R1: [&str; 2] = ["192.168.77.1", "fd77:1::1"];
/// r2 as the client sees it (a public router in front of the server's network).
const R2: [&str; 2] = ["203.0.113.2", "2001:db8:1::2"];

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Four namespaces in a row, routed both ways, with ICMP errors unrationed on the routers
/// and the server (a trace asks each router for one per TTL).
struct Chain {
    client: Netns,
    r1: Netns,
    r2: Netns,
    server: Netns,
    /// r2's end of the r1–r2 link: where traffic from the client enters r2.
    r2_in: String,
    hosts_dir: PathBuf,
    /// The binary copied where `nobody` can run it (the build tree may be private).
    exe: tempfile::TempDir,
}

impl Chain {
    fn new(tag: &str) -> Chain {
        let client = Netns::new(&format!("{tag}c"));
        let r1 = Netns::new(&format!("{tag}1"));
        let r2 = Netns::new(&format!("{tag}2"));
        let server = Netns::new(&format!("{tag}s"));
        let id = format!(
            "{}x{}",
            std::process::id() % 10000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dev = |p: &str| format!("{p}{id}");
        let (ca, ra, rb, rc, rd, sa) = (
            dev("tc"),
            dev("ta"),
            dev("tb"),
            dev("tr"),
            dev("td"),
            dev("ts"),
        );
        for (a_ns, a, b_ns, b) in [
            (&client, &ca, &r1, &ra),
            (&r1, &rb, &r2, &rc),
            (&r2, &rd, &server, &sa),
        ] {
            run_ok("ip", &["link", "add", a, "type", "veth", "peer", "name", b]);
            run_ok("ip", &["link", "set", a, "netns", &a_ns.name]);
            run_ok("ip", &["link", "set", b, "netns", &b_ns.name]);
        }
        for (ns, dev, v4, v6) in [
            (&client, &ca, "192.168.77.2/24", "fd77:1::2/64"),
            (&r1, &ra, "192.168.77.1/24", "fd77:1::1/64"),
            (&r1, &rb, "203.0.113.1/24", "2001:db8:1::1/64"),
            (&r2, &rc, "203.0.113.2/24", "2001:db8:1::2/64"),
            (&r2, &rd, "198.51.100.1/24", "2001:db8:2::1/64"),
            (&server, &sa, "198.51.100.2/24", "2001:db8:2::2/64"),
        ] {
            ns.exec_ok("ip", &["addr", "add", v4, "dev", dev]);
            ns.exec_ok("ip", &["addr", "add", v6, "dev", dev, "nodad"]);
            ns.exec_ok("ip", &["link", "set", dev, "up"]);
        }
        for (ns, v4, v6) in [
            (&client, "192.168.77.1", "fd77:1::1"),
            (&r1, "203.0.113.2", "2001:db8:1::2"),
            (&r2, "203.0.113.1", "2001:db8:1::1"),
            (&server, "198.51.100.1", "2001:db8:2::1"),
        ] {
            ns.exec_ok("ip", &["route", "add", "default", "via", v4]);
            ns.exec_ok("ip", &["-6", "route", "add", "default", "via", v6]);
        }
        for router in [&r1, &r2] {
            for setting in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
                router.exec_ok("sysctl", &["-q", "-w", setting]);
            }
        }
        for ns in [&r1, &r2, &server] {
            for setting in ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"] {
                ns.exec_ok("sysctl", &["-q", "-w", setting]);
            }
        }
        let hosts_dir = PathBuf::from(format!("/etc/netns/{}", client.name));
        std::fs::create_dir_all(&hosts_dir).expect("hosts dir");
        let [v4, v6] = SERVER;
        std::fs::write(
            hosts_dir.join("hosts"),
            format!("127.0.0.1 localhost\n{v4} lab-server\n{v6} lab-server\n"),
        )
        .expect("hosts file");
        std::fs::write(hosts_dir.join("resolv.conf"), "nameserver 127.0.0.1\n").expect("resolv");
        let exe = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(exe.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(bin_path(), exe.path().join("automate-ports")).expect("copy binary");
        Chain {
            client,
            r1,
            r2,
            server,
            r2_in: rc,
            hosts_dir,
            exe,
        }
    }

    /// A rule for both families: `{ip}` becomes iptables or ip6tables, `{reject}` the
    /// family's administratively-prohibited code.
    fn both(ns: &Netns, rule: &str) {
        for (tool, reject) in [
            ("iptables", "icmp-admin-prohibited"),
            ("ip6tables", "icmp6-adm-prohibited"),
        ] {
            ns.rule(tool, &rule.replace("{reject}", reject));
        }
    }

    fn serve(&self) -> Served {
        serve(
            &["ip", "netns", "exec", &self.server.name],
            &["--role", "server", "--for", "3m"],
            LAB_KEY,
        )
    }

    /// `check --role server --server lab-server` at default flags, as nobody.
    fn check(&self, key: bool) -> (i32, Value) {
        let mut cmd = assert_cmd::Command::new("ip");
        cmd.args(["netns", "exec", &self.client.name])
            .args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .arg(self.exe.path().join("automate-ports"))
            .args([
                "check",
                "--role",
                "server",
                "--server",
                "lab-server",
                "--format",
                "json",
            ])
            .timeout(std::time::Duration::from_secs(120))
            .env_remove("RUST_LOG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
        if key {
            cmd.env("AUTOMATE_PORTS_KEY", LAB_KEY);
        } else {
            cmd.env_remove("AUTOMATE_PORTS_KEY");
        }
        run_json(&mut cmd)
    }

    /// Three runs (without the key, with it, without it), each checked by `expect` for
    /// each family (0: IPv4, 1: IPv6).
    fn three_runs(&self, expect: impl Fn(&Value, usize)) {
        let _served = self.serve();
        for key in [false, true, false] {
            let (_, report) = self.check(key);
            for family in 0..2 {
                expect(&report, family);
            }
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.hosts_dir);
    }
}

fn trace<'a>(report: &'a Value, id: &str, family: usize) -> &'a Value {
    let result = result_at(report, id, SERVER[family]);
    assert!(result["trace"].is_object(), "no trace on {id}: {result}");
    &result["trace"]
}

fn hint(report: &Value, id: &str, family: usize) -> String {
    result_at(report, id, SERVER[family])["hint"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_drop_on_entering_r2_stops_the_path_after_r1() {
    require_root!();
    let chain = Chain::new("pd");
    let rule = format!(
        "-t raw -A PREROUTING -i {} -p tcp --dport 8484 -j DROP",
        chain.r2_in
    );
    Chain::both(&chain.r2, &rule);
    chain.three_runs(|report, f| {
        let t = trace(report, "control-center", f);
        assert_eq!(t["stopped_after"], 1, "{t}");
        assert_eq!(t["hops"][0]["address"], R1[f], "{t}");
        assert_eq!(t["target_hops"], 3, "{t}");
        assert_eq!(t["stop"], "site", "{t}");
        assert!(hint(report, "control-center", f).contains(R1[f]), "{t}");
    });
}

#[test]
fn a_rejecting_r2_is_named() {
    require_root!();
    let chain = Chain::new("pr");
    Chain::both(
        &chain.r2,
        "-A FORWARD -p tcp --dport 8484 -j REJECT --reject-with {reject}",
    );
    chain.three_runs(|report, f| {
        let t = trace(report, "control-center", f);
        assert_eq!(t["rejected_by"], R2[f], "{t}");
        assert_eq!(t["stop"], "rejected", "{t}");
        assert!(t["reason"].as_str().unwrap().contains("hop 2"), "{t}");
        assert!(hint(report, "control-center", f).contains(R2[f]), "{t}");
    });
}

#[test]
fn a_drop_in_the_servers_own_input_is_at_the_server() {
    require_root!();
    let chain = Chain::new("pi");
    Chain::both(&chain.server, "-A INPUT -p tcp --dport 8484 -j DROP");
    chain.three_runs(|report, f| {
        let t = trace(report, "control-center", f);
        assert_eq!(t["stop"], "at-target", "{t}");
        assert_eq!(t["stopped_after"], 2, "{t}");
        assert_eq!(t["target_hops"], 3, "{t}");
        let hint = hint(report, "control-center", f);
        assert!(
            hint.contains(&format!("firewall on {}", SERVER[f])),
            "{hint}"
        );
    });
}

#[test]
fn udp_dropped_by_r1_stops_at_hop_1() {
    require_root!();
    let chain = Chain::new("pu");
    Chain::both(&chain.r1, "-A FORWARD -p udp --dport 75 -j DROP");
    chain.three_runs(|report, f| {
        let t = trace(report, "server-heartbeat", f);
        assert_eq!(t["stopped_after"], 1, "{t}");
        assert_eq!(t["hops"][0]["address"], R1[f], "{t}");
        assert!(hint(report, "server-heartbeat", f).contains(R1[f]), "{t}");
    });
}

/// A Linux router answers for a probe's TTL before its forward rules drop it: a FORWARD
/// drop on r2 shows r2 as the last hop, and the trace says "there or at the next hop".
#[test]
fn a_forward_drop_on_r2_shows_r2_as_the_last_hop() {
    require_root!();
    let chain = Chain::new("pf");
    Chain::both(&chain.r2, "-A FORWARD -p tcp --dport 8484 -j DROP");
    chain.three_runs(|report, f| {
        let t = trace(report, "control-center", f);
        assert_eq!(t["stopped_after"], 2, "{t}");
        assert_eq!(t["hops"][1]["address"], R2[f], "{t}");
        // r2 is the last router before the server: it, or the server, drops it.
        assert_eq!(t["stop"], "at-target", "{t}");
    });
}

/// With the key and a correct firewall every check of the role passes against serve: no
/// trace, not even of the database port the firewall rightly drops.
#[test]
fn nothing_failed_traces_nothing() {
    require_root!();
    let chain = Chain::new("pn");
    Chain::both(&chain.server, "-A INPUT -p tcp --dport 3306 -j DROP");
    let _served = chain.serve();
    for _ in 0..3 {
        let (code, report) = chain.check(true);
        assert_eq!(code, 0, "{report}");
        let traced: Vec<&Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c.get("trace").is_some())
            .collect();
        assert!(traced.is_empty(), "{traced:?}");
    }
}

/// The Windows exe under Wine, in the chain's client namespace: a prefix of its own (its
/// wineserver, which owns Wine's sockets, starts there), the test-only ProcessPrng shim next
/// to a copy of the exe (see .ci/wine-smoke.sh). Wine runs as root, so raw ICMP sockets open
/// as for a Windows administrator.
struct Wine<'a> {
    chain: &'a Chain,
    dir: tempfile::TempDir,
}

impl<'a> Wine<'a> {
    /// `None` (skipped loudly; a failure under AUTOMATE_PORTS_REQUIRE_LAB) without Wine,
    /// mingw or the Windows release build, which CI makes before the tests.
    fn new(chain: &'a Chain) -> Option<Wine<'a>> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let exe = std::env::var_os("AUTOMATE_PORTS_WINDOWS_EXE").map_or_else(
            || root.join("target/x86_64-pc-windows-gnu/release/automate-ports.exe"),
            PathBuf::from,
        );
        if !crate::util::installed("wine", "wine wine64")
            || !crate::util::installed("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
        {
            return None;
        }
        if !exe.is_file() {
            assert!(
                std::env::var_os("AUTOMATE_PORTS_REQUIRE_LAB").is_none(),
                "{} is missing: cargo build --release --target x86_64-pc-windows-gnu (AUTOMATE_PORTS_REQUIRE_LAB is set)",
                exe.display()
            );
            crate::util::skipped(&format!(
                "no Windows build at {} (cargo build --release --target x86_64-pc-windows-gnu)",
                exe.display()
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(&exe, dir.path().join("automate-ports.exe")).expect("copy exe");
        let shim = root.join(".ci/wine-shim");
        run_ok(
            "x86_64-w64-mingw32-gcc",
            &[
                "-shared",
                "-O2",
                "-s",
                "-static-libgcc",
                "-o",
                dir.path().join("bcryptprimitives.dll").to_str().unwrap(),
                shim.join("bcryptprimitives.c").to_str().unwrap(),
                shim.join("bcryptprimitives.def").to_str().unwrap(),
                "-ladvapi32",
            ],
        );
        let wine = Wine { chain, dir };
        let booted = wine
            .command("wine")
            .args(["wineboot", "--init"])
            .timeout(std::time::Duration::from_secs(180))
            .output()
            .expect("wineboot");
        assert!(booted.status.success(), "wineboot: {booted:?}");
        Some(wine)
    }

    /// `program` in the client namespace with this prefix.
    fn command(&self, program: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("ip");
        cmd.args(["netns", "exec", &self.chain.client.name, program])
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RUST_LOG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG")
            .env_remove("AUTOMATE_PORTS_KEY")
            .env_remove("AUTOMATE_PORTS_TRACE_METHOD");
        cmd
    }

    /// `check --role server --server lab-server` at default flags; `method` forces the
    /// trace method (`icmp-echo`: what a user without administrator rights gets).
    /// The report, and the trace's own log (what an ICMP echo that failed said).
    fn check(&self, key: bool, method: Option<&str>) -> (Value, String) {
        let mut cmd = self.command("wine");
        cmd.arg(self.dir.path().join("automate-ports.exe"))
            .args([
                "check",
                "--role",
                "server",
                "--server",
                "lab-server",
                "--format",
                "json",
            ])
            .timeout(std::time::Duration::from_secs(120))
            .env("RUST_LOG", "automate_ports::probe::trace=debug");
        if key {
            cmd.env("AUTOMATE_PORTS_KEY", LAB_KEY);
        }
        if let Some(method) = method {
            cmd.env("AUTOMATE_PORTS_TRACE_METHOD", method);
        }
        let (_, report, log) = crate::util::run_json_with_stderr(&mut cmd);
        (report, log)
    }
}

impl Drop for Wine<'_> {
    fn drop(&mut self) {
        let _ = self
            .command("wineserver")
            .arg("-k")
            .timeout(std::time::Duration::from_secs(30))
            .output();
    }
}

/// Windows: as administrator the port's own path is traced through a raw ICMP socket; without
/// (the echo forced) the hops come from ICMP echo and the report says the port's path was
/// not traced. A drop entering r2, as in the first test; both families, three runs.
#[test]
fn the_windows_exe_traces_the_port_and_falls_back_to_echo() {
    require_root!();
    let chain = Chain::new("pw");
    let Some(wine) = Wine::new(&chain) else {
        return;
    };
    let rule = format!(
        "-t raw -A PREROUTING -i {} -p tcp --dport 8484 -j DROP",
        chain.r2_in
    );
    Chain::both(&chain.r2, &rule);
    // ICMP echo is dropped there too, so the echo's hops stop where the port's do.
    let r2_in = &chain.r2_in;
    chain.r2.rule(
        "iptables",
        &format!("-t raw -A PREROUTING -i {r2_in} -p icmp --icmp-type echo-request -j DROP"),
    );
    chain.r2.rule(
        "ip6tables",
        &format!("-t raw -A PREROUTING -i {r2_in} -p ipv6-icmp --icmpv6-type echo-request -j DROP"),
    );
    let _served = chain.serve();
    for key in [false, true, false] {
        let (report, log) = wine.check(key, None);
        let t = trace(&report, "control-center", 0);
        assert_eq!(t["method"], "port", "{t}\n{log}");
        assert_eq!(t["stopped_after"], 1, "{t}\n{log}");
        assert_eq!(t["hops"][0]["address"], R1[0], "{t}\n{log}");
        assert_eq!(t["stop"], "site", "{t}\n{log}");
        assert!(
            hint(&report, "control-center", 0).contains(R1[0]),
            "{t}\n{log}"
        );
        // Wine (unlike Windows) opens no raw ICMPv6 socket and has no Icmp6SendEcho2: the
        // IPv6 path is honestly not traced, and no firewall is named for it.
        not_traced_by_echo(&report, 1);
    }
    let (report, log) = wine.check(false, Some("icmp-echo"));
    let t = not_traced_by_echo(&report, 0);
    assert_eq!(t["stopped_after"], 1, "{t}\n{log}");
    assert_eq!(t["hops"][0]["address"], R1[0], "{t}\n{log}");
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("ICMP echo stops after hop 1"),
        "{t}\n{log}"
    );
    not_traced_by_echo(&report, 1);
}

/// The trace of control-center on `family` was made by ICMP echo: the port's own path not
/// traced, nobody named as rejecting it, and the hint asks for a run as administrator
/// instead of naming a firewall.
fn not_traced_by_echo(report: &Value, family: usize) -> &Value {
    let t = trace(report, "control-center", family);
    assert_eq!(t["method"], "icmp-echo", "{t}");
    assert_eq!(t["stop"], "not-traced", "{t}");
    assert!(t["rejected_by"].is_null(), "{t}");
    let hint = hint(report, "control-center", family);
    assert!(hint.starts_with("Run it again as administrator"), "{hint}");
    assert!(!hint.contains(R1[family]), "{hint}");
    t
}
