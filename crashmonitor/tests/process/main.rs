//! Process tests: this test binary runs itself as the three processes of a real crash.
//!
//! - the *orchestrator* (no `CRASHTEST_ROLE`): runs each scenario and checks the result;
//! - the *parent* (`CRASHTEST_ROLE=<scenario>`): spawns the monitor, calls
//!   `telemetry_crashmonitor::parent` with the pipe to it, then crashes (or not);
//! - the *monitor child* (`CRASHTEST_ROLE=child`): calls `telemetry_crashmonitor::child`
//!   on its stdin, counting into `CRASHTEST_DIR`, and prints its outcome on stdout,
//!   which it shares with the parent, so the orchestrator reads it once both are gone.
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
