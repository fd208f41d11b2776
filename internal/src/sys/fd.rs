//! Descriptors kept off the standard streams.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `fd`, moved to the lowest free number above 2 (close-on-exec) if it sits on 0, 1
/// or 2; any other descriptor is returned as it is.
///
/// A host that closed its stdio (a daemon) gets the next descriptor it opens at 0, 1
/// or 2. One of ours must never sit there: the host's own `println!`/`eprintln!` would
/// write into our counter file, and the host's next `open` of
/// `/dev/null` would not land where it expects. After the move the low number is
/// closed again, exactly as the host left it.
pub fn move_above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes an open descriptor (`fd`, which we own and keep
    // open for the call) and an integer; it touches no memory of ours.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `moved` is a descriptor the kernel just created for us; nothing else
    // owns it. (`fd`, the low number, is closed when it drops here.)
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

// The move itself (fds 0-2 taken) is exercised by whole processes that close their
// stdio first: the crash monitor's `closed-stdio` scenario and the end-to-end
// `closed stdio` tests; a unit test cannot close the test runner's stdio.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_above_stdio_stays_where_it_is() {
        let high = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let number = high.as_raw_fd();
        assert!(number > 2);
        assert_eq!(move_above_stdio(high).unwrap().as_raw_fd(), number);
    }
}
