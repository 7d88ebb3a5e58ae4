//! An open port whose application did not answer as the check needs: the service, its
//! certificate, the TLS the agent negotiates (Schannel), or the installer download; never the
//! firewall, which let the connection through.

use super::Subject;
use crate::lang::Lang;
use crate::model::Check;
use crate::tr;

/// An open port whose application did not answer as it should: the summary, then what to
/// look at on the far side (the service, or its certificate), not the firewall.
pub(super) fn application(
    check: &Check,
    found: &crate::model::AppResult,
    subject: &Subject<'_>,
    lang: Lang,
) -> String {
    use crate::model::Finding;
    let Subject {
        proto,
        ports,
        place,
        ..
    } = subject;
    let summary = crate::words::app::summary(found, lang);
    let service = &check.description;
    if let Finding::SchannelFailed { .. } = found.finding {
        return schannel(subject, &summary, lang);
    }
    if let Finding::NoInstaller { .. } | Finding::InstallerFailed { .. } = found.finding {
        return installer(&found.finding, subject, &summary, lang);
    }
    if let Finding::OldTlsOnly { .. } = found.finding {
        return tr!(
            lang,
            "On {place}, {proto} {ports}: {summary}. The port is open; the server's TLS is what needs changing: enable TLS 1.2 (and 1.3 where the server has it) for its web server, e.g. the Schannel server keys under HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server (Enabled = 1, DisabledByDefault = 0) on a Windows server, then restart it.",
            "Auf {place}, {proto} {ports}: {summary}. Der Port ist offen; das TLS des Servers muss geändert werden: TLS 1.2 (und 1.3, wo der Server es kann) für seinen Webserver einschalten, z. B. die Schannel-Serverschlüssel unter HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server (Enabled = 1, DisabledByDefault = 0) auf einem Windows-Server, dann neu starten."
        );
    }
    let certificate = matches!(
        found.finding,
        Finding::Certificate(_) | Finding::NoCertificate | Finding::CertificateUnreadable
    ) || matches!(&found.finding, Finding::Automate { tls } if matches!(**tls, Finding::Certificate(_)));
    if certificate {
        tr!(
            lang,
            "On {place}, {proto} {ports}: {summary}. The port is open, so the firewall is fine: the certificate is what needs fixing (or, for TLS inspection, exempt {place} from it).",
            "Auf {place}, {proto} {ports}: {summary}. Der Port ist offen, die Firewall ist also in Ordnung: das Zertifikat muss korrigiert werden (bei TLS-Inspektion {place} davon ausnehmen)."
        )
    } else {
        tr!(
            lang,
            "On {place}, {proto} {ports}: {summary}. The port is open, so the firewall is not what stops it: make sure the service for \"{service}\" runs on {place} and listens on {proto} {ports} itself, with no other program or proxy answering in its place.",
            "Auf {place}, {proto} {ports}: {summary}. Der Port ist offen, an der Firewall liegt es also nicht: prüfen, dass der Dienst für \"{service}\" auf {place} läuft und selbst auf {proto} {ports} lauscht, ohne dass ein anderes Programm oder ein Proxy an seiner Stelle antwortet."
        )
    }
}

/// The installer download got something else: what stands in the way.
fn installer(
    finding: &crate::model::Finding,
    subject: &Subject<'_>,
    summary: &str,
    lang: Lang,
) -> String {
    use crate::model::{Finding, Instead};
    let Subject {
        place,
        proto,
        ports,
        ..
    } = subject;
    let instead = match finding {
        Finding::NoInstaller { instead, .. } => Some(instead),
        _ => None,
    };
    match instead {
        Some(Instead::BlockPage | Instead::LoginPage | Instead::Redirected { .. } | Instead::Refused) => tr!(
            lang,
            "From this PC to {place}, {proto} {ports}: {summary}. A web filter or proxy on the way replaces the download: allow {place}'s /LabTech/ URLs (Deployment.aspx, Service/) for this site in it (a category such as software downloads often blocks .msi files), or install from a copy of the MSI.",
            "Von diesem PC zu {place}, {proto} {ports}: {summary}. Ein Webfilter oder Proxy auf dem Weg ersetzt den Download: die /LabTech/-URLs von {place} (Deployment.aspx, Service/) für diesen Standort darin freigeben (eine Kategorie wie Software-Downloads sperrt oft .msi-Dateien), oder aus einer Kopie des MSI installieren."
        ),
        Some(Instead::NotFound) => tr!(
            lang,
            "From this PC to {place}, {proto} {ports}: {summary}. The server answers but has no installer at /LabTech/Deployment.aspx: check its deployment settings (the installer token, the Automate version), or download the MSI in the Automate console and install it from a file.",
            "Von diesem PC zu {place}, {proto} {ports}: {summary}. Der Server antwortet, hat aber unter /LabTech/Deployment.aspx keinen Installer: seine Bereitstellungseinstellungen prüfen (Installer-Token, Automate-Version), oder das MSI in der Automate-Konsole laden und aus einer Datei installieren."
        ),
        _ => tr!(
            lang,
            "From this PC to {place}, {proto} {ports}: {summary}. Something other than the Automate server answers the download (a proxy, a portal, another web server): check the path from here to {place}.",
            "Von diesem PC zu {place}, {proto} {ports}: {summary}. Etwas anderes als der Automate-Server beantwortet den Download (ein Proxy, ein Portal, ein anderer Webserver): den Weg von hier zu {place} prüfen."
        ),
    }
}

/// Schannel cannot connect where rustls did: the registry lines that let Windows and the
/// agent's .NET offer TLS 1.2 (Microsoft: TLS registry settings; TLS best practices with the
/// .NET Framework), then a restart of the agent's services.
fn schannel(subject: &Subject<'_>, summary: &str, lang: Lang) -> String {
    let Subject {
        place,
        proto,
        ports,
        ..
    } = subject;
    let schannel = r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";
    let mut lines = vec![
        format!(r#"reg add "{schannel}" /v Enabled /t REG_DWORD /d 1 /f"#),
        format!(r#"reg add "{schannel}" /v DisabledByDefault /t REG_DWORD /d 0 /f"#),
    ];
    for view in [r"SOFTWARE", r"SOFTWARE\WOW6432Node"] {
        for version in ["v2.0.50727", "v4.0.30319"] {
            let key = format!(r"HKLM\{view}\Microsoft\.NETFramework\{version}");
            for name in ["SystemDefaultTlsVersions", "SchUseStrongCrypto"] {
                lines.push(format!(r#"reg add "{key}" /v {name} /t REG_DWORD /d 1 /f"#));
            }
        }
    }
    let lines = lines.join("; ");
    tr!(
        lang,
        "From this PC to {place}, {proto} {ports}: {summary}. The port and the server are fine for modern clients; this PC's TLS is what needs changing: as administrator, {lines}; on Windows 7 / Server 2008 R2 also install the .NET TLS update (KB3154518 or later); then restart the agent's services (LTService, LTSvcMon) or the PC.",
        "Von diesem PC zu {place}, {proto} {ports}: {summary}. Port und Server sind für aktuelle Clients in Ordnung; das TLS dieses PCs muss geändert werden: als Administrator {lines}; unter Windows 7 / Server 2008 R2 auch das .NET-TLS-Update (KB3154518 oder neuer) installieren; dann die Dienste des Agenten (LTService, LTSvcMon) oder den PC neu starten."
    )
}
