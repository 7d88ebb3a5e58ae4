//! ConnectWise Automate's agent endpoint, `GET /LabTech/agent.aspx`, asked over the TLS
//! session the certificate was judged on.

use super::{automate_version, parse_http_head, AppResult, AppVerdict};
use crate::lang::Lang;
use crate::model::AppProbe;
use crate::tr;

/// Automate's answer at `/LabTech/agent.aspx`, judged together with the TLS result before it.
pub(super) fn automate_answer(
    response: std::io::Result<Vec<u8>>,
    tls_result: &AppResult,
    lang: Lang,
) -> AppResult {
    // On a pass this is the certificate in brief, with "insecure" when trust was not checked.
    let tls_note = &tls_result.summary;
    let bytes = match response {
        Ok(bytes) => bytes,
        Err(e) => {
            return AppResult::new(
                AppProbe::Automate,
                AppVerdict::Fail,
                tr!(
                    lang,
                    "the port is open but Automate did not answer ({e}): proxy, captive portal, or another web server?",
                    "der Port ist offen, aber Automate hat nicht geantwortet ({e}): ein Proxy, ein Captive Portal oder ein anderer Webserver?"
                ),
            )
        }
    };
    let Some(version) = automate_version(&bytes) else {
        return not_automate(&bytes, lang);
    };
    let summary = if tls_result.verdict == AppVerdict::Pass {
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
    };
    let mut r = AppResult::new(AppProbe::Automate, tls_result.verdict, summary);
    r.automate_version = Some(version);
    r
}

/// Something answered HTTP on the Automate port, but not Automate.
fn not_automate(bytes: &[u8], lang: Lang) -> AppResult {
    let head = parse_http_head(bytes);
    let what = match (head.status, &head.server) {
        (Some(s), Some(server)) => format!(" (HTTP {s}, Server: {server})"),
        (Some(s), None) => format!(" (HTTP {s})"),
        _ => String::new(),
    };
    let mut r = AppResult::new(
        AppProbe::Automate,
        AppVerdict::Fail,
        tr!(
            lang,
            "the port is open but Automate did not answer{what}: proxy, captive portal, or another web server?",
            "der Port ist offen, aber Automate hat nicht geantwortet{what}: ein Proxy, ein Captive Portal oder ein anderer Webserver?"
        ),
    );
    r.http_status = head.status;
    r.server = head.server;
    r
}
