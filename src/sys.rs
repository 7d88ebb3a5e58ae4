//! What the operating system provides, in one place: the wall clock and its error codes.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in milliseconds since the Unix epoch (0 before 1970): the probe protocol's
/// timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "Too many open files", as `raw_os_error` reports it.
#[cfg(unix)]
pub const EMFILE: i32 = 24;
#[cfg(windows)]
pub const EMFILE: i32 = 10024; // WSAEMFILE
