//! Developer tasks: `cargo xtask test` runs every test; `cargo xtask integration` runs
//! the end-to-end scenarios in `tests/`; `cargo xtask faults` only the fault-injection
//! ones; `cargo xtask sizes` measures what each feature set of the facade costs a
//! hello-world tool (the integration guide's table).
//!
//! The end-to-end scenarios run with `DO_NOT_TRACK=1` exported: each process they start
//! sets or removes it explicitly, so they must pass, and assert, whatever a developer's
//! or CI's environment holds.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

mod cross;
mod sizes;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => match args.get(1).map(String::as_str) {
            None => test(&[]),
            Some("--do-not-track") => test(&[("DO_NOT_TRACK", "1")]),
            Some(_) => Err("usage: cargo xtask test [--do-not-track]".to_owned()),
        },
        Some("integration") => integration(&[], &args[1..]),
        Some("faults") => integration(&["--test", "faults"], &args[1..]),
        Some("cross") => cross::run(&args[1..]),
        Some("sizes") => sizes::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask (test [--do-not-track] | integration [ARGS...] | faults [ARGS...] | cross [STEP...] | sizes)"
            );
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
/// `env` is exported to every step: `--do-not-track` runs the whole suite with
/// `DO_NOT_TRACK=1`, which must change nothing, since every test injects its
/// surroundings (`Ambient`) or sets the variable on the processes it starts.
fn test(env: &[(&str, &str)]) -> Result<(), String> {
    if has_nextest() {
        cargo_with(
            &[
                "nextest",
                "run",
                "--workspace",
                "--exclude",
                "telemetry-tests",
                "--no-fail-fast",
            ],
            env,
        )?;
    } else {
        eprintln!("xtask: cargo-nextest not found, using cargo test");
        cargo_with(
            &[
                "test",
                "--workspace",
                "--exclude",
                "telemetry-tests",
                "--no-fail-fast",
            ],
            env,
        )?;
    }
    cargo_with(&["test", "--workspace", "--doc"], env)?;
    integration(&[], &[])
}

/// The end-to-end scenarios: the `telemetry-tests` crate's tests, which build and run
/// the example programs against a loopback upload server. `select` picks test targets
/// (`--test faults`); `extra` goes to the test harness.
fn integration(select: &[&str], extra: &[String]) -> Result<(), String> {
    // Examples first: `--test NAME` alone does not build them.
    cargo(&["build", "-p", "telemetry-tests", "--examples"])?;
    let mut args = vec!["test", "-p", "telemetry-tests", "--no-fail-fast"];
    args.extend(select);
    // One at a time: several scenarios time a pipeline against a slow server.
    args.extend(["--", "--test-threads=1"]);
    args.extend(extra.iter().map(String::as_str));
    cargo_with(&args, &[("DO_NOT_TRACK", "1")])
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
    cargo_with(args, &[])
}

fn cargo_with(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("xtask: {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed: {status}", args.join(" ")))
    }
}
