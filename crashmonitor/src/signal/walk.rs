//! The stack walk: the system unwinder (`_Unwind_Backtrace`) into fixed storage, so
//! that it can run in a signal handler (see the parent module's docs for why the
//! unwinder is used there at all).

use std::ffi::{c_int, c_void};

use crate::record::{Frame, MAX_FRAMES};

/// Where a walk starts recording.
#[derive(Clone, Copy)]
pub(super) enum Start {
    /// At the first frame.
    Now,
    /// After the frame of the function that starts at this address.
    AfterFunction(usize),
    /// At the interrupted instruction of a signal: this address if known, else the
    /// first frame the unwinder marks as a signal frame.
    AtInterrupted(Option<usize>),
}

/// A stack walk in progress: fixed storage, so it can run in a signal handler.
pub(super) struct Walk {
    start: Start,
    pub(super) started: bool,
    frames: [Frame; MAX_FRAMES],
    len: usize,
    /// Frames looked at; a walk that has not started within `MAX_SKIPPED` gives up.
    seen: usize,
}

/// Frames of the handler, the hook and std's panic machinery above the crash are
/// fewer than this.
const MAX_SKIPPED: usize = 48;

/// The unwinder's opaque per-frame context.
#[repr(C)]
struct UnwindContext {
    _opaque: [u8; 0],
}

/// `_URC_NO_REASON`: go on walking. Anything else stops the walk.
const URC_NO_REASON: c_int = 0;
const URC_END_OF_STACK: c_int = 5;

type UnwindTraceFn = unsafe extern "C" fn(*mut UnwindContext, *mut c_void) -> c_int;

// The system unwinder's C ABI (libgcc_s on GNU/Linux, libunwind elsewhere); std links
// it already to unwind panics.
unsafe extern "C" {
    fn _Unwind_Backtrace(trace: UnwindTraceFn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIPInfo(ctx: *mut UnwindContext, ip_before_insn: *mut c_int) -> usize;
    fn _Unwind_FindEnclosingFunction(pc: *mut c_void) -> *mut c_void;
}

impl Walk {
    pub(super) fn new(start: Start) -> Walk {
        Walk {
            start,
            started: matches!(start, Start::Now),
            frames: [Frame::Outside; MAX_FRAMES],
            len: 0,
            seen: 0,
        }
    }

    pub(super) fn frames(&self) -> &[Frame] {
        self.frames.get(..self.len).unwrap_or_default()
    }

    pub(super) fn run(&mut self) {
        // SAFETY: `on_frame` receives `self` back as `arg`, only for the duration of
        // this call, during which nothing else touches `self`.
        unsafe {
            _Unwind_Backtrace(on_frame, (self as *mut Walk).cast());
        }
    }

    /// Looks at one frame; returns whether to go on.
    fn visit(&mut self, ip: usize, is_signal_frame: bool) -> bool {
        self.seen += 1;
        if ip == 0 {
            return false;
        }
        if !self.started {
            if self.seen > MAX_SKIPPED {
                return false;
            }
            match self.start {
                Start::Now => self.started = true,
                Start::AfterFunction(function) => {
                    let call = if is_signal_frame { ip } else { ip - 1 };
                    // SAFETY: the unwinder only looks the address up in its tables.
                    let enclosing = unsafe { _Unwind_FindEnclosingFunction(call as *mut c_void) };
                    self.started = enclosing as usize == function;
                    return true; // the hook's own frame is not recorded
                }
                Start::AtInterrupted(Some(pc)) => self.started = ip == pc,
                Start::AtInterrupted(None) => self.started = is_signal_frame,
            }
            if !self.started {
                return true;
            }
        }
        let inside = super::image::inside(ip);
        let frame = match (inside, is_signal_frame) {
            (false, _) => Frame::Outside,
            (true, true) => Frame::Pc(ip),
            (true, false) => Frame::Ret(ip),
        };
        if let Some(slot) = self.frames.get_mut(self.len) {
            *slot = frame;
            self.len += 1;
        }
        self.len < MAX_FRAMES
    }
}

unsafe extern "C" fn on_frame(ctx: *mut UnwindContext, arg: *mut c_void) -> c_int {
    let mut before: c_int = 0;
    // SAFETY: the unwinder passes a valid context for this frame; `arg` is the `Walk`
    // that `Walk::run` passed, alive and not otherwise borrowed during the walk.
    let (ip, walk) = unsafe {
        (
            _Unwind_GetIPInfo(ctx, &mut before),
            &mut *arg.cast::<Walk>(),
        )
    };
    if walk.visit(ip, before != 0) {
        URC_NO_REASON
    } else {
        URC_END_OF_STACK
    }
}

/// Runs the unwinder once, one frame deep, so that its one-time initialisation (the
/// register table libgcc sets up under `pthread_once`, the loader's lookup of our
/// executable's unwind tables) never first happens inside a signal handler, where it
/// could meet a lock the crash holds. One frame is enough for that and costs a few
/// microseconds; a whole walk cost tens on every `start`.
pub(super) fn warm_up_unwinder() {
    unsafe extern "C" fn first_frame_only(_ctx: *mut UnwindContext, _arg: *mut c_void) -> c_int {
        URC_END_OF_STACK
    }
    // SAFETY: the callback ignores its arguments and ends the walk at once.
    unsafe {
        _Unwind_Backtrace(first_frame_only, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn walk_here() -> Walk {
        let mut walk = Walk::new(Start::Now);
        walk.run();
        walk
    }

    #[test]
    fn walks_this_stack() {
        let walk = walk_here();
        assert!(walk.len >= 3, "{:?}", walk.frames());
        assert!(
            walk.frames()
                .iter()
                .all(|f| matches!(f, Frame::Ret(_) | Frame::Outside))
        );
    }
}
