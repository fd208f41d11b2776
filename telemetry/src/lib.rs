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
#![deny(unsafe_code)]

mod child;
mod config;
mod log;
mod process;
mod startup;
#[cfg(feature = "upload")]
mod token;

use std::fmt;
use std::io;

pub use config::Config;
pub use telemetry_counter as counter;
pub use telemetry_counter::program;
pub use telemetry_internal::{Ambient, Dir, Mode, Program};

/// Starts telemetry for the program described by `config`: see the crate docs.
///
/// Never panics, never prints (unless a [logger](Config::logger) or
/// `TELEMETRY_DEBUG=1` asks for lines), never blocks on the network or the child.
pub fn start(config: Config) -> StartResult {
    startup::keep();
    let env = process::Surroundings::from_process();
    let log = process::decision_log(&config, &env);
    // `parent` is written not to panic; this only keeps a bug in it (or in a crate it
    // calls) from taking the program down. It cannot keep std's hook from printing.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process::parent(&config, &env, &log)
    }))
    .unwrap_or_else(|_| StartResult::nothing())
}

/// Runs the telemetry child's work and exits if this process is a telemetry child that
/// a parent really started; returns at once otherwise.
///
/// Not needed on Linux, Android, the BSDs, macOS and Windows: there the facade runs the
/// child from a constructor, before `main`, whatever `main` does first (parse its
/// arguments with clap, say). Programs on other platforms that must do work of their
/// own before [`start`] (work the child should not repeat) call this first; so may any
/// program that wants to be explicit. The `config` is not consulted: the child learns
/// everything from its parent.
pub fn maybe_child(config: &Config) {
    let _ = config;
    startup::keep();
    if child::verified() {
        child::main();
    }
}

/// What [`start`] started. Programs can drop it at once: the child is detached and
/// needs nothing from them. Tests call [`wait`](StartResult::wait).
#[must_use = "drop it (`let _ = telemetry::start(config)`) unless you wait for the child in a test"]
pub struct StartResult {
    child: Option<Started>,
}

/// The child, as the parent knows it.
struct Started {
    pid: u32,
    /// Unix: the read end of the token pipe, whose only write end the child holds, so
    /// a read sees end of file once the child has exited.
    #[cfg(unix)]
    token: std::os::fd::OwnedFd,
    #[cfg(not(unix))]
    child: std::process::Child,
}

impl fmt::Debug for StartResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResult")
            .field("child_pid", &self.child_pid())
            .finish()
    }
}

impl StartResult {
    fn nothing() -> StartResult {
        StartResult { child: None }
    }

    #[cfg(unix)]
    fn child(pid: u32, token: std::os::fd::OwnedFd) -> StartResult {
        StartResult {
            child: Some(Started { pid, token }),
        }
    }

    #[cfg(not(unix))]
    fn child(child: std::process::Child) -> StartResult {
        StartResult {
            child: Some(Started {
                pid: child.id(),
                child,
            }),
        }
    }

    /// Whether a telemetry child was started.
    pub fn started_child(&self) -> bool {
        self.child.is_some()
    }

    /// The telemetry child's process id, if one was started.
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// Waits for the telemetry child to finish, for tests. With crash reporting on, the
    /// child waits for this process to exit (or crash), so this first stops crash
    /// reporting. Programs never need to call it.
    pub fn wait(mut self) {
        let Some(started) = self.child.take() else {
            return;
        };
        #[cfg(all(unix, feature = "crash"))]
        telemetry_crashmonitor::stop();
        #[cfg(unix)]
        {
            use std::io::Read;
            let mut token = std::fs::File::from(started.token);
            let mut buf = [0u8; 16];
            // The child never writes: the read returns at end of file, when it exits.
            while let Ok(n) = token.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let mut child = started.child;
            let _ = child.wait();
        }
    }
}

/// The effective mode for `config`'s telemetry directory: `off` under `DO_NOT_TRACK`,
/// under the user-wide switch or without a home directory, else what the mode file
/// says (`local` if it is missing or malformed).
pub fn mode(config: &Config) -> Mode {
    let ambient = Ambient::from_process();
    config
        .telemetry_dir_in(&ambient)
        .map_or(Mode::Off, |dir| dir.effective_mode(&ambient).mode)
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
