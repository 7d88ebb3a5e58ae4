//! Helpers: the binary, custom profiles, loopback listeners, network namespaces.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// The binary under test, with a bound on its run time so no test can hang.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("automate-ports").expect("binary built");
    cmd.timeout(Duration::from_secs(60));
    cmd.env_remove("RUST_LOG")
        .env_remove("AUTOMATE_PORTS_KEY")
        .env("NO_COLOR", "1");
    english(&mut cmd);
    cmd
}

/// Reports follow the locale; tests read English unless they ask for German.
pub fn english(cmd: &mut assert_cmd::Command) {
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

/// Runs `check --profile … --target box=HOST --format json` and returns (exit code, report).
pub fn check_json(profile: &ProfileFile, host: &str, extra: &[&str]) -> (i32, Value) {
    let out = bin()
        .arg("check")
        .arg("--profile")
        .arg(&profile.path)
        .args(["--target", &format!("box={host}"), "--format", "json"])
        .args(extra)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), report)
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

/// Skips a test that needs root, loudly.
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
            eprintln!(
                "SKIPPED {}: needs root for network namespaces",
                module_path!()
            );
            return;
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

    /// The binary under test, run inside this namespace.
    pub fn bin(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(bin_path());
        cmd.timeout(Duration::from_secs(120));
        cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
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

/// A running `automate-ports serve`, killed on drop.
pub struct Served {
    pub child: std::process::Child,
    /// Lines printed up to "ready".
    pub startup: Vec<String>,
    lines: std::sync::mpsc::Receiver<String>,
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
    use std::io::BufRead as _;
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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        startup: Vec::new(),
        lines: rx,
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

    /// A firewall rule in the server namespace (`iptables` or `ip6tables` arguments).
    pub fn server_rule(&self, tool: &str, rule: &str) {
        let args: Vec<&str> = rule.split_whitespace().collect();
        self.server.exec_ok(tool, &args);
    }

    pub fn client_rule(&self, tool: &str, rule: &str) {
        let args: Vec<&str> = rule.split_whitespace().collect();
        self.client.exec_ok(tool, &args);
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
        let out = cmd.output().expect("check runs");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().expect("exit code"), report)
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
/// never answers. Killed on drop.
pub struct PlainListener(std::process::Child);

impl PlainListener {
    pub fn start(ns: &Netns, addr: &str, port: u16) -> PlainListener {
        use std::io::BufRead as _;
        let script = format!(
            "import socket,time\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{addr}', {port})); s.listen(512); print('up', flush=True)\n\
             conns=[]\n\
             end=time.time()+60\n\
             while time.time()<end:\n    c,_=s.accept(); conns.append(c)\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("listener says up");
        assert_eq!(line.trim(), "up");
        PlainListener(child)
    }
}

impl Drop for PlainListener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Lab {
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
        for ns in [&self.server, &self.client] {
            for kind in ["neighbour-solicitation", "neighbour-advertisement"] {
                ns.exec_ok(
                    "ip6tables",
                    &[
                        "-A",
                        "INPUT",
                        "-p",
                        "icmpv6",
                        "--icmpv6-type",
                        kind,
                        "-j",
                        "ACCEPT",
                    ],
                );
            }
        }
        let rule =
            format!("-A INPUT -m statistic --mode random --probability {probability} -j DROP");
        for tool in ["iptables", "ip6tables"] {
            self.server_rule(tool, &rule);
            self.client_rule(tool, &rule);
        }
    }
}

/// A small TCP server in python inside a namespace, on `[::]` with IPv4 too (one
/// dual-stack socket, IPV6_V6ONLY off), for the real services `serve` stands in for.
/// Each connection in its own thread; it stops accepting after two minutes. Killed on drop.
pub struct NsTcpServer(std::process::Child);

const NS_TCP_SERVER: &str = r"
import socket, ssl, sys, threading, time
mode, port, payload = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
ctx = None
if mode == 'https':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', port))
s.listen(512)
s.settimeout(0.5)
held = []
def handle(c):
    try:
        c.settimeout(10)
        if mode == 'hold':
            held.append(c)
            return
        if ctx is not None:
            c = ctx.wrap_socket(c, server_side=True)
        if mode in ('https', 'http'):
            request = b''
            while b'\r\n\r\n' not in request and len(request) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    return
                request += chunk
        c.sendall(payload)
        if mode == 'greet':
            time.sleep(0.2)
        if ctx is not None:
            c.settimeout(2)
            c = c.unwrap()
        c.close()
    except Exception:
        pass
print('up', flush=True)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=handle, args=(c,), daemon=True).start()
";

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
        use std::io::BufRead as _;
        let hex = payload.iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", NS_TCP_SERVER])
            .args([mode, &port.to_string(), &hex])
            .args(files)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        // Ends with "up", or at EOF when python failed (its error is on stderr).
        let _ =
            std::io::BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line);
        let server = NsTcpServer(child);
        assert_eq!(
            line.trim(),
            "up",
            "python {mode} server on port {port} did not start"
        );
        server
    }
}

impl Drop for NsTcpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
