//! The one platform module of this crate: the few facts about the process that std
//! does not expose safely. Everything `unsafe` in `telemetry-internal` is here.
#![allow(unsafe_code)]

/// The effective user id, to refuse a telemetry directory owned by someone else.
#[cfg(unix)]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}
