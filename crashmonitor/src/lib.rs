//! Counts a program's crashes — panics, fatal signals and aborts that end the
//! process — as stack counters that name only code, never data.
//!
//! The program calls [`install`] (`telemetry::start` does, when crash reporting is
//! on): it maps the tool's crash journal (`local/crash.journal`, a small file of 16
//! record slots) and installs a panic hook and handlers for `SIGSEGV`, `SIGBUS`,
//! `SIGILL`, `SIGFPE` and `SIGABRT` that, on a crash, write the kind of crash, the
//! executable's build ID and the crashing thread's raw instruction addresses
//! (link-time addresses) into a free slot with plain stores, then let the crash take
//! its course. No process is started and nothing else is written on a run that does
//! not crash. [`install`] also says whether the journal holds crashes; if so
//! `telemetry::start` starts its child, which calls [`process`]: it names the
//! addresses with its own executable's symbols when the record is of the same build,
//! and increments, exactly once per crash, one counter such as
//!
//! ```text
//! crash/panic
//! mytool::config::load+0x8c
//! mytool::main+0x1f3
//! ```
//!
//! Other names: `crash/abort`, `crash/signal:SIGSEGV` (`SIGBUS`, `SIGILL`, `SIGFPE`),
//! `crash/malformed` for a record no crashing process writes, `crash/no-frames` for a
//! crash with no frame that can be named. A record of another build (the program was
//! upgraded since), or of a build without a symbol table (`strip = true`), is counted
//! raw: each frame `<build-id>+0x<link-time address>`, which the collector names from
//! uploaded symbols (`telemetry_counter::stack_name::is_raw_frame`). [`install`] and
//! [`stop`] exist on Unix and Windows; [`process`] compiles everywhere and names
//! frames on Linux, macOS and Windows (64-bit).
//!
//! The journal and its exactly-once processing can be tried on their own:
//!
//! ```
//! use telemetry_crashmonitor::{JournalOutcome, has_pending, process};
//! use telemetry_internal::{Day, Mode, Program};
//!
//! let dir = tempfile::tempdir()?;
//! let program = Program::new("mytool", "1.0.0");
//! let today = Day::of(std::time::SystemTime::now());
//!
//! // No journal yet (no crash recorded): nothing to do, nothing written.
//! assert!(!has_pending(dir.path()));
//! let outcome = process(dir.path(), &program, Mode::Local, today);
//! assert_eq!(outcome, JournalOutcome::Empty);
//! assert!(!dir.path().join("local").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Nothing but code names.** A record holds a fixed kind, the build ID, the
//!   program's name, version and toolchain, and addresses; the panic message and
//!   payload are never read. The child builds names from the fixed set of kinds and
//!   the names of functions in its own executable — demangled, without hash, file
//!   path, line or message — or raw hex, so no program data can become a counter
//!   name (invariant 3 of ARCHITECTURE.md).
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
//!   allocation, no locks; the record is written into the mapped journal with atomic
//!   stores (a compare-and-swap claims a slot), under 1 KiB, and no system call is
//!   made for it but `getpid`. The walk uses the system unwinder (`_Unwind_Backtrace`), which
//!   POSIX does not list as async-signal-safe; it is warmed up at install time, and on
//!   glibc 2.35+ it finds unwind tables without taking a lock. On an older glibc a
//!   crash inside `dlopen` could hang the dying process instead of killing it.
//! - **Nothing blocks or dies on our account.** No descriptor is kept (the journal
//!   is mapped and its descriptor closed), no process is started and no pipe is held;
//!   a journal that cannot be made or mapped (a full disk, a planted link or FIFO, a
//!   read-only directory) means crash reporting is off for that run, never a failure
//!   of the host. Its blocks are written in full when it is created, so a store into
//!   the mapping never faults on a full disk. A journal truncated by another process
//!   while this one maps it does not turn the crash into a `SIGBUS` death either: on
//!   Unix its range is repaired as a counter file's is (a private zero page over each
//!   cut page, `telemetry_counter::watch_shared_mapping`; nothing is written to the
//!   file), so the process dies of its own signal and that one report is lost with
//!   the journal; the next run replaces the journal. (Only a crash that is itself a
//!   `SIGBUS` still dies of `SIGBUS` there without its report: the kernel does not
//!   deliver a second one to its handler.) Windows refuses to cut a mapped file.
//! - **One report per process**, of at most 32 frames, for the crash that ends it,
//!   counted at the latest by the next `start` of a program that shares the tool's
//!   directory, exactly once also when processes crash at the same moment (each takes
//!   its own slot) and when the counting child is killed at any point (see the
//!   `journal` module's protocol). Sixteen crashes can wait; a seventeenth before any
//!   run counts them is lost.
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
//!   threads std spawned, and the thread that called [`install`] (which gets one of
//!   64 KiB, replacing std's smaller one). A thread created by C code without one dies
//!   without a report.
//! - **`abort()` and `std::process::abort`**, including Rust's out-of-memory handler
//!   (`memory allocation of N bytes failed`): `crash/abort` from the caller of abort.
//! - **Not captured**: the kernel's OOM killer and any other `SIGKILL`, `SIGTERM` or
//!   `SIGINT`, `std::process::exit` with a failure status, a crash before [`install`]
//!   ran, panics after the program replaced the panic hook with `set_hook` (a hook
//!   that chains to the one it took keeps ours), faults handled by a handler installed
//!   after ours that never calls ours, and frames in shared libraries (named `?+0x0`;
//!   only the executable is named). A `SIGSEGV` or `SIGBUS` sent with `kill` or
//!   `raise` is reported, although std's handler lets the process survive it.
//!   A program whose own earlier-installed `SIGSEGV` handler recovers from faults (a
//!   JIT, a wasm runtime) gets its first recovered fault counted: such a program
//!   should install its handler after calling [`install`].
//! - Frames are named by the executable's symbol table: a binary built with
//!   `strip = "symbols"` has no names and counts its stacks raw
//!   (`<build-id>+0x<address>`, for the collector); without a build ID either,
//!   `crash/no-frames`. 64-bit ELF (Linux), Mach-O (macOS) and PE (Windows) are read.
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
use std::io;
use std::path::Path;

use telemetry_internal::{Day, Dir, Mode, Program};

mod journal;
#[cfg(any(unix, windows, test, feature = "fuzzing"))]
mod little_endian;
mod naming;
#[cfg(any(unix, windows))]
mod parent;
mod record;
#[cfg(any(unix, windows))]
mod report;
#[cfg(unix)]
#[allow(unsafe_code)]
mod signal;
#[cfg(all(unix, not(target_os = "macos")))]
mod symbols;
// Windows: the exception filter (the Windows counterpart of `signal`, the crate's
// other `unsafe` module), and PE symbols.
#[cfg(any(windows, test, feature = "fuzzing"))]
mod pe;
// macOS: the Mach-O symbol table (the parser is tested everywhere).
#[cfg(any(target_os = "macos", test, feature = "fuzzing"))]
mod macho;
#[cfg(windows)]
#[allow(unsafe_code)]
mod signal_windows;

/// The platform module: mapping, handlers, stack walks.
#[cfg(unix)]
use signal as platform;
#[cfg(windows)]
use signal_windows as platform;

pub use journal::JournalOutcome;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the readers of
/// bytes that another process or a broken disk controls. Not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::little_endian::read_from;
    use crate::naming::Symbolize;

    /// The crash journal's readers on `data`, read as a journal file as the telemetry
    /// child reads it: the header, each slot's state word, the record of every slot
    /// that is not free (each accepted one also named raw), and the apply area of an
    /// applying slot. How many slots hold a record it accepts or an apply area settles.
    pub fn journal_parse(data: &[u8]) -> usize {
        use crate::record::{APPLY_OFFSET, APPLYING, FREE, HEADER_WORDS, SLOT_WORDS, SLOTS};
        let words = crate::record::words_of(data.get(..APPLY_OFFSET).unwrap_or(data));
        let _ = crate::record::header_ok(&words);
        let area = data
            .get(APPLY_OFFSET..)
            .and_then(crate::journal::apply_area_slot);
        (0..SLOTS)
            .filter(|&index| {
                let start = HEADER_WORDS + index * SLOT_WORDS;
                let Some(slot) = words.get(start..start + SLOT_WORDS) else {
                    return false;
                };
                match crate::record::state_of(crate::record::state_in(&words, index)).0 {
                    FREE => false,
                    APPLYING if area == Some(index) => true,
                    _ => crate::record::parse(slot)
                        .is_ok_and(|r| crate::naming::raw_name(&r).starts_with("crash/")),
                }
            })
            .count()
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

/// Installs crash reporting in this process for `program`, recording into the crash
/// journal of the telemetry directory `dir` (created if needed, with `local/`).
///
/// Maps the journal, then installs a panic hook chained to the current one and
/// handlers for `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGABRT` chained to the
/// current ones, on an alternate signal stack (on Windows: an unhandled-exception
/// filter chained to the current one and a C runtime `SIGABRT` handler). Returns
/// whether the journal holds crashes that wait to be counted by [`process`]: the
/// caller starts its telemetry child then. Call it once, early in `main`; later calls
/// return [`CrashMonitorError::AlreadyInstalled`] and change nothing. Never panics and
/// never prints.
#[cfg(any(unix, windows))]
pub fn install(dir: &Path, program: &Program) -> Result<bool, CrashMonitorError> {
    parent::install(&Dir::new(dir), program)
}

/// Stops crash reporting in this process: no crash is recorded from now on. The hook
/// and handlers stay installed but record nothing; [`install`] cannot install again.
/// Does nothing if [`install`] never ran. For programs (tests) that go on to crash on
/// purpose without wanting it counted.
#[cfg(any(unix, windows))]
pub fn stop() {
    report::stop();
}

/// Whether the crash journal of the telemetry directory `dir` holds crashes that wait
/// to be counted. Reads the slots' state words (one `pread`); false without a journal.
pub fn has_pending(dir: &Path) -> bool {
    journal::has_pending(&Dir::new(dir))
}

/// Counts the crashes recorded in the journal of the telemetry directory `dir`, each
/// exactly once, into the counter file of the crashed program's name and version for
/// the week of `day`, under `mode` as the caller decided it (`Mode::Off` reads and
/// writes nothing). `program` is the processing program: a record that cannot be
/// trusted counts `crash/malformed` in its file. Run by the telemetry child.
///
/// Only one process at a time processes a journal (an exclusive lock, `flock` on Unix
/// and `LockFileEx` on Windows, taken without waiting: [`JournalOutcome::Busy`] if
/// another holds it). A run killed at any point is finished by the next one without
/// losing or doubling a count (see the journal module's protocol). Never panics, never
/// prints.
pub fn process(dir: &Path, program: &Program, mode: Mode, day: Day) -> JournalOutcome {
    let dir = Dir::new(dir);
    let alive = |pid: u32| process_alive(pid);
    std::panic::catch_unwind(|| journal::process(&dir, program, mode, day, &alive))
        .unwrap_or(JournalOutcome::Failed(io::ErrorKind::Other))
}

#[cfg(any(unix, windows))]
fn process_alive(pid: u32) -> bool {
    platform::process_alive(pid)
}

/// Elsewhere no process can be asked about: a record being written is left alone.
#[cfg(not(any(unix, windows)))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Why [`install`] did not install crash reporting.
#[derive(Debug)]
#[non_exhaustive]
pub enum CrashMonitorError {
    /// [`install`] was called before in this process; crash reporting is already on.
    AlreadyInstalled,
    /// [`install`] was called while the thread was panicking; nothing was installed.
    Panicking,
    /// The crash journal could not be opened, created or mapped (an unwritable or full
    /// directory, a planted link or FIFO); nothing was installed.
    Journal(io::Error),
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
            CrashMonitorError::Journal(err) => {
                write!(
                    f,
                    "crash monitor not installed: crash journal unusable: {err}"
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
            CrashMonitorError::Journal(err) | CrashMonitorError::Signal { source: err, .. } => {
                Some(err)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
