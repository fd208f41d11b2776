//! The crashes themselves: the functions a scenario's program dies in, on every
//! platform. Their names are the first frames the scenarios' table expects, so they
//! live in this one module (`process::crashes::…` in a counter) whatever the platform.

/// In every panic message; must never reach a file under the telemetry dir.
pub(crate) const SECRET: &str = "hunter2-secret-token";

/// The module path these functions have in a crash counter's frames.
pub(crate) const MODULE: &str = "process::crashes";

#[inline(never)]
pub(crate) fn panic_in_main() {
    let token = std::hint::black_box(SECRET);
    panic!("could not log in with {token}");
}

#[inline(never)]
pub(crate) fn panic_in_thread() {
    let token = std::hint::black_box(SECRET);
    panic!("thread failed with {token}");
}

#[inline(never)]
pub(crate) fn null_write() {
    // A near-null pointer: a field of a struct at address zero. (A pointer of exactly
    // zero would be caught by std's debug precondition checks, which abort instead.)
    let ptr = std::ptr::without_provenance_mut::<u8>(std::hint::black_box(16));
    // SAFETY: none: this write faults (SIGSEGV, an access violation) on purpose, which
    // is the test.
    unsafe { ptr.write_volatile(1) };
}

/// Some hundred frames deep, then a fault: the handler walks a deep stack on a
/// spawned thread's alternate stack.
#[cfg(unix)]
#[inline(never)]
pub(crate) fn deep_then_segv(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 8]);
    if frame[0] == 200 {
        null_write();
        return 0;
    }
    deep_then_segv(depth + 1).wrapping_add(std::hint::black_box(frame[1]))
}

/// std's abort: `SIGABRT` on Unix. (On Windows it is a fast fail, which no handler
/// sees: the Windows scenario aborts through the C runtime, [`c_abort`].)
#[cfg(unix)]
#[inline(never)]
pub(crate) fn abort_here() {
    std::process::abort();
}

#[cfg(windows)]
unsafe extern "C" {
    /// The C runtime's `abort`, which raises `SIGABRT` before ending the process.
    fn abort() -> !;
}

#[cfg(windows)]
#[inline(never)]
pub(crate) fn c_abort() {
    // SAFETY: none needed: abort takes nothing and ends the process.
    unsafe { abort() }
}

/// Recurses until the stack overflows. A way out that is never taken, so that the
/// compiler sees a function that can return.
#[cfg(unix)]
#[inline(never)]
pub(crate) fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    if frame[0] == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(frame[1]))
}

/// Recurses until the stack overflows, a kilobyte a frame (Wine's limits on the
/// overflow's dispatch are the Windows scenario's concern).
#[cfg(windows)]
#[inline(never)]
pub(crate) fn recurse(depth: u64) -> u64 {
    let mut pad = [0u8; 1024];
    pad[0] = depth as u8;
    std::hint::black_box(&mut pad);
    if pad[1] == u8::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(pad[0]))
}

#[cfg(unix)]
struct PanicsOnDrop;

#[cfg(unix)]
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("second panic while unwinding");
    }
}

#[cfg(unix)]
#[inline(never)]
pub(crate) fn double_panic() {
    let _guard = PanicsOnDrop;
    let token = std::hint::black_box(SECRET);
    panic!("first panic with {token}");
}

/// A panic that cannot unwind aborts right after the hook, as every panic does in a
/// `panic = "abort"` build.
#[cfg(unix)]
#[inline(never)]
pub(crate) extern "C" fn cannot_unwind() {
    let token = std::hint::black_box(SECRET);
    panic!("no unwinding through C with {token}");
}

/// What an allocation failure does: std's handler prints and aborts.
#[cfg(unix)]
#[inline(never)]
pub(crate) fn alloc_failed() {
    std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 1 << 20]>());
}

#[inline(never)]
pub(crate) fn illegal_instruction() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: none: `ud2` raises the illegal-instruction fault under test.
    unsafe {
        std::arch::asm!("ud2")
    };
    #[cfg(all(windows, target_arch = "aarch64"))]
    // SAFETY: none: `udf` raises the illegal-instruction exception under test.
    unsafe {
        std::arch::asm!("udf #0")
    };
}

/// A signal sent, not caused by an instruction: once reported it must be sent again,
/// or the process would survive it. (Not SIGSEGV or SIGBUS: std's handler for those
/// only resets the default action and returns, so a raised one is lost, monitor or
/// not.)
#[cfg(unix)]
#[inline(never)]
pub(crate) fn raise_sigfpe() {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGFPE) };
    // Not a tail call, so that this function's frame is on the stack.
    std::hint::black_box(());
}
