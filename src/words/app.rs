//! What application probes found, in words: the `summary` of an [`AppResult`].

use crate::lang::Lang;
use crate::model::{AppResult, AppVerdict, CertificateFinding, Finding, TlsInfo};
use crate::tr;

/// The one line a report shows for what an application probe found.
pub fn summary(found: &AppResult, lang: Lang) -> String {
    let said = say(&found.finding, found, lang);
    match &found.proxy {
        Some(proxy) if !found.finding.is_proxy() => tr!(
            lang,
            "{said} (through proxy {proxy})",
            "{said} (über den Proxy {proxy})"
        ),
        _ => said,
    }
}

/// Fills in `summary` (the JSON report carries it).
pub fn with_summary(found: &AppResult, lang: Lang) -> AppResult {
    let mut said = found.clone();
    said.summary = summary(found, lang);
    said
}

pub(super) fn say(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    match finding {
        Finding::NoAnswer { timeout } => {
            let (name, t) = (found.probe.as_str(), lang.duration(*timeout));
            tr!(
                lang,
                "the port is open but nothing answered the {name} probe in {t}",
                "der Port ist offen, aber auf die {name}-Probe kam in {t} keine Antwort"
            )
        }
        Finding::MysqlClosed
        | Finding::MysqlBroken
        | Finding::MysqlGreeting { .. }
        | Finding::MysqlRefusesHost { .. }
        | Finding::MysqlError { .. }
        | Finding::NotMysql => mysql(finding, found, lang),
        Finding::HttpFailed { .. } | Finding::HttpStatus { .. } | Finding::NotHttp => {
            http(finding, found, lang)
        }
        Finding::ProxyUnreachable { .. }
        | Finding::ProxyRefused { .. }
        | Finding::ProxyAuth { .. }
        | Finding::ProxyBroken => super::proxy::say(finding, found, lang),
        Finding::PlainHttp => tr!(
            lang,
            "plain HTTP, as the agent is set; unencrypted",
            "einfaches HTTP, wie beim Agenten eingestellt; unverschlüsselt"
        ),
        Finding::TlsSetup { error } => tr!(
            lang,
            "cannot set up TLS: {error}",
            "TLS lässt sich nicht einrichten: {error}"
        ),
        Finding::TlsHandshake { error } => tr!(
            lang,
            "the port is open but the TLS handshake failed ({error}): not a TLS server, or a proxy that breaks TLS",
            "der Port ist offen, aber der TLS-Handshake schlug fehl ({error}): kein TLS-Server, oder ein Proxy, der TLS bricht"
        ),
        Finding::SchannelFailed { .. } | Finding::OldTlsOnly { .. } => {
            super::tls::tls_versions(finding, found, lang, say)
        }
        Finding::NoCertificate => lang
            .pick(
                "the server sent no certificate",
                "der Server hat kein Zertifikat geschickt",
            )
            .to_string(),
        Finding::CertificateUnreadable => lang
            .pick(
                "the server's certificate does not parse",
                "das Zertifikat des Servers ist nicht lesbar",
            )
            .to_string(),
        Finding::Certificate(problem) => match &found.tls {
            Some(info) => certificate(problem, info, lang),
            None => String::new(),
        },
        Finding::Automate { .. } | Finding::NotAutomate | Finding::AutomateFailed { .. } => {
            automate(finding, found, lang)
        }
        Finding::Installer { .. } | Finding::NoInstaller { .. } | Finding::InstallerFailed { .. } => {
            super::installer::installer(finding, found, lang, say)
        }
        Finding::RelayQuiet | Finding::RelaySpoke { .. } => super::installer::relay(finding, lang),
    }
}

fn mysql(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    match finding {
        Finding::MysqlClosed => tr!(
            lang,
            "the port is open but no MySQL answered (it closed without a greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (Verbindung ohne Begrüßung geschlossen)"
        ),
        Finding::MysqlBroken => tr!(
            lang,
            "the port is open but no MySQL answered (a short, broken greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (kurze, kaputte Begrüßung)"
        ),
        Finding::MysqlGreeting { product } => {
            let version = found.server.as_deref().unwrap_or_default();
            tr!(
                lang,
                "{product} {version} answered",
                "{product} {version} hat geantwortet"
            )
        }
        Finding::MysqlRefusesHost { message } => tr!(
            lang,
            "MySQL refuses this host (error 1130: {message}): grant this host access on the database server",
            "MySQL weist diesen Host ab (Fehler 1130: {message}): diesem Host auf dem Datenbankserver Zugriff gewähren"
        ),
        Finding::MysqlError { code, message } => tr!(
            lang,
            "MySQL answered with error {code}: {message}",
            "MySQL hat mit Fehler {code} geantwortet: {message}"
        ),
        _ => tr!(
            lang,
            "the port is open but what answered is not MySQL",
            "der Port ist offen, aber was geantwortet hat, ist kein MySQL"
        ),
    }
}

fn http(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    match (finding, found.http_status) {
        (Finding::HttpFailed { error }, _) => tr!(
            lang,
            "the port is open but no HTTP answered ({error})",
            "der Port ist offen, aber kein HTTP hat geantwortet ({error})"
        ),
        (Finding::HttpStatus { reason }, Some(status)) => {
            let line = match &found.server {
                Some(s) => format!("HTTP {status} {reason} (Server: {s})"),
                None => format!("HTTP {status} {reason}"),
            };
            line.trim_end().to_string()
        }
        _ => tr!(
            lang,
            "the port is open but no HTTP answered",
            "der Port ist offen, aber kein HTTP hat geantwortet"
        ),
    }
}

fn automate(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    match finding {
        Finding::Automate { tls } => {
            // On a pass this is the certificate in brief, with "insecure" when trust was not
            // checked.
            let tls_note = say(tls, found, lang);
            let version = found.automate_version.as_deref().unwrap_or_default();
            if found.verdict == AppVerdict::Pass {
                tr!(
                    lang,
                    "ConnectWise Automate {version} answered ({tls_note})",
                    "ConnectWise Automate {version} hat geantwortet ({tls_note})"
                )
            } else {
                tr!(
                    lang,
                    "ConnectWise Automate {version} answered, but {tls_note}",
                    "ConnectWise Automate {version} hat geantwortet, aber {tls_note}"
                )
            }
        }
        Finding::AutomateFailed { error } => tr!(
            lang,
            "the port is open but Automate did not answer ({error}): proxy, captive portal, or another web server?",
            "der Port ist offen, aber Automate hat nicht geantwortet ({error}): ein Proxy, ein Captive Portal oder ein anderer Webserver?"
        ),
        _ => {
            let what = match (found.http_status, &found.server) {
                (Some(s), Some(server)) => format!(" (HTTP {s}, Server: {server})"),
                (Some(s), None) => format!(" (HTTP {s})"),
                _ => String::new(),
            };
            tr!(
                lang,
                "the port is open but Automate did not answer{what}: proxy, captive portal, or another web server?",
                "der Port ist offen, aber Automate hat nicht geantwortet{what}: ein Proxy, ein Captive Portal oder ein anderer Webserver?"
            )
        }
    }
}

/// "TLS 1.3, certificate for automate.example.com by R3, expires in 60 days".
fn described(info: &TlsInfo, lang: Lang) -> String {
    let days = info.days_left.abs();
    let expiry = if info.days_left >= 0 {
        tr!(lang, "expires in {days} days", "läuft in {days} Tagen ab")
    } else {
        tr!(
            lang,
            "expired {days} days ago",
            "vor {days} Tagen abgelaufen"
        )
    };
    let (version, subject, issuer) = (&info.version, &info.subject, &info.issuer);
    tr!(
        lang,
        "{version}, certificate for {subject} by {issuer}, {expiry}",
        "{version}, Zertifikat für {subject} von {issuer}, {expiry}"
    )
}

fn certificate(problem: &CertificateFinding, info: &TlsInfo, lang: Lang) -> String {
    let described = described(info, lang);
    match problem {
        CertificateFinding::WrongName { host } => {
            let names = if info.sans.is_empty() {
                info.subject.clone()
            } else {
                info.sans.join(", ")
            };
            tr!(
                lang,
                "the certificate is for {names}, not {host} ({described})",
                "das Zertifikat gilt für {names}, nicht für {host} ({described})"
            )
        }
        CertificateFinding::Expired { days } => tr!(
            lang,
            "the certificate expired {days} days ago ({described})",
            "das Zertifikat ist vor {days} Tagen abgelaufen ({described})"
        ),
        CertificateFinding::NotYetValid => tr!(
            lang,
            "the certificate is not valid yet ({described})",
            "das Zertifikat ist noch nicht gültig ({described})"
        ),
        CertificateFinding::TrustedOnlyHere => tr!(
            lang,
            "trusted by this machine but not by public roots: likely TLS inspection or a private CA ({described})",
            "von diesem Rechner vertraut, aber nicht von öffentlichen Stammzertifikaten: wahrscheinlich TLS-Inspektion oder eine private CA ({described})"
        ),
        CertificateFinding::TrustedNowhere => tr!(
            lang,
            "not trusted by this machine or public roots (self-signed or unknown CA): likely TLS inspection or a private CA ({described})",
            "weder von diesem Rechner noch von öffentlichen Stammzertifikaten vertraut (selbstsigniert oder unbekannte CA): wahrscheinlich TLS-Inspektion oder eine private CA ({described})"
        ),
        CertificateFinding::ExpiresSoon { days } => tr!(
            lang,
            "the certificate expires in {days} days ({described})",
            "das Zertifikat läuft in {days} Tagen ab ({described})"
        ),
        CertificateFinding::Unchecked => tr!(
            lang,
            "{described}; insecure: trust not checked",
            "{described}; insecure: Vertrauen nicht geprüft"
        ),
        CertificateFinding::Fine => described,
    }
}
