//! The PowerShell module (`powershell/AutomatePorts.psm1`) runs the exe with a fixed argument
//! shape and reads the report file the exe writes. That contract is tested here through the
//! real binary; with `pwsh` installed, the module itself runs too (pwsh is not in Debian's
//! archive, so it is skipped loudly where missing).

use std::process::Command;

use serde_json::Value;

use crate::util::{bin, bin_path, free_tcp_port};

const MODULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/powershell/AutomatePorts.psm1");

#[test]
fn the_module_reads_a_utf8_report_the_exe_writes_itself() {
    let module = std::fs::read_to_string(MODULE).unwrap();
    // The arguments the module appends: English, the JSON report into a file, quiet.
    assert!(
        module.contains(r#"@('--lang', 'en', '--output', ("json:" + $ReportPath), '--quiet')"#),
        "the module's argument shape changed: update this test with it"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let closed = free_tcp_port().to_string();
    let profile = crate::util::profile(&crate::util::check_block("web", "tcp", &closed, true));
    let out = bin()
        .args(["check", "--profile"])
        .arg(&profile.path)
        .args(["--target", "box=127.0.0.1", "--timeout", "300ms"])
        .args(["--lang", "en", "--output"])
        .arg(format!("json:{}", path.display()))
        .arg("--quiet")
        .env("LANG", "de_DE.UTF-8")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a required check failed");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.first(), Some(&b'{'), "UTF-8 without a BOM");
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(report["lang"], "en", "--lang en wins over the locale");
    assert_eq!(report["summary"]["fail"], 1);
    // A usage error: exit 2 and one line on stderr, which the module throws.
    let out = bin()
        .args([
            "check",
            "--role",
            "agent",
            "--server",
            "127.0.0.1",
            "--timeout",
            "2x",
        ])
        .args(["--lang", "en", "--output", "json:x.json", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_module_itself_under_pwsh() {
    let Ok(version) = Command::new("pwsh")
        .args([
            "-NoProfile",
            "-Command",
            "$PSVersionTable.PSVersion.ToString()",
        ])
        .output()
    else {
        crate::util::skipped("pwsh is not installed (the module's contract is tested above)");
        return;
    };
    assert!(version.status.success());
    let script = format!(
        "Import-Module '{MODULE}'; $r = Invoke-AutomatePorts -Exe '{}' check --role agent --server 127.0.0.1 --timeout 300ms; '{{0}} {{1}}' -f $r.role, $LASTEXITCODE",
        bin_path().display()
    );
    let out = Command::new("pwsh")
        .args(["-NoProfile", "-Command", &script])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim().starts_with("agent "), "{said}");
}
