//! Agents on proxied networks reach the server through an HTTP proxy. In the lab the proxy
//! runs on the server's side and the server's firewall drops direct HTTPS from the client,
//! so only the proxied path works: `--proxy` makes the agent check pass and say so; a proxy
//! that refuses, wants credentials or is no proxy at all is named as such, never blamed on
//! a firewall. With and without the key, three runs each.

use serde_json::Value;

use crate::require_root;
use crate::util::{result_at, Script, SERVER_V4};
use crate::workflows::{brief, lab, LabCert, BOTH};

const PROXY_PORT: &str = "3128";

fn agent_https<'a>(report: &'a Value, address: &str) -> &'a Value {
    result_at(report, "agent-https", address)
}

#[test]
fn the_agent_check_goes_through_a_connect_proxy() {
    require_root!();
    let lab = lab("prx");
    let cert = LabCert::new();
    let _iis = cert.automate_on(&lab);
    // Only the proxy (local to the server) may reach 443: the client's direct path is dropped.
    for tool in ["iptables", "ip6tables"] {
        lab.server.rule(
            tool,
            &format!("-A INPUT -i {} -p tcp --dport 443 -j DROP", lab.server_dev),
        );
    }
    let proxy_url = format!("http://{SERVER_V4}:{PROXY_PORT}");
    let base = [
        "--role",
        "agent",
        "--server",
        "lab-server",
        "--ca-file",
        cert.ca_file(),
        "--timeout",
        "1s",
    ];
    let with_proxy: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--proxy", &proxy_url])
        .collect();

    // Direct: dropped, a firewall's doing.
    let (_, report) = lab.check(&base, false);
    for address in BOTH {
        let r = agent_https(&report, address);
        assert_eq!(
            (r["state"].as_str(), r["verdict"].as_str()),
            (Some("filtered"), Some("fail")),
            "{}",
            brief(r)
        );
    }

    let proxy = Script::start(
        &lab.server,
        "connect_proxy.py",
        &[PROXY_PORT, "allow"],
        "proxy ready",
    );
    for keyed in [false, true] {
        for run in 1..=3 {
            let (code, report) = lab.check(&with_proxy, keyed);
            for address in BOTH {
                let r = agent_https(&report, address);
                assert_eq!(
                    r["verdict"],
                    "pass",
                    "keyed {keyed} run {run}: {}",
                    brief(r)
                );
                assert_eq!(r["app"]["proxy"], proxy_url.as_str(), "{}", brief(r));
                let reason = r["reason"].as_str().unwrap();
                assert!(
                    reason.contains(&format!("(through proxy {proxy_url})")),
                    "{reason}"
                );
            }
            let notes = report["notes"].to_string();
            assert!(notes.contains("go through the proxy"), "{notes}");
            assert_ne!(code, 2, "{report}");
        }
    }
    drop(proxy);

    for (mode, says, hint) in [
        (
            "deny",
            "refused the tunnel (CONNECT: HTTP 403",
            "allow CONNECT to it on 443",
        ),
        (
            "auth",
            "asks for credentials (HTTP 407)",
            "this tool does not",
        ),
        (
            "garbage",
            "is not an HTTP proxy",
            "check the proxy's address and port",
        ),
    ] {
        let _proxy = Script::start(
            &lab.server,
            "connect_proxy.py",
            &[PROXY_PORT, mode],
            "proxy ready",
        );
        for run in 1..=3 {
            let (code, report) = lab.check(&with_proxy, false);
            for address in BOTH {
                let r = agent_https(&report, address);
                assert_eq!(
                    (r["state"].as_str(), r["verdict"].as_str()),
                    (Some("error"), Some("fail")),
                    "{mode} run {run}: {}",
                    brief(r)
                );
                assert!(
                    r["reason"].as_str().unwrap().contains(says),
                    "{mode}: {}",
                    brief(r)
                );
                let h = r["hint"].as_str().unwrap();
                assert!(h.contains(hint) && !h.contains("firewall"), "{mode}: {h}");
            }
            assert_eq!(code, 1);
        }
    }

    // Nothing listens where the proxy should be.
    let (_, report) = lab.check(&with_proxy, false);
    let r = agent_https(&report, SERVER_V4);
    assert!(
        r["reason"].as_str().unwrap().contains("cannot be reached"),
        "{}",
        brief(r)
    );
    // A proxy name that does not resolve: one line, exit 2.
    let out = lab
        .client
        .bin()
        .args([
            "check",
            "--role",
            "agent",
            "--server",
            "lab-server",
            "--proxy",
            "http://no-such-proxy.invalid:3128",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve the proxy no-such-proxy.invalid"),
        "{err}"
    );
}
