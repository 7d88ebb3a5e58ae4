//! Markdown for pasting into a ticket: a summary line, one table, the hints as a list.

use std::fmt::Write as _;

use super::Report;
use crate::tr;

/// Text in a Markdown table cell or list item: every character Markdown (or the HTML it lets
/// through) could act on mid-line is escaped and line breaks become spaces, so words from the
/// far side (a `Server` header, a certificate's names) stay words: no link, image, tag, code
/// span or broken table. Our own sentences go through it too: they use no Markdown.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
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
