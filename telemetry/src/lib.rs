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
//! [`start`] reads the user's [`Mode`] and opens this week's counter file, unless it
//! will start no process, the common case: then it leaves the open to the program's
//! first count, and a run that counts nothing opens no file. The program's first count
//! into it (unless the mode is `off`) starts one small
//! background thread, `telemetry-rotate`, that moves counting into the new day's file
//! at midnight UTC, so a server or daemon that outlives its week never counts into a
//! file whose week was reported (a run that counts nothing starts no thread). With
//! crash reporting on, it maps the tool's small crash journal (`local/crash.journal`)
//! and installs handlers that record a crash there as the process dies; no process is
//! started for that. When the journal holds crashes of earlier runs, or an upload is
//! due (at most once a day per telemetry directory), it re-executes the program as a
//! detached child that counts those crashes, each exactly once, and turns expired
//! weeks into reports, uploading them only if the user opted in and only with the
//! counters a public upload config approves. So a crash is counted at the latest by
//! the next run of the program (a program that never runs again uploads nothing
//! either).
//!
//! # Integration guide (five minutes)
//!
//! **1. Depend on it: choose what you pay for.** Start with the light set, counting
//! and crash reporting, no HTTP, TLS or JSON code:
//!
//! ```toml
//! [dependencies]
//! telemetry = { version = "0.1", default-features = false, features = ["crash"] }
//! ```
//!
//! Add `upload` with a TLS implementation only when you publish an upload config
//! (step 5). What each set costs a hello-world tool (Linux x86_64, `--release` with
//! `strip = true`, rustc 1.95; crates counted by `cargo tree -e normal`, the tool
//! included; a cold build compiles every dependency, here on two busy cores, so take
//! the times as ratios). `cargo xtask sizes` measures it again:
//!
//! | features | stripped bytes | over hello world | crates | cold build |
//! |---|---:|---:|---:|---:|
//! | plain hello world, no telemetry | 343 392 | — | 1 | 0 s |
//! | `crash` (recommended start) | 594 216 | +250 KB | 13 | 32 s |
//! | `crash`, `upload`, `native-tls` | 1 724 184 | +1 380 KB | 51 | 181 s |
//! | `crash`, `upload`, `tls` (the default features) | 3 242 560 | +2 899 KB | 49 | 238 s |
//!
//! Most of what `upload` adds is the upload itself (the HTTP client, JSON, reports:
//! about 1 MB with no TLS at all); the TLS choice is the rest:
//!
//! | | `tls` (default) | `native-tls` |
//! |---|---|---|
//! | implementation | rustls with ring, compiled in | the platform's: OpenSSL (Linux, linked dynamically), Schannel (Windows), Security.framework (macOS) |
//! | size over the upload alone | about 1.6 MB | about 120 KB |
//! | building needs | a C compiler (ring) | on Linux OpenSSL's headers and `pkg-config` (Debian: `libssl-dev pkg-config`); nothing on Windows and macOS |
//! | trusted roots | Mozilla's, built in (`webpki-roots`): the same everywhere, updated with the crate | the system's store: what the user's machine and administrator trust |
//! | at run time | nothing | OpenSSL's shared `libssl` on Linux |
//!
//! ```toml
//! telemetry = { version = "0.1", default-features = false, features = ["crash", "upload", "native-tls"] }
//! ```
//!
//! With both `tls` and `native-tls` on, `native-tls` is used (and you pay for both):
//! turn the default features off. Without either, uploads reach only loopback `http://`
//! URLs. A tool that only counts can depend on `telemetry-counter` alone (9 crates).
//! `stack` adds `StackCounter`; `clap` adds [`count_flags`](#counting-flags-and-subcommands-feature-clap).
//!
//! Adding the dependency changes `Cargo.lock`: commit the two together. Until the new
//! lock file is committed, `cargo build --locked` (and CI jobs or `cargo install
//! --locked` that pass it) fails with `cannot update the lock file … because --locked
//! was passed`.
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
//! `program!()` names the program after the binary being compiled (Cargo's
//! `CARGO_BIN_NAME`): a package `fd-find` with `[[bin]] name = "fd"` reports as `fd`,
//! counts into `<user config dir>/telemetry/fd/`, and its users find it with
//! `telemetry --tool fd`. Where Cargo compiles no binary (the macro called in a
//! library crate, a test) it is the package's name; the version is always the
//! package's. Call it in the binary's own source, or choose the name yourself with
//! `Program::new("fd", env!("CARGO_PKG_VERSION"))`.
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
//! - `Programs`: one entry per program, its `Name` and the `Versions` accepted; a name
//!   or version not listed uploads nothing. `Name` is the name the program reports:
//!   its binary's name under `program!()` (`fd`, not the package `fd-find`), or the
//!   name given to `Program::new`.
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
//! from the executable's own symbol table. With `strip = "symbols"` (or `strip = true`,
//! which many tools ship) there are no names: such a build counts its crash *raw*,
//! under the same prefix (`crash/panic`, `crash/signal:SIGSEGV`, …), each frame the
//! executable's build ID and a link-time address (`<build-id>+0x1a2b0`), which a
//! collector holding that build's symbols can name; the same happens to a crash that
//! the next run of an upgraded build counts. A build without a build ID counts
//! `crash/no-frames`, a plain counter approved under `Counters`
//! (`{"Name": "crash/no-frames", "Rate": 1.0}`). To have the tool name its own frames,
//! keep the names and drop only the debug info with
//!
//! ```toml
//! [profile.release]
//! strip = "debuginfo"
//! ```
//!
//! which costs the size of the symbol table (0.6 MB on the 2.2 MB stripped release
//! build of a small clap tool with `crash` and `upload`; names only: no file, line or
//! argument ever enters a counter).
//!
//! **Libraries and plugins.** A `cdylib` (a Python extension, a plugin loaded with
//! `dlopen` or `LoadLibrary`, a Node addon) may call [`start`] too: the executable
//! is then some other program, so `start` counts but never starts a child (no crash
//! reporting, no upload), and the facade's constructor does nothing; the
//! [logger](Config::logger) says so. It tells by where its own code is loaded: inside
//! the main executable's image or not (Linux and Android, 64-bit; macOS; Windows;
//! elsewhere it is taken to be the program).
//!
//! **7. See what it decides.** `Config::logger(std::io::stderr())` in code, or
//! `TELEMETRY_DEBUG=1` in the environment, writes one line per decision (mode and why,
//! counter file, upload due or not, child started or why not); the child's lines, each
//! upload's exact body among them, go to `debug/sidecar.log` in the telemetry
//! directory. A `debug/` once created (by `TELEMETRY_DEBUG=1`, or by hand) keeps that
//! log on every run; `telemetry log --off` removes it.
//!
//! **8. Test in a sandbox.** In your tool's tests, run the tool with its user's
//! directories pointed at a temporary one, so that nothing reaches the real telemetry
//! root of the machine running them and every test starts from a fresh state:
//!
//! ```no_run
//! # let tmp = tempfile::tempdir()?;
//! let status = std::process::Command::new(env!("CARGO"))  // your tool's binary
//!     .env("XDG_CONFIG_HOME", tmp.path())  // Linux and the BSDs: <tmp>/telemetry/
//!     .env("HOME", tmp.path())             // macOS: <tmp>/Library/Application Support
//!     .env("APPDATA", tmp.path())          // Windows: <tmp>/telemetry/
//!     .env_remove("DO_NOT_TRACK")          // CI often sets it, which turns telemetry off
//!     .status()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! then read what was counted with `telemetry --tool mytool csv` (or `dump`) under the
//! same variables. A tool that keeps its data elsewhere (`Config::dir`) is found the
//! same way: unless the mode is off, `start` lists its directory under its name in
//! `<root>/directories`, which `telemetry env` and `telemetry --tool NAME` read (the
//! run that makes the day's counter file does it; the day's other runs do not look).
//!
//! # Counting flags and subcommands (feature `clap`)
//!
//! A tool that parses its command line with clap can count which options and
//! subcommands people use, as Go's `counter.CountFlags` does, in one line after
//! parsing. Only argument *ids* (the names in your clap definition) and subcommand
//! names enter counters, never a value; arguments given by a default or an
//! environment variable are not counted, nor are argument groups or external
//! subcommands. For a prefix `mytool/flag:`:
//!
//! | command line | counters |
//! |---|---|
//! | `mytool --verbose --name SECRET` | `mytool/flag:verbose`, `mytool/flag:name` |
//! | `mytool build --release` | `mytool/flag:build`, `mytool/flag:build/release` |
//! | `mytool remote add --force URL` | `mytool/flag:remote`, `mytool/flag:remote/add`, `mytool/flag:remote/add/force`, `mytool/flag:remote/add/url` |
//!
//! ```toml
//! telemetry = { version = "0.1", default-features = false, features = ["crash", "clap"] }
//! ```
//!
//! With the derive API, keep the `ArgMatches` that `Parser::parse` would hide:
//!
//! ```
//! # #[cfg(feature = "clap")] {
//! use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[arg(long)]
//!     verbose: bool,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     Build {
//!         #[arg(long)]
//!         release: bool,
//!     },
//! }
//!
//! # let args = ["mytool", "--verbose", "build", "--release"];
//! let matches = Cli::command().get_matches_from(args); // `get_matches()` in a tool
//! let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
//! // ... telemetry::start(config) ...
//! telemetry::count_flags("mytool/flag:", &matches);
//! # let Command::Build { release } = cli.command; assert!(cli.verbose && release);
//! # }
//! ```
//!
//! With the builder API, the matches are what `get_matches` returns:
//!
//! ```
//! # #[cfg(feature = "clap")] {
//! use clap::{Arg, ArgAction, Command};
//!
//! let matches = Command::new("mytool")
//!     .arg(Arg::new("verbose").long("verbose").action(ArgAction::SetTrue))
//!     .subcommand(Command::new("build"))
//!     .get_matches_from(["mytool", "build"]); // `get_matches()` in a tool
//! telemetry::count_flags("mytool/flag:", &matches);
//! // Or only which subcommands run: mytool/command:build
//! telemetry::count_subcommands("mytool/command:", &matches);
//! # }
//! ```
//!
//! Approve the ones you want uploaded in the upload config as usual, e.g.
//! `{"Name": "mytool/flag:{verbose,build,build/release}", "Rate": 1.0}`.
//!
//! # Metrics you already record (crate `telemetry-metrics`)
//!
//! A tool that records through the [`metrics`](https://docs.rs/metrics) facade can
//! install the `telemetry-metrics` recorder instead of rewriting its counters:
//! `metrics::counter!("mytool/cache-miss").increment(1)` then counts `mytool/cache-miss`
//! in the same counter file, histograms become bucket counters
//! (`mytool/latency:<10ms`, …) and gauges are ignored. Labels enter a name only from
//! an allow-list, since a label could carry user data:
//!
//! ```text
//! telemetry_metrics::install(
//!     telemetry_metrics::Options::default().allow_label("kind", &["disk", "network"]),
//! )?;
//! metrics::counter!("mytool/fetch", "kind" => "disk").increment(1); // mytool/fetch:kind=disk
//! ```
//!
//! It adds `metrics` and one hash crate to the counter crate's tree (13 crates in
//! all); an increment on a key seen before costs about 20 ns, without allocating.
//!
//! **8. Check that your counters arrive.** A test of your tool can watch a real report
//! travel, on the real clock, without waiting a week. Counts go into the current
//! week, which no uploader commits and no collector accepts before it ends, and data
//! collected on or before the opt-in day is never uploaded; so the test moves the
//! tool's clock into the past instead, with [`Config::clock`]:
//!
//! 1. *Sandbox the tool*: run it with `XDG_CONFIG_HOME` set to a temporary directory
//!    (on macOS and Windows, where that variable is not read, give the tool a test-only
//!    way to set [`Config::dir`]), and without `DO_NOT_TRACK`. Nothing of the
//!    developer's own telemetry is read or written.
//! 2. *Give the tool a test-only clock*: an environment variable or hidden flag of
//!    your own that sets `Config::clock`:
//!
//!    ```no_run
//!    use std::time::{Duration, SystemTime};
//!    # let config = telemetry::Config::new(telemetry::program!());
//!    // Tests only: MYTOOL_TEST_DAYS_AGO=N runs this process's telemetry N days ago.
//!    let days_ago = std::env::var("MYTOOL_TEST_DAYS_AGO").ok().and_then(|n| n.parse::<u64>().ok());
//!    let config = match days_ago {
//!        Some(n) => config.clock(SystemTime::now() - Duration::from_secs(n * 86_400)),
//!        None => config,
//!    };
//!    ```
//! 3. *Opt in, then count, in the past*: run `mytool telemetry on` (the embedded
//!    command, [`telemetry_cli::run`] with that `Config`) 15 days ago, then the
//!    commands whose counters you want to see 14 days ago. A crash
//!    (with [`Config::report_crashes`]) is counted into that week too, by the next run
//!    under the same clock.
//! 4. *Upload on the real clock*: run the tool once more, with its upload URLs
//!    pointing at a collector on loopback, and wait for its telemetry child (a
//!    test-only [`StartResult::wait`]). The week that began 14 days ago has ended, so its
//!    report is built and sent: check that the collector received your counters.
//!    `telemetry-server serve --listen 127.0.0.1:0 --storage file:///TMP …` is the
//!    real collector; the `telemetry-upload` crate's `testing` feature has a smaller
//!    loopback server that records each request.
//!
//! `cargo xtask demo` in this repository does exactly this with an example tool, and
//! prints each step; `tests/tests/back_dated.rs` is the same as a test.
//! [`Config::upload_start_time`] cannot do it: it moves only the upload's clock, so
//! the counts stay in the current week, which has not ended by the real clock.
//!
//! [`telemetry_cli::run`]: https://docs.rs/telemetry-cli
//!
//! # Platforms
//!
//! | | Linux | macOS | Windows | BSDs | other |
//! |---|---|---|---|---|---|
//! | counting into files | yes | yes | yes | yes | yes |
//! | child runs before `main` | yes | yes | yes | yes | call [`maybe_child`] |
//! | crash reporting | yes, frames named from the ELF symbol table (64-bit) | yes, frames named from the Mach-O symbol table (compiled and unit-tested on Linux, never run on a Mac) | yes, frames named from the PE's COFF symbols (GNU toolchain; an MSVC build without them gives `rva:0x…`), run under Wine | yes, `crash/no-frames` | no |
//! | a crash is recorded without starting a process, counted by the next run | yes | yes | yes (no `flock`: two children counting at the same instant could both count a crash) | yes | — |
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
//! - A program that neither finds a crash in its journal nor is due an upload starts
//!   no process. `start` reads the mode files and, with crash reporting on, opens,
//!   reads and maps the crash journal and installs the handlers. Without uploads asked
//!   for, that is all: the counter file is left to the program's first count, which
//!   opens and maps it on the thread that counts (and writes the decision log's lines
//!   about it). A program that asks for uploads maps it in `start`.
//! - Crash counters hold function names and offsets only: never a panic message, a
//!   path, an argument or an environment value.
//! - In a library loaded by another program, `start` never re-executes that program
//!   and nothing runs when the library is loaded: counting only.
//! - The only `unsafe` code is the start-up module (the constructor and the detached
//!   spawn), each block with its safety argument.
#![deny(unsafe_code)]

mod child;
mod config;
mod crash;
#[cfg(feature = "clap")]
mod flags;
mod log;
mod process;
mod registry;
#[cfg(windows)]
mod spawn_windows;
mod startup;
#[cfg(feature = "upload")]
mod token;

use std::fmt;
use std::io;

pub use config::Config;
#[cfg(feature = "clap")]
pub use flags::{count_flags, count_subcommands};
pub use telemetry_counter as counter;
pub use telemetry_counter::program;
pub use telemetry_internal::{Ambient, Dir, Mode, Program};

/// Starts telemetry for the program described by `config`: see the crate docs.
///
/// Never panics, never prints (unless a [logger](Config::logger) or
/// `TELEMETRY_DEBUG=1` asks for lines), never blocks on the network or the child.
pub fn start(config: Config) -> StartResult {
    startup::keep_constructor_linked();
    let env = process::StartInputs::from_process();
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
/// program that wants to be explicit. It takes the configuration that [`start`] will
/// get, so that the two calls read alike and outside code written as
/// `maybe_child(&config)` keeps compiling; the child itself learns everything from its
/// parent and reads nothing from it.
///
/// ```no_run
/// let config = telemetry::Config::new(telemetry::program!());
/// telemetry::maybe_child(&config);
/// // … work of the program's own that the child must not repeat …
/// let _ = telemetry::start(config);
/// ```
pub fn maybe_child(config: &Config) {
    let _ = config;
    startup::keep_constructor_linked();
    if child::verified() && startup::in_main_executable() {
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

    /// Waits for the telemetry child to finish (it counts waiting crashes and makes
    /// a due upload, then exits), for tests. Programs never need to call it.
    pub fn wait(mut self) {
        let Some(started) = self.child.take() else {
            return;
        };
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
