//! The MySQL/MariaDB probe: reads the server's first packet and never sends anything.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{untrusted, AppResult, AppVerdict};
use crate::model::{AppProbe, Finding};

/// Reads the server's first packet; never sends anything (no credentials, no handshake).
pub(super) async fn mysql(mut stream: TcpStream) -> AppResult {
    let fail = |finding| AppResult::new(AppProbe::Mysql, AppVerdict::Fail, finding);
    let mut header = [0u8; 4];
    if stream.read_exact(&mut header).await.is_err() {
        return fail(Finding::MysqlClosed);
    }
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len.min(16 * 1024)];
    if stream.read_exact(&mut payload).await.is_err() || payload.is_empty() {
        return fail(Finding::MysqlBroken);
    }
    parse_mysql_greeting(&payload)
}

/// The first packet of a MySQL/MariaDB server: a protocol-10 handshake or an error.
pub fn parse_mysql_greeting(payload: &[u8]) -> AppResult {
    match payload.first() {
        Some(10) => {
            let end = payload[1..]
                .iter()
                .position(|&b| b == 0)
                .map_or(payload.len(), |p| p + 1);
            let raw = untrusted(&String::from_utf8_lossy(&payload[1..end]));
            // MariaDB reports "5.5.5-10.11.6-MariaDB..." to old clients: show the real version.
            let version = match raw.strip_prefix("5.5.5-") {
                Some(rest) if rest.contains("MariaDB") => rest.to_string(),
                _ => raw,
            };
            let product = if version.contains("MariaDB") {
                "MariaDB"
            } else {
                "MySQL"
            };
            let mut r = AppResult::new(
                AppProbe::Mysql,
                AppVerdict::Pass,
                Finding::MysqlGreeting { product },
            );
            r.server = Some(version);
            r
        }
        Some(0xff) if payload.len() >= 3 => {
            let code = u16::from_le_bytes([payload[1], payload[2]]);
            let mut message = &payload[3..];
            // Protocol 4.1 errors carry '#' and a five-character SQL state first.
            if message.first() == Some(&b'#') && message.len() >= 6 {
                message = &message[6..];
            }
            let message = untrusted(String::from_utf8_lossy(message).trim());
            let finding = if code == 1130 {
                Finding::MysqlRefusesHost { message }
            } else {
                Finding::MysqlError { code, message }
            };
            let mut r = AppResult::new(AppProbe::Mysql, AppVerdict::Fail, finding);
            r.mysql_error = Some(code);
            r
        }
        _ => AppResult::new(AppProbe::Mysql, AppVerdict::Fail, Finding::NotMysql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    fn said(payload: &[u8], lang: Lang) -> String {
        crate::words::app::summary(&parse_mysql_greeting(payload), lang)
    }

    #[test]
    fn mysql_greetings_and_errors() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(said(&greeting, Lang::En), "MySQL 8.0.36 answered");
        let mut maria = vec![10];
        maria.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        assert_eq!(
            said(&maria, Lang::En),
            "MariaDB 10.11.6-MariaDB-0+deb12u1 answered"
        );
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused
            .extend_from_slice(b"Host '192.0.2.1' is not allowed to connect to this MySQL server");
        let r = parse_mysql_greeting(&refused);
        assert_eq!((r.verdict, r.mysql_error), (AppVerdict::Fail, Some(1130)));
        let summary = said(&refused, Lang::En);
        assert!(summary.contains("grant this host access"), "{summary}");
        let mut sqlstate = vec![0xff, 0x15, 0x04, b'#'];
        sqlstate.extend_from_slice(b"28000Access denied");
        assert!(said(&sqlstate, Lang::En).ends_with("error 1045: Access denied"));
        assert_eq!(
            parse_mysql_greeting(b"SSH-2.0-OpenSSH").verdict,
            AppVerdict::Fail
        );
    }

    #[test]
    fn mysql_findings_in_german() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(said(&greeting, Lang::De), "MySQL 8.0.36 hat geantwortet");
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused.extend_from_slice(b"Host '192.0.2.1' is not allowed");
        assert_eq!(
            said(&refused, Lang::De),
            "MySQL weist diesen Host ab (Fehler 1130: Host '192.0.2.1' is not allowed): diesem Host auf dem Datenbankserver Zugriff gewähren"
        );
    }
}
