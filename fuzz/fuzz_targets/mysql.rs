//! The first packet of a MySQL/MariaDB server (`parse_mysql_greeting`), in both languages.
//! Never panics; nothing the server sends reaches the report as a control character or a
//! bidirectional override (the summary and the server version are sanitised).
#![no_main]

use automate_ports::lang::Lang;
use automate_ports::probe::app::{parse_mysql_greeting, untrusted};
use automate_ports::words::app::summary;
use libfuzzer_sys::fuzz_target;

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fuzz_target!(|data: &[u8]| {
    let r = parse_mysql_greeting(data);
    for lang in [Lang::En, Lang::De] {
        let said = summary(&r, lang);
        assert!(!untrusted(&said).chars().any(char::is_control));
        assert!(!said.chars().any(unsafe_char), "unsanitised summary: {said:?}");
        if let Some(server) = &r.server {
            assert!(!server.chars().any(unsafe_char), "unsanitised server: {server:?}");
        }
    }
});
