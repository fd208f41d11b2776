//! All of the crate's `unsafe` on Windows: the unhandled-exception filter, the C
//! runtime's `SIGABRT` handler, the stack capture, the crash journal's mapping and
//! processing lock, and the question "where is the executable loaded". The Unix
//! counterpart is `signal/`: one `unsafe` module per platform.
//!
//! # The exception path
//! Windows has no fatal signals; a fault is an exception, dispatched first to vectored
//! handlers, then to the faulting thread's structured handlers, and only when none
//! handles it to the process's *unhandled-exception filter*. We install that filter
//! ([`install_handlers`]), so we see exactly the exceptions that are about to end the
//! process — not the many first-chance exceptions that code handles (a vectored handler
//! would see those too, and could not tell them apart). std's own stack-overflow
//! handler is a vectored one that prints "has overflowed its stack" and passes on, so
//! it still runs first. The filter:
//! 1. claims the one report a process may write (an atomic swap);
//! 2. captures the stack with `RtlCaptureStackBackTrace` (a fixed array on the stack, no
//!    allocation, no lock), which on x86_64 and aarch64 unwinds with the images'
//!    `.pdata` tables and walks through the exception dispatcher into the faulting
//!    frame; it starts the report at the faulting instruction (the exception record's
//!    address), or records only that instruction if the walk does not reach it;
//! 3. writes the record into the mapped journal (plain stores, `record::write`) and
//!    returns what the filter installed
//!    before ours returns (or `EXCEPTION_CONTINUE_SEARCH`), so the process dies exactly
//!    as it would have: same exit code (`0xC0000005`…), same error reporting.
//!
//! Exceptions are reported under the names the C runtime's `signal` gives them: an
//! access violation, in-page error or stack overflow is `SIGSEGV`, a misaligned access
//! `SIGBUS`, an illegal or privileged instruction `SIGILL`, an arithmetic exception
//! `SIGFPE`. Other unhandled exceptions (a C++ exception, say) are not counted.
//!
//! # Abort
//! The C runtime's `abort()` raises `SIGABRT` in-process before terminating, so a
//! `signal(SIGABRT)` handler reports `crash/abort` and then lets `abort` go on.
//! `std::process::abort` (and so a double panic or an allocation failure) does not
//! call the C runtime: it ends the process with `__fastfail`, which no handler of any
//! kind sees — not counted on Windows.

use std::ffi::{c_int, c_void};
use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::record::{FatalSignal, Frame, JOURNAL_LEN, Kind, MAX_FRAMES};
use crate::report;

type Handle = *mut c_void;

/// The executable's mapped address range; addresses outside it are `outside` frames.
static EXE_START: AtomicUsize = AtomicUsize::new(0);
static EXE_END: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The unhandled-exception filter installed before ours (0: none).
static PREVIOUS_FILTER: AtomicUsize = AtomicUsize::new(0);
/// The C runtime's `SIGABRT` handler before ours (`SIG_DFL` is 0).
static PREVIOUS_ABORT: AtomicUsize = AtomicUsize::new(0);

const EXCEPTION_CONTINUE_SEARCH: i32 = 0;
const PAGE_READWRITE: u32 = 0x04;
const FILE_MAP_WRITE: u32 = 0x0002;
const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
const STILL_ACTIVE: u32 = 259;
const ERROR_INVALID_PARAMETER: u32 = 87;
const ERROR_LOCK_VIOLATION: i32 = 33;
const LOCKFILE_FAIL_IMMEDIATELY: u32 = 0x0000_0001;
const LOCKFILE_EXCLUSIVE_LOCK: u32 = 0x0000_0002;
/// The C runtime's `SIGABRT` (22 in MSVCRT and the UCRT alike) and `SIG_ERR`.
const SIGABRT: c_int = 22;
const SIG_ERR: usize = usize::MAX;

/// `EXCEPTION_RECORD`, as far as we read it.
#[repr(C)]
struct ExceptionRecord {
    code: u32,
    flags: u32,
    next: *mut ExceptionRecord,
    address: *mut c_void,
    number_parameters: u32,
    information: [usize; 15],
}

/// `EXCEPTION_POINTERS`. The context record is passed on, never read.
#[repr(C)]
struct ExceptionPointers {
    record: *mut ExceptionRecord,
    context: *mut c_void,
}

/// `OVERLAPPED`: for a handle opened for synchronous I/O (std's), `LockFileEx` only
/// reads the offset from it.
#[repr(C)]
struct Overlapped {
    internal: usize,
    internal_high: usize,
    offset: u32,
    offset_high: u32,
    event: Handle,
}

type TopLevelFilter = unsafe extern "system" fn(*mut ExceptionPointers) -> i32;

/// `MODULEINFO`.
#[repr(C)]
struct ModuleInfo {
    base: *mut c_void,
    size: u32,
    entry: *mut c_void,
}

// Declared here rather than taken from a bindings crate: a few functions that every
// Windows since 7 (and Wine) exports from kernel32, whose signatures never change.
#[link(name = "kernel32")]
unsafe extern "system" {
    fn SetUnhandledExceptionFilter(filter: Option<TopLevelFilter>) -> Option<TopLevelFilter>;
    fn RtlCaptureStackBackTrace(
        frames_to_skip: u32,
        frames_to_capture: u32,
        trace: *mut *mut c_void,
        hash: *mut u32,
    ) -> u16;
    fn CreateFileMappingW(
        file: Handle,
        attributes: *mut c_void,
        protect: u32,
        size_high: u32,
        size_low: u32,
        name: *const u16,
    ) -> Handle;
    fn MapViewOfFile(
        mapping: Handle,
        access: u32,
        offset_high: u32,
        offset_low: u32,
        bytes: usize,
    ) -> *mut c_void;
    fn LockFileEx(
        file: Handle,
        flags: u32,
        reserved: u32,
        bytes_low: u32,
        bytes_high: u32,
        overlapped: *mut Overlapped,
    ) -> i32;
    fn GetCurrentProcessId() -> u32;
    fn OpenProcess(access: u32, inherit: i32, pid: u32) -> Handle;
    fn GetExitCodeProcess(process: Handle, code: *mut u32) -> i32;
    fn GetLastError() -> u32;
    fn GetCurrentThreadId() -> u32;
    fn CloseHandle(handle: Handle) -> i32;
    fn Sleep(milliseconds: u32);
    fn GetModuleHandleW(name: *const u16) -> Handle;
    fn GetCurrentProcess() -> Handle;
    fn RtlLookupFunctionEntry(
        control_pc: usize,
        image_base: *mut usize,
        history: *mut c_void,
    ) -> *const u32;
    fn K32GetModuleInformation(
        process: Handle,
        module: Handle,
        info: *mut ModuleInfo,
        size: u32,
    ) -> i32;
}

// The C runtime's `signal` (msvcrt or the UCRT, whichever std links).
unsafe extern "C" {
    fn signal(signal: c_int, handler: usize) -> usize;
    fn atexit(function: extern "C" fn()) -> c_int;
}

/// Where the executable is loaded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExeImage {
    /// The image base: the address of its headers, where the PE file's RVAs start.
    pub(crate) start: usize,
    /// One past its last byte.
    pub(crate) end: usize,
}

/// The main executable's load address and extent.
pub(crate) fn exe_image() -> Option<ExeImage> {
    let mut info = ModuleInfo {
        base: std::ptr::null_mut(),
        size: 0,
        entry: std::ptr::null_mut(),
    };
    // SAFETY: a null name asks for the executable's module handle, which needs no
    // release; `info` is a valid local of the size passed.
    let ok = unsafe {
        let module = GetModuleHandleW(std::ptr::null());
        !module.is_null()
            && K32GetModuleInformation(
                GetCurrentProcess(),
                module,
                &mut info,
                size_of::<ModuleInfo>() as u32,
            ) != 0
    };
    let start = info.base as usize;
    (ok && info.size > 0).then(|| ExeImage {
        start,
        end: start.saturating_add(info.size as usize),
    })
}

/// Records the executable's extent, maps the journal `file` (a view of the whole file,
/// for the rest of the process's life: it is never unmapped, so the filter may write
/// to it whenever it runs) and makes it where reports go. No handle is kept.
pub(crate) fn map_journal(file: &File) -> io::Result<()> {
    if let Some(image) = exe_image() {
        EXE_START.store(image.start, Ordering::SeqCst);
        EXE_END.store(image.end, Ordering::SeqCst);
    }
    // SAFETY: `file` is an open handle of ours, read-write; a null name and null
    // attributes make an anonymous, non-inheritable mapping object.
    let mapping = unsafe {
        CreateFileMappingW(
            file.as_raw_handle(),
            std::ptr::null_mut(),
            PAGE_READWRITE,
            0,
            0,
            std::ptr::null(),
        )
    };
    if mapping.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `mapping` is the object just made; the view covers JOURNAL_LEN bytes,
    // the file's whole length.
    let view = unsafe { MapViewOfFile(mapping, FILE_MAP_WRITE, 0, 0, JOURNAL_LEN) };
    let err = io::Error::last_os_error();
    // SAFETY: the view keeps the mapping object alive; its handle is no longer needed.
    unsafe { CloseHandle(mapping) };
    if view.is_null() {
        return Err(err);
    }
    // SAFETY: the view is JOURNAL_LEN bytes, aligned to the allocation granularity (so
    // for u64), readable and writable, and never unmapped, so it lives as long as
    // `'static`; `AtomicU64` has the size and alignment of `u64`, and every access
    // through this slice is atomic (other processes write the file the same way, or
    // with whole-word writes of slots they own under the journal's protocol).
    let words: &'static [AtomicU64] =
        unsafe { std::slice::from_raw_parts(view.cast::<AtomicU64>(), JOURNAL_LEN / 8) };
    report::publish(words);
    Ok(())
}

/// The byte the journal's processing lock covers: the one just past the journal's
/// end, which no process reads or writes. A byte-range lock on Windows is mandatory:
/// on the journal's own bytes it would make every other process's read of the state
/// words fail (a program opening the journal to record, while a child counts).
const JOURNAL_LOCK_OFFSET: u64 = JOURNAL_LEN as u64;

/// Takes the journal's processing lock on `file` without waiting (`LockFileEx`,
/// exclusive, failing at once): `Ok(true)` if taken, held until `file` is closed (the
/// system drops a handle's locks when it closes, or when its process dies);
/// `Ok(false)` if another handle holds it, in this process or another. `Err` if the
/// file system has no byte-range locks.
pub(crate) fn try_lock_journal(file: &File) -> io::Result<bool> {
    let mut overlapped = Overlapped {
        internal: 0,
        internal_high: 0,
        offset: JOURNAL_LOCK_OFFSET as u32,
        offset_high: (JOURNAL_LOCK_OFFSET >> 32) as u32,
        event: std::ptr::null_mut(),
    };
    // SAFETY: `file` is an open handle of ours, opened for synchronous I/O, so the call
    // returns at once and keeps no pointer to `overlapped`, a valid local; one byte
    // from its offset is locked.
    let locked = unsafe {
        LockFileEx(
            file.as_raw_handle(),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            1,
            0,
            &mut overlapped,
        )
    } != 0;
    if locked {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(ERROR_LOCK_VIOLATION) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// This process's id. No lock, no allocation.
fn this_process() -> u32 {
    // SAFETY: GetCurrentProcessId has no preconditions.
    unsafe { GetCurrentProcessId() }
}

/// Whether process `pid` still runs. One we may not ask about is taken as running,
/// so that its slot is left alone rather than counted as malformed.
pub(crate) fn process_alive(pid: u32) -> bool {
    // SAFETY: OpenProcess takes integers; a handle it returns is closed below;
    // GetExitCodeProcess writes the `code` local.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return GetLastError() != ERROR_INVALID_PARAMETER; // no such process
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(process, &mut code) != 0;
        CloseHandle(process);
        !ok || code == STILL_ACTIVE
    }
}

fn sleep_1ms() {
    // SAFETY: Sleep takes no pointers.
    unsafe { Sleep(1) };
}

/// The thread that installed the monitor, if std named it `main` (0 if not): the
/// thread whose panic ends the process. Recorded at install, since std's
/// `thread::current()` may itself panic in a hook that runs during a thread's
/// teardown.
static MAIN_THREAD: AtomicUsize = AtomicUsize::new(0);

/// This thread's identity, as [`report`] keeps it: never 0.
fn this_thread() -> usize {
    // SAFETY: GetCurrentThreadId reads the thread's environment block; no lock.
    unsafe { GetCurrentThreadId() as usize }
}

/// Frames captured per walk: the handler's own frames, the dispatcher's and std's
/// panic machinery sit above the crash, so keep room for them.
const CAPTURE: usize = 62;

/// The current thread's return addresses, innermost first (the caller of this
/// function first).
#[inline(never)]
fn capture(frames: &mut [usize; CAPTURE]) -> usize {
    // SAFETY: `frames` has room for CAPTURE pointer-sized entries; usize and pointers
    // have the same size and layout on Windows.
    let n = unsafe {
        RtlCaptureStackBackTrace(
            1,
            CAPTURE as u32,
            frames.as_mut_ptr().cast::<*mut c_void>(),
            std::ptr::null_mut(),
        )
    };
    usize::from(n).min(CAPTURE)
}

fn inside(addr: usize) -> bool {
    (EXE_START.load(Ordering::Relaxed)..EXE_END.load(Ordering::Relaxed)).contains(&addr)
}

fn ret_frame(addr: usize) -> Frame {
    if inside(addr) {
        Frame::Ret(addr)
    } else {
        Frame::Outside
    }
}

/// Keeps the frames of a panic, below `hook`, the function std called as the panic
/// hook (the whole stack if the hook's frame is not found: the child then drops std's
/// frames and ours by name), until we know whether the panic ends the process
/// ([`report`]).
pub(crate) fn report_panic(hook: usize) {
    if !report::has_journal() {
        return;
    }
    let mut frames = [0usize; CAPTURE];
    let n = capture(&mut frames);
    let captured = frames.get(..n).unwrap_or_default();
    let after_hook = captured
        .iter()
        .position(|&ret| function_start(ret.wrapping_sub(1)) == Some(hook))
        .map_or(0, |i| i + 1);
    let mut frames = [Frame::Outside; MAX_FRAMES];
    let mut len = 0;
    for (slot, &ret) in frames.iter_mut().zip(captured.iter().skip(after_hook)) {
        *slot = ret_frame(ret);
        len += 1;
    }
    report::panicked(
        this_thread(),
        MAIN_THREAD.load(Ordering::SeqCst) == this_thread(),
        frames.get(..len).unwrap_or_default(),
    );
}

/// The start of the function containing `pc`, from its image's `.pdata` table (the
/// table `RtlCaptureStackBackTrace` unwinds with). No allocation, no lock that a crash
/// could hold: the loader's list is read with a lock-free lookup on Windows 8+.
fn function_start(pc: usize) -> Option<usize> {
    let mut base = 0usize;
    // SAFETY: `base` is a valid local; a null history table is allowed. The returned
    // RUNTIME_FUNCTION begins with the function's start RVA on x86_64 and aarch64.
    unsafe {
        let entry = RtlLookupFunctionEntry(pc, &mut base, std::ptr::null_mut());
        (!entry.is_null()).then(|| base.wrapping_add(*entry as usize))
    }
}

/// What an exception code is reported as, if at all.
fn kind_of(code: u32) -> Option<Kind> {
    Some(match code {
        // EXCEPTION_ACCESS_VIOLATION, EXCEPTION_IN_PAGE_ERROR, EXCEPTION_STACK_OVERFLOW,
        // EXCEPTION_GUARD_PAGE
        0xC000_0005 | 0xC000_0006 | 0xC000_00FD | 0x8000_0001 => Kind::Signal(FatalSignal::Segv),
        // EXCEPTION_DATATYPE_MISALIGNMENT
        0x8000_0002 => Kind::Signal(FatalSignal::Bus),
        // EXCEPTION_ILLEGAL_INSTRUCTION, EXCEPTION_PRIV_INSTRUCTION
        0xC000_001D | 0xC000_0096 => Kind::Signal(FatalSignal::Ill),
        // EXCEPTION_FLT_* (0xC000008D-0xC0000093), EXCEPTION_INT_DIVIDE_BY_ZERO,
        // EXCEPTION_INT_OVERFLOW
        0xC000_008D..=0xC000_0095 => Kind::Signal(FatalSignal::Fpe),
        _ => return None,
    })
}

/// The unhandled-exception filter: report once, then do what would have been done
/// without us.
unsafe extern "system" fn on_unhandled_exception(pointers: *mut ExceptionPointers) -> i32 {
    // SAFETY: Windows passes valid exception pointers to the filter; both are checked
    // for null before reading.
    let (code, address) = unsafe {
        match pointers.as_ref().and_then(|p| p.record.as_ref()) {
            Some(record) => (record.code, record.address as usize),
            None => (0, 0),
        }
    };
    if let Some(kind) = kind_of(code) {
        if report::claim() {
            report_exception(kind, address);
        } else {
            report::wait_for_report(sleep_1ms);
        }
    }
    let previous = PREVIOUS_FILTER.load(Ordering::SeqCst);
    if previous == 0 {
        return EXCEPTION_CONTINUE_SEARCH;
    }
    // SAFETY: `previous` is the filter SetUnhandledExceptionFilter returned when ours
    // was installed, a function of this signature; we call it as Windows would have.
    unsafe {
        let previous: TopLevelFilter = std::mem::transmute(previous);
        previous(pointers)
    }
}

#[inline(never)]
fn report_exception(kind: Kind, fault: usize) {
    let mut frames = [0usize; CAPTURE];
    let n = capture(&mut frames);
    let captured = frames.get(..n).unwrap_or_default();
    let mut record = [Frame::Outside; MAX_FRAMES];
    let mut len = 0;
    let pc_frame = if inside(fault) {
        Frame::Pc(fault)
    } else {
        Frame::Outside
    };
    match captured.iter().position(|&pc| pc == fault) {
        Some(at) => {
            record[0] = pc_frame;
            len = 1;
            for (slot, &ret) in record[1..].iter_mut().zip(captured.iter().skip(at + 1)) {
                *slot = ret_frame(ret);
                len += 1;
            }
        }
        // The walk did not get through the dispatcher: keep the faulting instruction.
        None if fault != 0 => {
            record[0] = pc_frame;
            len = 1;
        }
        None => {}
    }
    report::send(this_process(), kind, record.get(..len).unwrap_or_default());
}

/// The C runtime's `SIGABRT` handler: report, then let `abort` go on.
extern "C" fn on_abort(sig: c_int) {
    if report::claim() {
        if let Some(panic) = report::abort_of_panic(this_thread()) {
            // The abort ends a panic: that panic is the crash.
            report::send(this_process(), Kind::Panic, panic.frames());
        } else {
            abort_report();
        }
    } else {
        report::wait_for_report(sleep_1ms);
    }
    let previous = PREVIOUS_ABORT.load(Ordering::SeqCst);
    // The C runtime resets a handler to SIG_DFL before calling it; SIG_IGN is 1.
    if previous > 1 && previous != SIG_ERR {
        // SAFETY: `previous` is the handler `signal` returned when ours was installed,
        // a C function taking the signal number.
        unsafe {
            let previous: extern "C" fn(c_int) = std::mem::transmute(previous);
            previous(sig);
        }
    }
}

/// The report of a plain `abort()`: the aborting thread's stack.
#[inline(never)]
fn abort_report() {
    let mut frames = [0usize; CAPTURE];
    let n = capture(&mut frames);
    // Above the caller of abort sit the C runtime's abort and raise, outside the
    // executable or named as machinery by the child.
    let mut record = [Frame::Outside; MAX_FRAMES];
    let mut len = 0;
    for (slot, &ret) in record.iter_mut().zip(frames.get(..n).unwrap_or_default()) {
        *slot = ret_frame(ret);
        len += 1;
    }
    report::send(
        this_process(),
        Kind::Abort,
        record.get(..len).unwrap_or_default(),
    );
}

/// Reports a panic that ended `main` as the process exits (see [`report`]). The C
/// runtime's `atexit` does not tell the exit status: a panic of the main thread
/// followed by any exit is reported.
extern "C" fn at_exit() {
    if let Some(panic) = report::exit_of_panic(None)
        && report::claim()
    {
        report::send(this_process(), Kind::Panic, panic.frames());
    }
}

/// Installs the unhandled-exception filter and the `SIGABRT` handler, remembering the
/// previous ones, and the exit report.
pub(crate) fn install_handlers() -> Result<(), (&'static str, io::Error)> {
    if std::thread::current().name() == Some("main") {
        MAIN_THREAD.store(this_thread(), Ordering::SeqCst);
    }
    // Warm up: the first capture loads what the unwinder needs outside any crash.
    let mut warm = [0usize; CAPTURE];
    capture(&mut warm);
    // SAFETY: our filter has the signature Windows calls. (A crash on another thread
    // between these two statements finds no previous filter and returns
    // EXCEPTION_CONTINUE_SEARCH: at worst the previous filter misses that one crash.)
    unsafe {
        let previous = SetUnhandledExceptionFilter(Some(on_unhandled_exception));
        PREVIOUS_FILTER.store(previous.map_or(0, |f| f as usize), Ordering::SeqCst);
    }
    // SAFETY: `on_abort` is a C function taking the signal number, as `signal` expects.
    let previous = unsafe { signal(SIGABRT, on_abort as extern "C" fn(c_int) as usize) };
    if previous == SIG_ERR {
        return Err(("SIGABRT", io::Error::last_os_error()));
    }
    PREVIOUS_ABORT.store(previous, Ordering::SeqCst);
    // SAFETY: registers a C function taking nothing, as atexit expects.
    unsafe { atexit(at_exit) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_image_contains_own_code() {
        let image = exe_image().expect("GetModuleInformation");
        let code = crate::record::sentinel();
        assert!(
            (image.start..image.end).contains(&code),
            "{image:?} {code:#x}"
        );
    }

    #[inline(never)]
    fn capture_here() -> Vec<usize> {
        let mut frames = [0usize; CAPTURE];
        let n = capture(&mut frames);
        frames[..n].to_vec()
    }

    #[test]
    fn captures_this_stack() {
        let frames = capture_here();
        assert!(frames.len() >= 3, "{frames:x?}");
        let image = exe_image().unwrap();
        // The first frame returns into this test function, in the executable.
        assert!(
            (image.start..image.end).contains(&frames[0]),
            "{frames:x?} {image:?}"
        );
    }

    #[test]
    fn exception_kinds() {
        assert_eq!(kind_of(0xC000_0005), Some(Kind::Signal(FatalSignal::Segv)));
        assert_eq!(kind_of(0xC000_00FD), Some(Kind::Signal(FatalSignal::Segv)));
        assert_eq!(kind_of(0xC000_001D), Some(Kind::Signal(FatalSignal::Ill)));
        assert_eq!(kind_of(0xC000_0094), Some(Kind::Signal(FatalSignal::Fpe)));
        // A C++ exception, and the code GCC's unwinder raises for a Rust panic.
        assert_eq!(kind_of(0xE06D_7363), None);
        assert_eq!(kind_of(0x2047_4343), None);
    }
}
