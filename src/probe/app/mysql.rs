//! The MySQL/MariaDB probe: reads the server's first packet and never sends anything.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{untrusted, AppResult, AppVerdict};
use crate::lang::Lang;
use crate::model::AppProbe;
use crate::tr;

// ---------------------------------------------------------------- MySQL

/// Reads the server's first packet; never sends anything (no credentials, no handshake).
pub(super) async fn mysql(mut stream: TcpStream, lang: Lang) -> AppResult {
    let fail = |summary: String| AppResult::new(AppProbe::Mysql, AppVerdict::Fail, summary);
    let mut header = [0u8; 4];
    if stream.read_exact(&mut header).await.is_err() {
        return fail(tr!(
            lang,
            "the port is open but no MySQL answered (it closed without a greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (Verbindung ohne Begrüßung geschlossen)"
        ));
    }
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len.min(16 * 1024)];
    if stream.read_exact(&mut payload).await.is_err() || payload.is_empty() {
        return fail(tr!(
            lang,
            "the port is open but no MySQL answered (a short, broken greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (kurze, kaputte Begrüßung)"
        ));
    }
    parse_mysql_greeting(&payload, lang)
}

/// The first packet of a MySQL/MariaDB server: a protocol-10 handshake or an error.
pub fn parse_mysql_greeting(payload: &[u8], lang: Lang) -> AppResult {
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
                tr!(
                    lang,
                    "{product} {version} answered",
                    "{product} {version} hat geantwortet"
                ),
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
            let summary = if code == 1130 {
                tr!(
                    lang,
                    "MySQL refuses this host (error 1130: {message}): grant this host access on the database server",
                    "MySQL weist diesen Host ab (Fehler 1130: {message}): diesem Host auf dem Datenbankserver Zugriff gewähren"
                )
            } else {
                tr!(
                    lang,
                    "MySQL answered with error {code}: {message}",
                    "MySQL hat mit Fehler {code} geantwortet: {message}"
                )
            };
            let mut r = AppResult::new(AppProbe::Mysql, AppVerdict::Fail, summary);
            r.mysql_error = Some(code);
            r
        }
        _ => AppResult::new(
            AppProbe::Mysql,
            AppVerdict::Fail,
            tr!(
                lang,
                "the port is open but what answered is not MySQL",
                "der Port ist offen, aber was geantwortet hat, ist kein MySQL"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_greetings_and_errors() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(
            parse_mysql_greeting(&greeting, Lang::En).summary,
            "MySQL 8.0.36 answered"
        );
        let mut maria = vec![10];
        maria.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        assert_eq!(
            parse_mysql_greeting(&maria, Lang::En).summary,
            "MariaDB 10.11.6-MariaDB-0+deb12u1 answered"
        );
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused
            .extend_from_slice(b"Host '192.0.2.1' is not allowed to connect to this MySQL server");
        let r = parse_mysql_greeting(&refused, Lang::En);
        assert_eq!((r.verdict, r.mysql_error), (AppVerdict::Fail, Some(1130)));
        assert!(
            r.summary.contains("grant this host access"),
            "{}",
            r.summary
        );
        let mut sqlstate = vec![0xff, 0x15, 0x04, b'#'];
        sqlstate.extend_from_slice(b"28000Access denied");
        assert!(parse_mysql_greeting(&sqlstate, Lang::En)
            .summary
            .ends_with("error 1045: Access denied"));
        assert_eq!(
            parse_mysql_greeting(b"SSH-2.0-OpenSSH", Lang::En).verdict,
            AppVerdict::Fail
        );
    }

    #[test]
    fn mysql_findings_in_german() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(
            parse_mysql_greeting(&greeting, Lang::De).summary,
            "MySQL 8.0.36 hat geantwortet"
        );
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused.extend_from_slice(b"Host '192.0.2.1' is not allowed");
        let r = parse_mysql_greeting(&refused, Lang::De);
        assert_eq!(
            r.summary,
            "MySQL weist diesen Host ab (Fehler 1130: Host '192.0.2.1' is not allowed): diesem Host auf dem Datenbankserver Zugriff gewähren"
        );
    }
}
