//! Markdown for pasting into a ticket: a summary line, one table, the hints as a list.

use std::fmt::Write as _;

use super::Report;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### automate-ports: role `{}`, {} pass, {} fail, {} warn, {} skip\n",
        report.role, s.pass, s.fail, s.warn, s.skip
    );
    for note in &report.notes {
        let _ = writeln!(out, "> **Note:** {}\n", cell(note));
    }
    out.push_str("| Result | Check | Port | Target | Address | State | Detail |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for c in &report.checks {
        let _ = writeln!(
            out,
            "| {} | `{}` | {}/{} | {} | {} | {} | {} |",
            c.verdict.as_str().to_uppercase(),
            c.id,
            c.ports,
            c.protocol,
            cell(c.host.as_deref().unwrap_or("-")),
            c.address.map_or_else(|| "-".to_string(), |a| a.to_string()),
            c.state.map_or("-", |st| st.as_str()).replace('|', "\\|"),
            cell(&c.reason)
        );
    }
    let hints: Vec<_> = report.checks.iter().filter(|c| c.hint.is_some()).collect();
    if !hints.is_empty() {
        out.push_str("\n**What to change**\n\n");
        for c in hints {
            let at = c.address.map(|a| format!(" ({a})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}`{at}: {}",
                c.id,
                cell(c.hint.as_deref().unwrap_or_default())
            );
        }
    }
    out
}
