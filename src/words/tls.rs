//! TLS versions in words: Schannel's handshake failing where rustls passed, a server that
//! accepts only old versions, the SECURITY_STATUS codes, and the note on the agent's offer.

use crate::lang::Lang;
use crate::model::{AppResult, Finding};
use crate::tr;

/// Findings about TLS versions: Schannel's own handshake, a server that accepts only old ones.
/// `say` words a finding nested in this one (it lives in `app.rs`, which calls this).
pub(super) fn tls_versions(
    finding: &Finding,
    found: &AppResult,
    lang: Lang,
    say: fn(&Finding, &AppResult, Lang) -> String,
) -> String {
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
pub(super) fn sec_status_cause(code: u32, lang: Lang) -> &'static str {
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
