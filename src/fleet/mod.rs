//! `automate-ports fleet`: many machines' JSON reports as one picture of a customer. Reads
//! reports of schema 1 and later (a bad or foreign file is listed and skipped, never fatal),
//! and builds the matrix the renderers (`render.rs`) draw: machines × checks, the worst
//! verdict in each cell, per check how many machines fail and the common cause, and machines
//! grouped by the first path that fails for them.

mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::model::State;
use crate::report::Verdict;

pub use render::{render, skipped_lines, FleetFormat};

/// The largest report file read: a full sweep's report runs to a few MiB.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// One cell: the worst verdict of a check on a machine (over its addresses and hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub verdict: Verdict,
    pub state: Option<State>,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub hostname: String,
    pub agent_id: Option<u64>,
    pub role: String,
    pub file: PathBuf,
    pub cells: BTreeMap<String, Cell>,
    pub fails: usize,
    pub warns: usize,
}

impl Machine {
    /// The first check (in column order) that fails, else warns: how machines are grouped.
    pub fn first_problem<'a>(&self, columns: &'a [String]) -> Option<&'a str> {
        [Verdict::Fail, Verdict::Warn].iter().find_map(|v| {
            columns
                .iter()
                .find(|c| self.cells.get(*c).is_some_and(|cell| cell.verdict == *v))
                .map(String::as_str)
        })
    }
}

/// Per check across the fleet.
#[derive(Debug, Clone)]
pub struct Column {
    pub id: String,
    pub fail: usize,
    pub warn: usize,
    pub pass: usize,
    /// The most common state among machines where it did not pass, and how many.
    pub cause: Option<(State, usize)>,
}

#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Worst first.
    pub machines: Vec<Machine>,
    pub columns: Vec<Column>,
    /// Files that are not automate-ports reports, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Fleet {
    /// 0 when every machine passed and every file was a report; 1 otherwise.
    pub fn all_passed(&self) -> bool {
        self.skipped.is_empty() && self.machines.iter().all(|m| m.fails == 0)
    }
}

/// Reads every report under `paths` (files, or directories searched for `*.json`).
pub fn read(paths: &[PathBuf]) -> Fleet {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        collect(path, &mut files, &mut skipped, 0);
    }
    // Each file once, however many of the paths given lead to it.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    let mut machines = Vec::new();
    for file in files {
        match machine(&file) {
            Ok(m) => machines.push(m),
            // Schema errors quote the offending value: the file's own text.
            Err(why) => skipped.push((file, crate::model::untrusted(&why))),
        }
    }
    build(machines, skipped)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>, skipped: &mut Vec<(PathBuf, String)>, depth: u8) {
    if path.is_dir() {
        // Collections nest a little (Ansible's fetch: reports/HOST/tmp/ap.json), not deeply.
        if depth > 4 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(path) else {
            skipped.push((path.to_path_buf(), "cannot read the folder".into()));
            return;
        };
        let mut entries: Vec<(PathBuf, std::fs::FileType)> = entries
            .flatten()
            .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (entry, kind) in entries {
            let json = entry
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            // A link inside a folder may lead out of it, or around it again: named, not
            // followed (a path given on the command line is followed: the user chose it).
            if kind.is_symlink() {
                if json || entry.is_dir() {
                    skipped.push((
                        entry,
                        "a link: not followed (name its target instead)".into(),
                    ));
                }
            } else if kind.is_dir() || json {
                collect(&entry, files, skipped, depth + 1);
            }
        }
    } else if path.exists() {
        files.push(path.to_path_buf());
    } else {
        skipped.push((path.to_path_buf(), "no such file".into()));
    }
}

/// One report file as a machine, or why it is not one.
fn machine(file: &Path) -> Result<Machine, String> {
    let (text, _) = crate::sys::read_regular(file, MAX_FILE).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => format!("larger than {} MiB", MAX_FILE >> 20),
        _ => e.to_string(),
    })?;
    machine_of(&text).map(|mut m| {
        m.file = file.to_path_buf();
        m
    })
}

/// One report's bytes as a machine, or why they are not one.
fn machine_of(bytes: &[u8]) -> Result<Machine, String> {
    let report: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    parse(&report)
}

/// The fleet of one file's bytes, as `read` would make it (for the fuzz target).
#[doc(hidden)]
pub fn of_bytes(name: &str, bytes: &[u8]) -> Fleet {
    let file = PathBuf::from(name);
    match machine_of(bytes) {
        Ok(mut m) => {
            m.file = file;
            build(vec![m], Vec::new())
        }
        Err(why) => build(Vec::new(), vec![(file, crate::model::untrusted(&why))]),
    }
}

/// Schema 1, as published: a report of that schema must keep to it.
fn schema_1() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../../schema/report-1.json"))
            .expect("the published schema is JSON");
        jsonschema::validator_for(&schema).expect("the published schema is a JSON Schema")
    })
}

/// Checks in one report at most: the built-in roles have a few dozen, and a fleet table of
/// thousands of columns helps no one.
const MAX_CHECKS: usize = 1024;

/// The longest check id accepted (the built-in ones are under 30 characters).
const MAX_ID_LEN: usize = 64;

/// The parts of a report the fleet view reads, typed as `check` writes them (the report's
/// own `Verdict` and `State`); every other field is left alone.
#[derive(Deserialize)]
struct ReportView {
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    agent: Option<AgentView>,
    checks: Vec<CheckView>,
}

#[derive(Deserialize)]
struct AgentView {
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct CheckView {
    id: String,
    verdict: Verdict,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    reason: String,
}

/// The parts of a report the fleet view needs. A schema-1 report is checked against
/// schema/report-1.json; a later one (which may add fields) for the fields read here.
fn parse(report: &Value) -> Result<Machine, String> {
    if report.get("tool").and_then(Value::as_str) != Some("automate-ports") {
        return Err("not an automate-ports report (no \"tool\": \"automate-ports\")".into());
    }
    match report.get("schema").and_then(Value::as_u64) {
        Some(1) => {
            if let Some(e) = schema_1().iter_errors(report).next() {
                let at = e.instance_path().to_string();
                return Err(format!("breaks schema/report-1.json at '{at}': {e}"));
            }
        }
        Some(n) if n > 1 => {}
        _ => return Err("no schema number".into()),
    }
    // Counted before the checks are read into memory as values of their own.
    let count = report
        .get("checks")
        .and_then(Value::as_array)
        .ok_or("no checks")?
        .len();
    if count > MAX_CHECKS {
        return Err(format!(
            "{count} checks, more than the {MAX_CHECKS} a report of this tool can hold"
        ));
    }
    let view = ReportView::deserialize(report).map_err(|e| format!("a field it reads: {e}"))?;
    let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
    for check in view.checks {
        let id = check.id;
        // Ids are rendered inside code spans and as CSV headers: only what a profile allows.
        if id.is_empty() || id.len() > MAX_ID_LEN || !crate::profiles::is_name(&id) {
            return Err(format!(
                "check id '{}' is not a profile id (lower-case letters, digits, '-', '_')",
                crate::model::untrusted(&id)
            ));
        }
        let cell = Cell {
            verdict: check.verdict,
            state: check.state,
            reason: crate::model::defang(&check.reason),
        };
        let worse = cells
            .get(&id)
            .is_none_or(|old| cell.verdict.severity() > old.verdict.severity());
        if worse {
            cells.insert(id, cell);
        }
    }
    let count = |v: Verdict| cells.values().filter(|c| c.verdict == v).count();
    Ok(Machine {
        hostname: crate::model::untrusted(view.hostname.as_deref().unwrap_or("?")),
        agent_id: view.agent.and_then(|a| a.id),
        role: crate::model::untrusted(&view.role.unwrap_or_default()),
        file: PathBuf::new(),
        fails: count(Verdict::Fail),
        warns: count(Verdict::Warn),
        cells,
    })
}

fn build(mut machines: Vec<Machine>, skipped: Vec<(PathBuf, String)>) -> Fleet {
    machines.sort_by(|a, b| {
        (b.fails, b.warns)
            .cmp(&(a.fails, a.warns))
            .then_with(|| a.hostname.cmp(&b.hostname))
    });
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in &machines {
        for id in m.cells.keys() {
            if seen.insert(id.as_str()) {
                ids.push(id.clone());
            }
        }
    }
    let mut columns: Vec<Column> = ids
        .into_iter()
        .map(|id| {
            let cells: Vec<&Cell> = machines.iter().filter_map(|m| m.cells.get(&id)).collect();
            let mut states: BTreeMap<State, usize> = BTreeMap::new();
            for c in &cells {
                if let (Verdict::Fail | Verdict::Warn, Some(state)) = (c.verdict, c.state) {
                    *states.entry(state).or_default() += 1;
                }
            }
            let cause = states.into_iter().max_by_key(|(_, n)| *n);
            Column {
                fail: cells.iter().filter(|c| c.verdict == Verdict::Fail).count(),
                warn: cells.iter().filter(|c| c.verdict == Verdict::Warn).count(),
                pass: cells.iter().filter(|c| c.verdict == Verdict::Pass).count(),
                id,
                cause,
            }
        })
        .collect();
    // Worst checks first.
    columns.sort_by_key(|c| std::cmp::Reverse((c.fail, c.warn)));
    Fleet {
        machines,
        columns,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A report of a later schema: only the fields the fleet reads are checked.
    fn report(host: &str, checks: &[(&str, &str, &str)]) -> Value {
        let checks: Vec<Value> = checks
            .iter()
            .map(|(id, verdict, state)| json!({"id": id, "verdict": verdict, "state": state, "reason": "r"}))
            .collect();
        json!({"schema": 2, "tool": "automate-ports", "hostname": host, "role": "agent", "checks": checks})
    }

    #[test]
    fn the_matrix_counts_causes_and_sorts_worst_first() {
        let machines = vec![
            parse(&report(
                "a",
                &[
                    ("agent-https", "pass", "open"),
                    ("agent-heartbeat", "warn", "open|filtered"),
                ],
            ))
            .unwrap(),
            parse(&report(
                "b",
                &[
                    ("agent-https", "fail", "filtered"),
                    ("agent-heartbeat", "warn", "open|filtered"),
                ],
            ))
            .unwrap(),
            // Two rows of one check (IPv4 and IPv6): the worse one counts.
            parse(&report(
                "c",
                &[
                    ("agent-https", "pass", "open"),
                    ("agent-https", "fail", "closed"),
                ],
            ))
            .unwrap(),
        ];
        let fleet = build(machines, vec![(PathBuf::from("x.json"), "not JSON".into())]);
        let hosts: Vec<&str> = fleet.machines.iter().map(|m| m.hostname.as_str()).collect();
        assert_eq!(hosts, ["b", "c", "a"]);
        assert_eq!(fleet.columns[0].id, "agent-https");
        assert_eq!((fleet.columns[0].fail, fleet.columns[1].warn), (2, 2));
        assert_eq!(fleet.columns[1].cause, Some((State::OpenFiltered, 2)));
        let columns: Vec<String> = fleet.columns.iter().map(|c| c.id.clone()).collect();
        assert_eq!(
            fleet.machines[2].first_problem(&columns),
            Some("agent-heartbeat")
        );
        assert!(!fleet.all_passed());
    }

    #[test]
    fn foreign_files_are_named_not_fatal() {
        assert!(parse(&json!({"tool": "nmap"}))
            .unwrap_err()
            .contains("not an automate-ports report"));
        assert!(parse(&json!({"tool": "automate-ports"}))
            .unwrap_err()
            .contains("schema"));
        let bad = json!({"tool": "automate-ports", "schema": 2, "checks": [{"id": "x", "verdict": "maybe"}]});
        assert!(parse(&bad).unwrap_err().contains("unknown variant `maybe`"));
        // Any schema: a field it reads must have the report's type.
        let wrong = json!({"tool": "automate-ports", "schema": 2, "checks": [{"id": "x", "verdict": "pass", "state": 7}]});
        assert!(parse(&wrong).unwrap_err().starts_with("a field it reads:"));
        let later = json!({"tool": "automate-ports", "schema": 2, "hostname": "h", "checks": [], "agent": {"id": 9}});
        assert_eq!(
            parse(&later).unwrap().agent_id,
            Some(9),
            "a later schema is read"
        );
    }
}
