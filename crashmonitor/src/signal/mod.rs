//! All of the crate's `unsafe` on Unix: the fatal-signal handlers (here), the stack
//! walk (`walk`), the crash journal's shared mapping (`journal`), and the question
//! "where is the executable loaded" (`image`). The record itself is written by safe
//! code (`record::write`) into the mapped words.
//!
//! # The signal path
//! A handler runs on the thread that faulted, on its alternate signal stack (std gives
//! every thread it starts one; [`install_handlers`] gives the calling thread one of
//! its own, larger than std's), so it also runs when the fault was a stack overflow.
//! It may only do what is async-signal-safe, so it:
//! 1. claims the one report a process may write (`report::claim`, an atomic swap
//!    shared with the Windows module; a second crash, a nested signal or a fault
//!    inside the handler writes nothing);
//! 2. for an abort on a thread that is panicking, takes the frames the panic hook
//!    kept (the panic is the crash: see `report`); otherwise walks the stack with the
//!    system unwinder (`_Unwind_Backtrace`), starting at the interrupted instruction
//!    read from the `ucontext`, keeps at most 32 addresses in a buffer on its stack,
//!    and writes them into a free slot of the mapped journal (`record::write`: a
//!    compare-and-swap, then plain atomic stores; no system call but `getpid`);
//! 3. chains to the handler that was installed before it (std's stack-overflow
//!    handler, say), or restores the default action and lets the signal kill the
//!    process, so the process dies exactly as it would have without us.
//!
//! `_Unwind_Backtrace` is not on POSIX's list of async-signal-safe functions. We use it
//! anyway, as every crash reporter that unwinds in-process does, because on the
//! platforms we target it neither allocates nor locks once initialised: libgcc's
//! unwinder finds unwind tables with glibc's lock-free `_dl_find_object` (glibc 2.35+),
//! and LLVM's libunwind reads them directly. [`install_handlers`] runs one walk at
//! install time so that lazy binding and first-use initialisation happen outside any
//! signal handler. What remains: on an older glibc the unwinder takes the loader's
//! lock, so a crash inside `dlopen` could hang the dying process instead of killing it;
//! and a frame without unwind tables (hand-written assembly, a JIT) ends the walk
//! early. A frame-pointer walk would avoid the unwinder but Rust code is built without
//! frame pointers by default, so it would see almost nothing.

mod image;
mod journal;
mod walk;

use std::ffi::{c_int, c_void};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use telemetry_internal::signal::{self as sys_signal, errno, restore_default, set_errno};

use crate::record::{FatalSignal, Frame, Kind};
use crate::report;

use journal::this_process;
pub(crate) use journal::{map_journal, process_alive};
use walk::{Start, Walk, warm_up_unwinder};

/// The signals we watch, and what each is reported as.
const SIGNALS: [(c_int, Kind); 5] = [
    (libc::SIGSEGV, Kind::Signal(FatalSignal::Segv)),
    (libc::SIGBUS, Kind::Signal(FatalSignal::Bus)),
    (libc::SIGILL, Kind::Signal(FatalSignal::Ill)),
    (libc::SIGFPE, Kind::Signal(FatalSignal::Fpe)),
    (libc::SIGABRT, Kind::Abort),
];

/// The handler each signal had before ours (`sa_sigaction`) and its `sa_flags`.
static PREVIOUS_HANDLER: [AtomicUsize; 5] = [const { AtomicUsize::new(libc::SIG_DFL) }; 5];
static PREVIOUS_FLAGS: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

/// One millisecond. Async-signal-safe: nanosleep.
fn sleep_1ms() {
    let one_ms = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    // SAFETY: nanosleep reads the timespec local; a null remainder is allowed.
    unsafe { libc::nanosleep(&one_ms, std::ptr::null_mut()) };
}

/// This thread's identity, as [`report`] keeps it: never 0.
///
/// `pthread_self` reads the thread pointer (glibc, musl, Apple's libc): no lock, no
/// allocation, so a signal handler may call it.
fn this_thread() -> usize {
    // SAFETY: pthread_self has no preconditions and touches no memory of ours.
    unsafe { libc::pthread_self() as usize }
}

/// Whether the calling thread is the process's main thread (the one that runs
/// `main`, whose panic ends the process). Not std's `thread::current()`, which may
/// itself panic in a hook that runs during a thread's teardown.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_main_thread() -> bool {
    // SAFETY: gettid and getpid are system calls without arguments.
    unsafe { libc::syscall(libc::SYS_gettid) == libc::c_long::from(libc::getpid()) }
}

#[cfg(target_vendor = "apple")]
fn is_main_thread() -> bool {
    // SAFETY: pthread_main_np has no preconditions.
    unsafe { libc::pthread_main_np() != 0 }
}

/// Elsewhere: the thread that installed the monitor, if std named it `main`.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn is_main_thread() -> bool {
    MAIN_THREAD.load(Ordering::SeqCst) == this_thread()
}

/// See [`is_main_thread`]; 0 if unknown.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
static MAIN_THREAD: AtomicUsize = AtomicUsize::new(0);

/// Keeps the frames of a panic, below `hook`, the function std called as the panic
/// hook, until we know whether the panic ends the process ([`report`]). Called from
/// the hook, so not in a signal handler, but it keeps to the same rules (no
/// allocation, no locks) since a panic may come with a lock held.
pub(crate) fn report_panic(hook: usize) {
    if !report::has_journal() {
        return;
    }
    let mut walk = Walk::new(Start::AfterFunction(hook));
    walk.run();
    if !walk.started {
        // The hook was not found (inlined, say): keep the whole stack; the child drops
        // our frames and std's by name.
        walk = Walk::new(Start::Now);
        walk.run();
    }
    report::panicked(this_thread(), is_main_thread(), walk.frames());
}

/// Installs our handler for each watched signal, remembering the previous one, after
/// making sure this thread has an alternate signal stack and the unwinder is ready.
pub(crate) fn install_handlers() -> Result<(), (&'static str, io::Error)> {
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    if std::thread::current().name() == Some("main") {
        MAIN_THREAD.store(this_thread(), Ordering::SeqCst);
    }
    ensure_alt_stack();
    warm_up_unwinder();

    for (index, &(signal, kind)) in SIGNALS.iter().enumerate() {
        let name = match kind {
            Kind::Signal(s) => s.name(),
            _ => "SIGABRT",
        };
        // SAFETY: `sigaction` reads `action` and writes `previous`, both valid locals;
        // our handler has the signature SA_SIGINFO requires. We record the previous
        // handler before installing ours so ours always finds it.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut previous) != 0 {
                return Err((name, io::Error::last_os_error()));
            }
            PREVIOUS_HANDLER[index].store(previous.sa_sigaction, Ordering::SeqCst);
            PREVIOUS_FLAGS[index].store(previous.sa_flags as usize, Ordering::SeqCst);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err((name, io::Error::last_os_error()));
            }
        }
    }
    register_exit_report();
    Ok(())
}

/// Reports a panic that ended `main` as the process exits (see [`report`]): glibc's
/// `on_exit` tells the exit status, so only an exit with std's panic status after a
/// panic of the main thread is reported.
#[cfg(all(any(target_os = "linux", target_os = "android"), target_env = "gnu"))]
fn register_exit_report() {
    unsafe extern "C" {
        fn on_exit(function: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    }
    extern "C" fn at_exit(status: c_int, _arg: *mut c_void) {
        exit_report(Some(status));
    }
    // SAFETY: registers a function of the signature on_exit calls, with no argument.
    unsafe { on_exit(at_exit, std::ptr::null_mut()) };
}

/// Elsewhere (macOS, musl) `atexit` does not tell the status: a panic of the main
/// thread followed by any exit is reported, so a program that catches a panic of its
/// main thread and then exits normally is counted there.
#[cfg(not(all(any(target_os = "linux", target_os = "android"), target_env = "gnu")))]
fn register_exit_report() {
    extern "C" fn at_exit() {
        exit_report(None);
    }
    // SAFETY: registers a function of the signature atexit calls.
    unsafe { libc::atexit(at_exit) };
}

/// Writes the report of a panic that ends the process by exiting, if there is one.
fn exit_report(status: Option<c_int>) {
    if let Some(panic) = report::exit_of_panic(status)
        && report::claim()
    {
        report::send(this_process(), Kind::Panic, panic.frames());
    }
}

/// Our alternate stack: large enough for the kernel's signal frame, the unwinder and
/// a previous handler's own needs, with a guard page below.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Gives the calling thread an alternate signal stack of [`ALT_STACK_SIZE`] if it
/// has none or a smaller one. std gives one to the main thread and to each thread it
/// spawns, of `SIGSTKSZ` or the kernel's `AT_MINSIGSTKSZ`, whichever is larger (8 KiB
/// to 12 KiB on x86_64); a thread created otherwise (by C code) has none, and then a
/// stack overflow on it kills the process without a report. Other threads keep
/// std's, which was enough wherever we measured it: the process tests `stack-used-*` run the whole signal on a painted alternate
/// stack and read back how deep it was written. On x86_64 (Linux 6, a CPU with
/// AVX-512, where std gives a thread 11 952 bytes) the kernel's signal frame, our
/// handler with its walk and the handler we chain to took 7 744 bytes in a debug
/// build and 6 608 in a release build; on aarch64 under qemu-user (std: 16 384) 12 784
/// in a debug build. The walk is not what sets that size: a spawned thread's stack
/// had to be 7 616 bytes for a report whether the handler walked the stack or not
/// (the kernel's signal frame, bounded by `AT_MINSIGSTKSZ`, is most of it).
fn ensure_alt_stack() {
    // SAFETY: sigaltstack reads/writes the `stack_t` locals; the new stack is a fresh
    // private mapping we never unmap (it must live as long as the thread may fault).
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0 {
            return;
        }
        let enabled = current.ss_flags & libc::SS_DISABLE == 0;
        if (enabled && current.ss_size >= ALT_STACK_SIZE)
            || current.ss_flags & libc::SS_ONSTACK != 0
        {
            return;
        }
        let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
        let map = libc::mmap(
            std::ptr::null_mut(),
            ALT_STACK_SIZE + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if map == libc::MAP_FAILED {
            return;
        }
        libc::mprotect(map, page, libc::PROT_NONE);
        let stack = libc::stack_t {
            ss_sp: map.cast::<u8>().add(page).cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        libc::sigaltstack(&stack, std::ptr::null_mut());
    }
}

/// The interrupted instruction's address, from the signal's `ucontext`.
///
/// # Safety
/// `ctx` is the third argument of an SA_SIGINFO handler, or null.
unsafe fn interrupted_pc(ctx: *mut c_void) -> Option<usize> {
    if ctx.is_null() {
        return None;
    }
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_arch = "x86_64"
    ))]
    {
        // SAFETY: per this function's contract `ctx` points at the handler's ucontext.
        let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
        uc.uc_mcontext
            .gregs
            .get(libc::REG_RIP as usize)
            .map(|&rip| rip as usize)
    }
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_arch = "aarch64"
    ))]
    {
        // SAFETY: per this function's contract `ctx` points at the handler's ucontext.
        let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
        Some(uc.uc_mcontext.pc as usize)
    }
    #[cfg(all(target_os = "macos", target_arch = "x86_64"))]
    {
        // SAFETY: per this function's contract `ctx` points at the handler's ucontext,
        // whose `uc_mcontext` points at the interrupted thread's saved state, or is null.
        unsafe {
            let uc = &*ctx.cast::<libc::ucontext_t>();
            uc.uc_mcontext.as_ref().map(|mc| mc.__ss.__rip as usize)
        }
    }
    #[cfg(all(target_os = "macos", target_arch = "aarch64"))]
    {
        // SAFETY: as for x86_64 above.
        unsafe {
            let uc = &*ctx.cast::<libc::ucontext_t>();
            uc.uc_mcontext.as_ref().map(|mc| mc.__ss.__pc as usize)
        }
    }
    #[cfg(not(any(
        all(
            any(target_os = "linux", target_os = "android"),
            any(target_arch = "x86_64", target_arch = "aarch64")
        ),
        all(
            target_os = "macos",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )
    )))]
    {
        None
    }
}

/// The handler for every watched signal: report once, then do what would have been
/// done without us.
extern "C" fn on_fatal_signal(signal: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let saved_errno = errno();
    let Some(index) = SIGNALS.iter().position(|&(s, _)| s == signal) else {
        return;
    };
    let kind = SIGNALS[index].1;
    // SAFETY: `info` is our handler's siginfo argument (or null), only read.
    let (is_fault, addr) = unsafe { fault_of(info) };
    if signal == libc::SIGBUS && is_fault && telemetry_counter::repair_fault(addr) {
        // A page of a counter file another process cut off: the counter crate put a
        // zero page there, the access retries, and this is no crash.
        set_errno(saved_errno);
        return;
    }
    if report::claim() {
        // SAFETY: `ctx` is our SA_SIGINFO handler's third argument.
        let pc = unsafe { interrupted_pc(ctx) };
        write_crash_report(kind, pc);
        restore_other_defaults(index);
    } else {
        report::wait_for_report(sleep_1ms);
    }
    set_errno(saved_errno);
    // SAFETY: `ctx` is our SA_SIGINFO handler's third argument.
    let pc = unsafe { interrupted_pc(ctx) };
    if is_fault && faulting_in_a_loop(signal, pc.unwrap_or(0), addr) {
        // The previous handler keeps returning without curing the fault: let it kill.
        restore_default(signal);
        return;
    }
    // SAFETY: these are the arguments our handler was called with.
    unsafe { chain(index, signal, info, ctx) };
}

/// Builds and writes the report of a crash of `kind` that interrupted the
/// instruction at `pc`. A function of its own, so that its buffers are off the
/// stack before the handler chains to the previous one, which runs on the same
/// alternate stack (std's overflow handler formats its message there).
#[inline(never)]
fn write_crash_report(kind: Kind, pc: Option<usize>) {
    // An abort that ends a panic (`panic = "abort"`, a panic during a panic) is that
    // panic's crash, with the frames the hook kept.
    if kind == Kind::Abort
        && let Some(panic) = report::abort_of_panic(this_thread())
    {
        report::send(this_process(), Kind::Panic, panic.frames());
        return;
    }
    let mut walk = Walk::new(Start::AtInterrupted(pc));
    walk.run();
    if !walk.started
        && let Some(pc) = pc
    {
        // The unwinder could not get past the signal frame: keep at least the
        // instruction that faulted.
        let inside = image::inside(pc);
        let frame = if inside {
            Frame::Pc(pc)
        } else {
            Frame::Outside
        };
        report::send(this_process(), kind, &[frame]);
        return;
    }
    report::send(this_process(), kind, walk.frames());
}

/// Whether the signal was raised by the CPU (a fault that recurs when the handler
/// returns), and the faulting address.
///
/// # Safety
/// `info` is a handler's siginfo argument, or null.
unsafe fn fault_of(info: *mut libc::siginfo_t) -> (bool, usize) {
    if info.is_null() {
        return (false, 0);
    }
    // SAFETY: per the contract `info` points at the kernel's siginfo.
    let info = unsafe { &*info };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the address field is valid to read for the fault signals we handle.
    let addr = unsafe { info.si_addr() } as usize;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let addr = info.si_addr as usize;
    (info.si_code > 0, addr)
}

/// Once the report is written, our handlers have nothing left to do: give every
/// other watched signal whose action was the default its default back. A crash that
/// leads to another signal (std's stack-overflow handler prints and calls `abort`)
/// then dies of it directly, as without us, instead of needing a second signal frame
/// for our handler on an alternate stack that a stack overflow's frame has nearly
/// filled (std gives a thread 8 KiB; the kernel's minimum for one signal frame,
/// `AT_MINSIGSTKSZ`, is over 3 KiB on x86-64 and more with AVX-512 state): the kernel
/// could not deliver that `SIGABRT` and would kill the process with `SIGSEGV` instead,
/// the wrong signal. A signal whose current handler is not ours is left alone.
fn restore_other_defaults(handling: usize) {
    for (index, &(signal, _)) in SIGNALS.iter().enumerate() {
        if index == handling || PREVIOUS_HANDLER[index].load(Ordering::SeqCst) != libc::SIG_DFL {
            continue;
        }
        // SAFETY: sigaction writes the `current` local; restore_default only passes
        // an emptied sigaction.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == on_fatal_signal as *const () as usize
            {
                restore_default(signal);
            }
        }
    }
}

/// The same fault, at the same instruction and address, this many times in a row
/// means the handler we chain to returns without curing it: without us too the
/// process would spin at 100% CPU forever. Far above what a runtime that really
/// handles faults (a JIT, a GC's guard pages) produces in a row, reached within
/// milliseconds by a loop.
const MAX_SAME_FAULT: usize = 10_000;
static LAST_FAULT: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static SAME_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// Records a fault; whether it has now recurred [`MAX_SAME_FAULT`] times in a row.
fn faulting_in_a_loop(signal: c_int, pc: usize, addr: usize) -> bool {
    let key = [signal as usize, pc, addr];
    let same = LAST_FAULT
        .iter()
        .zip(key)
        .all(|(slot, k)| slot.load(Ordering::Relaxed) == k);
    if same {
        SAME_FAULTS.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_SAME_FAULT
    } else {
        for (slot, k) in LAST_FAULT.iter().zip(key) {
            slot.store(k, Ordering::Relaxed);
        }
        SAME_FAULTS.store(1, Ordering::Relaxed);
        false
    }
}

/// Hands the signal to whatever handled it before us (see
/// [`telemetry_internal::signal::chain`]).
///
/// # Safety
/// The arguments are those of our handler, `index` the signal's in [`SIGNALS`].
unsafe fn chain(index: usize, signal: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: per this function's contract; the previous action is what `sigaction`
    // reported before ours went in.
    unsafe {
        sys_signal::chain(
            PREVIOUS_HANDLER[index].load(Ordering::SeqCst),
            PREVIOUS_FLAGS[index].load(Ordering::SeqCst),
            signal,
            info,
            ctx,
        );
    }
}
