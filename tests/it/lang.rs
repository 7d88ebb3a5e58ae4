//! `--lang de|en` and the locale: German words, reasons and hints on real sockets; JSON
//! keys and state values stay English.

use std::net::TcpListener;

use crate::require_root;
use crate::util::{
    self, check_agent, check_block, check_box, check_json, profile, results, run_json, Netns,
};

#[test]
fn german_reasons_and_hints_with_english_keys_and_states() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = util::free_tcp_port();
    let mut blocks = check_block("web", "tcp", &open.to_string(), true);
    blocks.push_str(&check_block("api", "tcp", &closed.to_string(), true));
    // A custom profile's own German fix replaces the default one.
    blocks.push_str(check_block("mail", "tcp", &closed.to_string(), false).trim_end());
    blocks.push_str("\nfix = \"Allow {proto} {ports} to {where}.\"\nfix-de = \"{proto} {ports} zu {where} in der Firewall freigeben.\"\n");
    let p = profile(&blocks);
    let (code, report) = check_json(&p, "127.0.0.1", &["--lang", "de"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["lang"], "de");

    let web = results(&report, "web")[0];
    assert_eq!(
        (&web["state"], &web["verdict"]),
        (&"open".into(), &"pass".into())
    );
    let reason = web["reason"].as_str().unwrap();
    assert!(reason.starts_with("verbunden in "), "{reason}");

    let api = results(&report, "api")[0];
    assert_eq!(
        (&api["state"], &api["verdict"]),
        (&"closed".into(), &"fail".into())
    );
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.starts_with("abgewiesen (RST) nach "), "{reason}");
    // Milliseconds with a decimal comma, as German writes them.
    assert!(!reason.contains(" ms") || !reason.contains('.'), "{reason}");
    assert_eq!(
        api["hint"],
        format!(
            "127.0.0.1 hat TCP {closed} abgewiesen: dort lauscht nichts, oder eine Firewall weist die Verbindung ab. TCP {closed} von diesem Rechner zu 127.0.0.1 freigeben."
        )
    );

    let mail = results(&report, "mail")[0];
    assert_eq!(mail["verdict"], "warn");
    assert!(
        mail["hint"].as_str().unwrap().ends_with(&format!(
            "TCP {closed} zu 127.0.0.1 in der Firewall freigeben."
        )),
        "{mail}"
    );
    drop(listener);
}

#[test]
fn german_table_words_and_summary() {
    let closed = util::free_tcp_port();
    let p = profile(&check_block("api", "tcp", &closed.to_string(), true));
    let out = check_box(&p, "127.0.0.1")
        .args(["--lang", "de"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(" ERGEBNIS  PRÜFUNG  PORT"), "{table}");
    assert!(table.contains(" FEHLER    api "), "{table}");
    assert!(
        table.contains("  → api 127.0.0.1: 127.0.0.1 hat TCP"),
        "{table}"
    );
    assert!(
        table.contains(
            "FEHLGESCHLAGEN: Rolle custom, 0 OK, 1 Fehler, 0 Warnungen, 0 ausgelassen in "
        ),
        "{table}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unresolvable_name_in_german() {
    let (_, report) =
        run_json(check_agent("automate.invalid").args(["--format", "json", "--lang", "de"]));
    let r = results(&report, "agent-https")[0];
    assert_eq!(r["state"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("automate.invalid lässt sich nicht auflösen (")
            || reason.starts_with("die DNS-Abfrage von automate.invalid"),
        "{reason}"
    );
    assert!(
        r["hint"]
            .as_str()
            .unwrap()
            .starts_with("Dieser Rechner kann automate.invalid nicht auflösen: den Namen (--server HOST) und die DNS-Einstellungen dieses Rechners prüfen"),
        "{r}"
    );
    // The optional peer was not named.
    assert_eq!(
        results(&report, "agent-wakeup")[0]["reason"],
        "nicht geprüft: kein --peer HOST angegeben"
    );
}

/// Runs a failing check with the given environment and says which language came out.
fn language_with(env: &[(&str, &str)], args: &[&str]) -> &'static str {
    let closed = util::free_tcp_port();
    let p = profile(&check_block("api", "tcp", &closed.to_string(), true));
    let mut cmd = check_box(&p, "127.0.0.1");
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let table = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    match (table.contains("FEHLGESCHLAGEN"), table.contains("FAILED")) {
        (true, false) => "de",
        (false, true) => "en",
        _ => panic!("neither or both languages: {table}"),
    }
}

#[test]
fn the_locale_picks_the_language_and_the_flag_wins() {
    assert_eq!(language_with(&[], &[]), "en");
    assert_eq!(language_with(&[("LANG", "de_DE.UTF-8")], &[]), "de");
    assert_eq!(
        language_with(&[("LANG", "de_AT.UTF-8"), ("LC_ALL", "")], &[]),
        "de"
    );
    // LC_ALL over LC_MESSAGES over LANG, as for every program's messages.
    assert_eq!(
        language_with(&[("LANG", "de_DE.UTF-8"), ("LC_ALL", "C")], &[]),
        "en"
    );
    assert_eq!(
        language_with(
            &[("LANG", "en_US.UTF-8"), ("LC_MESSAGES", "de_CH.UTF-8")],
            &[]
        ),
        "de"
    );
    assert_eq!(
        language_with(&[("LANG", "de_DE.UTF-8")], &["--lang", "en"]),
        "en"
    );
    assert_eq!(
        language_with(&[("LANG", "fr_FR.UTF-8")], &["--lang", "de"]),
        "de"
    );
}

#[test]
fn unknown_language_is_a_usage_error() {
    check_agent("127.0.0.1")
        .args(["--lang", "fr"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("'fr'"))
        .stderr(predicates::str::contains("possible values: en, de"));
}

/// The built-in server role in a namespace where nothing listens: every hint comes from
/// the profile's German fixes.
#[test]
fn built_in_fixes_read_in_german() {
    require_root!();
    let ns = Netns::new("de");
    let out = ns
        .bin()
        .args([
            "check",
            "--role",
            "server",
            "--server",
            "127.0.0.1",
            "--lang",
            "de",
            "--timeout",
            "500ms",
            "--retries",
            "0",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let verdict_of = |id: &str| {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row for {id} in:\n{table}"));
        row.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(verdict_of("control-center"), "FEHLER");
    assert_eq!(verdict_of("server-heartbeat"), "WARNUNG");
    assert_eq!(verdict_of("db-not-exposed"), "OK");
    for expected in [
        "  → control-center 127.0.0.1: 127.0.0.1 hat TCP 8484 abgewiesen: dort lauscht nichts, oder eine Firewall weist die Verbindung ab. Eingehend TCP 8484 in der Firewall vor 127.0.0.1 freigeben und an den Automate-Server weiterleiten.",
        "127.0.0.1 meldet UDP 75 als nicht erreichbar",
        "Stichprobe von 32 der 16.384 Ports: 32 closed",
        "Eingehend TCP 49152-65535 in der Firewall vor 127.0.0.1 freigeben",
        "FEHLGESCHLAGEN: Rolle server,",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in:\n{table}");
    }
    assert_eq!(out.status.code(), Some(1));
}
