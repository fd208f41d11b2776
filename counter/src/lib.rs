//! Lock-free counters kept in a memory-mapped weekly file, in the v1 counter file
//! format of Go's `golang.org/x/telemetry`, byte for byte.
//!
//! A program declares counters as `static`s and increments them; once it opens the
//! counter file (usually `telemetry::start` does), every increment is a single atomic
//! add in shared memory, exact across threads and across processes counting into the
//! same file, and durable when the process exits, since the file is the memory.
//!
//! ```
//! use telemetry_counter::{Counter, program};
//!
//! static ERRORS: Counter = Counter::new("mytool/errors");
//!
//! let dir = tempfile::tempdir()?;
//! let status = telemetry_counter::open_dir(dir.path(), program!());
//! ERRORS.inc();
//! telemetry_counter::inc("mytool/flag:verbose"); // a name built at run time
//! if let Some(path) = status.path() {
//!     let file = telemetry_counter::read_file(path)?;
//!     assert_eq!(file.count["mytool/errors"], 1);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - Incrementing never blocks, allocates, panics or prints once a counter has its
//!   record; the first increment of a counter in a process takes a lock once, and the
//!   process's first after [`open_and_rotate`] starts the rotation thread.
//! - Increments made before the file opens are kept in memory and moved into the file
//!   when it opens. If it cannot open (mode `off`, an unwritable directory, a corrupt
//!   file) they stay in memory and the program carries on.
//! - Mode `off` (including `DO_NOT_TRACK`) writes nothing at all.
//! - A corrupt or foreign file is detected and reported, never read out of bounds and
//!   never walked in circles. A file with damaged records is reported damaged
//!   ([`ParseError::Damaged`]) with every count that could be proven intact.
//! - Files we write are readable by Go's parser, and [`parse()`] reads Go's files.
//! - Nothing outside the program turns counting against it: a full disk keeps counts
//!   in memory (file blocks are allocated, not left as holes); a file truncated by
//!   another process does not kill it (on Unix a `SIGBUS` handler maps a zero page over
//!   a faulting page of our own mappings: see [`repair_fault`]); a symlink, FIFO or
//!   device in place of the counter file means counting in memory, never a hang or a
//!   write through the link. Files are created 0600.
//! - A file a process counts into is never reported or deleted under it: the process
//!   holds the file's [`lease`] (Unix) until it stops counting there, and a process
//!   that outlives its week moves to the next week's file when it opened with
//!   [`open_and_rotate`] (or `telemetry::start`).

#![deny(unsafe_code)]

mod counter;
mod file;
#[cfg(test)]
mod go_fixtures;
mod layout;
pub mod lease;
#[allow(unsafe_code)]
mod mapped;
mod parse;
#[cfg(feature = "stack")]
mod stack;
pub mod stack_name;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use counter::Counter;
pub use file::{
    OpenError, OpenStatus, Opened, file_name, open, open_and_rotate, open_dir, open_with_mode,
    open_with_mode_and_rotate, open_with_mode_at_first_count,
};
pub use layout::MAX_NAME_LEN;
pub use parse::{
    CounterFile, Damage, DamagedFile, ParseError, ReadError, parse, parse_named, read_file,
};
#[cfg(feature = "stack")]
pub use stack::StackCounter;
pub use stack_name::frame;
pub use telemetry_internal::Program;

/// Adds one to the counter named `name`, for names only known at run time. Each
/// distinct name is interned once, so repeated calls cost a hash lookup.
pub fn inc(name: &str) {
    add(name, 1);
}

/// Adds `n` to the counter named `name` (see [`inc`]).
pub fn add(name: &str, n: u64) {
    counter::named(name).add(n);
}

/// For other crates' `SIGBUS` handlers (the crash monitor's): if `address` lies in one
/// of this process's counter file mappings, maps a private zero page over its page and
/// returns true, so the faulting access can be retried and the fault is not a crash
/// (another process truncated the file: golang/go#74651). Returns false for any other
/// address. Async-signal-safe: lock-free, no allocation, one `mmap` system call.
///
/// Call it only for a fault the kernel raised (`si_code > 0`), never for a signal a
/// process sent: a sender chooses the address, and the page would lose its counts.
/// After a repair, this process places no new record in the file it had open.
#[cfg(unix)]
pub fn repair_fault(address: usize) -> bool {
    mapped::fault::repair(address)
}

#[cfg(unix)]
pub use mapped::fault::watch_shared_mapping;

/// The calling program's [`Program`]: the name of the binary being compiled, and its
/// package's version (`CARGO_PKG_VERSION`).
///
/// The name is the one a user types and finds their data under: Cargo's
/// `CARGO_BIN_NAME`, set when it compiles a binary target (`[[bin]] name = "fd"` in a
/// package named `fd-find` gives `fd`) or an example (`examples/hello.rs` gives
/// `hello`). Where Cargo sets none, in a library, a test, a benchmark or a doc test,
/// the name is the package's (`CARGO_PKG_NAME`). The macro reads both where it is
/// written, so call it in the binary's own source: in a library crate that the
/// binary calls, it names the library's package.
///
/// It names the telemetry directory (`<user config dir>/telemetry/<name>`, the
/// directory `telemetry --tool <name>` reads) and the `Name` a report carries, which
/// an upload config's `Programs` entry must match. To choose another name, or a
/// version that is not the package's, use [`Program::new`]:
///
/// ```
/// use telemetry_counter::Program;
///
/// // Both binaries of a package, `mytool` and `mytool-daemon`, in one directory.
/// const PROGRAM: Program = Program::new("mytool", env!("CARGO_PKG_VERSION"));
/// assert_eq!(PROGRAM.name(), "mytool");
///
/// // A doc test is no binary: `program!()` names the package.
/// assert_eq!(telemetry_counter::program!().name(), "telemetry-counter");
/// ```
///
/// A name outside [`Program::is_valid`] (Cargo accepts binary names such as `größe`)
/// counts nothing into a file: give such a program an ASCII name with
/// [`Program::new`].
#[macro_export]
macro_rules! program {
    () => {
        $crate::Program::new(
            match ::core::option_env!("CARGO_BIN_NAME") {
                ::core::option::Option::Some(binary) => binary,
                ::core::option::Option::None => ::core::env!("CARGO_PKG_NAME"),
            },
            ::core::env!("CARGO_PKG_VERSION"),
        )
    };
}

#[cfg(test)]
mod program_tests {
    use crate::Program;

    /// A library's tests are no binary: Cargo sets no `CARGO_BIN_NAME`, so the
    /// package names the program.
    #[test]
    fn outside_a_binary_the_package_names_the_program() {
        assert_eq!(option_env!("CARGO_BIN_NAME"), None);
        assert_eq!(
            crate::program!(),
            Program::new("telemetry-counter", env!("CARGO_PKG_VERSION"))
        );
    }

    /// Usable where a constant is needed, as `Program::new` is.
    #[test]
    fn usable_in_a_constant() {
        const PROGRAM: Program = crate::program!();
        assert!(PROGRAM.is_valid());
    }
}
