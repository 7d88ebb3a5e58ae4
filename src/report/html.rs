//! One self-contained HTML page for one machine's run (inline CSS, no scripts, readable
//! offline and printable), fit to hand to a customer. `automate-ports fleet --format html`
//! draws many machines with the same style.

use std::fmt::Write as _;

use super::{Report, Verdict};

/// The page style, shared with the fleet page.
pub const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px}
.summary{font-size:15px;margin:0 0 12px}table{border-collapse:collapse;margin:4px 0 12px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.pass{background:#dff2e1;color:#155724}td.fail{background:#f8d7da;color:#721c24;font-weight:600}
td.warn{background:#fff3cd;color:#856404}td.skip{background:#f4f4f4;color:#888}
th.rot{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:500}
.num{text-align:right}.small{color:#666;font-size:12px}.hint{color:#444;font-size:13px}
@media print{body{margin:8mm}td,th{padding:2px 4px}}";

/// Text into HTML: the five characters that mean something there.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub fn render(report: &Report) -> String {
    let lang = report.lang;
    let title = format!("automate-ports: {} ({})", report.hostname, report.role);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        lang.pick("en", "de"),
        esc(&title),
        esc(&title)
    );
    let verdict = if report.failed() {
        lang.pick("FAILED", "FEHLGESCHLAGEN")
    } else {
        lang.pick("PASSED", "BESTANDEN")
    };
    let _ = writeln!(
        out,
        "<p class=\"summary\"><b>{verdict}</b>: {} &middot; {} &middot; {}</p>",
        esc(&report.summary.counts(lang)),
        esc(&report.started_at),
        esc(&format!("automate-ports {}", report.version))
    );
    for note in &report.notes {
        let _ = writeln!(out, "<p class=\"small\">{}</p>", esc(note));
    }
    let _ = writeln!(
        out,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        lang.pick("result", "Ergebnis"),
        lang.pick("check", "Prüfung"),
        lang.pick("port", "Port"),
        lang.pick("host", "Host"),
        lang.pick("state", "Zustand"),
        lang.pick("detail", "Details")
    );
    // Worst first: what needs doing is at the top of the page.
    let mut checks: Vec<_> = report.checks.iter().collect();
    checks.sort_by_key(|c| match c.verdict {
        Verdict::Fail => 0,
        Verdict::Warn => 1,
        Verdict::Pass => 2,
        Verdict::Skip => 3,
    });
    for c in checks {
        let class = c.verdict.as_str();
        let host = match (&c.host, c.address) {
            (Some(h), Some(a)) if *h != a.to_string() => format!("{h} ({a})"),
            (Some(h), _) => h.clone(),
            (None, _) => "-".into(),
        };
        let hint = c
            .hint
            .as_deref()
            .map(|h| format!("<br><span class=\"hint\">&rarr; {}</span>", esc(h)))
            .unwrap_or_default();
        let path = c
            .trace
            .as_ref()
            .map(|t| {
                let label = lang.pick("Path", "Weg");
                format!(
                    "<br><span class=\"hint\">{label}: {}</span>",
                    esc(&t.reason)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td class=\"{class}\">{}</td><td><code>{}</code><br><span class=\"small\">{}</span></td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}{hint}{path}</td></tr>",
            c.verdict.word(lang),
            esc(&c.id),
            esc(&c.description),
            esc(&c.ports),
            c.protocol,
            esc(&host),
            c.state.map_or("-", |s| s.as_str()),
            esc(&c.reason)
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}
