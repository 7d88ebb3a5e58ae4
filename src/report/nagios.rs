//! A Nagios/Icinga plugin line: status, summary, perfdata. The exit code follows the plugin
//! convention for this format only (see [`exit_code`]).

use std::fmt::Write as _;

use super::Report;
use crate::report::Verdict;

/// Plugin exit codes: 0 OK, 1 WARNING, 2 CRITICAL (3 UNKNOWN is for bad input).
pub fn exit_code(report: &Report) -> u8 {
    match (report.summary.fail, report.summary.warn) {
        (0, 0) => 0,
        (0, _) => 1,
        _ => 2,
    }
}

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let status = ["OK", "WARNING", "CRITICAL"][usize::from(exit_code(report))];
    let failing: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("{} {}/{}", c.id, c.ports, c.protocol))
        .collect();
    let warning: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Warn)
        .map(|c| format!("{} {}/{}", c.id, c.ports, c.protocol))
        .collect();
    let mut detail = String::new();
    if !failing.is_empty() {
        let _ = write!(detail, " - failed: {}", failing.join(", "));
    }
    if !warning.is_empty() {
        let _ = write!(detail, " - warnings: {}", warning.join(", "));
    }
    format!(
        "AUTOMATE-PORTS {status} - role {}: {} pass, {} fail, {} warn, {} skip{detail} | pass={} fail={} warn={} skip={} time={:.3}s\n",
        report.role,
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        report.duration_ms / 1000.0
    )
}
