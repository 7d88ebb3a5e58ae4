//! Markdown for pasting into a ticket: a summary line, one table, the hints as a list.

use std::fmt::Write as _;

use super::Report;
use crate::tr;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let lang = report.lang;
    let (role, counts) = (&report.role, report.summary.counts(lang));
    let mut out = tr!(
        lang,
        "### automate-ports: role `{role}`, {counts}\n\n",
        "### automate-ports: Rolle `{role}`, {counts}\n\n"
    );
    for note in &report.notes {
        let label = lang.pick("Note", "Hinweis");
        let _ = writeln!(out, "> **{label}:** {}\n", cell(note));
    }
    out.push_str(lang.pick(
        "| Result | Check | Port | Target | Address | State | Detail |\n",
        "| Ergebnis | Prüfung | Port | Ziel | Adresse | Zustand | Detail |\n",
    ));
    out.push_str("|---|---|---|---|---|---|---|\n");
    for c in &report.checks {
        let _ = writeln!(
            out,
            "| {} | `{}` | {}/{} | {} | {} | {} | {} |",
            c.verdict.word(lang),
            c.id,
            c.ports,
            c.protocol,
            cell(c.host.as_deref().unwrap_or("-")),
            c.address.map_or_else(|| "-".to_string(), |a| a.to_string()),
            c.state.map_or("-", |st| st.as_str()).replace('|', "\\|"),
            cell(&c.reason)
        );
    }
    let hints: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.hint.is_some() || c.trace.is_some())
        .collect();
    if !hints.is_empty() {
        out.push_str(lang.pick("\n**What to change**\n\n", "\n**Was zu ändern ist**\n\n"));
        for c in hints {
            let at = c.address.map(|a| format!(" ({a})")).unwrap_or_default();
            let hint = c.hint.as_deref().map(cell).unwrap_or_default();
            let _ = writeln!(out, "- `{}`{at}: {hint}", c.id);
            if let Some(trace) = &c.trace {
                let label = lang.pick("Path", "Weg");
                let _ = writeln!(out, "  - {label}: {}", cell(&trace.reason));
            }
        }
    }
    out
}
