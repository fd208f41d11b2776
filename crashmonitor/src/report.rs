//! The one report a process writes, shared by the Unix and Windows platform modules
//! (`signal.rs`, `signal_windows.rs`): who may write it, the pipe it goes to, how that
//! pipe is closed without ever being closed under a writer, and the panics kept until
//! we know whether they end the process. Everything here is atomics on statics: no
//! allocation, no lock, usable from a signal handler or an exception filter. The
//! platform modules bring what differs: the raw write, the close, a sleep, and the
//! identity of the current thread.
//!
//! # Which crash is reported
//! A process reports at most one crash, the one that ends it:
//! - a fatal signal or exception (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, an
//!   access violation…), reported by the handler when it happens;
//! - `abort()`, reported as `crash/abort`, unless the aborting thread is panicking:
//!   then it is the panic that ends the process (`panic = "abort"`, a panic during a
//!   panic, a panic that cannot unwind out of an `extern "C"` function), reported as
//!   `crash/panic` with the frames the panic hook captured;
//! - a panic of the main thread that ends `main`: the process exits with std's panic
//!   status, 101, and the report is written on the way out (`at_exit`).
//!
//! A panic the program survives (caught by `catch_unwind`, or a spawned thread's
//! panic that is joined or ignored) is never reported: the hook only keeps its frames,
//! and nothing is claimed, so a fatal crash that follows any number of them is still
//! reported.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::wire::{Frame, Kind, MAX_FRAMES, ReportBuf};

/// No pipe: before `publish`, and after `close`.
const NO_PIPE: usize = usize::MAX;

/// How long a thread that lost the claim, or `close`, waits for a report being
/// written, in 1 ms sleeps.
const WAIT_MS: usize = 100;

/// The pipe to the child and the claim on the one report.
struct Gate {
    /// The pipe, as its platform's raw value (a descriptor or a handle).
    pipe: AtomicUsize,
    /// How many threads are between loading `pipe` and the end of their write.
    writers: AtomicUsize,
    /// Set by the first claim; nothing is written after it.
    reported: AtomicBool,
    /// Set once that report has been written (or failed to be).
    sent: AtomicBool,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            pipe: AtomicUsize::new(NO_PIPE),
            writers: AtomicUsize::new(0),
            reported: AtomicBool::new(false),
            sent: AtomicBool::new(false),
        }
    }

    fn publish(&self, raw: usize) {
        self.pipe.store(raw, Ordering::SeqCst);
    }

    fn has_pipe(&self) -> bool {
        self.pipe.load(Ordering::SeqCst) != NO_PIPE
    }

    fn claim(&self) -> bool {
        self.has_pipe() && !self.reported.swap(true, Ordering::SeqCst)
    }

    fn send(&self, report: &ReportBuf, write: impl FnOnce(usize, &[u8]) -> bool) {
        // Counted before the pipe is loaded: `close` takes the pipe away first and
        // then waits for this count, so whoever loaded a pipe is seen by `close`,
        // which then never closes it under the write.
        self.writers.fetch_add(1, Ordering::SeqCst);
        let raw = self.pipe.load(Ordering::SeqCst);
        if raw != NO_PIPE {
            write(raw, report.as_bytes());
        }
        self.writers.fetch_sub(1, Ordering::SeqCst);
        self.sent.store(true, Ordering::SeqCst);
    }

    fn wait_for_report(&self, sleep_1ms: fn()) {
        for _ in 0..WAIT_MS {
            if self.sent.load(Ordering::SeqCst) {
                return;
            }
            sleep_1ms();
        }
    }

    fn close(&self, close: impl FnOnce(usize), sleep_1ms: fn()) {
        if !self.has_pipe() {
            return; // never installed (or already closed)
        }
        if self.reported.swap(true, Ordering::SeqCst) {
            self.wait_for_report(sleep_1ms);
        } else {
            // No report will come: nobody need wait for one.
            self.sent.store(true, Ordering::SeqCst);
        }
        let raw = self.pipe.swap(NO_PIPE, Ordering::SeqCst);
        if raw == NO_PIPE {
            return;
        }
        for _ in 0..WAIT_MS {
            if self.writers.load(Ordering::SeqCst) == 0 {
                close(raw);
                return;
            }
            sleep_1ms();
        }
    }
}

/// The process's one gate.
static GATE: Gate = Gate::new();

/// Makes `raw` (a descriptor or handle the caller owns and never closes itself) the
/// pipe reports go to.
pub(crate) fn publish(raw: usize) {
    GATE.publish(raw);
}

/// Whether a pipe is published (and not closed).
pub(crate) fn has_pipe() -> bool {
    GATE.has_pipe()
}

/// Claims the process's one report; false if one was already claimed, or if no pipe
/// is open.
pub(crate) fn claim() -> bool {
    GATE.claim()
}

/// Writes the claimed report with `write(raw pipe, bytes)`, then tells any waiter it
/// is out.
pub(crate) fn send(report: &ReportBuf, write: impl FnOnce(usize, &[u8]) -> bool) {
    GATE.send(report, write);
}

/// When two threads crash at once, the one that lost the claim waits a little for
/// the other's report before letting its crash kill the process, or the report of
/// the first crash would die with it. Bounded (about 100 ms), because the claim may
/// belong to this very thread (a fault inside our own handler).
pub(crate) fn wait_for_report(sleep_1ms: fn()) {
    GATE.wait_for_report(sleep_1ms);
}

/// Ends reporting: nothing is written from now on, and the pipe is closed with
/// `close` so the child reads end of file, unless a writer still holds it.
///
/// The pipe is taken away (swapped out) before the writers are counted. Every
/// operation is sequentially consistent, so a writer that loaded the pipe counted
/// itself before that swap, and `close` sees its count until its write has
/// returned: the pipe is closed only when no thread can still write to it, so a
/// write never lands on a descriptor number the process has reused for something
/// else. A writer that has not finished after about 100 ms (a thread stopped inside
/// our handler) leaves the pipe open for the life of the process instead.
pub(crate) fn close(close: impl FnOnce(usize), sleep_1ms: fn()) {
    GATE.close(close, sleep_1ms);
}

/// A panic's frames, kept from the panic hook until we know whether the panic ends
/// the process. A seqlock: the writer makes `seq` odd while it writes; a reader
/// trusts what it copied only if `seq` was the same even number before and after.
struct PendingPanic {
    seq: AtomicUsize,
    /// Only one hook writes at a time; a second, concurrent one keeps nothing.
    writing: AtomicBool,
    /// The panicking thread ([`PendingPanic::NOBODY`] if none).
    thread: AtomicUsize,
    len: AtomicUsize,
    /// Each frame as (tag, address): see [`encode`].
    tags: [AtomicUsize; MAX_FRAMES],
    addrs: [AtomicUsize; MAX_FRAMES],
}

impl PendingPanic {
    const NOBODY: usize = 0;

    const fn new() -> PendingPanic {
        PendingPanic {
            seq: AtomicUsize::new(0),
            writing: AtomicBool::new(false),
            thread: AtomicUsize::new(PendingPanic::NOBODY),
            len: AtomicUsize::new(0),
            tags: [const { AtomicUsize::new(0) }; MAX_FRAMES],
            addrs: [const { AtomicUsize::new(0) }; MAX_FRAMES],
        }
    }

    fn record(&self, thread: usize, frames: &[Frame]) {
        if self.writing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.thread.store(thread, Ordering::SeqCst);
        let frames = frames.get(..MAX_FRAMES).unwrap_or(frames);
        for ((tag, addr), frame) in self.tags.iter().zip(&self.addrs).zip(frames) {
            let (t, a) = encode(*frame);
            tag.store(t, Ordering::SeqCst);
            addr.store(a, Ordering::SeqCst);
        }
        self.len.store(frames.len(), Ordering::SeqCst);
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.writing.store(false, Ordering::SeqCst);
    }

    /// The kept panic as a finished `crash panic` report, if it is `thread`'s (any
    /// thread's for `None`) and was not being rewritten while read.
    fn report(&self, thread: Option<usize>) -> Option<ReportBuf> {
        let before = self.seq.load(Ordering::SeqCst);
        let owner = self.thread.load(Ordering::SeqCst);
        if before % 2 == 1 || owner == PendingPanic::NOBODY || thread.is_some_and(|t| t != owner) {
            return None;
        }
        let mut buf = ReportBuf::crash(Kind::Panic);
        let len = self.len.load(Ordering::SeqCst);
        for (tag, addr) in self.tags.iter().zip(&self.addrs).take(len) {
            buf.push(decode(
                tag.load(Ordering::SeqCst),
                addr.load(Ordering::SeqCst),
            ));
        }
        buf.finish();
        (self.seq.load(Ordering::SeqCst) == before).then_some(buf)
    }
}

fn encode(frame: Frame) -> (usize, usize) {
    match frame {
        Frame::Outside => (0, 0),
        Frame::Pc(addr) => (1, addr),
        Frame::Ret(addr) => (2, addr),
    }
}

fn decode(tag: usize, addr: usize) -> Frame {
    match tag {
        1 => Frame::Pc(addr),
        2 => Frame::Ret(addr),
        _ => Frame::Outside,
    }
}

/// The latest panic of any thread, for an abort that follows it on the same thread.
static LATEST_PANIC: PendingPanic = PendingPanic::new();
/// The latest panic of the main thread, for an exit with std's panic status.
static MAIN_PANIC: PendingPanic = PendingPanic::new();

/// The exit status of a process whose `main` panicked.
pub(crate) const PANIC_EXIT_STATUS: i32 = 101;

/// Called by the panic hook with the panicking thread's identity, whether it is the
/// main thread, and its frames (below the hook): keeps them, writes nothing. Whether
/// the panic is a crash is known only later (see the module docs).
pub(crate) fn panicked(thread: usize, main_thread: bool, frames: &[Frame]) {
    if !has_pipe() {
        return;
    }
    LATEST_PANIC.record(thread, frames);
    if main_thread {
        MAIN_PANIC.record(thread, frames);
    }
}

/// What an abort on `thread` is reported as: the panic that thread is in, if it is
/// panicking (the abort is how that panic ends the process), else `None`: a plain
/// abort. Async-signal-safe as far as std's `panicking()` is: it reads an atomic,
/// and this thread's panic count (a constant-initialised thread-local) only when
/// some thread is panicking.
pub(crate) fn abort_of_panic(thread: usize) -> Option<ReportBuf> {
    if !std::thread::panicking() {
        return None;
    }
    LATEST_PANIC.report(Some(thread))
}

/// What the process's exit is reported as: the main thread's panic if the process
/// exits with std's panic status (`status`, where the platform tells it; `None`:
/// unknown, taken as the panic status when the main thread panicked), else `None`.
pub(crate) fn exit_of_panic(status: Option<i32>) -> Option<ReportBuf> {
    if status.is_some_and(|s| s != PANIC_EXIT_STATUS) {
        return None;
    }
    MAIN_PANIC.report(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicI64;

    fn sleep_1ms() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }

    /// Waits (at most 10 s) for `flag`.
    fn until(flag: &AtomicBool) {
        let start = std::time::Instant::now();
        while !flag.load(Ordering::SeqCst) {
            assert!(start.elapsed().as_secs() < 10, "timed out");
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_pipe_is_never_closed_under_a_writer() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new()));
        gate.publish(5);
        let inside = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let writer = {
            let (inside, release) = (inside.clone(), release.clone());
            std::thread::spawn(move || {
                assert!(gate.claim());
                let report = ReportBuf::crash(Kind::Abort);
                gate.send(&report, |raw, _| {
                    assert_eq!(raw, 5);
                    inside.store(true, Ordering::SeqCst);
                    until(&release); // a write that takes longer than close waits
                    true
                });
            })
        };
        until(&inside);
        let closed = AtomicI64::new(-1);
        gate.close(|raw| closed.store(raw as i64, Ordering::SeqCst), sleep_1ms);
        assert_eq!(
            closed.load(Ordering::SeqCst),
            -1,
            "closed while a thread was writing to it"
        );
        assert!(!gate.has_pipe() && !gate.claim(), "reporting is over");
        release.store(true, Ordering::SeqCst);
        writer.join().unwrap();
    }

    #[test]
    fn the_pipe_is_closed_once_when_nobody_writes() {
        let gate = Gate::new();
        gate.publish(6);
        assert!(gate.claim());
        gate.send(&ReportBuf::crash(Kind::Abort), |_, _| true);
        let closed = AtomicI64::new(-1);
        gate.close(|raw| closed.store(raw as i64, Ordering::SeqCst), sleep_1ms);
        assert_eq!(closed.load(Ordering::SeqCst), 6);
        gate.close(|_| panic!("closed twice"), sleep_1ms);
        let mut wrote = false;
        gate.send(&ReportBuf::crash(Kind::Abort), |_, _| {
            wrote = true;
            true
        });
        assert!(!wrote, "nothing is written after close");
    }

    #[test]
    fn a_kept_panic_reads_back_for_its_thread_only() {
        let slot = PendingPanic::new();
        assert!(slot.report(None).is_none(), "nothing kept yet");
        slot.record(7, &[Frame::Ret(0x10), Frame::Outside, Frame::Pc(0x20)]);
        let text = String::from_utf8(slot.report(Some(7)).unwrap().as_bytes().to_vec()).unwrap();
        assert_eq!(text, "crash panic\nret 10\noutside\npc 20\nend\n");
        assert!(slot.report(Some(8)).is_none(), "another thread's panic");
        assert!(slot.report(None).is_some());
        // A later panic replaces it, with fewer frames.
        slot.record(8, &[Frame::Ret(0x30)]);
        let text = String::from_utf8(slot.report(Some(8)).unwrap().as_bytes().to_vec()).unwrap();
        assert_eq!(text, "crash panic\nret 30\nend\n");
    }

    #[test]
    fn a_slot_being_written_reads_as_nothing() {
        let slot = PendingPanic::new();
        slot.record(7, &[Frame::Ret(0x10)]);
        slot.seq.fetch_add(1, Ordering::SeqCst); // a writer is half-way
        assert!(slot.report(Some(7)).is_none());
    }
}
