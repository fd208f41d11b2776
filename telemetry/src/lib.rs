//! Honest, opt-in, privacy-preserving telemetry for Rust command-line tools and
//! servers, modelled on Go's `golang.org/x/telemetry` and sharing its counter files.
//!
//! Call [`start`] first thing in `main`; count with [`counter`]'s `Counter`s:
//!
//! ```
//! use telemetry::counter::Counter;
//!
//! static RUNS: Counter = Counter::new("mytool/runs");
//!
//! # let tmp = tempfile::tempdir()?;
//! let config = telemetry::Config::new(telemetry::program!())
//! #   .dir(tmp.path())
//!     .report_crashes(false);
//! telemetry::start(config);
//! RUNS.inc();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`start`] reads the user's [`Mode`] and opens this week's counter file. When crash
//! reporting is on, or an upload is due (at most once a day per telemetry directory),
//! it re-executes the program as a detached child that counts the parent's crash, if
//! any, and turns expired weeks into reports, uploading them only if the user opted in
//! and only with the counters a public upload config approves.
//!
//! # Guarantees
//! - `start` never panics, never prints, never blocks on the network or the child,
//!   and never leaves the child holding the program's stdout, stderr or terminal.
//! - Mode `off` (or `DO_NOT_TRACK`) writes nothing at all and starts nothing.
//! - A program that neither reports crashes nor is due an upload pays for reading
//!   the mode file and mapping the counter file, nothing more.
//! - Crash counters hold function names and offsets only: never a panic message, a
//!   path, an argument or an environment value.
#![forbid(unsafe_code)]

mod config;
mod process;
#[cfg(windows)]
mod spawn_windows;
mod token;

use std::io;
use std::process::Child;

pub use config::Config;
pub use telemetry_counter as counter;
pub use telemetry_counter::program;
pub use telemetry_internal::{Dir, Mode, Program};

/// Starts telemetry for the program described by `config`: see the crate docs.
///
/// In the telemetry child (a re-execution of this program by an earlier `start`),
/// this does the child's work and exits the process instead of returning.
pub fn start(config: Config) -> StartResult {
    match process::role() {
        process::Role::Child => process::child(&config),
        process::Role::Descendant => StartResult::nothing(),
        process::Role::Program => std::panic::catch_unwind(|| process::parent(&config))
            .unwrap_or_else(|_| StartResult::nothing()),
    }
}

/// Runs the telemetry child's work and exits if this process is the telemetry child;
/// returns at once otherwise. For programs that must do some work of their own before
/// they can call [`start`]: call this first, so the child does not do that work too.
pub fn maybe_child(config: &Config) {
    if process::role() == process::Role::Child {
        process::child(config);
    }
}

/// What [`start`] started. Programs can ignore it: the child is detached and needs
/// nothing from them.
#[derive(Debug)]
pub struct StartResult {
    child: Option<Child>,
}

impl StartResult {
    fn nothing() -> StartResult {
        StartResult { child: None }
    }

    fn child(child: Child) -> StartResult {
        StartResult { child: Some(child) }
    }

    /// Whether a telemetry child was started.
    pub fn started_child(&self) -> bool {
        self.child.is_some()
    }

    /// Waits for the telemetry child to finish, for tests. With crash reporting on, the
    /// child waits for this process to exit (or crash), so this first stops crash
    /// reporting. Programs never need to call it.
    pub fn wait(mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(all(unix, feature = "crash"))]
            telemetry_crashmonitor::stop();
            let _ = child.wait();
        }
    }
}

/// The effective mode for `config`'s telemetry directory: `off` under `DO_NOT_TRACK`
/// or without a home directory, else what the mode file says (`local` if it is
/// missing or malformed).
pub fn mode(config: &Config) -> Mode {
    config.telemetry_dir().map_or(Mode::Off, |dir| dir.mode())
}

/// Records the user's choice in `config`'s telemetry directory.
pub fn set_mode(config: &Config, mode: Mode) -> io::Result<()> {
    let dir = config
        .telemetry_dir()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no home directory"))?;
    dir.set_mode(mode)
}

/// `config`'s telemetry directory, or `None` without a home directory.
pub fn dir(config: &Config) -> Option<Dir> {
    config.telemetry_dir()
}
