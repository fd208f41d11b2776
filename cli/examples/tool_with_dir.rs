//! A tool that keeps its telemetry in a directory of its own choosing
//! (`Config::dir`), and embeds the command as `tool_with_dir NAME DIR telemetry …`.
//! The command's tests run it in a sandbox (`HOME` and `XDG_CONFIG_HOME` pointed at a
//! temporary directory), as a tool author's tests would.
//!
//! ```text
//! tool_with_dir NAME DIR               count one run of NAME into DIR
//! tool_with_dir NAME DIR telemetry …   the telemetry command on DIR
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;

use telemetry::{Config, Program};

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(name), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: tool_with_dir NAME DIR [telemetry ARGS...]");
        return ExitCode::from(2);
    };
    let name = name.to_string_lossy().into_owned();
    let config = Config::new(Program::owned(&name, "1.0.0")).dir(dir);
    if args.next().is_some_and(|a| a == "telemetry") {
        let argv = std::iter::once(format!("{name} telemetry").into()).chain(args);
        return telemetry_cli::run_with(argv, &config, &telemetry_cli::Options::new());
    }
    telemetry::start(config).wait();
    telemetry::counter::inc(&format!("{name}/runs"));
    ExitCode::SUCCESS
}
