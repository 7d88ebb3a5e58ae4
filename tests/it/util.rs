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
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
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
