//! Every input a user can get wrong: exit 2, one clear line on stderr, no panic.

use std::path::Path;

use crate::util::{bin, check_block, profile, run_json_with_stderr, write_file};

/// Runs the binary and checks the usage-error contract; returns stderr.
fn usage_error(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: exit code; stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one line: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    stderr
}

/// [`usage_error`] of `check --role agent --server a EXTRA`.
fn agent_error(extra: &[&str]) -> String {
    usage_error(&[&["check", "--role", "agent", "--server", "a"], extra].concat())
}

/// [`usage_error`] of `check --profile PATH --target box=a`.
fn profile_error(path: &Path) -> String {
    usage_error(&[
        "check",
        "--profile",
        path.to_str().unwrap(),
        "--target",
        "box=a",
    ])
}

#[test]
fn bad_flags() {
    let e = usage_error(&["check", "--role", "agent", "--serverr", "x"]);
    assert!(e.contains("--serverr") && e.contains("--server"), "{e}");
    let e = agent_error(&["--format", "xml"]);
    assert!(e.contains("xml"), "{e}");
    let e = agent_error(&["--timeout", "2x"]);
    assert!(e.contains("500ms, 2s or 1m"), "{e}");
    let e = agent_error(&["--retries", "99"]);
    assert!(e.contains("99"), "{e}");
    let e = agent_error(&["--concurrency", "0"]);
    assert!(e.contains("concurrency"), "{e}");
    agent_error(&["-4", "-6"]);
    usage_error(&["frobnicate"]);
}

#[test]
fn unknown_role_lists_the_roles() {
    let e = usage_error(&["check", "--role", "agnet", "--server", "a"]);
    assert!(
        e.contains("unknown role 'agnet'") && e.contains("split-db"),
        "{e}"
    );
    usage_error(&["profiles", "show", "nope"]);
}

#[test]
fn missing_target_names_the_flag() {
    let e = usage_error(&["check", "--role", "agent"]);
    assert!(e.contains("--server HOST"), "{e}");
    let e = usage_error(&["check", "--role", "split-db"]);
    assert!(e.contains("--db HOST"), "{e}");
    let e = usage_error(&["check", "--role", "screenconnect"]);
    assert!(
        e.contains("--target web=HOST (or --screenconnect HOST, or --server HOST)"),
        "{e}"
    );
    let e = usage_error(&["check"]);
    assert!(e.contains("--role"), "{e}");
}

#[test]
fn bad_hosts_and_targets() {
    // The server may be given as the agent writes it (https://host:port), other targets not.
    let e = usage_error(&[
        "check",
        "--role",
        "split-db",
        "--db",
        "https://db.example.com/",
    ]);
    assert!(e.contains("URL"), "{e}");
    let e = usage_error(&[
        "check",
        "--role",
        "agent",
        "--server",
        "ftp://automate.example.com/",
    ]);
    assert!(e.contains("use http:// or https://"), "{e}");
    let e = usage_error(&[
        "check",
        "--role",
        "agent",
        "--server",
        "automate.example.com:443",
    ]);
    assert!(e.contains("host:port"), "{e}");
    let e = agent_error(&["--target", "nas=b"]);
    assert!(e.contains("unknown target 'nas'"), "{e}");
    let e = usage_error(&["check", "--role", "agent", "--target", "server"]);
    assert!(e.contains("NAME=HOST"), "{e}");
    // Zones: only on link-local addresses, and only of interfaces this machine has.
    let e = usage_error(&["check", "--role", "agent", "--server", "fe80::1%nosuch9"]);
    assert!(e.contains("no network interface 'nosuch9'"), "{e}");
    let e = usage_error(&["check", "--role", "agent", "--server", "2001:db8::1%lo"]);
    assert!(e.contains("only to a link-local address"), "{e}");
}

/// A fleet collector saves stdout as the machine's report: with --format json, every input
/// error still gives it one JSON object to read (and the usual line on stderr, exit 2).
#[test]
fn json_reports_carry_usage_and_input_errors() {
    for (args, kind, words) in [
        (
            vec!["check", "--format", "json", "--bogus"],
            "usage",
            "unexpected argument '--bogus'",
        ),
        (
            vec![
                "check",
                "--format=json",
                "--role",
                "agent",
                "--server",
                "a:443",
            ],
            "usage",
            "host:port",
        ),
        (
            vec!["check", "--format", "json", "--role", "nope"],
            "input",
            "unknown role 'nope'",
        ),
        (
            vec![
                "check",
                "--role",
                "agent",
                "--format",
                "json",
                "--profile",
                "/nonexistent/p.toml",
            ],
            "input",
            "cannot read profile",
        ),
    ] {
        let (code, report, stderr) = run_json_with_stderr(bin().args(&args));
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(report["schema"], 1, "{report}");
        assert_eq!(report["error"]["kind"], kind, "{report}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        assert!(
            !message.contains('\n') && !message.starts_with("error:"),
            "{message}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn bad_profiles_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("syntax.toml", "role = \"x\"\ndescription = \n", "line 2"),
        (
            "unknown-key.toml",
            "role = \"x\"\ndescription = \"d\"\ncolour = 1\n",
            "colour",
        ),
    ];
    for (name, text, needle) in cases {
        let e = profile_error(&write_file(dir.path(), name, text));
        assert!(e.contains(name) && e.contains(needle), "{e}");
    }
    for (ports, needle) in [
        ("0", "port 0"),
        ("70000", "above 65535"),
        ("443-80", "reversed"),
        ("http", "not a port"),
    ] {
        let p = profile(&check_block("c", "tcp", ports, true));
        let e = profile_error(&p.path);
        assert!(
            e.contains("line 11") && e.contains("key 'ports'") && e.contains(needle),
            "{e}"
        );
    }
    let dup = format!("{0}{0}", check_block("c", "tcp", "1", true));
    let p = profile(&dup);
    let e = profile_error(&p.path);
    assert!(e.contains("duplicate check id 'c'"), "{e}");
    let p = profile(
        &check_block("c", "tcp", "1", true).replace("target = \"box\"", "target = \"nas\""),
    );
    let e = profile_error(&p.path);
    assert!(
        e.contains("unknown target 'nas'") && e.contains("key 'target'"),
        "{e}"
    );
    let p = profile(
        &check_block("c", "tcp", "1", true).replace("protocol = \"tcp\"", "protocol = \"icmp\""),
    );
    let e = profile_error(&p.path);
    assert!(e.contains("icmp"), "{e}");
    // A target's default is read as a host when the profile is, like a host on the command line.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "role = \"custom\"\ndescription = \"d\"\n\n[targets.box]\ndescription = \"the box\"\ndefault = \"https://a.example/\"\n\n{}",
        check_block("c", "tcp", "1", true)
    );
    let e = profile_error(&write_file(dir.path(), "default.toml", &text));
    assert!(
        e.contains("target 'box' has a default that is not a host") && e.contains("URL"),
        "{e}"
    );
    let e = profile_error(Path::new("/nonexistent/p.toml"));
    assert!(e.contains("/nonexistent/p.toml"), "{e}");
    let p = profile(&check_block("c", "tcp", "1", true));
    let e = usage_error(&[
        "check",
        "--profile",
        p.path.to_str().unwrap(),
        "--role",
        "agent",
        "--target",
        "box=a",
    ]);
    assert!(e.contains("defines role 'custom'"), "{e}");
}

#[test]
fn too_few_file_descriptors_is_a_clear_error() {
    let bin = crate::util::bin_path();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec '{}' check --role agent --server 127.0.0.1",
            bin.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("open-file limit is 40") && stderr.contains("ulimit -n"),
        "{stderr}"
    );
}

#[test]
fn rate_and_concurrency_bounds() {
    let e = agent_error(&["--rate", "0"]);
    assert!(e.contains("--rate"), "{e}");
    let e = agent_error(&["--concurrency", "70000"]);
    assert!(e.contains("70000"), "{e}");
}

/// A profile is a regular file of at most 1 MiB: a device that never ends, a FIFO that waits
/// for a writer and a huge file are refused at once, before anything is read.
#[cfg(unix)]
#[test]
fn profiles_that_are_not_small_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("profile.fifo");
    crate::util::run_ok("mkfifo", &[fifo.to_str().unwrap()]);
    let big = write_file(dir.path(), "big.toml", &"#".repeat(1024 * 1024 + 1));
    for (path, needle) in [
        (Path::new("/dev/zero"), "not a regular file"),
        (&fifo, "not a regular file"),
        (dir.path(), "not a regular file"),
        (&big, "more than a profile can be"),
    ] {
        let started = std::time::Instant::now();
        let e = profile_error(path);
        let path = path.display();
        assert!(e.contains(needle), "{path}: {e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{path}"
        );
    }
}
