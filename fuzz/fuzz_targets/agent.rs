//! The Automate version in `/LabTech/agent.aspx`'s body (`automate_version`).
//! Never panics; a version found is digits.digits[...] (no leading or trailing dot) and
//! appears in the body.
#![no_main]

use automate_ports::probe::app::automate_version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = automate_version(data) {
        assert!(v.chars().all(|c| c.is_ascii_digit() || c == '.'), "{v:?}");
        assert!(v.contains('.'), "{v:?}");
        assert!(!v.starts_with('.') && !v.ends_with('.'), "{v:?}");
        assert!(String::from_utf8_lossy(data).contains(&v), "{v:?}");
    }
});
