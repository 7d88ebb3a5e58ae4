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

fn say(finding: &Finding, found: &AppResult, lang: Lang) -> String {
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
            tls_versions(finding, found, lang)
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
            installer(finding, found, lang)
        }
        Finding::RelayQuiet | Finding::RelaySpoke { .. } => relay(finding, lang),
    }
}

/// A relay port: silent, as a relay is, or a greeting that names what answers instead.
fn relay(finding: &Finding, lang: Lang) -> String {
    match finding {
        Finding::RelayQuiet => lang
            .pick(
                "open; nothing spoke first, as a relay waits for its client (what listens is not identified)",
                "offen; nichts hat zuerst gesprochen, wie ein Relay, das auf seinen Client wartet (was lauscht, ist nicht bestimmt)",
            )
            .to_string(),
        Finding::RelaySpoke { speaker, banner } => {
            let who = match speaker {
                crate::model::Speaker::Http => lang.pick("an HTTP server", "ein HTTP-Server"),
                crate::model::Speaker::Tls => lang.pick("a TLS server", "ein TLS-Server"),
                crate::model::Speaker::Ssh => lang.pick("an SSH server", "ein SSH-Server"),
                crate::model::Speaker::Other => lang.pick("another service", "ein anderer Dienst"),
            };
            let banner = if banner.is_empty() {
                String::new()
            } else {
                format!(" (\"{banner}\")")
            };
            tr!(
                lang,
                "{who} greeted first{banner}, which a ScreenConnect relay never does: a proxy or the wrong port",
                "{who} hat zuerst gegrüßt{banner}, was ein ScreenConnect-Relay nie tut: ein Proxy oder der falsche Port"
            )
        }
        _ => String::new(),
    }
}

/// The installer download: an MSI, or what came in its place.
fn installer(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    use crate::model::Instead;
    match finding {
        Finding::Installer { size, zip, tls } => {
            let what = if *zip {
                lang.pick(
                    "a ZIP (the MSI with its transform, as servers send it for an installer token)",
                    "ein ZIP (das MSI mit seiner Transformation, wie Server es für ein Installer-Token schicken)",
                )
            } else {
                lang.pick("an MSI", "ein MSI")
            };
            #[allow(clippy::cast_precision_loss)]
            let size = size.map_or_else(String::new, |b| {
                format!(", {:.1} MB", b as f64 / 1_048_576.0)
            });
            let tls = match **tls {
                Finding::PlainHttp => lang
                    .pick("over plain HTTP", "über einfaches HTTP")
                    .to_string(),
                ref tls => say(tls, found, lang),
            };
            tr!(
                lang,
                "the agent installer downloads: {what}{size} ({tls})",
                "der Agenten-Installer lässt sich laden: {what}{size} ({tls})"
            )
        }
        Finding::InstallerFailed { error } => tr!(
            lang,
            "the installer download failed ({error})",
            "der Download des Installers schlug fehl ({error})"
        ),
        Finding::NoInstaller {
            instead,
            status,
            title,
        } => {
            let status = status.map_or_else(String::new, |s| format!("HTTP {s}"));
            let title = title
                .as_ref()
                .map_or_else(String::new, |t| format!(", \"{t}\""));
            let got = match instead {
                Instead::BlockPage => tr!(lang, "a web filter's block page ({status}{title})", "die Sperrseite eines Webfilters ({status}{title})"),
                Instead::LoginPage => tr!(lang, "a sign-in page ({status}{title}): a portal or an authenticating web filter", "eine Anmeldeseite ({status}{title}): ein Portal oder ein Webfilter mit Anmeldung"),
                Instead::NotFound => tr!(lang, "not found ({status}): the server offers no installer at this URL", "nicht gefunden ({status}): der Server bietet unter dieser URL keinen Installer an"),
                Instead::Refused => tr!(lang, "refused ({status})", "abgelehnt ({status})"),
                Instead::Redirected { location } => tr!(lang, "a redirect ({status}) to {location}", "eine Umleitung ({status}) nach {location}"),
                Instead::Page => tr!(lang, "a web page ({status}{title}), not the MSI", "eine Webseite ({status}{title}), nicht das MSI"),
                Instead::OtherFile { kind } => {
                    let what = match kind {
                        crate::model::FileKind::Program => lang.pick("a Windows program (MZ), not the MSI", "ein Windows-Programm (MZ), nicht das MSI"),
                        crate::model::FileKind::Zip => lang.pick("a ZIP archive, not the MSI", "ein ZIP-Archiv, nicht das MSI"),
                        crate::model::FileKind::Empty => lang.pick("an empty answer", "eine leere Antwort"),
                        crate::model::FileKind::Other => lang.pick("a file that is not an MSI", "eine Datei, die kein MSI ist"),
                    };
                    tr!(lang, "{what} ({status})", "{what} ({status})")
                }
                Instead::Short { size } => tr!(lang, "an MSI of only {size} bytes ({status}): too short to be the agent installer", "ein MSI von nur {size} Bytes ({status}): zu kurz für den Agenten-Installer"),
                Instead::NotHttp => lang.pick("no HTTP answer", "keine HTTP-Antwort").to_string(),
            };
            tr!(
                lang,
                "the agent installer does not download: {got}",
                "der Agenten-Installer lässt sich nicht laden: {got}"
            )
        }
        _ => String::new(),
    }
}

/// Findings about TLS versions: Schannel's own handshake, a server that accepts only old ones.
fn tls_versions(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    match finding {
        Finding::SchannelFailed {
            error,
            code,
            settled,
            inner,
            was,
        } => {
            let cause = code.map_or("", |c| sec_status_cause(c, lang));
            // The inner finding in the words it had before Schannel's failure changed the verdict.
            let before = AppResult {
                verdict: *was,
                ..found.clone()
            };
            let rustls = say(inner, &before, lang);
            let asked = if *settled {
                lang.pick(
                    "asking for what the agent here asks for",
                    "mit dem, was der Agent hier anfordert",
                )
            } else {
                lang.pick(
                    "with this machine's default TLS versions",
                    "mit den Standard-TLS-Versionen dieses Rechners",
                )
            };
            tr!(
                lang,
                "Schannel, the TLS of Windows that the agent uses, cannot connect {asked}: {error}{cause}; rustls, with TLS 1.2 and 1.3, did: {rustls}",
                "Schannel, das TLS von Windows, das der Agent nutzt, kann {asked} nicht verbinden: {error}{cause}; rustls mit TLS 1.2 und 1.3 konnte es: {rustls}"
            )
        }
        Finding::OldTlsOnly {
            accepted,
            schannel_ok,
        } => {
            let versions = accepted
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if *schannel_ok {
                tr!(
                    lang,
                    "the server accepts only {versions}, not TLS 1.2 or 1.3: Schannel, the TLS the agent uses, still connects with it, but these versions are deprecated and modern clients refuse them",
                    "der Server nimmt nur {versions} an, nicht TLS 1.2 oder 1.3: Schannel, das TLS des Agenten, verbindet sich damit noch, aber diese Versionen sind veraltet und aktuelle Clients lehnen sie ab"
                )
            } else {
                tr!(
                    lang,
                    "the server accepts only {versions}, not TLS 1.2 or 1.3: modern clients, this tool among them, refuse it",
                    "der Server nimmt nur {versions} an, nicht TLS 1.2 oder 1.3: aktuelle Clients, dieses Werkzeug eingeschlossen, lehnen ihn ab"
                )
            }
        }
        _ => String::new(),
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

/// The common SECURITY_STATUS codes of a failed Schannel handshake, by name.
pub fn sec_status_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x8009_0302 => "SEC_E_UNSUPPORTED_FUNCTION",
        0x8009_0304 => "SEC_E_INTERNAL_ERROR",
        0x8009_0308 => "SEC_E_INVALID_TOKEN",
        0x8009_030E => "SEC_E_NO_CREDENTIALS",
        0x8009_0318 => "SEC_E_INCOMPLETE_MESSAGE",
        0x8009_0322 => "SEC_E_WRONG_PRINCIPAL",
        0x8009_0325 => "SEC_E_UNTRUSTED_ROOT",
        0x8009_0326 => "SEC_E_ILLEGAL_MESSAGE",
        0x8009_0327 => "SEC_E_CERT_UNKNOWN",
        0x8009_0330 => "SEC_E_DECRYPT_FAILURE",
        0x8009_0331 => "SEC_E_ALGORITHM_MISMATCH",
        _ => return None,
    })
}

/// What a SECURITY_STATUS most likely means here, after a comma; empty where it says nothing
/// more than its name.
fn sec_status_cause(code: u32, lang: Lang) -> &'static str {
    match code {
        0x8009_0331 => lang.pick(
            ", no TLS version or cipher in common: the server requires what this machine does not offer",
            ", keine gemeinsame TLS-Version oder Cipher: der Server verlangt, was dieser Rechner nicht anbietet",
        ),
        0x8009_0302 => lang.pick(
            ", a TLS version asked for is switched off on this machine",
            ", eine angeforderte TLS-Version ist auf diesem Rechner abgeschaltet",
        ),
        0x8009_0326 => lang.pick(
            ", the server refused the handshake: often a TLS version it no longer accepts",
            ", der Server hat den Handshake abgelehnt: oft eine TLS-Version, die er nicht mehr annimmt",
        ),
        _ => "",
    }
}

/// The report's note on the agent's TLS offer: what it was judged from, the result, the
/// sources.
pub fn agent_offer_note(
    settings: &crate::tlsoffer::Settings,
    offer: &crate::tlsoffer::AgentOffer,
    lang: Lang,
) -> String {
    use crate::tlsoffer::{Offer, Runtime, TlsVersion};
    let windows = settings.windows.map_or_else(
        || lang.pick("unknown", "unbekannt").to_string(),
        |(major, minor, build)| format!("{major}.{minor} build {build}"),
    );
    let runtime = match settings.runtime {
        Some(Runtime::Clr2) => ".NET 2.0-3.5 (CLR 2)".to_string(),
        Some(Runtime::Clr4 {
            target: Some((a, b)),
        }) => format!(".NET {a}.{b} (CLR 4)"),
        Some(Runtime::Clr4 { target: None }) => ".NET 4 (CLR 4)".to_string(),
        None => lang
            .pick(
                "unknown (no LTSVC.exe.config)",
                "unbekannt (keine LTSVC.exe.config)",
            )
            .to_string(),
    };
    let offers = TlsVersion::ALL
        .map(|v| {
            let answer = match offer.offer(v) {
                Offer::Yes => lang.pick("yes", "ja"),
                Offer::No => lang.pick("no", "nein"),
                Offer::Unknown => lang.pick("unknown", "unbekannt"),
            };
            format!("{} {answer}", v.as_str())
        })
        .join(", ");
    let sources = offer.basis.join("; ");
    tr!(
        lang,
        "the agent's TLS offer here, from Windows {windows}, its runtime {runtime} and the Schannel and .NET keys: {offers} (sources: {sources})",
        "das TLS-Angebot des Agenten hier, aus Windows {windows}, seiner Laufzeit {runtime} und den Schannel- und .NET-Schlüsseln: {offers} (Quellen: {sources})"
    )
}
