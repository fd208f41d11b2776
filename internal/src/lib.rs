//! Ground truth shared by every telemetry crate: where files live, what the user chose,
//! who the program is, and which week a day belongs to.
//!
//! Nothing here counts or uploads; it only answers questions the other crates ask
//! before they touch a file.
//!
//! ```
//! use telemetry_internal::{Dir, Mode};
//!
//! let tmp = tempfile::tempdir()?;
//! let dir = Dir::new(tmp.path());
//! assert_eq!(dir.mode(), Mode::Local); // no mode file yet: count locally, never upload
//! let since = telemetry_internal::parse_date("2026-11-01").unwrap();
//! dir.set_mode(Mode::On { since })?;
//! if std::env::var_os("DO_NOT_TRACK").is_none() {
//!     assert_eq!(dir.mode(), Mode::On { since });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//! - Reading never fails loudly: a missing, unreadable or garbled mode file reads as
//!   [`Mode::Local`], which never uploads. `DO_NOT_TRACK` turns everything off.
//! - Files are written atomically (temporary file, then rename or link), so a
//!   concurrent reader sees the old content or the new, never a torn or empty file.
//! - No home directory means no [`Dir`]: callers treat that as telemetry off.

#![forbid(unsafe_code)]

mod date;
mod dir;
mod mode;
mod program;
mod week;

pub use date::{format_date, parse_date, today};
pub use dir::{Dir, create_complete, write_atomic};
pub use mode::{Mode, ModeError, do_not_track};
pub use program::{ARCH, OS, Program, toolchain, toolchain_from_rustc_version};
pub use time::{Date, Weekday};
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
