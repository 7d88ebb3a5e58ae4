//! Reports: a serialisable type of its own (so the JSON schema stays still when engine
//! internals move) and pure renderers from it to bytes.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod nagios;
pub mod table;
#[cfg(test)]
mod tests;

mod schema;

pub use schema::{CheckResult, Report, Summary, TunnelPath, TunnelRoute, Verdict, Waited};

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table grouped by target, coloured on a terminal.
    Table,
    /// One JSON object (schema 1) on stdout.
    Json,
    /// JUnit XML: a testsuite per target, a testcase per check and address.
    Junit,
    /// Markdown, for pasting into a ticket.
    Markdown,
    /// One Nagios/Icinga plugin line with perfdata (plugin exit codes).
    Nagios,
    /// One self-contained HTML page, to hand to a customer.
    Html,
}

impl Format {
    /// The format a file name implies, from its extension.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Junit),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" => Some(Format::Table),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

/// Renders a report in a format; `color` adds ANSI styles (the caller's stream strips them
/// where colour is off).
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Table => table::render(report, color),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Nagios => nagios::render(report),
        Format::Html => html::render(report),
    }
}
