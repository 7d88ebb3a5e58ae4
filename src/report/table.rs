//! The human report: one table per target, a hint under each check that did not pass,
//! and a summary line.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use super::{CheckResult, Report};
use crate::lang::Lang;
use crate::report::Verdict;
use crate::tr;

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const SKIP: Style = AnsiColor::BrightBlack.on_default();
const HEAD: Style = Style::new().bold();

fn style(v: Verdict) -> Style {
    match v {
        Verdict::Pass => PASS,
        Verdict::Fail => FAIL,
        Verdict::Warn => WARN,
        Verdict::Skip => SKIP,
    }
}

/// Styles text when colour is on.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn apply(self, s: Style, text: &str) -> String {
        if self.0 {
            format!("{}{text}{}", s.render(), s.render_reset())
        } else {
            text.to_string()
        }
    }
}

/// Renders the table. With `color`, verdicts and headings carry ANSI styles.
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint(color);
    let lang = report.lang;
    let mut out = String::new();
    for note in &report.notes {
        let label = lang.pick("NOTE:", "HINWEIS:");
        let _ = writeln!(out, "{} {note}\n", paint.apply(WARN, label));
    }
    let mut targets: Vec<&str> = Vec::new();
    for c in &report.checks {
        crate::model::push_new(&mut targets, c.target.as_str());
    }
    for target in targets {
        let rows: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|c| c.target == target)
            .collect();
        target_section(&mut out, target, &rows, lang, paint);
    }
    summary_lines(&mut out, report, paint);
    out
}

/// One target: its heading, a row per check and address, then the hints.
fn target_section(out: &mut String, target: &str, rows: &[&CheckResult], lang: Lang, paint: Paint) {
    let host = rows
        .iter()
        .find_map(|c| c.host.as_deref())
        .unwrap_or(lang.pick("(not given)", "(nicht angegeben)"));
    let _ = writeln!(out, "{}", paint.apply(HEAD, &format!("{target}: {host}")));
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(match lang {
            Lang::En => ["RESULT", "CHECK", "PORT", "ADDRESS", "STATE", "DETAIL"],
            Lang::De => [
                "ERGEBNIS", "PRÜFUNG", "PORT", "ADRESSE", "ZUSTAND", "DETAIL",
            ],
        });
    for c in rows {
        table.add_row([
            Cell::new(c.verdict.word(lang)),
            Cell::new(&c.id),
            Cell::new(format!("{}/{}", c.ports, c.protocol)),
            Cell::new(c.address.map_or_else(|| "-".to_string(), |a| a.to_string())),
            Cell::new(c.state.map_or("-", |s| s.as_str())),
            Cell::new(&c.reason),
        ]);
    }
    if let Some(column) = table.column_mut(0) {
        column.set_cell_alignment(CellAlignment::Left);
    }
    for line in table.to_string().lines() {
        let line = line.trim_end();
        let painted = [Verdict::Pass, Verdict::Fail, Verdict::Warn, Verdict::Skip]
            .into_iter()
            .find_map(|v| {
                let w = v.word(lang);
                line.strip_prefix(&format!(" {w} "))
                    .map(|rest| format!(" {} {rest}", paint.apply(style(v), w)))
            });
        let _ = writeln!(out, "{}", painted.unwrap_or_else(|| line.to_string()));
    }
    for c in rows
        .iter()
        .filter(|c| c.hint.is_some() || c.trace.is_some())
    {
        let at = c.address.map(|a| format!(" {a}")).unwrap_or_default();
        if let Some(hint) = &c.hint {
            let arrow = paint.apply(style(c.verdict), "→");
            let _ = writeln!(out, "  {arrow} {}{at}: {hint}", c.id);
        }
        // The path goes under the hint it explains, or stands alone (--trace on a pass).
        if let Some(trace) = &c.trace {
            let label = lang.pick("path", "Weg");
            let _ = match c.hint {
                Some(_) => writeln!(out, "    {label}: {}", trace.reason),
                None => writeln!(out, "  {label} {}{at}: {}", c.id, trace.reason),
            };
        }
    }
    out.push('\n');
}

/// The outcome line ("PASSED with warnings: role server, ..."), and how long `--wait` waited.
fn summary_lines(out: &mut String, report: &Report, paint: Paint) {
    let lang = report.lang;
    let s = &report.summary;
    let outcome = if report.failed() {
        paint.apply(FAIL, lang.pick("FAILED", "FEHLGESCHLAGEN"))
    } else if s.warn > 0 {
        paint.apply(
            WARN,
            lang.pick("PASSED with warnings", "BESTANDEN mit Warnungen"),
        )
    } else {
        paint.apply(PASS, lang.pick("PASSED", "BESTANDEN"))
    };
    let (role, counts) = (&report.role, s.counts(lang));
    let took = lang.duration(ms(report.duration_ms));
    let strict = if report.strict {
        lang.pick(
            " (--strict: warnings fail)",
            " (--strict: Warnungen gelten als Fehler)",
        )
    } else {
        ""
    };
    let line = tr!(
        lang,
        "{outcome}: role {role}, {counts} in {took}{strict}",
        "{outcome}: Rolle {role}, {counts} in {took}{strict}"
    );
    let _ = writeln!(out, "{line}");
    if let Some(w) = report.wait {
        let waited = lang.duration(ms(w.waited_ms));
        let limit = lang.duration(ms(w.limit_ms));
        let rounds = w.rounds;
        let line = tr!(
            lang,
            "Waited {waited} of {limit}, {rounds} rounds.",
            "{waited} von {limit} gewartet, {rounds} Durchläufe."
        );
        let _ = writeln!(out, "{line}");
    }
}

fn ms(millis: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(millis / 1000.0)
}
