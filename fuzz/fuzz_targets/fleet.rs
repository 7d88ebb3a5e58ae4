//! `fleet`'s reader on any bytes a customer PC could leave in a report file, then every
//! format: nothing from the bytes reaches the output as a control character or a bidi
//! override, no CSV line starts a formula, and Markdown keeps every '<' escaped.
#![no_main]

use automate_ports::fleet::{self, FleetFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fleet = fleet::of_bytes("report.json", data);
    for format in [
        FleetFormat::Table,
        FleetFormat::Markdown,
        FleetFormat::Csv,
        FleetFormat::Html,
    ] {
        let out = fleet::render(&fleet, format);
        for c in out.chars() {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            assert!(
                !bidi && (!c.is_control() || c == '\n' || (c == '\r' && format == FleetFormat::Csv)),
                "{format:?}: {c:?} in {out:?}"
            );
        }
        match format {
            FleetFormat::Csv => {
                for line in out.lines() {
                    let first = line.trim_start_matches('"');
                    assert!(!first.starts_with(['=', '+', '-', '@']), "{line:?}");
                }
            }
            FleetFormat::Markdown => {
                assert_eq!(out.matches('<').count(), out.matches("\\<").count(), "{out:?}");
            }
            FleetFormat::Table | FleetFormat::Html => {}
        }
    }
});
