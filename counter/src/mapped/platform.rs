//! Platform I/O on the counter file: opening it, giving it disk blocks, locking it,
//! and reading or writing at an offset.

use std::fs::File;
use std::io;
use std::path::Path;

use super::FileError;

/// Opens (or creates, 0600) the counter file at `path`, which must be a regular file:
/// never through a symbolic link, never blocking on a FIFO or device planted in its
/// place (`telemetry_internal::fs`). On Unix the descriptor never takes 0, 1 or 2: a
/// daemon that closed its stdio must not find its next `open("/dev/null")` landing
/// elsewhere, nor its stderr writes landing in our file.
pub(super) fn open_regular(path: &Path) -> Result<File, FileError> {
    open_regular_with_len(path).map(|(file, _)| file)
}

/// [`open_regular`], with the file's length as its check found it.
pub(super) fn open_regular_with_len(path: &Path) -> Result<(File, u64), FileError> {
    let (file, meta) = telemetry_internal::fs::open_read_write_with_metadata(path, true)?;
    #[cfg(unix)]
    let file = File::from(telemetry_internal::move_above_stdio(file.into())?);
    Ok((file, meta.len()))
}

/// A `flock(2)` on `file` without waiting: `Ok(true)` if taken, `Ok(false)` if another
/// open file holds a conflicting lock, `Err` if the file system has no such locks.
/// The lock goes when every descriptor of this open file is closed (or the process
/// dies); see the `lease` module for what it protects.
#[cfg(unix)]
pub(crate) fn flock(file: &File, exclusive: bool) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock takes a descriptor this `File` owns and two flags; it touches
        // no memory of ours.
        if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => return Ok(false),
            io::ErrorKind::Interrupted => {}
            _ => return Err(err),
        }
    }
}

/// Gives `file` real disk blocks for `len` bytes from `offset`, extending it if
/// needed; never changes bytes already there, so processes growing the file at once
/// cannot erase each other's records.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub(super) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::other("counter file too large"));
    };
    for _ in 0..100 {
        // SAFETY: plain integers; `file` keeps the descriptor open for the call.
        // (glibc emulates the call by writing zeros into holes where the file system
        // has no fallocate, never over data.)
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), offset, len) } {
            0 => return Ok(()),
            libc::EINTR => continue,
            err => return Err(io::Error::from_raw_os_error(err)),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINTR))
}

/// Elsewhere the file is extended by writing its last word, as Go does: macOS has no
/// `posix_fallocate`, so a page may still be a hole on a full disk, and the fault
/// handler is what keeps a write into it from killing the host. (Windows allocates
/// the zeros a write extends a file by.)
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub(super) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let end = offset.saturating_add(len);
    if file.metadata()?.len() < end {
        write_at(file, &[0; 4], end - 4)?;
    }
    Ok(())
}

#[cfg(unix)]
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        done +=
            std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], offset + done as u64)?;
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n =
            std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        done += n;
    }
    Ok(())
}
