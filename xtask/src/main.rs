//! Developer tasks: `cargo xtask test` runs every test; `cargo xtask integration` runs
//! the end-to-end scenarios in `tests/`.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

mod cross;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("integration") => integration(&args[1..]),
        Some("cross") => cross::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask (test | integration [ARGS...])");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Unit, process and doc tests of every crate, then the end-to-end scenarios.
fn test() -> Result<(), String> {
    if has_nextest() {
        cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--exclude",
            "telemetry-tests",
            "--no-fail-fast",
        ])?;
    } else {
        eprintln!("xtask: cargo-nextest not found, using cargo test");
        cargo(&[
            "test",
            "--workspace",
            "--exclude",
            "telemetry-tests",
            "--no-fail-fast",
        ])?;
    }
    cargo(&["test", "--workspace", "--doc"])?;
    integration(&[])
}

/// The end-to-end scenarios: the `telemetry-tests` crate's tests, which build and run
/// the example programs against a loopback upload server.
fn integration(extra: &[String]) -> Result<(), String> {
    let mut args = vec!["test", "-p", "telemetry-tests", "--", "--test-threads=1"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

fn has_nextest() -> bool {
    Command::new(cargo_bin())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed: {status}", args.join(" ")))
    }
}
