//! The lease that keeps an upload run from reporting or deleting a counter file that a
//! live process still counts into.
//!
//! A week's counter file is reported and then deleted once its week is over; but a
//! process can keep it mapped past that point: one that counts with [`crate::open_dir`]
//! only (no rotation), one whose machine slept across midnight and has not yet woken
//! its rotation thread, one whose clock was set back into that week. Its counts would
//! go into a file that is in no report and then into a deleted file. The lease makes
//! that impossible on Unix, whatever the clocks say:
//!
//! - **A counting process holds a shared lease** (`flock(LOCK_SH)`) on every counter
//!   file it maps, from before its first count until it stops counting there: when it
//!   rotates to the next file, exits or dies, the kernel drops the lease with the last
//!   descriptor. The lease is taken without waiting: if an upload run holds the file
//!   right now, it is deleting it, so the process opens the path again (a new file);
//!   a file deleted between the open and the lease (no links left) is opened again
//!   too. A process that rotates (`telemetry::start`, [`crate::open_and_rotate`])
//!   takes the lease at its first count rather than at the open, so one that counts
//!   nothing, however long it runs, holds no week back; if an upload run holds or has
//!   deleted the file by then (its week was over), the count waits in memory and the
//!   rotation thread, which that count starts, moves the process to the file of its
//!   day.
//! - **An upload run takes the exclusive lease** ([`try_exclusive`], without waiting)
//!   on a settled file before it reads it for the report, and holds it until the file
//!   is deleted. If a process holds a shared lease, the run leaves the file and its
//!   week for a later run.
//!
//! So the counts a report is built from are all the counts the file will ever hold,
//! and a file is deleted only while no process maps it. The real-clock rule (a week
//! is reported a day after it ends) decides *when* a run looks at a file; the lease
//! decides *whether* it may take it. A file system without `flock` (rare network
//! mounts) leaves the real-clock rule alone, as on Windows, which has no such lease:
//! there, a live process rotates within the hour after midnight, and Windows refuses
//! to delete a file that a process maps (`ERROR_USER_MAPPED_FILE`), so deletion waits
//! for the process to let go; only counts made between the report and the late
//! rotation of a machine that slept through the day after the week can be missed.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::mapped::FileError;

/// How often a counting process opens a file again while upload runs delete it under
/// it. Each retry needs a run to delete the file at that very moment, so two or three
/// are the most ever seen; past this, counting stays in memory.
#[cfg(unix)]
const OPEN_ATTEMPTS: usize = 8;

/// Opens the counter file at `path` with `open` and takes its shared lease (see the
/// module documentation). Returns the file's length as found once leased.
pub(crate) fn open_shared(
    path: &Path,
    open: impl Fn(&Path) -> Result<File, FileError>,
) -> Result<(File, u64), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        for _ in 0..OPEN_ATTEMPTS {
            let file = open(path)?;
            match crate::mapped::flock(&file, false) {
                // An upload run is deleting it: the path will name a new file.
                Ok(false) => std::thread::yield_now(),
                Ok(true) => {
                    let meta = file.metadata()?;
                    // Unless deleted between our open and our lease (no links left):
                    // then open the path again.
                    if meta.nlink() > 0 {
                        return Ok((file, meta.len()));
                    }
                }
                // No locks on this file system: the real-clock rule alone.
                Err(_) => {
                    let len = file.metadata()?.len();
                    return Ok((file, len));
                }
            }
        }
        Err(FileError::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            "upload runs kept deleting the counter file as it was opened",
        )))
    }
    #[cfg(not(unix))]
    {
        let file = open(path)?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }
}

/// Takes the exclusive lease on an open counter file whose week is over, without
/// waiting, for an upload run that reports it and then deletes it: `Ok(true)` if
/// taken (no process counts into the file until `file` is closed, and none does now),
/// `Ok(false)` if a process holds it and may still count into it. `Err` if the file
/// system has no locks (and always on Windows, which has no such lease): then only
/// the real-clock rule protects the file.
pub fn try_exclusive(file: &File) -> io::Result<bool> {
    #[cfg(unix)]
    return crate::mapped::flock(file, true);
    #[cfg(not(unix))]
    {
        let _ = file;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no counter file lease on this platform",
        ))
    }
}
