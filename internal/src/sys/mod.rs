//! The one platform module of this crate: the few facts about the process that std
//! does not expose safely. Everything `unsafe` in `telemetry-internal` is here:
//! who we are, where the executable is loaded ([`image`]), descriptors kept off
//! stdio ([`move_above_stdio`]) and what the signal handlers share ([`signal`]).
#![allow(unsafe_code)]

#[cfg(unix)]
mod fd;
pub mod image;

#[cfg(unix)]
pub use fd::move_above_stdio;

/// The effective user id, to refuse a telemetry directory owned by someone else.
#[cfg(unix)]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// What the signal handlers of the counter crate (`SIGBUS` in a counter file) and of
/// the crash monitor (fatal signals) both need: `errno` kept as found, and a signal
/// that is not theirs handed on as if they had never been installed. Every function
/// here is async-signal-safe.
#[cfg(unix)]
pub mod signal {
    use std::ffi::{c_int, c_void};

    /// This thread's `errno`, which a handler must leave as it found it.
    pub fn errno() -> c_int {
        // SAFETY: the slot is this thread's errno, always valid.
        errno_slot().map_or(0, |slot| unsafe { *slot })
    }

    /// Sets this thread's `errno` (to what [`errno`] returned on entry).
    pub fn set_errno(value: c_int) {
        if let Some(slot) = errno_slot() {
            // SAFETY: as in `errno`.
            unsafe { *slot = value }
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn errno_slot() -> Option<*mut c_int> {
        // SAFETY: returns this thread's errno slot; no preconditions.
        Some(unsafe { libc::__errno_location() })
    }

    #[cfg(target_vendor = "apple")]
    fn errno_slot() -> Option<*mut c_int> {
        // SAFETY: as on Linux.
        Some(unsafe { libc::__error() })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    fn errno_slot() -> Option<*mut c_int> {
        None
    }

    /// Gives `signal` its default action.
    pub fn restore_default(signal: c_int) {
        // SAFETY: a zeroed sigaction with an emptied mask and SIG_DFL is valid input.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }

    /// Does with `signal` what would have been done had our handler never been
    /// installed: `previous` and `flags` are the `sa_sigaction` and `sa_flags` that
    /// `sigaction` reported before ours went in.
    ///
    /// - A handler is called as the kernel would have called it.
    /// - The default action: restored. A fault raised by the CPU (`si_code > 0`)
    ///   recurs when we return and now kills with the kernel's own siginfo (and core
    ///   dump); a signal sent by a process (kill, raise, abort) would not recur, so it
    ///   is raised again, to arrive as we return (it is blocked while we run).
    /// - Ignored: a sent signal stays ignored. A fault cannot be ignored (it would
    ///   recur forever, at 100% CPU): the kernel resets the action and kills, and so
    ///   do we.
    ///
    /// # Safety
    /// `signal`, `info` and `ctx` are the arguments of an `SA_SIGINFO` handler
    /// running now; `previous` and `flags` are what `sigaction` returned for
    /// `signal`.
    pub unsafe fn chain(
        previous: usize,
        flags: usize,
        signal: c_int,
        info: *mut libc::siginfo_t,
        ctx: *mut c_void,
    ) {
        // SAFETY: `info` is the kernel's siginfo (or null), only read.
        let sent = info.is_null() || unsafe { (*info).si_code } <= 0;
        if previous == libc::SIG_IGN {
            if !sent {
                restore_default(signal);
            }
            return;
        }
        if previous == libc::SIG_DFL {
            restore_default(signal);
            if sent {
                // SAFETY: raise takes an integer.
                unsafe { libc::raise(signal) };
            }
            return;
        }
        // SAFETY: `previous` is the address of a handler installed with the signature
        // `flags` declare; we call it as the kernel would have.
        unsafe {
            if flags & (libc::SA_SIGINFO as usize) != 0 {
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                    std::mem::transmute(previous);
                f(signal, info, ctx);
            } else {
                let f: extern "C" fn(c_int) = std::mem::transmute(previous);
                f(signal);
            }
        }
    }
}
