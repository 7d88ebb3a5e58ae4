//! An HTTP proxy between this machine and the target, as agents on proxied networks use:
//! `CONNECT address:port`, then the application probe runs inside the tunnel. What the proxy
//! says instead of opening it (refused, wants credentials, not a proxy) is a finding of its
//! own, so a proxy rule is not blamed on a firewall.

use std::fmt;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::Finding;

/// A proxy to go through: its URL as the user or the agent wrote it, its address, and the
/// credentials to send it (`--proxy-user`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub url: String,
    pub addr: SocketAddr,
    pub credentials: Option<Credentials>,
}

/// Basic credentials for the proxy, kept only as the finished header value. Its `Debug`
/// shows nothing of it: a `{:?}` in a log line or a panic must not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    header: String,
}

impl Credentials {
    /// RFC 7617: `Basic base64(user ":" password)`, both as UTF-8.
    pub fn basic(user: &str, password: &str) -> Credentials {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Credentials {
            header: format!("Basic {token}"),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(hidden)")
    }
}

/// The longest proxy answer head read.
const MAX_HEAD: usize = 8 * 1024;

/// Opens a tunnel to `target` through `proxy`. The caller bounds the time.
pub async fn connect(proxy: &Proxy, target: SocketAddr) -> Result<TcpStream, Finding> {
    let mut stream =
        TcpStream::connect(proxy.addr)
            .await
            .map_err(|e| Finding::ProxyUnreachable {
                error: e.to_string(),
            })?;
    let authorization = proxy.credentials.as_ref().map_or(String::new(), |c| {
        format!("Proxy-Authorization: {}\r\n", c.header)
    });
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: automate-ports/{}\r\n{authorization}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Finding::ProxyUnreachable {
            error: e.to_string(),
        })?;
    // Byte by byte up to the blank line: anything after it belongs to the tunnel.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(Finding::ProxyBroken);
        }
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return Err(Finding::ProxyBroken),
        }
    }
    match status(&head) {
        Some((200..=299, _)) => Ok(stream),
        Some((407, _)) => Err(Finding::ProxyAuth {
            schemes: schemes(&head),
            sent: proxy.credentials.is_some(),
        }),
        Some((status, reason)) => Err(Finding::ProxyRefused { status, reason }),
        None => Err(Finding::ProxyBroken),
    }
}

/// The status and reason of `HTTP/1.x NNN reason`.
fn status(head: &[u8]) -> Option<(u16, String)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let mut words = line.trim_end().splitn(3, ' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    let reason = super::untrusted(words.next().unwrap_or_default().trim());
    Some((status, reason))
}

/// The most schemes kept from one answer: a real proxy offers two or three.
const MAX_SCHEMES: usize = 8;

/// The authentication schemes a 407 offers, in its order, each once: every
/// `Proxy-Authenticate` header, each a comma-separated list of challenges whose parameters
/// are separated by commas too (RFC 9110, 11.6.1), so an element that starts `name=` is a
/// parameter of the challenge before it, not a scheme. Scheme names are case-insensitive;
/// the common ones are spelt as their RFCs do, and the rest are the proxy's text, made safe.
fn schemes(head: &[u8]) -> Vec<String> {
    let head = String::from_utf8_lossy(head);
    let mut found: Vec<String> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("proxy-authenticate") {
            continue;
        }
        for element in elements(value) {
            let Some(scheme) = challenge_scheme(element).map(canonical) else {
                continue;
            };
            if found.len() < MAX_SCHEMES && !found.iter().any(|s| s.eq_ignore_ascii_case(&scheme)) {
                found.push(scheme);
            }
        }
    }
    found
}

/// A header value split at the commas outside quoted strings.
fn elements(value: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// The scheme an element opens (`Basic realm="x"`, `NTLM`, `Negotiate abc==`), or `None`
/// for a parameter of the challenge before it (`charset="UTF-8"`) or an empty element.
fn challenge_scheme(element: &str) -> Option<&str> {
    let element = element.trim_start();
    let end = element
        .find(|c: char| !is_tchar(c))
        .unwrap_or(element.len());
    let (token, rest) = element.split_at(end);
    if token.is_empty() || rest.trim_start().starts_with('=') {
        return None;
    }
    // A token must end at whitespace or the element's end: `Basic"x"` is no challenge.
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(token)
}

/// RFC 9110's token characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn canonical(scheme: &str) -> String {
    for known in ["Basic", "Digest", "NTLM", "Negotiate", "Kerberos", "Bearer"] {
        if scheme.eq_ignore_ascii_case(known) {
            return known.to_string();
        }
    }
    super::untrusted(scheme)
}

#[cfg(test)]
mod tests {
    use super::{schemes, status, Credentials};

    #[test]
    fn proxy_answers() {
        assert_eq!(
            status(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some((200, "Connection established".into()))
        );
        assert_eq!(
            status(b"HTTP/1.0 407 Proxy Authentication Required\r\n"),
            Some((407, "Proxy Authentication Required".into()))
        );
        assert_eq!(status(b"HTTP/1.1 403\r\n\r\n"), Some((403, String::new())));
        assert_eq!(status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status(b"HTTP/1.1 abc x\r\n"), None);
    }

    #[test]
    fn the_schemes_a_407_offers() {
        let head =
            |headers: &str| format!("HTTP/1.1 407 Proxy Authentication Required\r\n{headers}\r\n");
        let of = |headers: &str| schemes(head(headers).as_bytes());
        assert_eq!(of("Proxy-Authenticate: Basic realm=\"lab\"\r\n"), ["Basic"]);
        // Several headers, names and schemes in any case, one scheme once.
        assert_eq!(
            of("proxy-authenticate: NEGOTIATE\r\nContent-Length: 0\r\nPROXY-AUTHENTICATE: ntlm\r\nProxy-Authenticate: Negotiate\r\n"),
            ["Negotiate", "NTLM"]
        );
        // One list: parameters (with commas in quotes, spaces around `=`) belong to the
        // challenge before them; a token68 is no parameter.
        assert_eq!(
            of("Proxy-Authenticate: Digest realm=\"a, b\", qop=\"auth\", nonce = \"x\\\"y,\", Negotiate abc==, Basic realm=\"lab\", charset=\"UTF-8\"\r\n"),
            ["Digest", "Negotiate", "Basic"]
        );
        assert_eq!(of("Proxy-Authenticate: , ,NTLM,\r\n"), ["NTLM"]);
        assert!(of("Content-Length: 0\r\n").is_empty());
        assert!(of("Proxy-Authenticate:\r\nWWW-Authenticate: Basic\r\n").is_empty());
        // The proxy's own words are untrusted: only token characters, bounded, a few.
        assert_eq!(
            of("Proxy-Authenticate: X-Corp\x1b[2J realm=1\r\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            of("Proxy-Authenticate: x-Corp-SSO realm=1\r\n"),
            ["x-Corp-SSO"]
        );
        let many: Vec<String> = (0..20).map(|i| format!("S{i}")).collect();
        assert_eq!(
            of(&format!("Proxy-Authenticate: {}\r\n", many.join(", "))).len(),
            super::MAX_SCHEMES
        );
        let long = "A".repeat(300);
        let kept = of(&format!(
            "Proxy-Authenticate: {long}\r\nProxy-Authenticate: {long}\r\n"
        ));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].chars().count(), 257);
    }

    #[test]
    fn basic_credentials_and_their_debug() {
        // RFC 7617's own example.
        let c = Credentials::basic("Aladdin", "open sesame");
        assert_eq!(c.header, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(format!("{c:?}"), "Credentials(hidden)");
        assert_eq!(
            Credentials::basic("test", "123\u{a3}").header,
            "Basic dGVzdDoxMjPCow=="
        );
    }
}
