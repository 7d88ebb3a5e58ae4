//! Can this PC download the agent installer? The first thing an onboarding script does, and
//! where web filters and proxies bite: the URL the community install scripts use
//! (`/LabTech/Deployment.aspx?Probe=1&installType=msi&MSILocations=1`, or
//! `Deployment.aspx?InstallerToken=…` with a token; the LabTech and
//! ConnectWiseAutomateAgent PowerShell modules, `Install-LTService`), fetched over the same
//! path the installer takes (the proxy, if any). Only a bounded prefix is read: an MSI is an
//! OLE compound file, known by its first eight bytes; a block page, a sign-in page, a 404 or
//! a redirect is named as what it is.

use super::{untrusted, AppResult, AppVerdict};
use crate::model::{AppProbe, FileKind, Finding, Instead};

/// Read at most this much of the answer: the head and the start of the body.
pub(super) const PREFIX: usize = 16 * 1024;

/// An MSI (an OLE compound file) starts with these bytes.
const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The agent installer is megabytes; an MSI under this is not it.
const MIN_INSTALLER: u64 = 64 * 1024;

/// The path an install script downloads, with its installer token if one is given.
pub fn path(token: Option<&str>) -> String {
    match token {
        Some(token) => format!("/LabTech/Deployment.aspx?InstallerToken={token}"),
        None => "/LabTech/Deployment.aspx?Probe=1&installType=msi&MSILocations=1".to_string(),
    }
}

/// Whether a token may go into the URL as it is: letters, digits and `-`, as tokens are.
pub fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Judges the answer to the download, with the TLS result before it (`PlainHttp` over HTTP).
/// `token`: a ZIP is what newer servers send for an installer token (the MSI with its
/// transform), so it passes then.
pub(super) fn answer(
    probe: AppProbe,
    response: std::io::Result<Vec<u8>>,
    tls_result: &AppResult,
    token: bool,
) -> AppResult {
    let bytes = match response {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = e.to_string();
            return AppResult::new(probe, AppVerdict::Fail, Finding::InstallerFailed { error });
        }
    };
    let (verdict, finding, status) = judge(&bytes, token, &tls_result.finding);
    // A certificate problem (TLS inspection, a private CA) is the first thing to fix.
    let verdict = match (verdict, tls_result.verdict) {
        (AppVerdict::Fail, _) | (_, AppVerdict::Fail) => AppVerdict::Fail,
        (AppVerdict::Warn, _) | (_, AppVerdict::Warn) => AppVerdict::Warn,
        _ => AppVerdict::Pass,
    };
    let finding = match (&finding, &tls_result.finding) {
        (Finding::Installer { .. }, _) | (_, Finding::PlainHttp) => finding,
        // The certificate's finding explains a failed download better (an inspection page).
        (_, tls) if tls_result.verdict == AppVerdict::Fail => tls.clone(),
        _ => finding,
    };
    let mut r = AppResult::new(probe, verdict, finding);
    r.http_status = status;
    r
}

/// The verdict, the finding and the HTTP status of `bytes`, the first bytes of the answer.
pub fn judge(bytes: &[u8], token: bool, tls: &Finding) -> (AppVerdict, Finding, Option<u16>) {
    let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return no(Instead::NotHttp, None, None);
    };
    let head = String::from_utf8_lossy(&bytes[..split]);
    let mut lines = head.lines();
    let status: Option<u16> = lines
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    let Some(status) = status else {
        return no(Instead::NotHttp, None, None);
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = &bytes[split + 4..];
    if header("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        // The first chunk's size line comes before its bytes.
        if let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
            body = &body[end + 2..];
        }
    }
    let size: Option<u64> = header("Content-Length").and_then(|v| v.parse().ok());
    if (200..300).contains(&status) {
        if body.starts_with(&OLE_MAGIC) {
            return match size {
                Some(size) if size < MIN_INSTALLER => {
                    no(Instead::Short { size }, Some(status), None)
                }
                _ => pass(size, false, tls, status),
            };
        }
        if token && body.starts_with(b"PK\x03\x04") {
            return pass(size, true, tls, status);
        }
    }
    let original = String::from_utf8_lossy(&body[..body.len().min(PREFIX)]);
    // ASCII lowercase keeps every byte where it was: the title is cut from the original.
    let text = original.to_ascii_lowercase();
    let title = title_of(&text, &original).map(|t| untrusted(&t));
    let html = text.contains("<html") || text.contains("<!doctype html") || title.is_some();
    let instead = if html && looks_blocked(&text) {
        Instead::BlockPage
    } else if html && looks_like_login(&text) {
        Instead::LoginPage
    } else {
        match status {
            300..=399 => Instead::Redirected {
                location: untrusted(&header("Location").unwrap_or_default()),
            },
            404 | 410 => Instead::NotFound,
            401 | 403 => Instead::Refused,
            _ if html => Instead::Page,
            _ => Instead::OtherFile {
                kind: file_kind(body),
            },
        }
    };
    no(instead, Some(status), title)
}

fn pass(
    size: Option<u64>,
    zip: bool,
    tls: &Finding,
    status: u16,
) -> (AppVerdict, Finding, Option<u16>) {
    let tls = Box::new(tls.clone());
    (
        AppVerdict::Pass,
        Finding::Installer { size, zip, tls },
        Some(status),
    )
}

fn no(
    instead: Instead,
    status: Option<u16>,
    title: Option<String>,
) -> (AppVerdict, Finding, Option<u16>) {
    let finding = Finding::NoInstaller {
        instead,
        status,
        title,
    };
    (AppVerdict::Fail, finding, status)
}

/// The page's `<title>`, found in `lower` and cut from `original` (the same bytes).
fn title_of(lower: &str, original: &str) -> Option<String> {
    let start = lower.find("<title")?;
    let open = start + lower[start..].find('>')? + 1;
    let end = open + lower[open..].find("</title")?;
    let title = original
        .get(open..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

/// Words block pages of web filters carry (FortiGuard, Sophos, Zscaler, Forcepoint /
/// Websense, Barracuda, Cisco Umbrella, Palo Alto URL filtering, and generic ones).
fn looks_blocked(text: &str) -> bool {
    [
        "blocked",
        "access denied",
        "web filter",
        "webfilter",
        "content filter",
        "url filtering",
        "fortiguard",
        "sophos",
        "zscaler",
        "forcepoint",
        "websense",
        "barracuda",
        "umbrella",
        "category",
        "not allowed",
        "gesperrt",
        "blockiert",
    ]
    .iter()
    .any(|w| text.contains(w))
}

fn looks_like_login(text: &str) -> bool {
    [
        "type=\"password\"",
        "type='password'",
        "type=password",
        "sign in",
        "log in",
        "login",
        "anmelden",
    ]
    .iter()
    .any(|w| text.contains(w))
}

fn file_kind(body: &[u8]) -> FileKind {
    if body.starts_with(b"MZ") {
        FileKind::Program
    } else if body.starts_with(b"PK\x03\x04") {
        FileKind::Zip
    } else if body.is_empty() {
        FileKind::Empty
    } else {
        FileKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_of(head: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = head.replace('\n', "\r\n").into_bytes();
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body);
        bytes
    }

    fn msi(len: usize) -> Vec<u8> {
        let mut body = OLE_MAGIC.to_vec();
        body.resize(len, 0);
        body
    }

    fn judged(bytes: &[u8], token: bool) -> (AppVerdict, Finding, Option<u16>) {
        judge(bytes, token, &Finding::PlainHttp)
    }

    #[test]
    fn an_msi_passes_and_a_short_one_does_not() {
        let ok = answer_of("HTTP/1.1 200 OK\nContent-Length: 9437184\n", &msi(4096));
        assert_eq!(
            judged(&ok, false),
            (
                AppVerdict::Pass,
                Finding::Installer {
                    size: Some(9_437_184),
                    zip: false,
                    tls: Box::new(Finding::PlainHttp)
                },
                Some(200)
            )
        );
        let chunked = answer_of(
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n",
            &[b"1000\r\n".as_slice(), &msi(4096)].concat(),
        );
        assert_eq!(judged(&chunked, false).0, AppVerdict::Pass);
        let short = answer_of("HTTP/1.1 200 OK\nContent-Length: 2048\n", &msi(2048));
        assert!(matches!(
            judged(&short, false).1,
            Finding::NoInstaller {
                instead: Instead::Short { size: 2048 },
                ..
            }
        ));
        let zip = answer_of("HTTP/1.1 200 OK\n", b"PK\x03\x04rest");
        assert_eq!(judged(&zip, true).0, AppVerdict::Pass);
        assert!(matches!(
            judged(&zip, false).1,
            Finding::NoInstaller {
                instead: Instead::OtherFile { .. },
                ..
            }
        ));
    }

    #[test]
    fn what_came_instead_is_named() {
        let page = |status: &str, body: &str| {
            answer_of(
                &format!("HTTP/1.1 {status}\nContent-Type: text/html\n"),
                body.as_bytes(),
            )
        };
        let instead = |bytes: &[u8]| match judged(bytes, false).1 {
            Finding::NoInstaller { instead, .. } => instead,
            other => panic!("{other:?}"),
        };
        let blocked = page("200 OK", "<html><head><title>Web Page Blocked</title></head><body>Category: Software Downloads</body></html>");
        assert_eq!(instead(&blocked), Instead::BlockPage);
        assert!(matches!(
            judged(&blocked, false).1,
            Finding::NoInstaller { title: Some(t), status: Some(200), .. } if t == "Web Page Blocked"
        ));
        assert_eq!(
            instead(&page(
                "403 Forbidden",
                "<html><title>Access Denied</title></html>"
            )),
            Instead::BlockPage
        );
        assert_eq!(
            instead(&page(
                "200 OK",
                "<html><title>Portal</title><form><input type=\"password\"></form></html>"
            )),
            Instead::LoginPage
        );
        assert_eq!(
            instead(&page("404 Not Found", "<html><title>404</title></html>")),
            Instead::NotFound
        );
        assert_eq!(instead(&page("403 Forbidden", "")), Instead::Refused);
        assert_eq!(
            instead(&answer_of(
                "HTTP/1.1 302 Found\nLocation: https://portal.example/login\n",
                b""
            )),
            Instead::Redirected {
                location: "https://portal.example/login".into()
            }
        );
        assert_eq!(
            instead(&page("200 OK", "<html><title>Welcome</title></html>")),
            Instead::Page
        );
        assert_eq!(
            instead(&answer_of("HTTP/1.1 200 OK\n", b"MZ\x90\x00")),
            Instead::OtherFile {
                kind: FileKind::Program
            }
        );
        assert_eq!(instead(b"SSH-2.0-OpenSSH\r\n"), Instead::NotHttp);
        assert_eq!(instead(b"garbage\r\n\r\n"), Instead::NotHttp);
    }

    #[test]
    fn the_url_and_its_token() {
        assert_eq!(
            path(None),
            "/LabTech/Deployment.aspx?Probe=1&installType=msi&MSILocations=1"
        );
        assert_eq!(
            path(Some("abc-123")),
            "/LabTech/Deployment.aspx?InstallerToken=abc-123"
        );
        assert!(valid_token("0f3c-AB12"));
        assert!(!valid_token("a b"));
        assert!(!valid_token("a&b=c"));
        assert!(!valid_token(""));
    }
}
