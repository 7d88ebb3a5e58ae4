//! Agents on proxied networks reach the server through an HTTP proxy. In the lab the proxy
//! runs on the server's side and the server's firewall drops direct HTTPS from the client,
//! so only the proxied path works: `--proxy` makes the agent check pass and say so; a proxy
//! that refuses, wants credentials or is no proxy at all is named as such, never blamed on
//! a firewall. With and without the key, three runs each.

use serde_json::Value;

use crate::require_root;
use crate::util::{result_at, Lab, NsTcpServer, Script, SERVER_V4};
use crate::workflows::{brief, lab, LabCert, BOTH};

const PROXY_PORT: &str = "3128";

fn agent_https<'a>(report: &'a Value, address: &str) -> &'a Value {
    result_at(report, "agent-https", address)
}

/// A lab whose server answers as Automate on 443 for the proxy only: the client's direct
/// HTTPS is dropped at the server. Returns it with the check's arguments through the proxy.
struct ProxyLab {
    lab: Lab,
    cert: LabCert,
    _iis: NsTcpServer,
    url: String,
}

impl ProxyLab {
    fn new(tag: &str) -> ProxyLab {
        let lab = lab(tag);
        let cert = LabCert::new();
        let iis = cert.automate_on(&lab);
        for tool in ["iptables", "ip6tables"] {
            lab.server.rule(
                tool,
                &format!("-A INPUT -i {} -p tcp --dport 443 -j DROP", lab.server_dev),
            );
        }
        ProxyLab {
            lab,
            cert,
            _iis: iis,
            url: format!("http://{SERVER_V4}:{PROXY_PORT}"),
        }
    }

    fn check(&self, proxy: bool, keyed: bool) -> (i32, Value) {
        let mut args = vec![
            "--role",
            "agent",
            "--server",
            "lab-server",
            "--ca-file",
            self.cert.ca_file(),
            "--timeout",
            "1s",
        ];
        if proxy {
            args.extend(["--proxy", &self.url]);
        }
        self.lab.check(&args, keyed)
    }

    fn proxy(&self, mode: &str) -> Script {
        Script::start(
            &self.lab.server,
            "connect_proxy.py",
            &[PROXY_PORT, mode],
            "proxy ready",
        )
    }
}

#[test]
fn the_agent_check_goes_through_a_connect_proxy() {
    require_root!();
    let lab = ProxyLab::new("prxa");
    // Direct: dropped, a firewall's doing.
    let (_, report) = lab.check(false, false);
    for address in BOTH {
        let r = agent_https(&report, address);
        assert_eq!(
            (r["state"].as_str(), r["verdict"].as_str()),
            (Some("filtered"), Some("fail")),
            "{}",
            brief(r)
        );
    }
    let _proxy = lab.proxy("allow");
    for keyed in [false, true] {
        for run in 1..=3 {
            let (code, report) = lab.check(true, keyed);
            for address in BOTH {
                let r = agent_https(&report, address);
                assert_eq!(
                    r["verdict"],
                    "pass",
                    "keyed {keyed} run {run}: {}",
                    brief(r)
                );
                assert_eq!(r["app"]["proxy"], lab.url.as_str(), "{}", brief(r));
                let reason = r["reason"].as_str().unwrap();
                let through = format!("(through proxy {})", lab.url);
                assert!(reason.contains(&through), "{reason}");
            }
            let notes = report["notes"].to_string();
            assert!(notes.contains("go through the proxy"), "{notes}");
            assert_ne!(code, 2, "{report}");
        }
    }
}

#[test]
fn a_proxy_that_refuses_wants_credentials_or_is_none_is_named_not_blamed_on_a_firewall() {
    require_root!();
    let lab = ProxyLab::new("prxb");
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
        let _proxy = lab.proxy(mode);
        for run in 1..=3 {
            let (code, report) = lab.check(true, false);
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
    let (_, report) = lab.check(true, false);
    let r = agent_https(&report, SERVER_V4);
    assert!(
        r["reason"].as_str().unwrap().contains("cannot be reached"),
        "{}",
        brief(r)
    );
}

#[test]
fn a_proxy_name_that_does_not_resolve_is_one_line_exit_2() {
    let out = crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        "127.0.0.1",
        "--proxy",
        "http://no-such-proxy.invalid:3128",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve the proxy no-such-proxy.invalid (--proxy)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
