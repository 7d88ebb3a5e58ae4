//! A ScreenConnect relay port: its protocol is ScreenConnect's own, which this tool does not
//! speak, and a relay waits for its client to speak first. So the probe sends nothing and
//! listens a moment: silence is what a relay does (what listens stays unidentified); a
//! greeting names what answers instead (an HTTP or TLS answer, an SSH or mail banner), which
//! means a proxy or the wrong port.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{untrusted, AppResult, AppVerdict};
use crate::model::{AppProbe, Finding, Speaker};

/// How long the probe listens for a greeting.
pub(super) const LISTEN: Duration = Duration::from_millis(400);

pub(super) async fn relay(mut stream: TcpStream) -> AppResult {
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(LISTEN, stream.read(&mut buf)).await;
    let (verdict, finding) = match read {
        // Silence, or a close without a word: nothing here speaks first.
        Err(_) | Ok(Ok(0) | Err(_)) => (AppVerdict::Pass, Finding::RelayQuiet),
        Ok(Ok(n)) => judge(&buf[..n]),
    };
    AppResult::new(AppProbe::Relay, verdict, finding)
}

/// What a greeting on a relay port says about what answers.
pub fn judge(bytes: &[u8]) -> (AppVerdict, Finding) {
    let speaker = if bytes.starts_with(b"HTTP/") {
        Speaker::Http
    } else if bytes.len() >= 3 && matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 3 {
        Speaker::Tls
    } else if bytes.starts_with(b"SSH-") {
        Speaker::Ssh
    } else {
        Speaker::Other
    };
    let line = String::from_utf8_lossy(bytes);
    let first = line.lines().next().unwrap_or_default();
    let banner = if speaker == Speaker::Tls || first.chars().any(|c| c.is_control() && c != '\t') {
        String::new()
    } else {
        untrusted(first)
    };
    (AppVerdict::Warn, Finding::RelaySpoke { speaker, banner })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_are_named() {
        let named = |bytes: &[u8]| match judge(bytes).1 {
            Finding::RelaySpoke { speaker, banner } => (speaker, banner),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named(b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n"),
            (Speaker::Http, "HTTP/1.1 400 Bad Request".to_string())
        );
        assert_eq!(named(&[0x15, 3, 3, 0, 2, 2, 40]).0, Speaker::Tls);
        assert_eq!(
            named(b"SSH-2.0-OpenSSH_9.2\r\n"),
            (Speaker::Ssh, "SSH-2.0-OpenSSH_9.2".to_string())
        );
        assert_eq!(
            named(b"220 mail.example ESMTP\r\n"),
            (Speaker::Other, "220 mail.example ESMTP".to_string())
        );
        assert_eq!(named(&[0, 1, 2, 3]), (Speaker::Other, String::new()));
        assert_eq!(judge(b"x").0, AppVerdict::Warn);
    }
}
