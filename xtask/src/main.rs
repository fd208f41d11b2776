//! Developer tasks: `cargo xtask test` runs every test; `cargo xtask integration` runs
//! the end-to-end scenarios in `tests/`; `cargo xtask faults` only the fault-injection
//! ones; `cargo xtask demo` shows a report travelling from a tool to the collector;
//! `cargo xtask cross` checks and tests other platforms; `cargo xtask sizes` measures
//! what each feature set of the facade costs a hello-world tool (the integration
//! guide's table); `cargo xtask fuzz` runs every fuzz target briefly on its committed
//! corpus; `cargo xtask soak` runs the crash scenarios that must never hang many times,
//! each bounded. `cargo xtask --help` lists them.
//!
//! The end-to-end scenarios run with `DO_NOT_TRACK=1` exported: each process they start
//! sets or removes it explicitly, so they must pass, and assert, whatever a developer's
//! or CI's environment holds.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod cross;
mod demo;
mod fuzz;
mod sizes;
mod soak;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Each task and what it does, one line each: `cargo xtask --help`.
const TASKS: &[(&str, &str)] = &[
    (
        "test [--do-not-track]",
        "every test: unit, process and doc tests, then the end-to-end scenarios",
    ),
    (
        "integration [ARGS...]",
        "the end-to-end scenarios only (ARGS go to the test harness)",
    ),
    ("faults [ARGS...]", "the fault-injection scenarios only"),
    (
        "demo",
        "a tool's report sent to a local collector, merged and shown on its dashboard",
    ),
    (
        "cross [STEP...]",
        "macOS checks, aarch64 Linux tests under qemu, Windows tests under Wine",
    ),
    (
        "sizes",
        "what each feature set of the facade costs a hello-world tool (bytes, crates, build time)",
    ),
    (
        "fuzz [--seconds N] [TARGET...]",
        "every fuzz target for N seconds (default 10) on its committed corpus",
    ),
    (
        "soak [--runs N] [--qemu] [--hogs K]",
        "the crash scenarios abort and segv N times (default 100), each run bounded",
    ),
];

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
        Some("demo") => demo::run(&args[1..]),
        Some("cross") => cross::run(&args[1..]),
        Some("sizes") => sizes::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("help" | "--help" | "-h") => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{}", help());
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

fn help() -> String {
    let width = TASKS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text =
        "Developer tasks of the telemetry workspace.\n\nUsage: cargo xtask TASK\n\nTasks:\n"
            .to_owned();
    for (name, what) in TASKS {
        text.push_str(&format!("  {name:width$}  {what}\n"));
    }
    text
}

/// One step of `cargo xtask test` and how it went.
struct Step {
    what: String,
    result: Result<(), String>,
    took: Duration,
}

/// Unit, process and doc tests of every crate, then the end-to-end scenarios.
/// `env` is exported to every step: `--do-not-track` runs the whole suite with
/// `DO_NOT_TRACK=1`, which must change nothing, since every test injects its
/// surroundings (`Ambient`) or sets the variable on the processes it starts.
///
/// Every step runs even when one fails, so that one failure never hides another; the
/// summary at the end names the failed steps, and the tests skipped for want of a
/// system tool (listed through `TELEMETRY_SKIP_LOG`, see `telemetry-test-support`).
fn test(env: &[(&str, &str)]) -> Result<(), String> {
    let skip_log = std::env::temp_dir().join(format!("xtask-skipped-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&skip_log);
    let skip_var = skip_log.to_string_lossy().into_owned();
    // The user-wide telemetry root of every process the tests start lies in a scratch
    // directory: a test that forgets to sandbox a tool must not write to the
    // developer's own configuration (`start` keeps a registry of tools' directories
    // there).
    let config_home = std::env::temp_dir().join(format!("xtask-config-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&config_home);
    let config_var = config_home.to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push((telemetry_test_support::SKIP_LOG_VAR, &skip_var));
    env.push(("XDG_CONFIG_HOME", &config_var));

    let mut steps = Vec::new();
    let mut step = |what: &str, run: &dyn Fn() -> Result<(), String>| {
        let began = Instant::now();
        let result = run();
        steps.push(Step {
            what: what.to_owned(),
            result,
            took: began.elapsed(),
        });
    };
    if has_nextest() {
        step("unit and process tests (cargo nextest)", &|| {
            cargo_with(
                &[
                    "nextest",
                    "run",
                    "--workspace",
                    "--exclude",
                    "telemetry-tests",
                    "--no-fail-fast",
                ],
                &env,
            )
        });
    } else {
        eprintln!("xtask: cargo-nextest not found, using cargo test");
        step("unit and process tests (cargo test)", &|| {
            cargo_with(
                &[
                    "test",
                    "--workspace",
                    "--exclude",
                    "telemetry-tests",
                    "--no-fail-fast",
                ],
                &env,
            )
        });
    }
    // The HTTPS tests once more with the platform's TLS: a feature of its own, so that a
    // plain `cargo test` builds no OpenSSL.
    step("upload over native-tls (OpenSSL)", &|| {
        if has_openssl_headers() {
            cargo_with(
                &[
                    "test",
                    "-p",
                    "telemetry-upload",
                    "--features",
                    "native-tls",
                    "--test",
                    "https",
                ],
                &env,
            )
        } else {
            telemetry_test_support::Tool::OPENSSL.skip("upload over native-tls")
        }
    });
    step("doc tests", &|| {
        cargo_with(&["test", "--workspace", "--doc", "--no-fail-fast"], &env)
    });
    step("end-to-end scenarios", &|| integration_with(&[], &[], &env));

    let skipped = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let _ = std::fs::remove_file(&skip_log);
    let _ = std::fs::remove_dir_all(&config_home);
    let (text, verdict) = summarize(&steps, &skipped);
    eprint!("\n{text}");
    verdict
}

/// The summary of `cargo xtask test`: each step's verdict and time, the tests skipped
/// (`skipped`: the skip log, a line each), and an error naming the failed steps.
fn summarize(steps: &[Step], skipped: &str) -> (String, Result<(), String>) {
    let mut text = "xtask test: summary\n".to_owned();
    for step in steps {
        let verdict = if step.result.is_ok() {
            "ok    "
        } else {
            "FAILED"
        };
        text.push_str(&format!(
            "  {verdict}  {} ({})\n",
            step.what,
            minutes_seconds(step.took)
        ));
    }
    let skipped: Vec<&str> = skipped.lines().filter(|l| !l.is_empty()).collect();
    if !skipped.is_empty() {
        text.push_str(&format!(
            "  {} test(s) skipped for want of a tool (CI runs them all):\n",
            skipped.len()
        ));
        for line in &skipped {
            text.push_str(&format!("    {line}\n"));
        }
    }
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s.result.is_err())
        .map(|s| s.what.as_str())
        .collect();
    let verdict = if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} steps failed: {}",
            failed.len(),
            steps.len(),
            failed.join("; ")
        ))
    };
    (text, verdict)
}

fn minutes_seconds(took: Duration) -> String {
    let secs = took.as_secs();
    format!("{}m {:02}s", secs / 60, secs % 60)
}

/// The end-to-end scenarios: the `telemetry-tests` crate's tests, which build and run
/// the example programs against a loopback upload server. `select` picks test targets
/// (`--test faults`); `extra` goes to the test harness.
fn integration(select: &[&str], extra: &[String]) -> Result<(), String> {
    integration_with(select, extra, &[])
}

/// [`integration`] with `env` exported to every command too.
fn integration_with(select: &[&str], extra: &[String], env: &[(&str, &str)]) -> Result<(), String> {
    // Examples first: `--test NAME` alone does not build them.
    cargo_with(&["build", "-p", "telemetry-tests", "--examples"], env)?;
    let mut args = vec!["test", "-p", "telemetry-tests", "--no-fail-fast"];
    args.extend(select);
    // One at a time: several scenarios time a pipeline against a slow server.
    args.extend(["--", "--test-threads=1"]);
    args.extend(extra.iter().map(String::as_str));
    let mut env = env.to_vec();
    env.retain(|(name, _)| *name != "DO_NOT_TRACK");
    env.push(("DO_NOT_TRACK", "1"));
    cargo_with(&args, &env)
}

/// Whether `pkg-config` finds OpenSSL, which the `native-tls` feature builds against
/// on Linux.
fn has_openssl_headers() -> bool {
    Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .is_ok_and(|s| s.success())
}

fn has_nextest() -> bool {
    Command::new(cargo_bin())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub(crate) use telemetry_test_support::without_package_vars;

fn cargo_with(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("xtask: {}cargo {}", shown.concat(), args.join(" "));
    let mut cmd = Command::new(cargo_bin());
    without_package_vars(&mut cmd);
    let status = cmd
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_failed_steps_and_skipped_tests() {
        let step = |what: &str, result: Result<(), String>| Step {
            what: what.to_owned(),
            result,
            took: Duration::from_secs(61),
        };
        let steps = [
            step("unit", Err("cargo failed".to_owned())),
            step("doc", Ok(())),
            step("end-to-end", Err("cargo failed".to_owned())),
        ];
        let skipped = "SKIPPED a: needs chromium (install: .ci/install-chromium)\n";
        let (text, verdict) = summarize(&steps, skipped);
        assert_eq!(
            text,
            "xtask test: summary
  FAILED  unit (1m 01s)
  ok      doc (1m 01s)
  FAILED  end-to-end (1m 01s)
  1 test(s) skipped for want of a tool (CI runs them all):
    SKIPPED a: needs chromium (install: .ci/install-chromium)
"
        );
        assert_eq!(
            verdict,
            Err("2 of 3 steps failed: unit; end-to-end".to_owned())
        );
        let (_, verdict) = summarize(&steps[1..2], "");
        assert_eq!(verdict, Ok(()));
    }

    #[test]
    fn help_lists_each_task_on_one_line() {
        let help = help();
        for (name, _) in TASKS {
            assert_eq!(
                help.lines()
                    .filter(|l| l.trim_start().starts_with(name))
                    .count(),
                1,
                "{help}"
            );
        }
    }
}
