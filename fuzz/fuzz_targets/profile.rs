//! Profile TOML parsing and validation (`profiles::parse`) on arbitrary UTF-8.
//! Never panics; parsing is deterministic; an error's line number lies within the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = automate_ports::profiles::parse("fuzz.toml", text);
    match &first {
        Ok(_) => {
            assert_eq!(first, automate_ports::profiles::parse("fuzz.toml", text));
        }
        Err(e) => {
            let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
            if let Some(line) = e.line {
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
