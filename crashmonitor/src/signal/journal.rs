//! The crash journal as this process sees it: mapped for writing by the handlers, and
//! the liveness of another process that claimed a slot.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;

use crate::record::JOURNAL_LEN;
use crate::report;

/// Records the executable's extent, maps the journal `file` (shared, for the rest of
/// the process's life: it is never unmapped, so a handler may write to it whenever it
/// runs) and makes it where reports go. The descriptor is not kept.
pub(crate) fn map_journal(file: &File) -> io::Result<()> {
    super::image::record_extent();
    // SAFETY: a new shared mapping of JOURNAL_LEN bytes of a file we opened read-write;
    // no existing memory is affected.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            JOURNAL_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the mapping is JOURNAL_LEN bytes, page-aligned (so aligned for u64),
    // readable and writable, and never unmapped, so it lives as long as `'static`;
    // `AtomicU64` has the size and alignment of `u64`, and every access through this
    // slice is atomic (other processes write the file the same way, or with whole-word
    // `pwrite`s of slots they own under the journal's protocol). The file's blocks were
    // written in full when it was created, so a store cannot fault on a full disk; only
    // a file cut short by another process could, which is repaired below.
    let words: &'static [AtomicU64] =
        unsafe { std::slice::from_raw_parts(map.cast::<AtomicU64>(), JOURNAL_LEN / 8) };
    // Another process may cut the file short while we have it mapped; a handler's
    // store into a cut page would then kill the dying process with `SIGBUS` instead of
    // its own signal. The counter crate's fault repair maps a private zero page there.
    // SAFETY: the mapping is never unmapped, and the journal is used only through
    // atomic words, so a page of it may turn into zeros at any instruction (a record
    // written there is lost, which a journal cut short loses anyway).
    unsafe { telemetry_counter::watch_shared_mapping(map as usize, JOURNAL_LEN) };
    report::publish(words);
    Ok(())
}

/// This process's id. Async-signal-safe: `getpid`.
pub(super) fn this_process() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// Whether process `pid` exists (a `kill` with no signal; `EPERM` means it exists).
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
