//! The agent installer download and a ScreenConnect relay port, in words: what arrived (an
//! MSI, or what stood in its place) and what greeted where a relay keeps silent.

use crate::lang::Lang;
use crate::model::{AppResult, Finding};
use crate::tr;

/// The installer download: an MSI, or what came in its place.
/// `say` words a finding nested in this one (it lives in `app.rs`, which calls this).
pub(super) fn installer(
    finding: &Finding,
    found: &AppResult,
    lang: Lang,
    say: fn(&Finding, &AppResult, Lang) -> String,
) -> String {
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

/// A relay port: silent, as a relay is, or a greeting that names what answers instead.
pub(super) fn relay(finding: &Finding, lang: Lang) -> String {
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
