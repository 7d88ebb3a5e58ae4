//! An HTTP proxy between this machine and the target, as agents on proxied networks use:
//! `CONNECT address:port`, then the application probe runs inside the tunnel. What the proxy
//! says instead of opening it (refused, wants credentials, not a proxy) is a finding of its
//! own, so a proxy rule is not blamed on a firewall.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::Finding;

/// A proxy to go through: its URL as the user or the agent wrote it, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub url: String,
    pub addr: SocketAddr,
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
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: automate-ports/{}\r\n\r\n",
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
        Some((407, _)) => Err(Finding::ProxyAuth),
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

#[cfg(test)]
mod tests {
    use super::status;

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
}
