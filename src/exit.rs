//! Exit codes, in one place (see `--help`).

/// No required check failed.
pub const OK: u8 = 0;
/// At least one required check failed (with `--strict`, a warning too).
pub const FAILED: u8 = 1;
/// Bad input: usage, profile, value, or a local resource the user must fix.
pub const USAGE: u8 = 2;
/// `--format nagios` only: the plugin convention's UNKNOWN, for bad input.
pub const NAGIOS_UNKNOWN: u8 = 3;
