//! JUnit XML for CI: one testsuite per target, one testcase per check and address. A warning
//! (an optional check, UDP silence) is a skipped test with its reason, so it shows without
//! failing the build; a local problem (name did not resolve) is an error, not a failure.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::model::State;
use crate::report::Verdict;

pub fn render(report: &Report) -> String {
    let mut junit = quick_junit::Report::new(format!("automate-ports {}", report.role));
    junit.set_time(Duration::from_secs_f64(report.duration_ms / 1000.0));
    let mut targets: Vec<&str> = Vec::new();
    for c in &report.checks {
        crate::model::push_new(&mut targets, c.target.as_str());
    }
    for target in targets {
        let mut suite = TestSuite::new(target);
        for c in report.checks.iter().filter(|c| c.target == target) {
            let at = c.address.map_or_else(
                || c.host.clone().unwrap_or_else(|| "-".into()),
                |a| a.to_string(),
            );
            let name = format!("{} {}/{} {at}", c.id, c.ports, c.protocol);
            let message = match &c.hint {
                Some(hint) => format!("{}: {hint}", c.reason),
                None => c.reason.clone(),
            };
            let status = match (c.verdict, c.state) {
                (Verdict::Pass, _) => TestCaseStatus::success(),
                (Verdict::Skip | Verdict::Warn, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(message);
                    s
                }
                (Verdict::Fail, Some(State::Error | State::Unfinished)) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(message);
                    s
                }
                (Verdict::Fail, _) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(message);
                    s
                }
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(format!("automate-ports.{}.{target}", report.role));
            if let Some(ms) = c.latency_ms {
                case.set_time(Duration::from_secs_f64(ms / 1000.0));
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    let mut text = junit.to_string().expect("a report serialises to XML");
    text.push('\n');
    text
}
