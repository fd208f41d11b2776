//! Process tests: this test binary runs itself as the three processes of a real crash.
//!
//! - the *orchestrator* (no `CRASHTEST_ROLE`): runs each scenario and checks the result;
//! - the *program* (`CRASHTEST_ROLE=<scenario>`): calls `telemetry_crashmonitor::install`
//!   on `CRASHTEST_DIR`, then crashes (or not), recording into the crash journal;
//! - the *counting child* (`CRASHTEST_ROLE=child`), run once the program is gone, as a
//!   later run's telemetry child would be: calls `telemetry_crashmonitor::process` on
//!   `CRASHTEST_DIR` and prints its outcome on stdout.
//!
//! It has its own `main` (`harness = false`) so that "a panic in main" and "a stack
//! overflow in main" really happen on the main thread, as in a program.

#[cfg(unix)]
mod scenarios;

#[cfg(unix)]
fn main() {
    scenarios::main();
}

#[cfg(windows)]
mod scenarios_windows;

#[cfg(windows)]
fn main() {
    scenarios_windows::main();
}

/// Crash reporting is for Unix and Windows; elsewhere there is nothing to run.
#[cfg(not(any(unix, windows)))]
fn main() {}
