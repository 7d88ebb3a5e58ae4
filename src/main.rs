//! The `automate-ports` binary: everything is in the library (`automate_ports::cli::run`).

use std::process::ExitCode;

fn main() -> ExitCode {
    // A bug must still end in one readable line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("automate-ports: internal error: {info} (please report this)");
    }));
    match automate_ports::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("automate-ports: error: {e:#}");
            ExitCode::from(automate_ports::exit::USAGE)
        }
    }
}
