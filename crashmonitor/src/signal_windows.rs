//! All of the crate's `unsafe` on Windows: the unhandled-exception filter, the C
//! runtime's `SIGABRT` handler, the stack capture, the write to the pipe, and the
//! question "where is the executable loaded". The Unix counterpart is `signal.rs`: one
//! `unsafe` module per platform.
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
//! 3. writes the report with one `WriteFile` and returns what the filter installed
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
use std::io;
use std::os::windows::io::{IntoRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::report;
use crate::wire::{FatalSignal, Frame, Kind, MAX_FRAMES, ReportBuf};

type Handle = *mut c_void;

/// The executable's mapped address range; addresses outside it are `outside` frames.
static EXE_START: AtomicUsize = AtomicUsize::new(0);
static EXE_END: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The unhandled-exception filter installed before ours (0: none).
static PREVIOUS_FILTER: AtomicUsize = AtomicUsize::new(0);
/// The C runtime's `SIGABRT` handler before ours (`SIG_DFL` is 0).
static PREVIOUS_ABORT: AtomicUsize = AtomicUsize::new(0);

const EXCEPTION_CONTINUE_SEARCH: i32 = 0;
const ERROR_IO_PENDING: u32 = 997;
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

type TopLevelFilter = unsafe extern "system" fn(*mut ExceptionPointers) -> i32;

/// `OVERLAPPED`: the pipe end std gives a parent is opened for overlapped I/O.
#[repr(C)]
struct Overlapped {
    internal: usize,
    internal_high: usize,
    offset: u32,
    offset_high: u32,
    event: Handle,
}

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
    fn WriteFile(
        file: Handle,
        buffer: *const u8,
        length: u32,
        written: *mut u32,
        overlapped: *mut Overlapped,
    ) -> i32;
    fn GetOverlappedResult(
        file: Handle,
        overlapped: *mut Overlapped,
        transferred: *mut u32,
        wait: i32,
    ) -> i32;
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

/// Records the executable's extent, takes the pipe and writes `sentinel` to it.
pub(crate) fn open_pipe(pipe: OwnedHandle, sentinel: &[u8]) -> io::Result<()> {
    if let Some(image) = exe_image() {
        EXE_START.store(image.start, Ordering::SeqCst);
        EXE_END.store(image.end, Ordering::SeqCst);
    }
    // std creates child pipes without inheritance on our side, so a program the host
    // starts later does not hold the pipe open.
    let handle = pipe.into_raw_handle();
    if !write_all_at_once(handle, sentinel) {
        // SAFETY: GetLastError only reads this thread's last error.
        let err = io::Error::from_raw_os_error(unsafe { GetLastError() } as i32);
        // SAFETY: `handle` is ours and not yet published; nothing else uses it.
        unsafe { CloseHandle(handle) };
        return Err(err);
    }
    // Kept open for the life of the process: Windows closes it when the process ends,
    // and that end of file is how the child learns that the parent is gone.
    report::publish(handle as usize);
    Ok(())
}

/// Ends reporting and closes the pipe once no thread can still be writing to it (see
/// [`report::close`]: a handle is never closed, and perhaps reused, under a writer).
pub(crate) fn close_pipe() {
    report::close(
        |raw| {
            // SAFETY: `raw` is the handle `open_pipe` published; `report::close` took
            // it away from every writer and calls this once, when none is left.
            unsafe { CloseHandle(raw as Handle) };
        },
        sleep_1ms,
    );
}

/// Writes `data` with one `WriteFile`; true if all of it went. No allocation, no lock.
///
/// std opens its end of a child's pipe for overlapped I/O, and `WriteFile` on such a
/// handle needs an `OVERLAPPED`; a write that is still pending is waited for. The
/// pipe's buffer holds far more than the sentinel and the one report, so that wait
/// is for the kernel's copy, not for the child to read.
fn write_all_at_once(handle: Handle, data: &[u8]) -> bool {
    let Ok(length) = u32::try_from(data.len()) else {
        return false;
    };
    let mut overlapped = Overlapped {
        internal: 0,
        internal_high: 0,
        offset: 0,
        offset_high: 0,
        event: std::ptr::null_mut(),
    };
    let mut written = 0u32;
    // SAFETY: `data` is valid for `length` bytes; `overlapped` and `written` are locals
    // that outlive the write, which is complete (or failed) before we return.
    unsafe {
        if WriteFile(handle, data.as_ptr(), length, &mut written, &mut overlapped) == 0 {
            if GetLastError() != ERROR_IO_PENDING
                || GetOverlappedResult(handle, &mut overlapped, &mut written, 1) == 0
            {
                return false;
            }
        }
    }
    written == length
}

fn send(report: &ReportBuf) {
    report::send(report, |raw, bytes| write_all_at_once(raw as Handle, bytes));
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
    if !report::has_pipe() {
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
    let mut buf = ReportBuf::crash(kind);
    let pc_frame = if inside(fault) {
        Frame::Pc(fault)
    } else {
        Frame::Outside
    };
    match captured.iter().position(|&pc| pc == fault) {
        Some(at) => {
            buf.push(pc_frame);
            for &ret in captured.iter().skip(at + 1).take(MAX_FRAMES - 1) {
                buf.push(ret_frame(ret));
            }
        }
        // The walk did not get through the dispatcher: keep the faulting instruction.
        None if fault != 0 => {
            buf.push(pc_frame);
        }
        None => {}
    }
    buf.finish();
    send(&buf);
}

/// The C runtime's `SIGABRT` handler: report, then let `abort` go on.
extern "C" fn on_abort(sig: c_int) {
    if report::claim() {
        if let Some(panic) = report::abort_of_panic(this_thread()) {
            // The abort ends a panic: that panic is the crash.
            send(&panic);
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
    let mut buf = ReportBuf::crash(Kind::Abort);
    for &ret in frames.get(..n).unwrap_or_default().iter().take(MAX_FRAMES) {
        buf.push(ret_frame(ret));
    }
    buf.finish();
    send(&buf);
}

/// Reports a panic that ended `main` as the process exits (see [`report`]). The C
/// runtime's `atexit` does not tell the exit status: a panic of the main thread
/// followed by any exit is reported.
extern "C" fn at_exit() {
    if let Some(panic) = report::exit_of_panic(None)
        && report::claim()
    {
        send(&panic);
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
