//! HTTP: `GET /` (status line and `Server`), and Automate's `GET /LabTech/agent.aspx`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{untrusted, AppResult, AppVerdict};
use crate::endpoint::Host;
use crate::model::{AppProbe, Finding};

pub(super) async fn http<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &Host,
    path: &str,
) -> AppResult {
    let response = match request(stream, host, path, 16 * 1024).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = e.to_string();
            return AppResult::new(
                AppProbe::Http,
                AppVerdict::Fail,
                Finding::HttpFailed { error },
            );
        }
    };
    let head = parse_http_head(&response);
    let Some(status) = head.status else {
        return AppResult::new(AppProbe::Http, AppVerdict::Fail, Finding::NotHttp);
    };
    let reason = head.reason.clone();
    let mut r = AppResult::new(
        AppProbe::Http,
        AppVerdict::Pass,
        Finding::HttpStatus { reason },
    );
    r.http_status = Some(status);
    r.server = head.server;
    r
}

/// Sends a GET and reads the response until the peer closes or `limit` bytes arrived.
pub(super) async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &Host,
    path: &str,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let host_header = host.authority();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: automate-ports/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while response.len() < limit {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify still sent its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                break
            }
            Err(e) => return Err(e),
        }
    }
    Ok(response)
}

#[doc(hidden)]
#[derive(Debug, Default)]
pub struct HttpHead {
    pub(super) status: Option<u16>,
    pub(super) reason: String,
    pub(super) server: Option<String>,
}

#[doc(hidden)]
pub fn parse_http_head(response: &[u8]) -> HttpHead {
    let text = String::from_utf8_lossy(&response[..response.len().min(16 * 1024)]);
    let mut lines = text.split("\r\n");
    let mut head = HttpHead::default();
    if let Some(status_line) = lines.next() {
        let mut parts = status_line.splitn(3, ' ');
        if parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
            head.status = parts.next().and_then(|s| s.parse().ok());
            head.reason = untrusted(parts.next().unwrap_or(""));
        }
    }
    for line in lines.take_while(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("server") {
                head.server = Some(untrusted(value.trim()));
            }
        }
    }
    head
}

/// The version in Automate's answer to `/LabTech/agent.aspx`: six pipes, then
/// digits.digits (what community agent tooling matches).
pub fn automate_version(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut rest: &str = &text;
    while let Some(at) = rest.find("||||||") {
        let after = rest[at..].trim_start_matches('|');
        let version: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = version.split('.');
        let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !major.is_empty() && !minor.is_empty() {
            return Some(version.trim_end_matches('.').to_string());
        }
        rest = &rest[at + 6..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automate_versions() {
        assert_eq!(
            automate_version(b"1|2|||||||200.264"),
            Some("200.264".into())
        );
        assert_eq!(automate_version(b"||||||2024.11"), Some("2024.11".into()));
        assert_eq!(automate_version(b"<html>hello</html>"), None);
        assert_eq!(automate_version(b"||||||abc"), None);
    }

    #[test]
    fn http_heads() {
        let head =
            parse_http_head(b"HTTP/1.1 302 Found\r\nServer: nginx\r\nLocation: /x\r\n\r\nbody");
        assert_eq!(
            (head.status, head.reason.as_str(), head.server.as_deref()),
            (Some(302), "Found", Some("nginx"))
        );
        assert_eq!(parse_http_head(b"SSH-2.0-x\r\n").status, None);
    }
}
