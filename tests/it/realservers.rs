//! Real servers from Debian's packages in the lab, not fixtures: MariaDB (a fresh install
//! refuses a remote host with error 1130; once the host is granted, it greets it with its
//! version) and nginx serving TLS from a private CA with `/LabTech/agent.aspx` (or a 404
//! without it). Each is checked with and without the key, three runs in a row.
//!
//! CI installs `mariadb-server` and `nginx-light`. Missing locally, a test says so loudly and
//! skips, unless AUTOMATE_PORTS_REQUIRE_LAB is set (then it fails).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::require_root;
use crate::util::{installed, result_at, run_ok, Lab, Netns};
use crate::workflows::{brief, lab, LabCert, BOTH};

/// The client's addresses in the lab: what the database sees connecting.
const CLIENT: [&str; 2] = ["192.0.2.1", "2001:db8:77::1"];

/// Waits until `path` exists, at most `limit`.
fn wait_for(path: &Path, limit: Duration, what: &str, log: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{what} did not start within {limit:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// MariaDB with a fresh data directory, listening on 3306 (IPv4 and IPv6) in a namespace.
/// Name resolution is off, so it judges clients by address and never waits on DNS.
struct Mariadb {
    dir: tempfile::TempDir,
    child: Child,
}

impl Mariadb {
    fn start(ns: &Netns) -> Mariadb {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let data_arg = format!("--datadir={}", data.display());
        run_ok(
            "mariadb-install-db",
            &[
                "--no-defaults",
                &data_arg,
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let socket = dir.path().join("sock");
        let log = dir.path().join("error.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "mariadbd", "--no-defaults"])
            .arg(&data_arg)
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--port=3306",
                "--bind-address=*",
                "--user=root",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        wait_for(&socket, Duration::from_secs(60), "mariadbd", &log);
        Mariadb { dir, child }
    }

    /// Runs SQL as root over the server's socket.
    fn sql(&self, statement: &str) {
        let socket = format!("--socket={}", self.dir.path().join("sock").display());
        run_ok(
            "mariadb",
            &["--no-defaults", &socket, "-u", "root", "-e", statement],
        );
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        // `ip netns exec` execs mariadbd, so this is the server itself.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// nginx serving HTTPS on 443 (IPv4 and IPv6) in a namespace, with `chain` and `key`;
/// `/LabTech/agent.aspx` answers as Automate does when `agent` is set, else 404 like
/// everything else. `installer`: what `/LabTech/Deployment.aspx` serves.
struct Nginx {
    _dir: tempfile::TempDir,
    child: Child,
}

/// What the lab's nginx serves at the installer URL.
#[derive(Clone, Copy)]
enum Download {
    Nothing,
    /// A file that starts as an MSI does (an OLE compound file), 300 KiB.
    Msi,
    /// A web filter's block page, as FortiGuard-style filters send it (HTTP 200).
    BlockPage,
}

impl Nginx {
    fn start(ns: &Netns, cert: &LabCert, agent: bool) -> Nginx {
        Nginx::serving(ns, cert, agent, Download::Nothing)
    }

    fn serving(ns: &Netns, cert: &LabCert, agent: bool, installer: Download) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let agent_endpoint = if agent {
            "location = /LabTech/agent.aspx { default_type text/plain; return 200 \"0|1|2|||||||200.264\"; }"
        } else {
            ""
        };
        let msi = dir.path().join("agent.msi");
        let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        bytes.resize(300 * 1024, 0x5a);
        std::fs::write(&msi, bytes).expect("agent.msi");
        let download = match installer {
            Download::Nothing => String::new(),
            Download::Msi => format!(
                "location = /LabTech/Deployment.aspx {{ default_type application/x-msi; alias {}; }}",
                msi.display()
            ),
            Download::BlockPage => "location = /LabTech/Deployment.aspx { default_type text/html; return 200 '<html><head><title>Web Page Blocked</title></head><body>Access to this download is blocked by the web filter. Category: Software Downloads.</body></html>'; }".to_string(),
        };
        let endpoint = format!("{agent_endpoint}\n    {download}");
        let conf = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 443 ssl; listen [::]:443 ssl;
    server_name lab-server;
    ssl_certificate {chain}; ssl_certificate_key {key};
    {endpoint}
    location / {{ return 404; }}
  }}
}}
",
            chain = cert.chain.display(),
            key = cert.key.display(),
        );
        let conf_path: PathBuf = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-e"])
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        // nginx binds its sockets before it writes the pid file.
        wait_for(
            &dir.path().join("nginx.pid"),
            Duration::from_secs(30),
            "nginx",
            &dir.path().join("error.log"),
        );
        Nginx { _dir: dir, child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn app_of<'a>(report: &'a Value, id: &str, address: &str) -> &'a Value {
    &result_at(report, id, address)["app"]
}

/// Without the key and with it. `serve` runs beside the real service (which keeps its port)
/// when the role has other ports for it; a role whose only port the service holds has
/// nothing for serve, and the keyed check proves the path through the service alone.
fn both_ways(lab: &Lab, serve: Option<&str>, args: &[&str], each: impl Fn(&Value, bool, usize)) {
    for run in 1..=3 {
        let (_, report) = lab.check(args, false);
        each(&report, false, run);
    }
    let _serve = serve.map(|role| lab.serve(&["--role", role, "--for", "2m"]));
    for run in 1..=3 {
        let (_, report) = lab.check(args, true);
        each(&report, true, run);
    }
}

#[test]
fn real_mariadb_refuses_a_new_remote_host_then_greets_it_once_granted() {
    require_root!();
    if !installed("mariadbd", "mariadb-server") {
        return;
    }
    let lab = lab("rsdb");
    let db = Mariadb::start(&lab.server);
    let args = ["--role", "split-db", "--db", "lab-server"];
    both_ways(&lab, None, &args, |report, keyed, run| {
        for address in BOTH {
            let r = result_at(report, "mysql", address);
            assert_eq!(
                (r["state"].as_str(), r["verdict"].as_str()),
                (Some("open"), Some("fail")),
                "keyed {keyed} run {run}: {}",
                brief(r)
            );
            assert_eq!(r["app"]["mysql_error"], 1130, "{}", brief(r));
            let hint = r["hint"].as_str().unwrap_or_default();
            assert!(
                hint.contains("grant this host access") && !hint.contains("Allow inbound"),
                "an application answer, not a firewall fix: {hint}"
            );
        }
    });
    for client in CLIENT {
        db.sql(&format!("CREATE USER 'automate'@'{client}'"));
    }
    both_ways(&lab, None, &args, |report, keyed, run| {
        for address in BOTH {
            let r = result_at(report, "mysql", address);
            assert_eq!(
                r["verdict"],
                "pass",
                "keyed {keyed} run {run}: {}",
                brief(r)
            );
            let server = app_of(report, "mysql", address)["server"]
                .as_str()
                .unwrap_or_default();
            assert!(server.contains("MariaDB"), "{}", brief(r));
            if keyed {
                assert!(
                    r["reason"]
                        .as_str()
                        .unwrap()
                        .contains("the real service answered"),
                    "{}",
                    brief(r)
                );
            }
        }
    });
}

#[test]
fn real_nginx_with_a_private_ca_answers_as_automate_or_not() {
    require_root!();
    if !installed("nginx", "nginx-light") {
        return;
    }
    let lab = lab("rsng");
    let cert = LabCert::new();
    let with_ca = [
        "--role",
        "agent",
        "--server",
        "lab-server",
        "--ca-file",
        cert.ca_file(),
    ];
    {
        let _nginx = Nginx::start(&lab.server, &cert, true);
        both_ways(&lab, Some("agent"), &with_ca, |report, keyed, run| {
            for address in BOTH {
                let r = result_at(report, "agent-https", address);
                assert_eq!(
                    r["verdict"],
                    "pass",
                    "keyed {keyed} run {run}: {}",
                    brief(r)
                );
                assert_eq!(r["app"]["automate_version"], "200.264", "{}", brief(r));
                assert_eq!(r["app"]["tls"]["trusted_ca_file"], true, "{}", brief(r));
            }
        });
        // The same server, without the private CA: trusted nowhere, so it fails, and the
        // hint is about the certificate, not the firewall.
        let (code, report) = lab.check(&["--role", "agent", "--server", "lab-server"], false);
        for address in BOTH {
            let r = result_at(&report, "agent-https", address);
            assert_eq!(r["verdict"], "fail", "{}", brief(r));
            let hint = r["hint"].as_str().unwrap_or_default();
            assert!(hint.contains("certificate"), "{hint}");
        }
        assert_eq!(code, 1);
    }
    let _nginx = Nginx::start(&lab.server, &cert, false);
    both_ways(&lab, Some("agent"), &with_ca, |report, keyed, run| {
        for address in BOTH {
            let r = result_at(report, "agent-https", address);
            assert_eq!(
                (r["state"].as_str(), r["verdict"].as_str()),
                (Some("open"), Some("fail")),
                "keyed {keyed} run {run}: {}",
                brief(r)
            );
            assert_eq!(r["app"]["http_status"], 404, "{}", brief(r));
            let hint = r["hint"].as_str().unwrap_or_default();
            assert!(hint.contains("The port is open"), "{hint}");
        }
    });
}

/// The installer download (`check --installer`), as onboarding scripts fetch it: nginx
/// serving an MSI at `/LabTech/Deployment.aspx` passes on both addresses of a dual-stack
/// name, directly and through a CONNECT proxy; a web filter's block page at the same URL
/// fails and is named as one, with a web filter hint, directly and through the proxy.
/// Three runs each; with the key, the download still runs where serve leaves 443 to nginx.
#[test]
fn real_nginx_serves_the_installer_or_a_block_page() {
    require_root!();
    if !installed("nginx", "nginx-light") {
        return;
    }
    let lab = lab("rsin");
    let cert = LabCert::new();
    let proxy_url = format!("http://{}:3128", crate::util::SERVER_V4);
    let direct = [
        "--role",
        "agent",
        "--server",
        "lab-server",
        "--ca-file",
        cert.ca_file(),
        "--installer",
    ];
    let proxied: Vec<&str> = direct
        .iter()
        .copied()
        .chain(["--proxy", &proxy_url])
        .collect();
    let _proxy = crate::util::Script::start(
        &lab.server,
        "connect_proxy.py",
        &["3128", "allow"],
        "proxy ready",
    );
    {
        let _nginx = Nginx::serving(&lab.server, &cert, true, Download::Msi);
        for args in [&direct[..], &proxied[..]] {
            both_ways(&lab, Some("agent"), args, |report, keyed, run| {
                for address in BOTH {
                    let r = result_at(report, "agent-installer", address);
                    let reason = r["reason"].as_str().unwrap_or_default();
                    assert_eq!(
                        r["verdict"],
                        "pass",
                        "keyed {keyed} run {run}: {}",
                        brief(r)
                    );
                    assert!(
                        reason.contains("the agent installer downloads: an MSI, 0.3 MB"),
                        "{}",
                        brief(r)
                    );
                    assert_eq!(r["app"]["probe"], "installer", "{}", brief(r));
                    assert_eq!(
                        r["app"]["proxy"].is_string(),
                        args.len() > direct.len(),
                        "{}",
                        brief(r)
                    );
                }
            });
        }
    }
    let _nginx = Nginx::serving(&lab.server, &cert, true, Download::BlockPage);
    for args in [&direct[..], &proxied[..]] {
        a_block_page_three_times(&lab, args);
    }
}

/// The installer URL answers with a block page: the download fails, named as one, while the
/// agent's own check-in passes; three runs.
fn a_block_page_three_times(lab: &Lab, args: &[&str]) {
    for run in 1..=3 {
        let (code, report) = lab.check(args, false);
        assert_eq!(code, 1, "run {run}");
        for address in BOTH {
            let r = result_at(&report, "agent-installer", address);
            let reason = r["reason"].as_str().unwrap_or_default();
            assert_eq!(
                (r["state"].as_str(), r["verdict"].as_str()),
                (Some("open"), Some("fail")),
                "run {run}: {}",
                brief(r)
            );
            assert!(
                reason.contains("the agent installer does not download: a web filter's block page (HTTP 200, \"Web Page Blocked\")"),
                "run {run}: {}",
                brief(r)
            );
            let hint = r["hint"].as_str().unwrap_or_default();
            assert!(
                hint.contains("A web filter or proxy on the way replaces the download"),
                "{hint}"
            );
            // The agent's own check-in still passes: only the download is blocked.
            assert_eq!(
                result_at(&report, "agent-https", address)["verdict"],
                "pass"
            );
        }
    }
}
