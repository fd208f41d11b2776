//! The process-wide `SIGBUS` handler, and the repair of faults inside our own mappings.
//!
//! `SIGBUS` inside our own mappings: a page cut off by another process's `truncate`
//! (golang/go#74651: Go crashed the host), or a hole with no disk block behind it. The
//! handler maps a private zero page over the faulting page and lets the access retry:
//! counts through that page go nowhere, the host lives. Any other `SIGBUS` goes to
//! the handler that was installed before ours, or gets the default action.
//!
//! The crash monitor's handler, installed before or after ours, first asks
//! `repair` (through `telemetry_counter::repair_fault`), so a fault we can repair is
//! never reported as a crash, whichever handler the kernel calls first. A handler the
//! host installs later without chaining to ours takes this protection away.

use std::ffi::{c_int, c_void};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use telemetry_internal::signal as sys_signal;

/// Mappings a process makes: a few per week (the reservation doubles), so this
/// many covers years of a long-running process; later ones are unprotected.
const MAX_RANGES: usize = 256;
static STARTS: [AtomicUsize; MAX_RANGES] = [const { AtomicUsize::new(0) }; MAX_RANGES];
static ENDS: [AtomicUsize; MAX_RANGES] = [const { AtomicUsize::new(0) }; MAX_RANGES];
static USED: AtomicUsize = AtomicUsize::new(0);
static REPAIRS: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREVIOUS_FLAGS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// Protects `start..start + len`, a mapping that is never unmapped.
pub(crate) fn watch(start: usize, len: usize) {
    INSTALL.call_once(install);
    let index = USED.fetch_add(1, Ordering::AcqRel);
    if let (Some(s), Some(e)) = (STARTS.get(index), ENDS.get(index)) {
        // The end first: a reader that sees the start sees the end.
        e.store(start.saturating_add(len), Ordering::Release);
        s.store(start, Ordering::Release);
    }
}

/// Protects another crate's shared mapping `start..start + len` as the counter
/// file's are: a `SIGBUS` in it (the file cut short by another process) gets a private
/// zero page mapped over the faulting page, and the access retries. For the crash
/// journal, which only a dying process writes: its handler's stores land in memory of
/// its own instead of killing it with `SIGBUS` in place of its own signal. A repair
/// never writes to the file. Like any repair, it also stops this process placing new
/// records in its counter file.
///
/// # Safety
/// The range is a mapping that stays mapped for the rest of the process's life, and
/// whose memory every user tolerates a page of turning, at any instruction, into a
/// private page of zeros (atomic accesses, no references held across the change).
pub unsafe fn watch_shared_mapping(start: usize, len: usize) {
    watch(start, len);
}

/// Whether `addr` lies in one of our mappings. Lock-free, async-signal-safe.
pub(crate) fn is_ours(addr: usize) -> bool {
    let used = USED.load(Ordering::Acquire).min(MAX_RANGES);
    (0..used).any(|i| {
        let start = STARTS[i].load(Ordering::Acquire);
        start != 0 && addr >= start && addr < ENDS[i].load(Ordering::Acquire)
    })
}

/// If `addr` lies in one of our mappings, maps a private zero page over its page
/// and returns true: the faulting access can be retried. Async-signal-safe.
///
/// Only for a fault the kernel raised (`si_code > 0`): a signal another process
/// sent carries whatever address the sender wrote, and would get a live page of
/// counts replaced by zeros.
pub(crate) fn repair(addr: usize) -> bool {
    if !is_ours(addr) {
        return false;
    }
    let page = PAGE.load(Ordering::Relaxed);
    let base = addr & !(page - 1);
    if !map_zero_page(base, page) {
        return false;
    }
    REPAIRS.fetch_add(1, Ordering::SeqCst);
    // The file was cut; another process may rebuild it, with its records where
    // ours were, in pages we still share. No cached pointer may land there.
    super::forget_all_slots();
    true
}

/// Maps a private zero page over `base..base + page`, a page of one of our own
/// leaked mappings: nothing uses that memory but through atomics and checked
/// reads, and the page stays mapped and writable, so every pointer into it stays
/// valid. `MAP_FIXED` replaces the old page in one step (the kernel holds the
/// address space's lock throughout), so no other thread sees a hole.
///
/// Called from a signal handler, and `mmap` is not on POSIX's list of
/// async-signal-safe functions; what makes it safe is what it is on each
/// platform. Linux (glibc, musl, bionic): the system call itself, through
/// `syscall(2)`, which only moves registers and sets `errno` (the handler
/// restores it). Not the libc wrapper, because musl's `mmap` first waits on a
/// process-wide lock when given `MAP_FIXED`, which the interrupted thread may
/// hold. macOS: libsystem_kernel's `mmap` checks its arguments and traps
/// (`__mmap`); it takes no lock and does not allocate. Other Unix systems get the
/// libc function, a system call stub there too.
fn map_zero_page(base: usize, page: usize) -> bool {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    ))]
    {
        // SAFETY: the arguments describe one page of our own mapping (see above);
        // on 64-bit Linux the system call takes them as `mmap(2)` does, the offset
        // in bytes. It returns the address or -1 with `errno` set.
        let mapped = unsafe {
            libc::syscall(
                libc::SYS_mmap,
                base,
                page,
                prot as libc::c_long,
                flags as libc::c_long,
                -1 as libc::c_long,
                0 as libc::c_long,
            )
        };
        mapped == base as libc::c_long
    }
    #[cfg(not(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    )))]
    {
        // SAFETY: as above: one page of our own mapping, replaced in place.
        let mapped = unsafe { libc::mmap(base as *mut c_void, page, prot, flags, -1, 0) };
        mapped == base as *mut c_void
    }
}

/// How many pages [`repair`] has replaced so far.
pub(crate) fn repairs() -> usize {
    REPAIRS.load(Ordering::SeqCst)
}

fn install() {
    // SAFETY: sysconf takes an integer. sigaction reads `action` and writes
    // `previous`, both valid locals; our handler has the SA_SIGINFO signature.
    unsafe {
        if let Ok(page) = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)) {
            if page.is_power_of_two() {
                PAGE.store(page, Ordering::Relaxed);
            }
        }
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
            return;
        }
        PREVIOUS_HANDLER.store(previous.sa_sigaction, Ordering::SeqCst);
        PREVIOUS_FLAGS.store(previous.sa_flags as usize, Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// The faulting address of a `SIGBUS` the kernel raised; `None` for one that a
/// process sent (`kill`, `sigqueue`, `raise`: `si_code <= 0`), whose address field
/// holds whatever the sender put there (on Linux `rt_sigqueueinfo` lets a
/// same-user process fill in the whole union).
///
/// On macOS the kernel fills in `si_code` (`BUS_ADRALN`) and `si_addr` (the
/// thread's last fault address) for every `SIGBUS` it delivers, sent or not, so
/// there the sender cannot choose the address, but neither can the two be told
/// apart.
///
/// # Safety
/// `info` is a handler's siginfo argument, or null.
unsafe fn kernel_fault_address(info: *mut libc::siginfo_t) -> Option<usize> {
    if info.is_null() {
        return None;
    }
    // SAFETY: per the contract `info` points at the kernel's siginfo.
    let info = unsafe { &*info };
    if info.si_code <= 0 {
        return None;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the address field is valid for a kernel-raised SIGBUS.
    return Some(unsafe { info.si_addr() } as usize);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return Some(info.si_addr as usize);
}

extern "C" fn on_sigbus(signal: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let saved_errno = sys_signal::errno();
    // SAFETY: `info` is this handler's siginfo argument.
    let fault = unsafe { kernel_fault_address(info) };
    if fault.is_some_and(repair) {
        sys_signal::set_errno(saved_errno);
        return;
    }
    // A sent signal, or a fault outside our mappings: as if we were not here.
    // SAFETY: these are our handler's arguments, and the previous action is what
    // `sigaction` reported before ours went in.
    unsafe {
        sys_signal::chain(
            PREVIOUS_HANDLER.load(Ordering::SeqCst),
            PREVIOUS_FLAGS.load(Ordering::SeqCst),
            signal,
            info,
            ctx,
        );
    }
}
