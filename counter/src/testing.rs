//! Helpers for tests of programs that count, like Go's `countertest`.

use std::io;
use std::path::{Path, PathBuf};

use telemetry_internal::{Date, FileSpan};

use crate::counter::{Counter, REGISTRY};
use crate::parse::{CounterFile, ReadError};

/// The current value of `counter` in this process: its record in the open file
/// (which includes other processes' counts) plus what is held in memory.
pub fn read(counter: &'static Counter) -> u64 {
    let in_file = match counter.slot() {
        Some(slot) => slot.load(std::sync::atomic::Ordering::SeqCst),
        None => REGISTRY
            .lock()
            .as_mut()
            .and_then(|f| f.find(counter.name()))
            .map_or(0, |s| s.0.load(std::sync::atomic::Ordering::SeqCst)),
    };
    in_file.saturating_add(counter.pending())
}

/// The value of the counter named `name` (see [`read`]).
pub fn read_named(name: &str) -> u64 {
    read(crate::counter::named(name))
}

/// Every stack of `counter` seen in this process, with its value.
#[cfg(feature = "stack")]
pub fn read_stack(
    counter: &'static crate::StackCounter,
) -> std::collections::BTreeMap<String, u64> {
    counter
        .counters()
        .into_iter()
        .map(|c| (c.name().to_owned(), read(c)))
        .collect()
}

/// The path of the file this process counts into, if one is open.
pub fn current_file() -> Option<PathBuf> {
    REGISTRY.path()
}

/// Runs one wake of the rotation thread of [`crate::open_and_rotate`] as if the day
/// were `today`: a seam for tests of rotation, which would otherwise wait for
/// midnight. `None` if there was nothing to do.
pub fn rotate(today: Date) -> Option<crate::OpenStatus> {
    crate::file::rotate(today)
}

/// Sets the counter clock of this process (`None`: back to the real clock), Go's
/// `CounterTime` seam: files opened from now on begin on its day, and the rotation
/// thread of [`crate::open_and_rotate`] and `telemetry::start` wakes at once and moves
/// to the file of its day, as it would at midnight. For tests of processes that
/// count across a day or a week boundary.
pub fn set_now(now: Option<std::time::SystemTime>) {
    crate::file::set_now(now);
}

/// Reads and parses a counter file (see [`crate::read_file`]).
pub fn read_path(path: impl AsRef<Path>) -> Result<CounterFile, ReadError> {
    crate::read_file(path)
}

/// Writes a counter file for `program` covering `begin..end` into the directory
/// `local` (a telemetry dir's `local/`), with the given counts, exactly as a program
/// counting on those days would have. For tests of what reads counter files.
pub fn write_file(
    local: &Path,
    program: &crate::Program,
    begin: Date,
    end: Date,
    counts: &[(&str, u64)],
) -> io::Result<PathBuf> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    if !program.is_valid() {
        return Err(invalid("invalid program"));
    }
    let header = crate::layout::header(&crate::file::metadata(program, FileSpan { begin, end }))
        .ok_or_else(|| invalid("metadata too long"))?;
    std::fs::create_dir_all(local)?;
    let path = local.join(crate::file::file_name(program, begin));
    // Not mapped afterwards, so that the test may delete it, on Windows too.
    crate::mapped::MappedFile::write_once(&path, &header, counts).map_err(to_io)?;
    Ok(path)
}

/// Maps the counter file at `path` for the rest of this process's life, as a program
/// counting into it does. For tests of what other processes do to such a file
/// (Windows, for one, refuses to delete it).
pub fn map_for_life(path: &Path) -> io::Result<()> {
    let data = std::fs::read(path)?;
    let offset = crate::layout::HEADER_LEN_OFFSET;
    let header_len = data
        .get(offset..offset + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .filter(|&len| len <= data.len())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a counter file"))?;
    let mapped = crate::mapped::MappedFile::open(path, &data[..header_len]).map_err(to_io)?;
    // Held for the life of the process, lease included, as a counting process holds
    // the file it counts into.
    std::mem::forget(mapped);
    Ok(())
}

fn to_io(err: crate::mapped::FileError) -> io::Error {
    match err {
        crate::mapped::FileError::Io(err) => err,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}
