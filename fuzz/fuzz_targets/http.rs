//! An HTTP response head (`parse_http_head`: status, reason, `Server` header).
//! Never panics; `untrusted` over the same text leaves no control characters and keeps at
//! most 256 characters plus an ellipsis.
#![no_main]

use automate_ports::probe::app::{parse_http_head, untrusted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = parse_http_head(data);
    // The fields are private: Debug reads every one of them.
    let _ = format!("{head:?}");

    let text = String::from_utf8_lossy(data);
    let clean = untrusted(&text);
    assert!(!clean.chars().any(char::is_control));
    assert!(clean.chars().count() <= 257);
});
