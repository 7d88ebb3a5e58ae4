//! Agents on proxied networks reach the server through an HTTP proxy. In the lab the proxy
//! runs on the server's side and the server's firewall drops direct HTTPS from the client,
//! so only the proxied path works: `--proxy` makes the agent check pass and say so, and
//! `--proxy-user` signs in to a proxy that asks; a proxy that refuses, wants credentials
//! (or a sign-in this tool does not do) or is no proxy at all is named as such, never blamed
//! on a firewall; the password never shows. With and without the key, three runs each.

use serde_json::Value;

use crate::require_root;
use crate::util::{result_at, run_json_with_stderr, Lab, NsTcpServer, Script, SERVER_V4};
use crate::workflows::{brief, lab, LabCert, BOTH};

const PROXY_PORT: &str = "3128";
/// The lab proxy's one account (`connect_proxy.py basic`).
const USER: &str = "lab-tech";
const PASSWORD: &str = "Pr0xy-s3cret-lab";
const PASSWORD_VAR: &str = "AUTOMATE_PORTS_PROXY_PASSWORD";

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

    fn args(&self) -> Vec<&str> {
        vec![
            "--role",
            "agent",
            "--server",
            "lab-server",
            "--ca-file",
            self.cert.ca_file(),
            "--timeout",
            "1s",
        ]
    }

    fn check(&self, proxy: bool, keyed: bool) -> (i32, Value) {
        let mut args = self.args();
        if proxy {
            args.extend(["--proxy", &self.url]);
        }
        self.lab.check(&args, keyed)
    }

    /// Through the proxy with `--proxy-user user` and `password` in the environment, each
    /// where given, and `extra` arguments; returns the exit code, the report and stdout and
    /// stderr as they were.
    fn check_as(
        &self,
        user: Option<&str>,
        password: Option<&str>,
        keyed: bool,
        extra: &[&str],
    ) -> (i32, Value, String) {
        let mut cmd = self.lab.client.bin();
        cmd.arg("check")
            .args(self.args())
            .args(["--proxy", &self.url, "--format", "json"])
            .args(extra);
        if let Some(user) = user {
            cmd.args(["--proxy-user", user]);
        }
        if let Some(password) = password {
            cmd.env(PASSWORD_VAR, password);
        }
        if keyed {
            cmd.env("AUTOMATE_PORTS_KEY", crate::util::LAB_KEY);
        } else {
            cmd.env_remove("AUTOMATE_PORTS_KEY");
        }
        let (code, report, stderr) = run_json_with_stderr(&mut cmd);
        let output = format!("{report}\n{stderr}");
        (code, report, output)
    }

    fn proxy(&self, mode: &str) -> Script {
        Script::start(
            &self.lab.server,
            "connect_proxy.py",
            &[PROXY_PORT, mode, USER, PASSWORD],
            "proxy ready",
        )
    }
}

/// Neither the password nor the header that carries it (its base64) is anywhere in what a
/// run printed.
fn assert_no_password(output: &str, password: &str) {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    for secret in [password, token.as_str()] {
        assert!(!output.contains(secret), "{secret} printed: {output}");
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
            "basic",
            "asks for credentials (HTTP 407): give --proxy-user USER",
            "--proxy-user USER and its password in the environment variable AUTOMATE_PORTS_PROXY_PASSWORD",
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
fn proxy_user_signs_in_to_a_basic_proxy_and_the_password_never_shows() {
    require_root!();
    let lab = ProxyLab::new("prxc");
    let proxy = lab.proxy("basic");
    for keyed in [false, true] {
        for (run, verbose) in [(1, "-v"), (2, "-vv"), (3, "-vvv")] {
            let (code, report, output) =
                lab.check_as(Some(USER), Some(PASSWORD), keyed, &[verbose]);
            for address in BOTH {
                let r = agent_https(&report, address);
                assert_eq!(
                    r["verdict"],
                    "pass",
                    "keyed {keyed} run {run}: {}",
                    brief(r)
                );
                let through = format!("(through proxy {})", lab.url);
                assert!(
                    r["reason"].as_str().unwrap().contains(&through),
                    "{}",
                    brief(r)
                );
            }
            let notes = report["notes"].to_string();
            assert!(notes.contains(&format!("signing in as {USER}")), "{notes}");
            assert_ne!(code, 2, "{report}");
            assert_no_password(&output, PASSWORD);
            // The proxy saw the credentials on every tunnel it opened, both addresses.
            let log = proxy.lines();
            assert!(log.len() >= 2, "{log:?}");
            assert!(
                log.iter()
                    .all(|l| l.starts_with("CONNECT ") && l.ends_with(" authorized")),
                "{log:?}"
            );
        }
    }
}

#[test]
fn a_refused_or_foreign_proxy_sign_in_is_named_not_blamed_on_a_firewall() {
    require_root!();
    let lab = ProxyLab::new("prxd");
    let wrong = "not-the-password";
    for (mode, user, says, hint, logged) in [
        (
            "basic",
            Some(USER),
            "refused these credentials (HTTP 407)",
            "refused the user and password given",
            " wrong credentials",
        ),
        (
            "ntlm",
            None,
            "asks for Windows sign-in (NTLM/Negotiate), which this tool does not do",
            "without sign-in",
            "",
        ),
        // Basic sent, but the proxy does not take Basic at all: still the sign-in's fault.
        (
            "ntlm",
            Some(USER),
            "asks for Windows sign-in (NTLM/Negotiate), which this tool does not do",
            "or have it also offer Basic",
            "",
        ),
    ] {
        let proxy = lab.proxy(mode);
        for run in 1..=3 {
            let (code, report, output) = lab.check_as(user, Some(wrong), false, &["-vvv"]);
            for address in BOTH {
                let r = agent_https(&report, address);
                assert_eq!(
                    (r["state"].as_str(), r["verdict"].as_str()),
                    (Some("error"), Some("fail")),
                    "{mode} {user:?} run {run}: {}",
                    brief(r)
                );
                let reason = r["reason"].as_str().unwrap();
                assert!(reason.contains(says), "{mode} {user:?}: {}", brief(r));
                let h = r["hint"].as_str().unwrap();
                assert!(h.contains(hint) && !h.contains("firewall"), "{mode}: {h}");
            }
            assert_eq!(code, 1);
            assert_no_password(&output, wrong);
            let log = proxy.lines();
            assert!(
                log.len() >= 2 && log.iter().all(|l| l.ends_with(logged)),
                "{log:?}"
            );
        }
    }
}

#[test]
fn proxy_user_without_its_password_or_a_proxy_is_one_line_exit_2() {
    let proxy = "http://127.0.0.1:9";
    for (args, password, says) in [
        (
            vec!["--proxy", proxy, "--proxy-user", USER],
            None,
            "--proxy-user lab-tech needs the proxy password in the environment variable AUTOMATE_PORTS_PROXY_PASSWORD",
        ),
        (
            vec!["--proxy", proxy, "--proxy-user", USER],
            Some(""),
            "needs the proxy password in the environment variable",
        ),
        (
            vec!["--proxy-user", USER],
            Some(PASSWORD),
            "--proxy-user signs in to a proxy, but no proxy is in use",
        ),
        (
            vec!["--no-proxy", "--proxy-user", USER],
            Some(PASSWORD),
            "but --no-proxy connects directly",
        ),
    ] {
        let mut all = vec!["--role", "agent", "--server", "127.0.0.1"];
        all.extend(&args);
        let mut cmd = crate::util::check_cmd(&all);
        if let Some(password) = password {
            cmd.env(PASSWORD_VAR, password);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_no_password(&format!("{stdout}\n{err}"), PASSWORD);
    }
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
