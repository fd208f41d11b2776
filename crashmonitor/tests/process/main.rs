//! Process tests: this test binary runs itself as the three processes of a real crash.
//!
//! - the *orchestrator* (no `CRASHTEST_ROLE`): runs each scenario of the one table
//!   (`scenarios.rs`) and checks the result (`orchestrator.rs`);
//! - the *program* (`CRASHTEST_ROLE=<scenario>`): calls `telemetry_crashmonitor::install`
//!   on `CRASHTEST_DIR`, then crashes (or not), recording into the crash journal
//!   (`program.rs`, dying in one of `crashes.rs`'s functions);
//! - the *counting child* (`CRASHTEST_ROLE=child`), run once the program is gone, as a
//!   later run's telemetry child would be: calls `telemetry_crashmonitor::process` on
//!   `CRASHTEST_DIR` and prints its outcome on stdout.
//!
//! What differs between Unix (signals) and Windows (exceptions, run under Wine by
//! `cargo xtask cross`) is data in the table and the platform module (`unix.rs`,
//! `windows.rs`): the statuses a fault ends with, the scenarios only one of them has,
//! and the tests that are not one scenario's crash and count.
//!
//! It has its own `main` (`harness = false`) so that "a panic in main" and "a stack
//! overflow in main" really happen on the main thread, as in a program.

#![cfg_attr(not(any(unix, windows)), allow(dead_code, unused_imports))]
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[cfg(any(unix, windows))]
mod crashes;
#[cfg(any(unix, windows))]
mod orchestrator;
#[cfg(any(unix, windows))]
mod program;
#[cfg(any(unix, windows))]
mod scenarios;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

/// Which process this is: the environment variable and its value for the child.
const ROLE: &str = "CRASHTEST_ROLE";
/// The telemetry directory the program records into and the child counts from.
const DIR: &str = "CRASHTEST_DIR";
/// Set to run a scenario without the monitor, to compare the crash with and without.
const UNMONITORED: &str = "CRASHTEST_UNMONITORED";
/// For a counting child: a file whose creation it waits for before it counts, so
/// that several start counting at the same instant.
const GO: &str = "CRASHTEST_GO";

/// The program every role is.
fn program_name() -> telemetry_counter::Program {
    telemetry_counter::Program::new("crashtest", "1.0.0")
}

/// The telemetry directory of this run (the program's and the counting child's).
fn telemetry_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os(DIR).expect("CRASHTEST_DIR"))
}

#[cfg(any(unix, windows))]
fn main() {
    match std::env::var(ROLE).ok().as_deref() {
        Some("child") => count(),
        Some(scenario) => program::play(scenario),
        None => orchestrator::run_all(),
    }
}

/// The counting child: counts the journal's crashes, as a later run's child would,
/// and prints the outcome.
#[cfg(any(unix, windows))]
fn count() {
    if let Some(go) = std::env::var_os(GO) {
        // A minute at most: then the child counts anyway.
        let go = std::path::PathBuf::from(go);
        telemetry_test_support::wait_until(std::time::Duration::from_secs(60), || go.exists());
    }
    let today = telemetry_internal::Day::of(std::time::SystemTime::now());
    let outcome = telemetry_crashmonitor::process(
        &telemetry_dir(),
        &program_name(),
        telemetry_internal::Mode::Local,
        today,
    );
    println!("{outcome:?}");
}

/// Crash reporting is for Unix and Windows; elsewhere there is nothing to run.
#[cfg(not(any(unix, windows)))]
fn main() {}
