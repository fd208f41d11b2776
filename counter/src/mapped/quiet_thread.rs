//! The rotation thread's start, on Unix: a bare detached `pthread` rather than
//! `std::thread::spawn`. std's start-up of a thread (its stack-guard query, which
//! allocates and so creates a malloc arena, a signal stack, a join packet) costs the
//! short run that counts once (the thread starts with the first count) several times
//! what the thread itself needs: it sleeps until midnight. The thread blocks every
//! signal, so the host's process-directed signals never land on it.

use std::ffi::{CStr, c_void};
use std::io;

/// Far more than the rotation needs (it opens a file and formats a header) and
/// above any platform's `PTHREAD_STACK_MIN`.
const STACK_SIZE: usize = 256 << 10;

/// A thread to start: its name (at most 15 bytes show) and what it runs.
pub(crate) type Job = (&'static CStr, fn());

/// Starts `job` on a new detached thread with every signal blocked. Nothing is
/// allocated, here or in the thread before `job` runs (a thread's first
/// allocation makes it a malloc arena). A panic in the job ends the thread, not
/// the process.
pub(crate) fn spawn(job: &'static Job) -> io::Result<()> {
    // SAFETY: every pointer passed is to a live local, or to `job`, which is
    // `'static` and only read; the attribute object is initialised before use and
    // destroyed once; this thread's signal mask is restored whatever
    // pthread_create did.
    let created = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return Err(io::Error::other("pthread_attr_init failed"));
        }
        libc::pthread_attr_setstacksize(&mut attr, STACK_SIZE);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        // A new thread inherits its creator's signal mask: block everything for
        // the creation, so the thread starts with every signal blocked.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let mut thread: libc::pthread_t = std::mem::zeroed();
        let arg = std::ptr::from_ref(job).cast_mut().cast::<c_void>();
        let created = libc::pthread_create(&mut thread, &attr, run, arg);
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        created
    };
    match created {
        0 => Ok(()),
        err => Err(io::Error::from_raw_os_error(err)),
    }
}

extern "C" fn run(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `&'static Job` that `spawn` passed.
    let (name, body) = *unsafe { &*arg.cast_const().cast::<Job>() };
    set_name(name);
    // Unwinding out of an `extern "C"` function would abort the process.
    let _ = std::panic::catch_unwind(body);
    std::ptr::null_mut()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_name(name: &CStr) {
    // The kernel keeps 15 bytes and a NUL; a longer name is refused, so cut it.
    let mut short = [0u8; 16];
    let bytes = name.to_bytes();
    let len = bytes.len().min(15);
    short[..len].copy_from_slice(&bytes[..len]);
    // SAFETY: `short` is NUL-terminated (its last byte is never written) and
    // lives across the call, which names the calling thread.
    unsafe {
        libc::pthread_setname_np(libc::pthread_self(), short.as_ptr().cast());
    }
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn set_name(name: &CStr) {
    // SAFETY: a NUL-terminated string that outlives the call, which names the
    // calling thread.
    unsafe {
        libc::pthread_setname_np(name.as_ptr());
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
fn set_name(_: &CStr) {}
