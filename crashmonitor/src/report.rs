//! The one report a process writes, shared by the Unix and Windows platform modules
//! (`signal/`, `signal_windows.rs`): who may write it, the journal it goes to, and
//! the panics kept until we know whether they end the process. Everything here is
//! atomics on statics: no allocation, no lock, usable from a signal handler or an
//! exception filter. The platform modules bring what differs: the mapping, a sleep,
//! and the identity of the current thread and process.
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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::record::{self, Frame, Kind, MAX_FRAMES};

/// How long a thread that lost the claim waits for the report being written, in 1 ms
/// sleeps.
const WAIT_MS: usize = 100;

/// The journal reports go to and the claim on the one report.
struct Gate {
    /// Set by the first claim (or by `stop`); nothing is written after it.
    reported: AtomicBool,
    /// Set once that report has been written (or failed to be).
    sent: AtomicBool,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            reported: AtomicBool::new(false),
            sent: AtomicBool::new(false),
        }
    }

    fn claim(&self) -> bool {
        has_journal() && !self.reported.swap(true, Ordering::SeqCst)
    }

    fn wait_for_report(&self, sleep_1ms: fn()) {
        for _ in 0..WAIT_MS {
            if self.sent.load(Ordering::SeqCst) {
                return;
            }
            sleep_1ms();
        }
    }
}

/// The process's one gate.
static GATE: Gate = Gate::new();

/// The mapped journal's words: mapped once, never unmapped, so a handler that loaded
/// it may write to it at any time.
static JOURNAL: OnceLock<&'static [AtomicU64]> = OnceLock::new();

/// Makes `journal` (the words of the mapped journal file, mapped for the rest of the
/// process's life) where reports go.
pub(crate) fn publish(journal: &'static [AtomicU64]) {
    let _ = JOURNAL.set(journal);
}

/// Whether a journal is published.
pub(crate) fn has_journal() -> bool {
    JOURNAL.get().is_some()
}

/// Claims the process's one report; false if one was already claimed, or if no
/// journal is mapped.
pub(crate) fn claim() -> bool {
    GATE.claim()
}

/// Writes the claimed report into the journal (a crash of `kind` with `frames` in
/// process `pid`), then tells any waiter it is out.
pub(crate) fn send(pid: u32, kind: Kind, frames: &[Frame]) {
    if let Some(journal) = JOURNAL.get() {
        record::write(journal, pid, kind, frames);
    }
    GATE.sent.store(true, Ordering::SeqCst);
}

/// When two threads crash at once, the one that lost the claim waits a little for
/// the other's report before letting its crash kill the process, or the report of
/// the first crash would die with it. Bounded (about 100 ms), because the claim may
/// belong to this very thread (a fault inside our own handler).
pub(crate) fn wait_for_report(sleep_1ms: fn()) {
    GATE.wait_for_report(sleep_1ms);
}

/// Ends reporting: nothing is written from now on (a report being written is
/// finished).
pub(crate) fn stop() {
    if !GATE.reported.swap(true, Ordering::SeqCst) {
        GATE.sent.store(true, Ordering::SeqCst);
    }
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

    /// The kept panic's frames, if it is `thread`'s (any thread's for `None`) and was
    /// not being rewritten while read.
    fn report(&self, thread: Option<usize>) -> Option<KeptPanic> {
        let before = self.seq.load(Ordering::SeqCst);
        let owner = self.thread.load(Ordering::SeqCst);
        if before % 2 == 1 || owner == PendingPanic::NOBODY || thread.is_some_and(|t| t != owner) {
            return None;
        }
        let mut kept = KeptPanic {
            frames: [Frame::Outside; MAX_FRAMES],
            len: 0,
        };
        let len = self.len.load(Ordering::SeqCst).min(MAX_FRAMES);
        for ((tag, addr), slot) in self
            .tags
            .iter()
            .zip(&self.addrs)
            .zip(&mut kept.frames)
            .take(len)
        {
            *slot = decode(tag.load(Ordering::SeqCst), addr.load(Ordering::SeqCst));
        }
        kept.len = len;
        (self.seq.load(Ordering::SeqCst) == before).then_some(kept)
    }
}

/// A panic's frames as the hook kept them, copied out (fixed storage: a handler reads
/// it).
pub(crate) struct KeptPanic {
    frames: [Frame; MAX_FRAMES],
    len: usize,
}

impl KeptPanic {
    pub(crate) fn frames(&self) -> &[Frame] {
        self.frames.get(..self.len).unwrap_or_default()
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
    if !has_journal() {
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
pub(crate) fn abort_of_panic(thread: usize) -> Option<KeptPanic> {
    if !std::thread::panicking() {
        return None;
    }
    LATEST_PANIC.report(Some(thread))
}

/// What the process's exit is reported as: the main thread's panic if the process
/// exits with std's panic status (`status`, where the platform tells it; `None`:
/// unknown, taken as the panic status when the main thread panicked), else `None`.
pub(crate) fn exit_of_panic(status: Option<i32>) -> Option<KeptPanic> {
    if status.is_some_and(|s| s != PANIC_EXIT_STATUS) {
        return None;
    }
    MAIN_PANIC.report(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_panic_reads_back_for_its_thread_only() {
        let slot = PendingPanic::new();
        assert!(slot.report(None).is_none(), "nothing kept yet");
        slot.record(7, &[Frame::Ret(0x10), Frame::Outside, Frame::Pc(0x20)]);
        let kept = slot.report(Some(7)).unwrap();
        assert_eq!(
            kept.frames(),
            [Frame::Ret(0x10), Frame::Outside, Frame::Pc(0x20)]
        );
        assert!(slot.report(Some(8)).is_none(), "another thread's panic");
        assert!(slot.report(None).is_some());
        // A later panic replaces it, with fewer frames.
        slot.record(8, &[Frame::Ret(0x30)]);
        assert_eq!(slot.report(Some(8)).unwrap().frames(), [Frame::Ret(0x30)]);
    }

    #[test]
    fn a_slot_being_written_reads_as_nothing() {
        let slot = PendingPanic::new();
        slot.record(7, &[Frame::Ret(0x10)]);
        slot.seq.fetch_add(1, Ordering::SeqCst); // a writer is half-way
        assert!(slot.report(Some(7)).is_none());
    }
}
