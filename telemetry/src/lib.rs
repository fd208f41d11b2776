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
//! let _ = telemetry::start(config);
//! RUNS.inc();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`start`] reads the user's [`Mode`] and opens this week's counter file, and (unless
//! the mode is `off`) starts one small background thread, `telemetry-rotate`, that
//! moves counting into the new day's file at midnight UTC, so a server or daemon that
//! outlives its week never counts into a file whose week was reported. When crash
//! reporting is on, or an upload is due (at most once a day per telemetry directory),
//! it re-executes the program as a detached child that counts the parent's crash, if
//! any, and turns expired weeks into reports, uploading them only if the user opted in
//! and only with the counters a public upload config approves.
//!
//! # Integration guide (five minutes)
//!
//! **1. Depend on it.** `telemetry = "0.1"` gives counting, crash reporting and
//! uploads over HTTPS (features `crash`, `upload`, `tls`, all default). A tool that
//! only counts can depend on `telemetry-counter` alone; `default-features = false,
//! features = ["crash"]` gives counting and crash reporting without any HTTP or JSON
//! code. `stack` adds `StackCounter`.
//!
//! **2. Call `start` in `main`, before or after parsing arguments.** Both work:
//!
//! ```no_run
//! # mod clap { pub trait Parser: Sized { fn parse() -> Self; } }
//! # use clap::Parser;
//! # struct Cli;
//! # impl Parser for Cli { fn parse() -> Self { Cli } }
//! fn main() {
//!     let cli = Cli::parse(); // clap, a required subcommand: fine
//!     let config = telemetry::Config::new(telemetry::program!())
//!         .report_crashes(true)
//!         .upload(true)
//!         .upload_url("https://telemetry.example.com/upload")
//!         .config_url("https://telemetry.example.com/config.json");
//!     let _ = telemetry::start(config);
//!     // ... the tool's work ...
//! }
//! ```
//!
//! The telemetry child is the same executable started with `** telemetry **` as its
//! only argument, which a strict parser would reject. It never reaches `main`: on
//! Linux, Android, the BSDs, macOS and Windows the facade runs it from a constructor
//! that the loader calls before `main`, and everything it needs comes from the
//! environment its parent gave it. [`maybe_child`] is only needed on other platforms
//! (call it before any work the child must not repeat).
//!
//! **3. Count.** `static ERRORS: Counter = Counter::new("mytool/errors");` then
//! `ERRORS.inc()`. Names are public: never put a path, an argument or user data in one.
//!
//! **4. Offer the user the switch.** Nothing leaves the machine until the user runs
//! `mytool telemetry on` (embed the `telemetry-cli` crate's `telemetry_cli::run`) or the
//! standalone `telemetry on`. `DO_NOT_TRACK=1`, `telemetry off` and the user-wide
//! `telemetry off` (no tool named) each turn everything off.
//!
//! **5. Publish an upload config** at `config_url`. Only counters it names are ever
//! uploaded, each at its rate; everything else stays in the user's local reports:
//!
//! ```json
//! {
//!   "OS": ["linux", "macos", "windows"],
//!   "Arch": ["x86_64", "aarch64"],
//!   "Toolchain": ["1.95.0", "nightly"],
//!   "SampleRate": 1.0,
//!   "Programs": [{
//!     "Name": "mytool",
//!     "Versions": ["1.4.0", "1.5.0"],
//!     "Counters": [
//!       {"Name": "mytool/errors", "Rate": 1.0},
//!       {"Name": "mytool/subcommand:{build,test,run}", "Rate": 0.5}
//!     ],
//!     "Stacks": [{"Name": "crash/panic", "Rate": 1.0, "Depth": 16}]
//!   }]
//! }
//! ```
//!
//! - `OS`, `Arch`, `Toolchain`: the platforms (as `std::env::consts` spells them) and
//!   rustc versions whose reports are accepted (Go's `GOOS`, `GOARCH`, `GoVersion` are
//!   accepted as aliases). A report from elsewhere is not uploaded.
//! - `SampleRate`: the share of users, 0 to 1, whose weekly report is uploaded at all
//!   (each report draws a random `X`; it is uploaded if `X <= SampleRate`).
//! - `Programs`: one entry per program `Name` (its `program!()` name) with the
//!   `Versions` accepted; a version not listed uploads nothing.
//! - `Counters`: counter `Name`s approved for upload and the `Rate` (0 to 1) of reports
//!   that carry them; `chart:{a,b}` approves `chart:a` and `chart:b`.
//! - `Stacks`: stack counters (crash reports are `crash/panic`, `crash/abort`,
//!   `crash/signal:SIGSEGV`, …) with a `Rate` and the `Depth` of frames kept.
//!
//! Reports are POSTed as JSON to `<upload_url>/<YYYY-MM-DD>`, at most once a day per
//! telemetry directory, only for weeks after the user opted in. `upload(true)` without
//! both URLs uploads nothing (the [logger](Config::logger) says so).
//!
//! **6. Stripped release builds.** Crash counters name the frames of the crashing stack
//! from the executable's own symbol table. With `strip = "symbols"` (or `strip = true`)
//! there are no names: a vendor still learns that the program crashed and how
//! (`crash/panic` and the others count as `crash/no-frames`), but not where. Keep the
//! names and drop only the debug info with
//!
//! ```toml
//! [profile.release]
//! strip = "debuginfo"
//! ```
//!
//! which costs the size of the symbol table (names only; no file, line or argument
//! ever enters a counter).
//!
//! **7. See what it decides.** `Config::logger(std::io::stderr())` in code, or
//! `TELEMETRY_DEBUG=1` in the environment, writes one line per decision (mode and why,
//! counter file, upload due or not, child started or why not); the child's lines, each
//! upload's exact body among them, go to `debug/sidecar.log` in the telemetry
//! directory.
//!
//! # Platforms
//!
//! | | Linux | macOS | Windows | BSDs | other |
//! |---|---|---|---|---|---|
//! | counting into files | yes | yes | yes | yes | yes |
//! | child runs before `main` | yes | yes | yes | yes | call [`maybe_child`] |
//! | crash reporting | yes, frames named (64-bit ELF) | yes, `crash/no-frames` | no | yes, `crash/no-frames` | no |
//! | child detached, never the host's to reap | double fork | double fork | `DETACHED_PROCESS` | double fork | — |
//! | child closes inherited descriptors | `close_range` (5.9+), else one by one | one by one | handles are not inherited | one by one | — |
//! | a stray `TELEMETRY_CHILD=1` cannot fake a child | token pipe | token pipe | marker argument | token pipe | — |
//! | upload | yes | yes | yes | yes | yes |
//!
//! What a platform cannot do degrades to "not counted", never to a failure of the
//! program.
//!
//! # Guarantees
//! - `start` never panics, never prints (unless asked to log), never blocks on the
//!   network or the child, and never leaves the child holding the program's stdout,
//!   stderr, terminal or any other descriptor it inherited.
//! - The child is never the program's to wait for or reap: a program that waits for
//!   all its children does not hang, and a long-running one gathers no zombies. (On
//!   Linux `start` raises no `SIGCHLD` either; elsewhere the program may see one for
//!   the short-lived intermediate process, which `start` has already reaped.)
//! - Mode `off` (`DO_NOT_TRACK`, the user-wide switch or the tool's own) writes
//!   nothing at all and starts nothing.
//! - A program that neither reports crashes nor is due an upload pays for reading
//!   the mode files and mapping the counter file, nothing more.
//! - Crash counters hold function names and offsets only: never a panic message, a
//!   path, an argument or an environment value.
//! - The only `unsafe` code is the start-up module (the constructor and the detached
//!   spawn), each block with its safety argument.
#![deny(unsafe_code)]

mod child;
mod config;
mod log;
mod process;
#[cfg(windows)]
mod spawn_windows;
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
        #[cfg(all(any(unix, windows), feature = "crash"))]
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
