//! Formats, extra report files, --wait, completions and the man page.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::util::{self, bin, check_agent, check_block, check_box, check_json, profile};

/// A profile with a closed required port, a closed optional port and an open one.
fn mixed() -> (util::ProfileFile, TcpListener) {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let checks = format!(
        "{}{}{}",
        check_block(
            "up",
            "tcp",
            &open.local_addr().unwrap().port().to_string(),
            true
        ),
        check_block("down", "tcp", &util::free_tcp_port().to_string(), true),
        check_block("maybe", "tcp", &util::free_tcp_port().to_string(), false),
    );
    (profile(&checks), open)
}

fn well_formed_xml(text: &str) {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML: {e}\n{text}"),
        }
    }
}

#[test]
fn junit_markdown_and_json_files_in_one_run() {
    let (p, _open) = mixed();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("report.xml");
    let json = dir.path().join("r.json");
    let md = dir.path().join("ticket");
    let out = check_box(&p, "127.0.0.1")
        .arg("--output")
        .arg(&xml)
        .arg("--output")
        .arg(&json)
        .arg("--output")
        .arg(format!("markdown:{}", md.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("RESULT"),
        "the table still goes to stdout"
    );
    let xml = std::fs::read_to_string(xml).unwrap();
    well_formed_xml(&xml);
    assert!(
        xml.contains(r#"tests="3" skipped="1" failures="1" errors="0""#),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["summary"]["fail"], 1);
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("| FAIL | `down` |") && md.contains("**What to change**"),
        "{md}"
    );
}

#[test]
fn junit_marks_local_errors_as_errors() {
    let out = check_agent("automate.invalid")
        .args(["--format", "junit"])
        .output()
        .unwrap();
    let xml = String::from_utf8(out.stdout).unwrap();
    well_formed_xml(&xml);
    assert!(xml.contains("<error"), "{xml}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn nagios_line_and_plugin_exit_codes() {
    let (p, open) = mixed();
    let port = open.local_addr().unwrap().port().to_string();
    let run = |p: &util::ProfileFile| {
        check_box(p, "127.0.0.1")
            .args(["--format", "nagios"])
            .output()
            .unwrap()
    };
    let out = run(&p);
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("AUTOMATE-PORTS CRITICAL - role custom: 1 pass, 1 fail, 1 warn"),
        "{line}"
    );
    assert!(
        line.contains("| pass=1 fail=1 warn=1 skip=0 time="),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    assert_eq!(out.status.code(), Some(2));
    let warn_only = profile(&format!(
        "{}{}",
        check_block("up", "tcp", &port, true),
        check_block("maybe", "tcp", &util::free_tcp_port().to_string(), false)
    ));
    let out = run(&warn_only);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("AUTOMATE-PORTS WARNING"));
    assert_eq!(out.status.code(), Some(1));
    let ok = profile(&check_block("up", "tcp", &port, true));
    let out = run(&ok);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("AUTOMATE-PORTS OK"));
    assert_eq!(out.status.code(), Some(0));
    // Bad input is UNKNOWN, on stdout where the monitoring system reads it.
    let out = bin()
        .args(["check", "--role", "agent", "--format", "nagios"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("AUTOMATE-PORTS UNKNOWN - role 'agent' needs --server"));
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn output_with_an_unknown_format_is_a_usage_error() {
    let out = check_agent("a")
        .args(["--output", "report.pdf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot tell the format of 'report.pdf'"));
    let out = check_agent("127.0.0.1")
        .args(["--output", "json:/nonexistent/dir/r.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot write the report to /nonexistent/dir/r.json"));
}

#[test]
fn wait_passes_once_a_late_listener_comes_up() {
    let port = util::free_tcp_port();
    let p = profile(&check_block("late", "tcp", &port.to_string(), true));
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_secs(15));
        drop(listener);
    });
    let (code, report) = check_json(&p, "127.0.0.1", &["--wait", "20s"]);
    assert_eq!(code, 0, "{report}");
    assert!(report["wait"]["rounds"].as_u64().unwrap() >= 3, "{report}");
    assert!(
        report["wait"]["waited_ms"].as_f64().unwrap() >= 2500.0,
        "{report}"
    );
    late.join().unwrap();
}

#[test]
fn wait_gives_up_when_the_time_is_up() {
    let p = profile(&check_block(
        "never",
        "tcp",
        &util::free_tcp_port().to_string(),
        true,
    ));
    let started = Instant::now();
    check_box(&p, "127.0.0.1")
        .args(["--wait", "3s"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Waited 3 s of 3 s"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        bin()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("full-ranges"));
    }
    bin()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH automate-ports 1"));
}

/// A link planted where a page goes is replaced by the page, never written through: its
/// target keeps its bytes.
#[cfg(unix)]
#[test]
fn man_dir_replaces_a_planted_link_and_leaves_its_target_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let planted = dir.path().join("pages");
    std::fs::create_dir(&planted).unwrap();
    let link = planted.join("automate-ports-check.1");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for _ in 0..2 {
        bin()
            .args(["man", "--dir"])
            .arg(&planted)
            .assert()
            .success();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file(), "{meta:?}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        let page = std::fs::read_to_string(&link).unwrap();
        assert!(page.contains(".TH automate-ports-check 1"), "{page}");
    }
    // Nothing but the pages is left behind.
    let stray: Vec<_> = std::fs::read_dir(&planted)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| std::path::Path::new(n).extension().is_none_or(|e| e != "1"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// A page per subcommand, so `man automate-ports-check` documents every option of check.
#[test]
fn man_pages_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    for name in [
        "",
        "-check",
        "-serve",
        "-profiles",
        "-demo",
        "-completions",
        "-man",
    ] {
        let page = dir.path().join(format!("automate-ports{name}.1"));
        let roff = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(
            roff.contains(&format!(".TH automate-ports{name} 1")),
            "{name}"
        );
    }
    let check = std::fs::read_to_string(dir.path().join("automate-ports-check.1")).unwrap();
    for option in [r"\-\-key", r"\-\-full\-ranges", r"\-\-proxy", r"\-\-tcp"] {
        assert!(
            check.contains(option),
            "{option} missing from automate-ports-check.1"
        );
    }
    // Rendered the way a user reads it, where man is installed.
    if let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.path().join("automate-ports-check.1"))
        .env("MANWIDTH", "100")
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--full-ranges") && text.contains("--key"),
            "{text}"
        );
    } else {
        crate::util::skipped("rendering: man is not installed");
    }
    bin()
        .args(["man", "serve"])
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH automate-ports-serve 1"));
    bin()
        .args(["man", "nosuch"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no subcommand 'nosuch'"));
}

/// `--color`: always colours even into a pipe, never not even on request of the format.
#[test]
fn color_always_and_never() {
    let port = util::free_tcp_port().to_string();
    let target = format!("127.0.0.1:{port}");
    let run = |when: &str| {
        let out = bin()
            .args([
                "--color",
                when,
                "check",
                "--tcp",
                &target,
                "--timeout",
                "200ms",
            ])
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        run("always").contains("\u{1b}["),
        "colour into a pipe with --color always"
    );
    assert!(!run("never").contains("\u{1b}["));
    assert!(
        !run("auto").contains("\u{1b}["),
        "auto: a pipe gets no colour"
    );
    bin()
        .args(["check", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Examples:\n  automate-ports check --role agent",
        ));
}

/// Report files are opened before any probe: a missing folder stops a run that would
/// otherwise wait 30 s, before it starts, and leaves no file behind in the folders that
/// exist; the same path twice, or the profile itself, is refused the same way.
#[test]
fn report_files_are_checked_before_probing() {
    let port = util::free_tcp_port();
    let p = profile(&check_block("down", "tcp", &port.to_string(), true));
    let profile_path = p.path.to_str().unwrap().to_string();
    let over_profile = format!("table:{profile_path}");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let good = good.to_str().unwrap();
    let run = |outputs: &[&str]| {
        let mut cmd = check_box(&p, "127.0.0.1");
        cmd.args(["--wait", "30s"]);
        for o in outputs {
            cmd.args(["--output", o]);
        }
        let started = Instant::now();
        let out = cmd.output().unwrap();
        (out, started.elapsed())
    };
    for (outputs, says) in [
        (
            vec![good, "json:/nonexistent/dir/r.json"],
            "its folder /nonexistent/dir",
        ),
        (vec![good, good], "is named twice"),
        (vec![&over_profile], "is the profile being read"),
    ] {
        let (out, took) = run(&outputs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{outputs:?}: {stderr}");
        assert!(stderr.contains(says), "{outputs:?}: {stderr}");
        assert!(took < Duration::from_secs(5), "{outputs:?} took {took:?}");
        assert_eq!(
            out.stdout.len(),
            0,
            "{outputs:?}: no report without its files"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{outputs:?} left {left:?}");
    }
    assert!(
        std::fs::read_to_string(&profile_path)
            .unwrap()
            .contains("[[check]]"),
        "the profile is untouched"
    );
}

/// A report replaces yesterday's only once it is written whole, and nothing else is left in
/// the folder.
#[test]
fn report_files_replace_the_old_report_whole() {
    let (p, _open) = mixed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    std::fs::write(&path, "yesterday").unwrap();
    let out = check_box(&p, "127.0.0.1")
        .arg("--output")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("r.json")]);
}
