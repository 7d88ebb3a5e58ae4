//! ScreenConnect as MSPs run it: the client-side check finds every installed client and
//! checks each one's relay on the port its launch parameters name (no flags), a hosted-style
//! relay on 443 is accepted (`--screenconnect-relay`), an on-premises server on other ports
//! than 8040/8041 is checked there (`--target relay=HOST:PORT`, `web=https://HOST:PORT`), and
//! a service that greets on a relay port (which a relay never does) is named. The installed
//! clients live in a temporary folder mounted over /opt in a mount namespace of the check's
//! own (unshare), so the tool reads `/opt/screenconnect-*/ClientLaunchParameters.txt` as it
//! would on a real PC. Dual-stack name, three runs each.

use std::path::Path;

use serde_json::Value;

use crate::require_root;
use crate::util::{bin_path, result_at, Lab, NsTcpServer};
use crate::workflows::{brief, lab, BOTH};

/// `/opt` of a PC with two ScreenConnect clients: an on-premises instance relaying on 8041
/// and a hosted-style one on 443, both at `lab-server`.
fn installed_clients(opt: &Path) {
    for (dir, port) in [
        ("screenconnect-0123456789abcdef", 8041),
        ("connectwisecontrol-fedcba9876543210", 443),
    ] {
        let client = opt.join(dir);
        std::fs::create_dir_all(&client).unwrap();
        std::fs::write(
            client.join("ClientLaunchParameters.txt"),
            format!("?e=Access&y=Guest&h=lab-server&p={port}&s=4f1d2c3b-0000-0000-0000-000000000000&k=BgIAAACkAABSU0Ex&c=&c="),
        )
        .unwrap();
    }
}

/// `check --role screenconnect-client` in the lab's client namespace with `opt` as /opt.
fn client_check(lab: &Lab, opt: &Path, extra: &[&str]) -> (i32, Value) {
    let script = format!(
        "mount --bind {} /opt && exec {} check --role screenconnect-client --format json \"$@\"",
        opt.display(),
        bin_path().display()
    );
    let mut cmd = assert_cmd::Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &lab.client.name,
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .args(extra)
    .env("NO_COLOR", "1")
    .env("LANG", "C")
    .env_remove("LC_ALL")
    .timeout(std::time::Duration::from_secs(60));
    crate::util::run_json(&mut cmd)
}

fn relays(report: &Value) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "sc-client-relay")
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["ports"].as_str().unwrap_or_default().to_string(),
                c["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_client_check_finds_every_installed_client_and_its_relay() {
    require_root!();
    if !crate::util::installed("unshare", "util-linux") {
        return;
    }
    let lab = lab("scc");
    let opt = tempfile::tempdir().unwrap();
    installed_clients(opt.path());
    let _onprem = NsTcpServer::hold(&lab.server, 8041);
    let _hosted = NsTcpServer::hold(&lab.server, 443);
    let want: Vec<(String, String, String)> = BOTH
        .iter()
        .flat_map(|a| {
            [
                (a.to_string(), "443".to_string(), "pass".to_string()),
                (a.to_string(), "8041".to_string(), "pass".to_string()),
            ]
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for run in 1..=3 {
        let (code, report) = client_check(&lab, opt.path(), &[]);
        assert_eq!(relays(&report), want, "run {run}: {report}");
        assert_eq!(code, 0, "run {run}");
        let notes = report["notes"].to_string();
        assert!(
            notes.contains("ScreenConnect client 0123456789abcdef: relay lab-server:8041 (from /opt/screenconnect-0123456789abcdef/ClientLaunchParameters.txt)")
                && notes.contains("ScreenConnect client fedcba9876543210: relay lab-server:443"),
            "run {run}: {notes}"
        );
        let r = result_at(&report, "sc-client-relay", BOTH[0]);
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("open; nothing spoke first"),
            "{}",
            brief(r)
        );
    }
    // --screenconnect-relay names one (443 without a port, as hosted instances relay).
    for run in 1..=3 {
        let (code, report) =
            client_check(&lab, opt.path(), &["--screenconnect-relay", "lab-server"]);
        let want_443: Vec<(String, String, String)> = BOTH
            .iter()
            .map(|a| (a.to_string(), "443".to_string(), "pass".to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(relays(&report), want_443, "run {run}: {report}");
        assert_eq!(code, 0, "run {run}");
    }
}

#[test]
fn a_relay_port_where_something_greets_is_named_and_other_ports_are_taken() {
    require_root!();
    let lab = lab("scg");
    let _greeter = NsTcpServer::greeting(
        &lab.server,
        8041,
        b"HTTP/1.1 400 Bad Request\r\nServer: lab-proxy\r\n\r\n",
    );
    let _relay = NsTcpServer::hold(&lab.server, 9443);
    let _web = NsTcpServer::http(
        &lab.server,
        9080,
        b"HTTP/1.1 200 OK\r\nServer: lab-sc\r\nContent-Length: 2\r\n\r\nok",
    );
    for run in 1..=3 {
        let (_, report) = lab.check(
            &["--role", "screenconnect", "--screenconnect", "lab-server"],
            false,
        );
        for address in BOTH {
            let r = result_at(&report, "sc-relay", address);
            assert_eq!(
                (r["state"].as_str(), r["verdict"].as_str()),
                (Some("open"), Some("warn")),
                "run {run}: {}",
                brief(r)
            );
            assert!(
                r["reason"].as_str().unwrap().starts_with("an HTTP server greeted first (\"HTTP/1.1 400 Bad Request\"), which a ScreenConnect relay never does"),
                "run {run}: {}",
                brief(r)
            );
        }
        // A server on other ports: named with them, checked there.
        let (code, report) = lab.check(
            &[
                "--role",
                "screenconnect",
                "--target",
                "web=http://lab-server:9080",
                "--target",
                "relay=lab-server:9443",
            ],
            false,
        );
        for address in BOTH {
            let web = result_at(&report, "sc-web", address);
            assert_eq!(
                (web["ports"].as_str(), web["verdict"].as_str()),
                (Some("9080"), Some("pass")),
                "run {run}: {}",
                brief(web)
            );
            let relay = result_at(&report, "sc-relay", address);
            assert_eq!(
                (relay["ports"].as_str(), relay["verdict"].as_str()),
                (Some("9443"), Some("pass")),
                "run {run}: {}",
                brief(relay)
            );
        }
        assert_eq!(code, 0, "run {run}");
    }
}
