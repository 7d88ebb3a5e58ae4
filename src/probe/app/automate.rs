//! ConnectWise Automate's agent endpoint, `GET /LabTech/agent.aspx`, asked over the TLS
//! session the certificate was judged on.

use super::{automate_version, parse_http_head, AppResult, AppVerdict};
use crate::model::{AppProbe, Finding};

/// Automate's answer at `/LabTech/agent.aspx`, judged together with the TLS result before it.
pub(super) fn automate_answer(
    response: std::io::Result<Vec<u8>>,
    tls_result: &AppResult,
) -> AppResult {
    let bytes = match response {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = e.to_string();
            return AppResult::new(
                AppProbe::Automate,
                AppVerdict::Fail,
                Finding::AutomateFailed { error },
            );
        }
    };
    let Some(version) = automate_version(&bytes) else {
        let head = parse_http_head(&bytes);
        let mut r = AppResult::new(AppProbe::Automate, AppVerdict::Fail, Finding::NotAutomate);
        r.http_status = head.status;
        r.server = head.server;
        return r;
    };
    let tls = Box::new(tls_result.finding.clone());
    let mut r = AppResult::new(
        AppProbe::Automate,
        tls_result.verdict,
        Finding::Automate { tls },
    );
    r.automate_version = Some(version);
    r
}
