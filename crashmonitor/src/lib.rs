//! Counts a program's crashes — panics, fatal signals and aborts that end the
//! process — as stack counters that name only code, never data.
//!
//! Two processes of the same executable take part. The program (the *parent*) calls
//! [`parent()`] with the write end of a pipe: it writes a sentinel line, then installs a
//! panic hook and handlers for `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGABRT`
//! that, on a crash, write the kind of crash and the crashing thread's raw instruction
//! addresses to the pipe and then let the crash take its course. The telemetry *child*,
//! which `telemetry::start` runs with the read end as its stdin, calls [`child`]: it
//! reads until the parent is gone, names the addresses in its own copy of the
//! executable, and increments one counter such as
//!
//! ```text
//! crash/panic
//! mytool::config::load+0x8c
//! mytool::main+0x1f3
//! ```
//!
//! Other names: `crash/abort`, `crash/signal:SIGSEGV` (`SIGBUS`, `SIGILL`, `SIGFPE`),
//! `crash/malformed` for input no parent writes, `crash/no-frames` for a report with
//! no frame that can be named. [`stop`] ends reporting early and lets the child finish
//! (for tests that wait for it). `parent` and `stop` exist on Unix and Windows; `child`
//! compiles everywhere and names frames on Linux, macOS and Windows (64-bit).
//!
//! The child side can be tried on its own with an in-memory input:
//!
//! ```
//! use telemetry_crashmonitor::{ChildOutcome, child};
//! use telemetry_internal::Mode;
//!
//! let dir = tempfile::tempdir()?;
//! let program = telemetry_counter::Program::new("mytool", "1.0.0");
//!
//! // A parent that exits normally leaves only its sentinel line: nothing is counted.
//! let clean = child(&b"sentinel 55d0c0a01230\n"[..], dir.path(), program.clone(), Mode::Local);
//! assert_eq!(clean, ChildOutcome::CleanExit);
//!
//! // Anything a parent would not write counts as malformed, and none of it is kept.
//! let garbage = child(&b"sentinel 1\ncrash panic: password=hunter2\nend\n"[..], dir.path(), program, Mode::Local);
//! assert_eq!(garbage, ChildOutcome::Counted("crash/malformed".to_owned()));
//! let file = std::fs::read_dir(dir.path().join("local"))?
//!     .filter_map(Result::ok)
//!     .find(|e| e.path().extension().is_some_and(|x| x == "count"))
//!     .expect("a counter file");
//! let counts = telemetry_counter::read_file(file.path())?;
//! assert_eq!(counts.count["crash/malformed"], 1);
//! assert!(!std::fs::read(file.path())?.windows(7).any(|w| w == b"hunter2"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Nothing but code names.** The pipe carries fixed words and hex addresses only;
//!   the panic message and payload are never read. The child builds names from a fixed
//!   set of kinds and the names of functions in its own executable — demangled,
//!   without hash, file path, line or message — so no program data can become a
//!   counter name (invariant 3 of ARCHITECTURE.md).
//! - **The crash is unchanged.** The previous panic hook still runs (the program's panic
//!   output is as before) and the previous signal handlers still run, so std's
//!   "has overflowed its stack" message appears; a signal whose previous action was the
//!   default is re-delivered with the default action, so the process dies by the same
//!   signal, with the same exit status and core dump, as it would have. Once the report
//!   is written, every other watched signal whose action was the default gets it back,
//!   so a crash that raises a second signal (std's stack-overflow handler calls
//!   `abort`) dies of it directly instead of needing a second signal frame on a nearly
//!   full alternate stack. A fault whose signal the program ignored (`SIG_IGN`) gets
//!   the default action, as the kernel gives it (an ignored fault would recur
//!   forever); a previous handler that keeps returning into the same fault is given up
//!   on after 10 000 identical faults in a row, with the default action.
//! - **A fault the counter crate repairs is no crash.** A `SIGBUS` inside a counter
//!   file's mapping (another process truncated the file) is handed to
//!   `telemetry_counter::repair_fault` first, whichever handler was installed first,
//!   and the program goes on.
//! - **The signal path is async-signal-safe** as far as a stack walk can be: no
//!   allocation, no locks, one `write(2)` of at most a few hundred bytes to a
//!   non-blocking pipe. The walk uses the system unwinder (`_Unwind_Backtrace`), which
//!   POSIX does not list as async-signal-safe; it is warmed up at install time, and on
//!   glibc 2.35+ it finds unwind tables without taking a lock. On an older glibc a
//!   crash inside `dlopen` could hang the dying process instead of killing it.
//! - **Nothing blocks or dies on our account.** The pipe is moved above fd 2 if it
//!   landed on 0, 1 or 2 (a daemon that closed its stdio), so the program's own
//!   writes to stderr never reach the child; it is non-blocking and close-on-exec
//!   (it is ours alone: no descriptor of the program changes); a write to a pipe
//!   whose reader is gone fails quietly, without `SIGPIPE`, even where the program
//!   restored `SIGPIPE`'s default action.
//! - **One report per process**, of at most 16 frames, for the crash that ends it;
//!   the child counts at most one counter and opens the counter file itself before
//!   counting (Go's monitor did not and dropped every crash: golang/go#69681).
//! - **The pipe is never closed under a writer.** [`stop`] closes it only once no
//!   thread can still be writing a report to it (a descriptor number is never reused
//!   under a late write); if one still is after about 100 ms, the pipe stays open.
//! - Neither side panics or prints.
//!
//! # What is captured
//! **Only a crash is a crash**: what is counted is what ends the process. A panic is
//! `crash/panic` only when it ends the process; a panic the program survives (caught
//! by `catch_unwind`, by a thread pool or async runtime, a spawned thread's panic
//! that is joined or ignored, a failing test in a harness that goes on) is not
//! counted at all, and never uses up the one report: a fatal crash that follows any
//! number of them is reported. The hook only keeps the panic's frames; they are
//! written when it turns out to end the process:
//! - **A panic of the main thread that ends `main`** (the process exits with std's
//!   panic status, 101): reported on the way out, by an `on_exit` handler (glibc,
//!   which tells the status). Where only `atexit` exists (macOS, musl, Windows) the
//!   status is unknown: a main-thread panic followed by any exit is counted, so there
//!   a program that catches a panic of its main thread and then exits normally counts
//!   one `crash/panic`.
//! - **A panic that aborts**: in `panic = "abort"` builds, a panic during a panic, a
//!   panic that cannot unwind (out of an `extern "C"` function): the abort on the
//!   panicking thread is reported as `crash/panic` with the frames of the panic that
//!   aborted (for a double panic, std's "panic in a destructor during cleanup"
//!   reports from the frame being unwound), on any thread.
//! - **A spawned thread's panic** ends the process only when the program makes it
//!   (say, by unwrapping the `join`): that later panic, or exit, is what is counted.
//! - **Stack overflow**: reported as `crash/signal:SIGSEGV` (or `SIGBUS`) from the
//!   overflowing function, on threads with an alternate signal stack: the main thread,
//!   threads std spawned, and the thread that called [`parent()`] (which gets one of
//!   64 KiB, replacing std's smaller one). A thread created by C code without one dies
//!   without a report.
//! - **`abort()` and `std::process::abort`**, including Rust's out-of-memory handler
//!   (`memory allocation of N bytes failed`): `crash/abort` from the caller of abort.
//! - **Not captured**: the kernel's OOM killer and any other `SIGKILL`, `SIGTERM` or
//!   `SIGINT`, `std::process::exit` with a failure status, a crash before [`parent()`]
//!   ran, panics after the program replaced the panic hook with `set_hook` (a hook
//!   that chains to the one it took keeps ours), faults handled by a handler installed
//!   after ours that never calls ours, and frames in shared libraries (named `?+0x0`;
//!   only the executable is symbolized). A `SIGSEGV` or `SIGBUS` sent with `kill` or
//!   `raise` is reported, although std's handler lets the process survive it.
//!   A program whose own earlier-installed `SIGSEGV` handler recovers from faults (a
//!   JIT, a wasm runtime) gets its first recovered fault counted: such a program
//!   should install its handler after calling [`parent()`].
//! - Frames are named by the executable's symbol table: a binary built with
//!   `strip = "symbols"` has no names and counts `crash/no-frames`. 64-bit ELF
//!   (Linux), Mach-O (macOS) and PE (Windows) are read.
//!
//! # Windows
//! Panics are reported by the same hook. Fatal exceptions reach an unhandled-exception
//! filter: an access violation, in-page error or stack overflow counts as
//! `crash/signal:SIGSEGV`, a misaligned access `SIGBUS`, an illegal or privileged
//! instruction `SIGILL`, an arithmetic fault `SIGFPE` (the C runtime's own names for
//! them); the C runtime's `abort()` counts `crash/abort` through its `SIGABRT`.
//! `std::process::abort` (so also a double panic or an allocation failure) ends the
//! process with `__fastfail`, which no handler sees: not counted. Neither is an
//! exception some handler catches, nor an unhandled C++ exception. Frames are named by
//! the COFF symbol table that GNU `ld` leaves in `*-windows-gnu` executables; an MSVC
//! build keeps its names in a PDB, which is not read, so its frames are named by the
//! address of their function in the image (`rva:0x1a2b0+0x1c`, from `.pdata`), which
//! the vendor can name with the build's PDB.

#![deny(unsafe_code)]

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use telemetry_counter::{OpenStatus, Program};
use telemetry_internal::Mode;

#[cfg(any(unix, windows, test, feature = "fuzzing"))]
mod little_endian;
mod naming;
#[cfg(unix)]
mod parent;
#[cfg(any(unix, windows))]
mod report;
#[cfg(unix)]
#[allow(unsafe_code)]
mod signal;
#[cfg(all(unix, not(target_os = "macos")))]
mod symbols;
mod wire;
// Windows: the same parent side over a handle, the exception filter (the Windows
// counterpart of `signal`, the crate's other `unsafe` module), and PE symbols.
#[cfg(windows)]
mod parent_windows;
#[cfg(any(windows, test, feature = "fuzzing"))]
mod pe;
// macOS: the Mach-O symbol table (the parser is tested everywhere).
#[cfg(any(target_os = "macos", test, feature = "fuzzing"))]
mod macho;
#[cfg(windows)]
#[allow(unsafe_code)]
mod signal_windows;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the readers of
/// bytes that another process or a broken disk controls. Not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::little_endian::read_from;
    use crate::naming::Symbolize;

    /// The crash pipe reader on `data`: whether it was accepted.
    pub fn wire_parse(data: &[u8]) -> bool {
        crate::wire::parse(data).is_ok()
    }

    /// How many of the addresses the last 32 bytes of `image` give (four, little
    /// endian) the symbol table a reader found (if any) names.
    fn name_all(symbols: Option<impl Symbolize>, image: &[u8]) -> usize {
        symbols.map_or(0, |s| {
            image
                .rchunks_exact(8)
                .take(4)
                .filter_map(|w| w.try_into().ok().map(u64::from_le_bytes))
                .filter(|&a| s.function(a as usize).is_some())
                .count()
        })
    }

    /// The ELF symbol-table reader on `image`, then lookups (see `name_all`).
    #[cfg(all(unix, not(target_os = "macos")))]
    pub fn elf_symbols(image: &[u8]) -> usize {
        let symbols = crate::symbols::ElfSymbols::read_with(read_from(image), 0);
        name_all(symbols.ok().flatten(), image)
    }

    /// The PE reader on `image`, then lookups (see `name_all`).
    pub fn pe_symbols(image: &[u8]) -> usize {
        let symbols = crate::pe::PeSymbols::read(read_from(image), 0);
        name_all(symbols.ok().flatten(), image)
    }

    /// The Mach-O reader (x86-64 slice of a universal file) on `image`, its loaded
    /// extent, then lookups (see `name_all`).
    pub fn macho_symbols(image: &[u8]) -> usize {
        let _ = crate::macho::loaded_extent(image);
        let symbols = crate::macho::MachSymbols::read(read_from(image), 0x0100_0007);
        name_all(symbols.ok().flatten(), image)
    }
}

/// Installs crash reporting in this process, reporting to `pipe` (the write end of a
/// pipe whose read end is the telemetry child's stdin).
///
/// Writes the sentinel line, then installs a panic hook chained to the current one and
/// handlers for `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGABRT` chained to the
/// current ones, on an alternate signal stack. Call it once, early in `main`; later
/// calls return [`CrashMonitorError::AlreadyInstalled`] and change nothing. The pipe
/// stays open until the process ends. Never panics and never prints.
#[cfg(unix)]
pub fn parent(pipe: impl Into<std::os::fd::OwnedFd>) -> Result<(), CrashMonitorError> {
    parent::install(pipe.into())
}

/// Installs crash reporting in this process, reporting to `pipe` (the write end of a
/// pipe whose read end is the telemetry child's stdin, such as a `ChildStdin`).
///
/// Writes the sentinel line, then installs a panic hook chained to the current one, an
/// unhandled-exception filter chained to the current one (access violations, stack
/// overflows, illegal instructions, arithmetic faults) and a C runtime `SIGABRT`
/// handler. Otherwise as on Unix.
#[cfg(windows)]
pub fn parent(pipe: impl Into<std::os::windows::io::OwnedHandle>) -> Result<(), CrashMonitorError> {
    parent_windows::install(pipe.into())
}

/// Stops crash reporting in this process and closes the pipe: as on Unix.
#[cfg(windows)]
pub fn stop() {
    signal_windows::close_pipe();
}

/// Stops crash reporting in this process and closes the pipe, so the child reads end of
/// file now, as if the process had exited without a crash, instead of at exit.
///
/// For callers that must wait for the child while this process lives on (tests: the
/// facade's `StartResult::wait`). The hook and handlers stay installed but report
/// nothing; [`parent()`] cannot install again. Does nothing if [`parent()`] never ran.
#[cfg(unix)]
pub fn stop() {
    signal::close_pipe();
}

/// Runs the child side: reads `input` to end of file (that is, until the parent is
/// gone), and counts the parent's crash, if it reported one, into the counter file of
/// `program` in the telemetry directory `dir`, which it opens itself, under `mode` as
/// the caller decided it (the telemetry child reads the environment once, at its
/// start; `Mode::Off` records nothing).
///
/// Counts at most one counter; never panics, never prints. Input that our parent would
/// not write counts `crash/malformed`, whatever it contains; nothing of it is kept.
pub fn child(input: impl Read, dir: &Path, program: Program, mode: Mode) -> ChildOutcome {
    child_counting(input, dir, program, mode, None)
}

/// [`child`], counting into the file of the week of `day` instead of the day the crash
/// is read: for a program that runs under a pretended clock (tests that back-date a
/// week, `telemetry::Config::clock`), so that its crash lands in the same week as its
/// other counts.
pub fn child_on(
    input: impl Read,
    dir: &Path,
    program: Program,
    mode: Mode,
    day: telemetry_internal::Day,
) -> ChildOutcome {
    child_counting(input, dir, program, mode, Some(day))
}

fn child_counting(
    mut input: impl Read,
    dir: &Path,
    program: Program,
    mode: Mode,
    day: Option<telemetry_internal::Day>,
) -> ChildOutcome {
    let data = match read_to_end_capped(&mut input) {
        Ok(Some(data)) => data,
        Ok(None) => return count(naming::MALFORMED.to_owned(), dir, program, mode, day),
        Err(err) => return ChildOutcome::ReadFailed(err.kind()),
    };
    let name = match wire::parse(&data) {
        Ok(wire::Input::Empty) => return ChildOutcome::NoInput,
        Ok(wire::Input::Clean) => return ChildOutcome::CleanExit,
        Ok(wire::Input::Crash { sentinel, report }) => {
            std::panic::catch_unwind(|| crash_name(&report, sentinel))
                .unwrap_or_else(|_| naming::NO_FRAMES.to_owned())
        }
        Err(_) => naming::MALFORMED.to_owned(),
    };
    count(name, dir, program, mode, day)
}

fn count(
    name: String,
    dir: &Path,
    program: Program,
    mode: Mode,
    day: Option<telemetry_internal::Day>,
) -> ChildOutcome {
    // Open before counting: golang/go#69681. The mode is the caller's decision (it
    // read the environment at its boundary); the day is the crash's, unless the
    // caller pretends one.
    let today = day.unwrap_or_else(|| telemetry_internal::Day::of(std::time::SystemTime::now()));
    let dir = telemetry_internal::Dir::new(dir);
    let status = telemetry_counter::open_with_mode(&dir, program, mode, today);
    telemetry_counter::inc(&name);
    match status {
        OpenStatus::Counting(_) => ChildOutcome::Counted(name),
        _ => ChildOutcome::NotRecorded(name),
    }
}

/// Reads everything; keeps at most [`wire::MAX_INPUT`] bytes. `None` if there was more.
fn read_to_end_capped(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut overflow = false;
    loop {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let room = wire::MAX_INPUT.saturating_sub(data.len());
                overflow |= n > room;
                data.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(if overflow { None } else { Some(data) })
}

#[cfg(target_os = "macos")]
fn crash_name(report: &wire::Report, parent_sentinel: usize) -> String {
    let symbols = macho::MachSymbols::current_exe();
    let symbols: &dyn naming::Symbolize = match &symbols {
        Some(s) => s,
        None => &naming::NoSymbols,
    };
    naming::counter_name(report, parent_sentinel, wire::sentinel(), symbols)
}

#[cfg(all(unix, not(target_os = "macos")))]
fn crash_name(report: &wire::Report, parent_sentinel: usize) -> String {
    let symbols =
        signal::exe_image().and_then(|image| symbols::ElfSymbols::current_exe(image.bias));
    let symbols: &dyn naming::Symbolize = match &symbols {
        Some(s) => s,
        None => &naming::NoSymbols,
    };
    naming::counter_name(report, parent_sentinel, wire::sentinel(), symbols)
}

#[cfg(windows)]
fn crash_name(report: &wire::Report, parent_sentinel: usize) -> String {
    let symbols =
        signal_windows::exe_image().and_then(|image| pe::PeSymbols::current_exe(image.start));
    let symbols: &dyn naming::Symbolize = match &symbols {
        Some(s) => s,
        None => &naming::NoSymbols,
    };
    naming::counter_name(report, parent_sentinel, wire::sentinel(), symbols)
}

#[cfg(not(any(unix, windows)))]
fn crash_name(report: &wire::Report, parent_sentinel: usize) -> String {
    naming::counter_name(
        report,
        parent_sentinel,
        wire::sentinel(),
        &naming::NoSymbols,
    )
}

/// What [`child`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildOutcome {
    /// The parent wrote its sentinel and nothing else: it exited without crashing.
    /// Nothing was counted.
    CleanExit,
    /// The input was empty: the parent never installed the monitor (or died before it
    /// could). Nothing was counted: this is not evidence of a crash.
    NoInput,
    /// This counter, a stack counter name (`crash/panic\nframe…`) or one of
    /// `crash/malformed` and `crash/no-frames`, was incremented in the counter file.
    Counted(String),
    /// This counter was incremented, but the counter file could not be opened (mode
    /// `off`, an unwritable or corrupt directory), so the count stayed in memory.
    NotRecorded(String),
    /// Reading the input failed before end of file. Nothing was counted.
    ReadFailed(io::ErrorKind),
}

/// Why [`parent()`] did not install crash reporting.
#[derive(Debug)]
#[non_exhaustive]
pub enum CrashMonitorError {
    /// [`parent()`] was called before in this process; crash reporting is already on.
    AlreadyInstalled,
    /// [`parent()`] was called while the thread was panicking; nothing was installed.
    Panicking,
    /// The sentinel could not be written to the pipe (the child is gone, say); nothing
    /// was installed.
    Pipe(io::Error),
    /// The handler for this signal could not be installed; the panic hook and the
    /// handlers before it in the list are installed.
    Signal {
        /// The signal's name, e.g. `SIGSEGV`.
        signal: &'static str,
        /// The error from `sigaction`.
        source: io::Error,
    },
}

impl fmt::Display for CrashMonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashMonitorError::AlreadyInstalled => {
                f.write_str("crash monitor already installed in this process")
            }
            CrashMonitorError::Panicking => {
                f.write_str("crash monitor not installed: called while panicking")
            }
            CrashMonitorError::Pipe(err) => {
                write!(
                    f,
                    "crash monitor not installed: cannot write to the child's pipe: {err}"
                )
            }
            CrashMonitorError::Signal { signal, source } => {
                write!(f, "crash monitor cannot handle {signal}: {source}")
            }
        }
    }
}

impl std::error::Error for CrashMonitorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CrashMonitorError::Pipe(err) | CrashMonitorError::Signal { source: err, .. } => {
                Some(err)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that fails after some bytes.
    struct Failing(usize);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("boom"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn reads_to_end_but_keeps_a_bounded_prefix() {
        let big = vec![b'a'; wire::MAX_INPUT + 1];
        assert_eq!(read_to_end_capped(&mut &big[..]).unwrap(), None);
        let fits = vec![b'a'; wire::MAX_INPUT];
        assert_eq!(
            read_to_end_capped(&mut &fits[..]).unwrap().map(|d| d.len()),
            Some(fits.len())
        );
        assert!(read_to_end_capped(&mut Failing(10)).is_err());
    }

    #[test]
    fn outcomes_that_count_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let program = Program::new("crashtest", "1.0.0");
        assert_eq!(
            child(&b""[..], dir.path(), program.clone(), Mode::Local),
            ChildOutcome::NoInput
        );
        assert_eq!(
            child(
                &b"sentinel 10\n"[..],
                dir.path(),
                program.clone(),
                Mode::Local
            ),
            ChildOutcome::CleanExit
        );
        assert_eq!(
            child(Failing(3), dir.path(), program, Mode::Local),
            ChildOutcome::ReadFailed(io::ErrorKind::Other)
        );
        assert!(
            !dir.path().join("local").exists(),
            "nothing opened, nothing written"
        );
    }

    #[test]
    fn errors_say_what_happened() {
        let err = CrashMonitorError::Signal {
            signal: "SIGBUS",
            source: io::Error::other("x"),
        };
        assert_eq!(err.to_string(), "crash monitor cannot handle SIGBUS: x");
        assert!(std::error::Error::source(&err).is_some());
    }
}
