//! Helpers: the binary and its JSON report, custom profiles, loopback listeners, network
//! namespaces and the helper scripts run in them.

use std::io::{BufRead as _, Write as _};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// The binary under test, with a bound on its run time so no test can hang.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("automate-ports").expect("binary built");
    cmd.timeout(Duration::from_secs(60));
    cmd.env_remove("RUST_LOG")
        .env_remove("AUTOMATE_PORTS_KEY")
        .env_remove("AUTOMATE_PORTS_PROXY_PASSWORD")
        .env("NO_COLOR", "1");
    english(&mut cmd);
    cmd
}

/// Reports follow the locale; tests read English unless they ask for German.
fn english(cmd: &mut assert_cmd::Command) {
    cmd.env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG");
}

pub fn bin_path() -> PathBuf {
    Command::cargo_bin("automate-ports")
        .expect("binary built")
        .get_program()
        .into()
}

/// A profile file with the given checks under one target `box`.
pub struct ProfileFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn profile(checks: &str) -> ProfileFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("custom.toml");
    let text = format!(
        "role = \"custom\"\ndescription = \"test profile\"\n\n[targets.box]\ndescription = \"the box\"\n\n{checks}"
    );
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write profile");
    ProfileFile { _dir: dir, path }
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// One `[[check]]` block.
pub fn check_block(id: &str, protocol: &str, ports: &str, required: bool) -> String {
    format!(
        "[[check]]\nid = \"{id}\"\ndescription = \"{id}\"\nprotocol = \"{protocol}\"\nports = \"{ports}\"\ntarget = \"box\"\nrequired = {required}\nsource = \"test\"\n\n"
    )
}

/// Runs `cmd`, which prints a JSON report on stdout; returns (exit code, report, stderr).
/// Panics with stderr when stdout is not JSON. Every test that reads a report from stdout
/// goes through here (most through [`run_json`]).
pub fn run_json_with_stderr(cmd: &mut assert_cmd::Command) -> (i32, Value, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}\nstderr: {stderr}",
            describe(cmd),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_valid_report(&report, &describe(cmd));
    (out.status.code().expect("exit code"), report, stderr)
}

/// Every report a test reads is checked against the published contract, schema/report-1.json
/// (an error object, `{"error": ...}`, is not a report).
pub fn assert_valid_report(report: &Value, what: &str) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    if report.get("error").is_some() {
        return;
    }
    let validator = SCHEMA.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report-1.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).expect("the published schema is a valid JSON Schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(report)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the report breaks schema/report-1.json: {errors:?}"
    );
}

/// Runs `cmd`, which prints a JSON report on stdout; returns (exit code, report).
pub fn run_json(cmd: &mut assert_cmd::Command) -> (i32, Value) {
    let (code, report, _) = run_json_with_stderr(cmd);
    (code, report)
}

/// The program and its arguments, for failure messages (the environment, with keys, left out).
fn describe(cmd: &assert_cmd::Command) -> String {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    format!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "))
}

/// `check ARGS --format json` through the binary under test, to add to and pass to
/// [`run_json`].
pub fn check_cmd(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.arg("check").args(args).args(["--format", "json"]);
    cmd
}

/// `check --role agent --server SERVER` (table output), to add to.
pub fn check_agent(server: &str) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.args(["check", "--role", "agent", "--server", server]);
    cmd
}

/// `check --profile … --target box=HOST` (table output), to add to.
pub fn check_box(profile: &ProfileFile, host: &str) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.arg("check")
        .arg("--profile")
        .arg(&profile.path)
        .args(["--target", &format!("box={host}")]);
    cmd
}

/// Runs `check --profile … --target box=HOST --format json` and returns (exit code, report).
pub fn check_json(profile: &ProfileFile, host: &str, extra: &[&str]) -> (i32, Value) {
    run_json(
        check_box(profile, host)
            .args(["--format", "json"])
            .args(extra),
    )
}

/// The check results with this id.
pub fn results<'a>(report: &'a Value, id: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP echo server on 127.0.0.1 that answers every datagram for as long as the test runs.
pub fn udp_echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Says that a test skips, where a person running `cargo test` sees it: straight to standard
/// error, past the test harness's capture (which hides `eprintln!` of a passing test). One
/// `write` of the whole line: stderr is unbuffered, so `writeln!` with arguments writes piece by
/// piece, and the harness's own lines on stdout (the same pipe under `2>&1`) landed in between.
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let line = format!("SKIPPED {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Whether `program` is installed (in the PATH or a system folder). A test that needs it and
/// finds it missing skips loudly, naming the package; under AUTOMATE_PORTS_REQUIRE_LAB (CI,
/// which installs it) a missing program is a failure instead.
pub fn installed(program: &str, package: &str) -> bool {
    let found = present(program);
    if !found {
        assert!(
            std::env::var_os("AUTOMATE_PORTS_REQUIRE_LAB").is_none(),
            "{program} is missing: apt-get install {package} (AUTOMATE_PORTS_REQUIRE_LAB is set)"
        );
        skipped(&format!(
            "{program} is not installed (apt-get install {package})"
        ));
    }
    found
}

/// Whether `program` is on the PATH or in the system's program folders. CI hides programs
/// with `AUTOMATE_PORTS_TEST_HIDE` (comma-separated names) to prove that the tests needing
/// them skip, as they would on a machine without them.
pub fn present(program: &str) -> bool {
    let hidden = std::env::var("AUTOMATE_PORTS_TEST_HIDE").unwrap_or_default();
    if hidden.split(',').any(|h| h.trim() == program) {
        return false;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}

/// Skips a test of the namespace lab, loudly, where it cannot run: not root, or a program the
/// lab uses is missing.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::util::is_root() {
            // CI sets this: there a lab test that cannot run is a failure, not a skip.
            assert!(
                std::env::var_os("AUTOMATE_PORTS_REQUIRE_LAB").is_none(),
                "{} needs root for network namespaces (AUTOMATE_PORTS_REQUIRE_LAB is set)",
                module_path!()
            );
            $crate::util::skipped(&format!(
                "{}: needs root for network namespaces",
                module_path!()
            ));
            return;
        }
        // The lab's firewalls and its small servers.
        for (program, package) in [
            ("ip", "iproute2"),
            ("iptables", "iptables"),
            ("ip6tables", "iptables"),
            ("nft", "nftables"),
            ("python3", "python3"),
            // A lower descriptor limit for serve, check run as nobody.
            ("prlimit", "util-linux"),
            ("setpriv", "util-linux"),
        ] {
            if !$crate::util::installed(program, package) {
                return;
            }
        }
    };
}

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A network namespace with loopback up, deleted on drop (also when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "ap-{tag}-{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    pub fn exec_ok(&self, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run_ok("ip", &all);
    }

    /// A firewall rule in this namespace: `tool` (`iptables`, `ip6tables` or `nft`) with the
    /// words of `rule` as its arguments.
    pub fn rule(&self, tool: &str, rule: &str) {
        let args: Vec<&str> = rule.split_whitespace().collect();
        self.exec_ok(tool, &args);
    }

    /// The binary under test, run inside this namespace.
    pub fn bin(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(bin_path());
        cmd.timeout(Duration::from_secs(120));
        cmd.env_remove("RUST_LOG")
            .env_remove("AUTOMATE_PORTS_PROXY_PASSWORD")
            .env("NO_COLOR", "1");
        english(&mut cmd);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines a child prints on stdout, read in a thread as they come.
fn stdout_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `automate-ports serve`, killed on drop.
pub struct Served {
    pub child: Child,
    /// Lines printed up to "ready".
    pub startup: Vec<String>,
    lines: Receiver<String>,
}

impl Served {
    /// Stops it with SIGTERM and returns what it printed after "ready" (bounded wait).
    #[cfg(unix)]
    pub fn stop(mut self) -> Vec<String> {
        run_ok("kill", &["-TERM", &self.child.id().to_string()]);
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            rest.push(line);
        }
        let _ = self.child.wait();
        rest
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` with `args` (through `prefix`, e.g. `ip netns exec NS`) and waits, at most
/// 20 s, for its "ready" line.
pub fn serve(prefix: &[&str], args: &[&str], key: &str) -> Served {
    let mut cmd = if prefix.is_empty() {
        Command::new(bin_path())
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg(bin_path());
        c
    };
    cmd.arg("serve")
        .args(args)
        .env("AUTOMATE_PORTS_KEY", key)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn serve");
    let lines = stdout_lines(&mut child);
    let mut served = Served {
        child,
        startup: Vec::new(),
        lines,
    };
    while let Ok(line) = served.lines.recv_timeout(Duration::from_secs(20)) {
        let ready = line.starts_with("ready:");
        served.startup.push(line);
        if ready {
            return served;
        }
    }
    let _ = served.child.kill();
    let mut err = String::new();
    if let Some(mut e) = served.child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    panic!("serve did not get ready: {:?} {err}", served.startup);
}

/// Where the helper scripts run in namespaces live (python3, each with its usage at the top).
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/scripts");

/// A script from tests/it/scripts running in a namespace, with its output lines. Killed on
/// drop.
pub struct Script {
    child: Child,
    lines: Receiver<String>,
}

impl Script {
    /// Starts `script` with `args` in `ns` and waits (at most 20 s) for its first line, which
    /// must be `ready`.
    pub fn start(ns: &Netns, script: &str, args: &[&str], ready: &str) -> Script {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3"])
            .arg(format!("{SCRIPTS}/{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let lines = stdout_lines(&mut child);
        let started = Script { child, lines };
        // Ends early, with nothing, when python failed (its error is on stderr).
        let first = started
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_default();
        assert_eq!(first, ready, "{script} {args:?} did not start");
        started
    }

    /// The lines it printed since it started (or since the last call): those there, and
    /// any that come within 200 ms more (the reader thread may be a moment behind).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        lines
    }

    /// Waits for it to end (at most 60 s) and returns its last line.
    pub fn finish(mut self) -> String {
        let last = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_default();
        let status = self.child.wait().expect("waits");
        assert!(status.success(), "script failed: {status}");
        last
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two namespaces, `client` and `server`, joined by a veth pair with IPv4 and IPv6
/// addresses from the documentation ranges (they exist only inside these namespaces).
/// The client resolves `lab-server` to both server addresses through its own hosts file.
pub struct Lab {
    pub client: Netns,
    pub server: Netns,
    /// The two ends of the veth pair, in the client and the server namespace.
    pub client_dev: String,
    pub server_dev: String,
    hosts_dir: PathBuf,
}

pub const SERVER_V4: &str = "192.0.2.2";
pub const SERVER_V6: &str = "2001:db8:77::2";
pub const LAB_KEY: &str = "lab-shared-key-1";

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let client = Netns::new(&format!("{tag}c"));
        let server = Netns::new(&format!("{tag}s"));
        // Interface names are per namespace, so short fixed names cannot collide.
        let n = NETNS_SEQ.fetch_add(1, Ordering::SeqCst);
        let (a, b) = (
            format!("apc{}x{n}", std::process::id() % 10000),
            format!("aps{}x{n}", std::process::id() % 10000),
        );
        run_ok(
            "ip",
            &["link", "add", &a, "type", "veth", "peer", "name", &b],
        );
        run_ok("ip", &["link", "set", &a, "netns", &client.name]);
        run_ok("ip", &["link", "set", &b, "netns", &server.name]);
        for (ns, dev, v4, v6) in [
            (&client, &a, "192.0.2.1/24", "2001:db8:77::1/64"),
            (&server, &b, "192.0.2.2/24", "2001:db8:77::2/64"),
        ] {
            ns.exec_ok("ip", &["addr", "add", v4, "dev", dev]);
            ns.exec_ok("ip", &["addr", "add", v6, "dev", dev, "nodad"]);
            ns.exec_ok("ip", &["link", "set", dev, "up"]);
        }
        // UDP "closed" needs every ICMP error to arrive: lift the rate limits in the lab only.
        for setting in ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"] {
            server.exec_ok("sysctl", &["-q", "-w", setting]);
        }
        let hosts_dir = PathBuf::from(format!("/etc/netns/{}", client.name));
        std::fs::create_dir_all(&hosts_dir).expect("hosts dir");
        std::fs::write(
            hosts_dir.join("hosts"),
            format!("127.0.0.1 localhost\n{SERVER_V4} lab-server\n{SERVER_V6} lab-server\n"),
        )
        .expect("hosts file");
        Lab {
            client,
            server,
            client_dev: a,
            server_dev: b,
            hosts_dir,
        }
    }

    /// Starts `serve` in the server namespace.
    pub fn serve(&self, args: &[&str]) -> Served {
        serve(&["ip", "netns", "exec", &self.server.name], args, LAB_KEY)
    }

    /// Runs `check` in the client namespace with JSON output; returns (exit code, report).
    pub fn check(&self, args: &[&str], key: bool) -> (i32, Value) {
        let mut cmd = self.client.bin();
        cmd.arg("check").args(args).args(["--format", "json"]);
        if key {
            cmd.env("AUTOMATE_PORTS_KEY", LAB_KEY);
        } else {
            cmd.env_remove("AUTOMATE_PORTS_KEY");
        }
        run_json(&mut cmd)
    }

    /// Points the client's resolver at its own loopback, where nothing answers: a name
    /// outside the hosts file (the public mediator) fails at once, and no query leaves
    /// the lab. Removed with the hosts file on drop.
    pub fn offline_dns(&self) {
        std::fs::write(self.hosts_dir.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .expect("resolv.conf");
    }

    /// Random loss: each namespace drops `probability` (e.g. "0.02") of every packet it
    /// receives, IPv4 and IPv6, in both directions of the lab. Like a lossy WAN: the link's
    /// own neighbour discovery is spared (ARP is never seen by iptables; a lost IPv6
    /// neighbour solicitation would cut the veth for a second, which no WAN does).
    pub fn add_loss(&self, probability: &str) {
        let drop =
            format!("-A INPUT -m statistic --mode random --probability {probability} -j DROP");
        for ns in [&self.server, &self.client] {
            for kind in ["neighbour-solicitation", "neighbour-advertisement"] {
                ns.rule(
                    "ip6tables",
                    &format!("-A INPUT -p icmpv6 --icmpv6-type {kind} -j ACCEPT"),
                );
            }
        }
        for tool in ["iptables", "ip6tables"] {
            for ns in [&self.server, &self.client] {
                ns.rule(tool, &drop);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.hosts_dir);
        // The namespaces go with their own Drop; the veth pair goes with them.
    }
}

/// The result of check `id` on `address`.
pub fn result_at<'a>(report: &'a Value, id: &str, address: &str) -> &'a Value {
    results(report, id)
        .into_iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no result for {id} on {address}: {report}"))
}

/// A plain TCP listener (not serve) inside a namespace: accepts and holds connections,
/// never answers (scripts/plain_listener.py). Killed on drop.
pub struct PlainListener {
    _script: Script,
}

impl PlainListener {
    pub fn start(ns: &Netns, addr: &str, port: u16) -> PlainListener {
        let port = port.to_string();
        PlainListener {
            _script: Script::start(ns, "plain_listener.py", &[addr, &port], "up"),
        }
    }
}

/// A small TCP server inside a namespace, on `[::]` with IPv4 too, for the real services
/// `serve` stands in for (scripts/ns_tcp_server.py). It stops accepting after two minutes.
/// Killed on drop.
pub struct NsTcpServer {
    _script: Script,
}

impl NsTcpServer {
    /// HTTPS with this certificate chain and key (PEM files): reads a request, answers
    /// `response`, closes.
    pub fn https(ns: &Netns, port: u16, response: &[u8], chain: &Path, key: &Path) -> Self {
        let files = [chain.to_str().expect("path"), key.to_str().expect("path")];
        Self::start(ns, "https", port, response, &files)
    }

    /// Plain HTTP: reads a request, answers `response`, closes.
    pub fn http(ns: &Netns, port: u16, response: &[u8]) -> Self {
        Self::start(ns, "http", port, response, &[])
    }

    /// Plain HTTP that answers 200 with the request's `Host` header as its `Server` header.
    pub fn echo_host(ns: &Netns, port: u16) -> Self {
        Self::start(ns, "echo-host", port, b"", &[])
    }

    /// Speaks first (MySQL's greeting), holds the connection a moment, closes.
    pub fn greeting(ns: &Netns, port: u16, greeting: &[u8]) -> Self {
        Self::start(ns, "greet", port, greeting, &[])
    }

    /// Accepts and holds every connection, never says a word.
    pub fn hold(ns: &Netns, port: u16) -> Self {
        Self::start(ns, "hold", port, b"", &[])
    }

    fn start(ns: &Netns, mode: &str, port: u16, payload: &[u8], files: &[&str]) -> Self {
        use std::fmt::Write as _;
        let hex = payload.iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let port = port.to_string();
        let mut args = vec![mode, &port, &hex];
        args.extend_from_slice(files);
        NsTcpServer {
            _script: Script::start(ns, "ns_tcp_server.py", &args, "up"),
        }
    }
}

/// Three namespaces: `client` behind a `router` that masquerades (nft, IPv4 and IPv6) onto
/// the server's link. `nat` is the masquerade statement's options: "" keeps the source port
/// where it can (endpoint-independent mapping), "fully-random" picks a new one for every
/// connection (symmetric). The client resolves `lab-server` as in [`Lab`].
pub struct NatLab {
    pub client: Netns,
    pub router: Netns,
    pub server: Netns,
    hosts_dir: PathBuf,
}

/// The router's address on the server's link: what serve sees behind the NAT.
pub const ROUTER_V4: &str = "192.0.2.1";
pub const ROUTER_V6: &str = "2001:db8:77::1";

impl NatLab {
    pub fn new(tag: &str, nat: &str) -> NatLab {
        let client = Netns::new(&format!("{tag}c"));
        let router = Netns::new(&format!("{tag}r"));
        let server = Netns::new(&format!("{tag}s"));
        let n = NETNS_SEQ.fetch_add(1, Ordering::SeqCst);
        let id = std::process::id() % 10000;
        let names: Vec<String> = ["nc", "nr", "ns", "nq"]
            .iter()
            .map(|p| format!("{p}{id}x{n}"))
            .collect();
        let links = [
            (&client, &names[0], &router, &names[1]),
            (&router, &names[3], &server, &names[2]),
        ];
        for (a_ns, a, b_ns, b) in links {
            run_ok("ip", &["link", "add", a, "type", "veth", "peer", "name", b]);
            run_ok("ip", &["link", "set", a, "netns", &a_ns.name]);
            run_ok("ip", &["link", "set", b, "netns", &b_ns.name]);
        }
        for (ns, dev, v4, v6) in [
            (&client, &names[0], "10.77.0.2/24", "fd77::2/64"),
            (&router, &names[1], "10.77.0.1/24", "fd77::1/64"),
            (&router, &names[3], "192.0.2.1/24", "2001:db8:77::1/64"),
            (&server, &names[2], "192.0.2.2/24", "2001:db8:77::2/64"),
        ] {
            ns.exec_ok("ip", &["addr", "add", v4, "dev", dev]);
            ns.exec_ok("ip", &["addr", "add", v6, "dev", dev, "nodad"]);
            ns.exec_ok("ip", &["link", "set", dev, "up"]);
        }
        client.exec_ok("ip", &["route", "add", "default", "via", "10.77.0.1"]);
        client.exec_ok("ip", &["-6", "route", "add", "default", "via", "fd77::1"]);
        for setting in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            router.exec_ok("sysctl", &["-q", "-w", setting]);
        }
        router.exec_ok("nft", &["add", "table", "inet", "lab"]);
        router.exec_ok(
            "nft",
            &["add chain inet lab post { type nat hook postrouting priority srcnat ; }"],
        );
        let mut rule = vec![
            "add",
            "rule",
            "inet",
            "lab",
            "post",
            "oifname",
            &names[3],
            "masquerade",
        ];
        rule.extend(nat.split_whitespace());
        router.exec_ok("nft", &rule);
        let hosts_dir = PathBuf::from(format!("/etc/netns/{}", client.name));
        std::fs::create_dir_all(&hosts_dir).expect("hosts dir");
        std::fs::write(
            hosts_dir.join("hosts"),
            format!("127.0.0.1 localhost\n{SERVER_V4} lab-server\n{SERVER_V6} lab-server\n"),
        )
        .expect("hosts file");
        // The public mediator must fail at once, without a query leaving the lab.
        std::fs::write(hosts_dir.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .expect("resolv.conf");
        NatLab {
            client,
            router,
            server,
            hosts_dir,
        }
    }

    pub fn serve(&self, args: &[&str]) -> Served {
        serve(&["ip", "netns", "exec", &self.server.name], args, LAB_KEY)
    }

    pub fn check(&self, args: &[&str], key: bool) -> (i32, Value) {
        let mut cmd = self.client.bin();
        cmd.arg("check").args(args).args(["--format", "json"]);
        if key {
            cmd.env("AUTOMATE_PORTS_KEY", LAB_KEY);
        } else {
            cmd.env_remove("AUTOMATE_PORTS_KEY");
        }
        run_json(&mut cmd)
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.hosts_dir);
    }
}
