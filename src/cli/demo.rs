//! `demo`: the offline staging on loopback, its report, and whether every result matched.

use std::process::ExitCode;

use super::args::DemoArgs;
use super::output::{runtime, write_report, write_stdout};
use crate::report::Format;
use crate::{demo, exit};

pub(super) fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let lang = args.lang.resolve();
    let demo::Demo {
        report,
        description: stage_text,
        mismatches,
        skipped,
    } = runtime()?.block_on_shutdown(demo::run(lang))?;
    let format = Format::from(args.format);
    if format == Format::Table {
        write_stdout(&format!("{stage_text}\n\n"))?;
    } else {
        eprintln!("{stage_text}");
    }
    // The demo's exit code says whether the staging held, not whether checks passed.
    write_report(&report, format)?;
    if mismatches.is_empty() {
        let line = if skipped {
            lang.pick(
                "demo: every result matches the staging (the FAIL and WARN lines above are staged on purpose, or ports the demo could not stage: see the notes)",
                "demo: jedes Ergebnis entspricht dem Aufbau (die FEHLER- und WARNUNG-Zeilen oben sind Absicht, oder Ports, die die Demo nicht aufbauen konnte: siehe die Notizen)",
            )
        } else {
            lang.pick(
                "demo: every result matches the staging (the FAIL and WARN lines above are staged on purpose)",
                "demo: jedes Ergebnis entspricht dem Aufbau (die FEHLER- und WARNUNG-Zeilen oben sind Absicht)",
            )
        };
        eprintln!("{line}");
        Ok(ExitCode::from(exit::OK))
    } else {
        for m in &mismatches {
            eprintln!("demo: {m}");
        }
        eprintln!("demo: something on this machine (a local firewall?) changes loopback traffic");
        Ok(ExitCode::from(exit::FAILED))
    }
}
