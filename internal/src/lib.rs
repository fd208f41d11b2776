//! Ground truth shared by every telemetry crate: where files live, what the user chose,
//! who the program is, and which week a day belongs to.
//!
//! Nothing here counts or uploads; it only answers questions the other crates ask
//! before they touch a file.
//!
//! This is an internal crate of the telemetry workspace, not for tools: it makes
//! public only what the workspace's other crates use, and it has no stability
//! promise. Tools depend on the `telemetry` facade (or `telemetry-counter`) instead.
//!
//! ```
//! use telemetry_internal::{Ambient, Day, Dir, Mode, ModeSwitch};
//!
//! let home = tempfile::tempdir()?;
//! // Ambient inputs (DO_NOT_TRACK, the config dir) are read once, at the boundary.
//! let ambient = Ambient::with_config_dir(home.path());
//! let dir = Dir::for_program(&ambient, "mytool").unwrap();
//! // No mode file yet: count locally, never upload.
//! assert_eq!(dir.effective_mode(&ambient).mode, Mode::Local);
//! let since = Day::parse("2026-11-01").unwrap().date();
//! dir.set_mode(Mode::On { since })?;
//! assert_eq!(dir.effective_mode(&ambient).mode, Mode::On { since });
//! // DO_NOT_TRACK wins over every file, and says so.
//! let dnt = ambient.clone().do_not_track(true);
//! assert_eq!(dir.effective_mode(&dnt).decided_by, ModeSwitch::DoNotTrack);
//! assert!(dir.report(Day::parse("2026-11-08").unwrap()).ends_with("local/2026-11-08.json"));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//! - Reading never fails loudly: a missing, unreadable or garbled mode file reads as
//!   [`Mode::Local`], which never uploads. `DO_NOT_TRACK` turns everything off.
//! - Files are written atomically (temporary file, then rename or link), so a
//!   concurrent reader sees the old content or the new, never a torn or empty file.
//! - Every path and file name of the telemetry directory is spelled in [`Dir`] and
//!   classified back by [`FileKind`]; no other crate builds or parses one.
//! - [`fs`] never follows a link, never blocks on a FIFO, reads with a bound, and
//!   creates directories `0700` and files `0600` (invariant 7 of ARCHITECTURE.md).
//! - The only `unsafe` is in the platform module `sys`: `geteuid`, where the
//!   executable is loaded ([`image`]), [`move_above_stdio`], and what the signal
//!   handlers of the counter and crash-monitor crates share ([`signal`]).
//! - No home directory means no [`Dir`]: callers treat that as telemetry off.

#![deny(unsafe_code)]

mod ambient;
mod date;
mod day;
mod dir;
pub mod fs;
mod mode;
mod program;
mod sys;
mod week;

pub use ambient::Ambient;
pub use date::{format_date, parse_date, today};
pub use day::{Day, DayError};
pub use dir::{
    Area, Dir, EffectiveMode, Entry, FileKind, ModeSwitch, Root, counter_file_name, mode_file_says,
};
pub use fs::{create_complete, write_atomic};
pub use mode::{Mode, ModeError};
pub use program::{ARCH, OS, Program, toolchain};
pub use sys::image;
#[cfg(unix)]
pub use sys::move_above_stdio;
#[cfg(unix)]
pub use sys::signal;
pub use time::Date;
pub use week::{FileSpan, file_span, weekend};

/// A random `u64` from the standard library's per-process hash keys.
///
/// Good enough for sampling and for choosing a weekday; not for secrets. It spares the
/// counter crate a dependency on `rand`.
pub fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
