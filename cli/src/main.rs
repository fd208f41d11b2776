//! The `telemetry` command: see and control what programs using the telemetry library
//! collect on this machine. Everything it does lives in the `telemetry_cli` library, so
//! that a tool can offer the same commands as `mytool telemetry …`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use telemetry::{Config, Program};

fn main() -> ExitCode {
    let config = Config::new(Program::new("telemetry", env!("CARGO_PKG_VERSION")));
    // Standalone, the command is about every tool on the machine: without --dir or
    // --tool it works on the telemetry root.
    let options = telemetry_cli::Options::new().machine_wide(true);
    telemetry_cli::run_with(std::env::args_os(), &config, &options)
}
