//! Application probes against real servers on loopback.

use serde_json::Value;

use crate::servers::{
    days_from_now, mysql_greeting, mysql_host_refused, plain_server, self_signed, tls_server, Ca,
    AUTOMATE_ANSWER,
};
use crate::util::{check_block, check_box, check_json, profile, results, run_json, ProfileFile};

const OK_PAGE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>Welcome to nginx</html>";

/// A profile with the one check `app`: `probe` on TCP PORT.
fn probe_profile(kind: &str, port: u16) -> ProfileFile {
    profile(&format!(
        "{}probe = \"{kind}\"\n",
        check_block("app", "tcp", &port.to_string(), true)
    ))
}

/// Runs one check with `probe` against localhost:PORT; returns (exit code, the result).
fn probe(kind: &str, port: u16, extra: &[&str]) -> (i32, Value) {
    let p = probe_profile(kind, port);
    let mut args = vec!["-4"];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "2s"]);
    }
    args.extend_from_slice(extra);
    let (code, report) = check_json(&p, "localhost", &args);
    (code, results(&report, "app")[0].clone())
}

fn reason(r: &Value) -> &str {
    r["reason"].as_str().unwrap()
}

#[test]
fn valid_certificate_passes_with_its_expiry() {
    let ca = Ca::new();
    let port = tls_server(
        ca.leaf(&["localhost"], days_from_now(-1), days_from_now(90)),
        OK_PAGE,
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = crate::util::write_file(dir.path(), "ca.pem", &ca.pem);
    let (code, r) = probe("tls", port, &["--ca-file", ca_file.to_str().unwrap()]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert!(
        reason(&r).contains("expires in 8") || reason(&r).contains("expires in 9"),
        "{r}"
    );
    assert_eq!(r["app"]["tls"]["trusted_ca_file"], true);
    assert_eq!(r["app"]["tls"]["sans"][0], "localhost");
    assert!(r["app"]["tls"]["version"]
        .as_str()
        .unwrap()
        .starts_with("TLS 1."));
    assert_eq!(code, 0);
    // In this machine's store but not among the public roots: TLS inspection or a private CA.
    let p = probe_profile("tls", port);
    let (_, report) = run_json(
        check_box(&p, "localhost")
            .args(["-4", "--format", "json"])
            .env("SSL_CERT_FILE", &ca_file),
    );
    let r = &results(&report, "app")[0];
    assert_eq!(r["verdict"], "warn", "{r}");
    assert_eq!(r["app"]["tls"]["trusted_system"], true, "{r}");
    assert_eq!(r["app"]["tls"]["trusted_public"], false, "{r}");
    assert!(
        reason(r).contains("trusted by this machine but not by public roots"),
        "{r}"
    );
    // Without the CA it is a private CA nobody trusts: a failure that says so.
    let (code, r) = probe("tls", port, &[]);
    assert_eq!(r["verdict"], "fail", "{r}");
    assert!(
        reason(&r).contains("likely TLS inspection or a private CA"),
        "{r}"
    );
    assert_eq!(code, 1);
}

#[test]
fn wrong_name_expired_and_self_signed_fail_with_the_reason() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = crate::util::write_file(dir.path(), "ca.pem", &ca.pem);
    let ca_arg = ["--ca-file", ca_file.to_str().unwrap()];
    let wrong = tls_server(
        ca.leaf(
            &["automate.example.com"],
            days_from_now(-1),
            days_from_now(90),
        ),
        OK_PAGE,
    );
    let (_, r) = probe("tls", wrong, &ca_arg);
    assert_eq!(r["verdict"], "fail");
    assert!(
        reason(&r).contains("is for automate.example.com, not localhost"),
        "{r}"
    );
    let expired = tls_server(
        ca.leaf(&["localhost"], days_from_now(-400), days_from_now(-35)),
        OK_PAGE,
    );
    let (_, r) = probe("tls", expired, &ca_arg);
    assert_eq!(r["verdict"], "fail");
    assert!(reason(&r).contains("expired 3"), "{r}");
    let soon = tls_server(
        ca.leaf(&["localhost"], days_from_now(-1), days_from_now(5)),
        OK_PAGE,
    );
    let (code, r) = probe("tls", soon, &ca_arg);
    assert_eq!(r["verdict"], "warn", "{r}");
    assert!(
        reason(&r).contains("expires in 4") || reason(&r).contains("expires in 5"),
        "{r}"
    );
    assert_eq!(code, 0);
    let (_, r) = probe(
        "tls",
        soon,
        &[ca_arg[0], ca_arg[1], "--cert-warn-days", "3"],
    );
    assert_eq!(r["verdict"], "pass", "{r}");
    let selfie = tls_server(self_signed(&["localhost"]), OK_PAGE);
    let (_, r) = probe("tls", selfie, &[]);
    assert_eq!(r["verdict"], "fail");
    assert!(reason(&r).contains("self-signed or unknown CA"), "{r}");
    let (code, r) = probe("tls", selfie, &["--insecure"]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(r["app"]["insecure"], true);
    assert!(reason(&r).contains("insecure"), "{r}");
    assert_eq!(code, 0);
}

#[test]
fn automate_answers_and_a_proxy_is_caught() {
    let automate = tls_server(self_signed(&["localhost"]), AUTOMATE_ANSWER);
    let (code, r) = probe("automate", automate, &["--insecure"]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert!(
        reason(&r).starts_with("ConnectWise Automate 200.264 answered"),
        "{r}"
    );
    assert_eq!(r["app"]["automate_version"], "200.264");
    assert!(reason(&r).contains("insecure: trust not checked"), "{r}");
    assert_eq!(r["app"]["insecure"], true);
    assert_eq!(code, 0);
    let other = tls_server(self_signed(&["localhost"]), NGINX);
    let (code, r) = probe("automate", other, &["--insecure"]);
    assert_eq!(r["verdict"], "fail", "{r}");
    assert!(
        reason(&r).contains("Automate did not answer (HTTP 200, Server: nginx)"),
        "{r}"
    );
    // The port is open: the hint is about the service, never a firewall rule or forward.
    let hint = r["hint"].as_str().unwrap();
    assert!(hint.contains("proxy"), "{r}");
    assert!(
        hint.contains("the firewall is not what stops it") && !hint.contains("Forward"),
        "{hint}"
    );
    assert_eq!(code, 1);
    // Plain TCP that is not TLS at all.
    let plain = plain_server(b"hello\r\n".to_vec(), false);
    let (_, r) = probe("automate", plain, &["--insecure"]);
    assert_eq!(r["verdict"], "fail");
    assert!(reason(&r).contains("TLS handshake failed"), "{r}");
}

#[test]
fn mysql_greeting_error_and_silence() {
    let port = plain_server(mysql_greeting(b"8.0.36"), false);
    let (code, r) = probe("mysql", port, &[]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(reason(&r), "MySQL 8.0.36 answered");
    assert_eq!(code, 0);

    let port = plain_server(
        mysql_host_refused(b"Host '127.0.0.1' is not allowed to connect to this MySQL server"),
        false,
    );
    let (code, r) = probe("mysql", port, &[]);
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["app"]["mysql_error"], 1130);
    assert!(
        r["hint"]
            .as_str()
            .unwrap()
            .contains("grant this host access"),
        "{r}"
    );
    assert_eq!(code, 1);

    // Open, but nothing speaks: bounded by the timeout.
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let (_, r) = probe(
        "mysql",
        quiet.local_addr().unwrap().port(),
        &["--timeout", "500ms"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(r["verdict"], "fail");
    assert!(
        reason(&r).contains("nothing answered the mysql probe"),
        "{r}"
    );
}

#[test]
fn http_status_and_server() {
    let port = plain_server(
        b"HTTP/1.1 302 Found\r\nServer: Microsoft-IIS/10.0\r\nLocation: /x\r\n\r\n".to_vec(),
        true,
    );
    let (code, r) = probe("http", port, &[]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(reason(&r), "HTTP 302 Found (Server: Microsoft-IIS/10.0)");
    assert_eq!(r["app"]["http_status"], 302);
    assert_eq!(code, 0);
}

#[test]
fn application_findings_in_german() {
    let selfie = tls_server(self_signed(&["localhost"]), AUTOMATE_ANSWER);
    let (_, r) = probe("tls", selfie, &["--lang", "de"]);
    assert_eq!(r["verdict"], "fail");
    assert!(
        reason(&r).starts_with(
            "weder von diesem Rechner noch von öffentlichen Stammzertifikaten vertraut (selbstsigniert oder unbekannte CA)"
        ),
        "{r}"
    );
    assert!(
        reason(&r).contains(", Zertifikat für localhost von "),
        "{r}"
    );
    assert!(
        r["hint"].as_str().unwrap().starts_with("Auf localhost"),
        "{r}"
    );
    let (_, r) = probe("automate", selfie, &["--insecure", "--lang", "de"]);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert!(
        reason(&r).starts_with("ConnectWise Automate 200.264 hat geantwortet (TLS 1."),
        "{r}"
    );
    assert!(
        reason(&r).ends_with("; insecure: Vertrauen nicht geprüft)"),
        "{r}"
    );
    let other = tls_server(self_signed(&["localhost"]), NGINX);
    let (_, r) = probe("automate", other, &["--insecure", "--lang", "de"]);
    assert!(
        reason(&r).starts_with(
            "der Port ist offen, aber Automate hat nicht geantwortet (HTTP 200, Server: nginx): ein Proxy"
        ),
        "{r}"
    );
}

/// Escape sequences from the far side (a `Server` header and HTTP reason, a MySQL version and
/// error, a certificate's name) reach the table as plain text: nothing clears the screen,
/// retitles the window or rings the bell.
#[test]
fn hostile_text_from_the_far_side_is_plain_in_the_table() {
    const EVIL_HTTP: &[u8] = b"HTTP/1.1 200 OK\x1b[2J\r\nServer: evil\x1b[2J\x1b]0;pwned\x07\r\nConnection: close\r\n\r\n";
    let http = plain_server(EVIL_HTTP.to_vec(), true);
    let mysql = plain_server(mysql_greeting(b"8.0\x1b[31m-red\x07"), false);
    let mysql_error = plain_server(
        mysql_host_refused(b"Host \x1b]0;pwned\x07 is not allowed"),
        false,
    );
    let tls = tls_server(self_signed(&["evil\x1b[2J.example"]), OK_PAGE);
    let p = profile(&format!(
        "{}probe = \"http\"\n\n{}probe = \"mysql\"\n\n{}probe = \"mysql\"\n\n{}probe = \"tls\"\n",
        check_block("http", "tcp", &http.to_string(), true),
        check_block("mysql", "tcp", &mysql.to_string(), true),
        check_block("mysqlerr", "tcp", &mysql_error.to_string(), true),
        check_block("tls", "tcp", &tls.to_string(), true),
    ));
    let out = check_box(&p, "localhost")
        .args(["-4", "--timeout", "2s"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    for (what, text) in [
        ("stdout", &table),
        ("stderr", &String::from_utf8_lossy(&out.stderr)),
    ] {
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "a control character reached {what}: {text:?}"
        );
    }
    // What was sent is still shown, made harmless.
    for shown in [
        "evil\u{fffd}[2J\u{fffd}]0;pwned\u{fffd}",
        "8.0\u{fffd}[31m-red\u{fffd}",
        "pwned",
    ] {
        assert!(table.contains(shown), "{shown:?} not in {table}");
    }
}

/// `--server` as the agent writes it: each URL's scheme and port decide the web check, and
/// the heartbeat still goes to the host's 75/udp. Plain HTTP answers as Automate does; the
/// TLS endpoint on its own port is trusted through --ca-file.
#[test]
fn agent_urls_check_each_endpoint_on_its_own_port_and_scheme() {
    let plain = plain_server(AUTOMATE_ANSWER.to_vec(), true);
    let ca = Ca::new();
    let tls = tls_server(
        ca.leaf(&["127.0.0.1"], days_from_now(-1), days_from_now(90)),
        AUTOMATE_ANSWER,
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = crate::util::write_file(dir.path(), "ca.pem", &ca.pem);
    let http = format!("http://127.0.0.1:{plain}");
    let https = format!("https://127.0.0.1:{tls}/");
    let (_, report) = run_json(&mut crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        &http,
        "--target",
        &format!("server={https}"),
        "--ca-file",
        ca_file.to_str().unwrap(),
        "--timeout",
        "2s",
    ]));
    let web: Vec<(String, String, String)> = results(&report, "agent-https")
        .iter()
        .map(|r| {
            (
                r["ports"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
                r["app"]["probe"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        web,
        [
            (plain.to_string(), "pass".into(), "automate-http".into()),
            (tls.to_string(), "pass".into(), "automate".into()),
        ],
        "{report}"
    );
    let heartbeat = results(&report, "agent-heartbeat");
    assert_eq!(heartbeat.len(), 1, "one host, one heartbeat: {report}");
    assert_eq!(heartbeat[0]["ports"], "75");
    // Not a URL form the agent uses: one line, exit 2.
    let out = crate::util::check_cmd(&["--role", "agent", "--server", "ftp://127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use http:// or https://"));
}

/// `openssl s_server` on loopback accepting only `versions` (its flags), answering HTTP.
struct OpensslServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OpensslServer {
    fn start(flags: &[&str]) -> OpensslServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success());
        let port = crate::util::free_tcp_port();
        let child = std::process::Command::new("timeout")
            .args(["120", "openssl", "s_server", "-quiet", "-www"])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .args(flags)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OpensslServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which TLS versions the server accepts is probed version by version (rustls speaks only
/// 1.2 and 1.3): a server that accepts only TLS 1.0 is named as such, not as "not TLS".
#[test]
fn the_tls_versions_a_server_accepts() {
    if !crate::util::installed("openssl", "openssl") {
        return;
    }
    let old = OpensslServer::start(&["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    let modern = OpensslServer::start(&["-no_tls1", "-no_tls1_1"]);
    for _ in 0..3 {
        let (code, r) = probe("tls", old.port, &["--insecure"]);
        let accepts = &r["app"]["tls_versions"]["server_accepts"];
        assert_eq!(accepts["TLS 1.0"], "yes", "{r}");
        assert_eq!(accepts["TLS 1.1"], "no", "{r}");
        assert_eq!(accepts["TLS 1.2"], "no", "{r}");
        assert_eq!(r["verdict"], "fail");
        assert!(
            reason(&r).contains("the server accepts only TLS 1.0, not TLS 1.2 or 1.3"),
            "{r}"
        );
        assert!(
            r["hint"].as_str().unwrap().contains("enable TLS 1.2"),
            "{r}"
        );
        assert_eq!(code, 1);

        let (code, r) = probe("tls", modern.port, &["--insecure"]);
        let accepts = &r["app"]["tls_versions"]["server_accepts"];
        assert_eq!(accepts["TLS 1.0"], "no", "{r}");
        assert_eq!(accepts["TLS 1.1"], "no", "{r}");
        assert_eq!(accepts["TLS 1.2"], "yes", "{r}");
        assert_eq!(accepts["TLS 1.3"], "yes", "{r}");
        // Off Windows there is no Schannel to ask, and no agent offer.
        assert!(r["app"]["tls_versions"].get("schannel").is_none(), "{r}");
        assert_eq!(r["verdict"], "pass", "{r}");
        assert_eq!(code, 0);
    }
}

/// The same hostile text from the far side (a `Server` header with terminal escapes, a bidi
/// override, HTML, a Markdown link, a table pipe, a spreadsheet formula and XML that closes its
/// element) is made safe in every format `check` writes.
#[test]
fn the_same_hostile_text_is_safe_in_every_format() {
    const HOSTILE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: evil\x1b]0;pwned\x07\xe2\x80\xae<img src=x onerror=alert(1)>[click](http://e.example)|=HYPERLINK(\"x\")]]></failure>\r\nConnection: close\r\n\r\n";
    let server = tls_server(self_signed(&["localhost"]), HOSTILE);
    let p = probe_profile("automate", server);
    let run = |format: &str| {
        let out = check_box(&p, "localhost")
            .args(["-4", "--timeout", "2s", "--insecure", "--format", format])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        for active in ['\x1b', '\x07', '\u{202e}'] {
            assert!(!text.contains(active), "{format}: {active:?} in {text}");
        }
        text
    };
    // Every format that shows the finding shows it made harmless.
    for format in ["table", "json", "markdown", "html", "junit"] {
        assert!(run(format).contains("pwned"), "{format} lost the finding");
    }
    let html = run("html");
    assert!(!html.contains("<img") && html.contains("&lt;img"), "{html}");
    let junit = run("junit");
    assert!(
        !junit.contains("<img") && !junit.contains("]]></failure>"),
        "{junit}"
    );
    assert!(
        junit
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')),
        "XML 1.0 forbids control characters: {junit}"
    );
    let markdown = run("markdown");
    for active in ["<img", "[click", "](http", "|=HYPERLINK", "</failure"] {
        let escaped = markdown
            .match_indices(active)
            .all(|(i, _)| markdown[..i].ends_with('\\'));
        assert!(escaped, "{active:?} not escaped: {markdown}");
        assert!(markdown.contains(active), "{active:?} lost: {markdown}");
    }
    let nagios = run("nagios");
    assert_eq!(
        nagios.matches('|').count(),
        1,
        "one perfdata separator: {nagios}"
    );
    assert_eq!(nagios.lines().count(), 1, "{nagios}");
}
