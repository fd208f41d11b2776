//! `Counter`, the process-wide list of counters, and names built at run time.
//!
//! An increment on an open file is one atomic add through a cached pointer. Everything
//! else is the cold path: the first increment registers the counter in the process's
//! list, then either finds its record in the file (under a mutex; other processes are
//! handled by the file's own compare-and-swap protocol) or, while no file is open,
//! adds to an in-memory `pending` count that is moved into the file when it opens. An
//! open put off until the first count (`file::open_with_mode_at_first_count`) is done
//! there too, before the look-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use crate::mapped::{self, FileError, MappedFile, Slot, SlotCell};

/// A named event count, kept in the counter file.
///
/// ```
/// static ERRORS: telemetry_counter::Counter = telemetry_counter::Counter::new("mytool/errors");
/// ERRORS.inc();
/// ERRORS.add(2);
/// ```
///
/// Counters live in `static`s (or are leaked): registration keeps a pointer to each
/// one for the life of the process, so the methods take `&'static self`.
pub struct Counter {
    name: &'static str,
    slot: SlotCell,
    /// Counts made while no file was open, or that the file could not take.
    pending: AtomicU64,
    /// Whether the counter is in the registry's list.
    registered: AtomicBool,
    /// The file generation whose lookup failed, so the mutex is not retaken on every
    /// increment of a counter the file cannot hold.
    failed_generation: AtomicU64,
}

impl Counter {
    /// A counter named `name`, e.g. `mytool/errors` or, for a chart bucket,
    /// `mytool/latency:<10ms`. Names are at most 4 KiB; a longer name is counted in
    /// memory only.
    pub const fn new(name: &'static str) -> Counter {
        Counter {
            name,
            slot: SlotCell::new(),
            pending: AtomicU64::new(0),
            registered: AtomicBool::new(false),
            failed_generation: AtomicU64::new(0),
        }
    }

    /// The counter's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds one.
    #[inline]
    pub fn inc(&'static self) {
        self.add(1);
    }

    /// Adds `n`, saturating at `u64::MAX`.
    #[inline]
    pub fn add(&'static self, n: u64) {
        match self.slot.get() {
            Some(value) => add_saturating(value, n),
            None => self.add_cold(n),
        }
    }

    #[cold]
    #[inline(never)]
    fn add_cold(&'static self, n: u64) {
        self.add_slowly(n);
        crate::file::start_rotation_if_counting();
    }

    /// [`Counter::add`] without a record at hand: look it up, or count in memory.
    fn add_slowly(&'static self, n: u64) {
        crate::file::open_if_deferred();
        self.register();
        let generation = REGISTRY.generation.load(Ordering::SeqCst);
        if generation != 0 && self.failed_generation.load(Ordering::Relaxed) != generation {
            let mut state = REGISTRY.lock();
            if let Some(slot) = self.resolve(&mut state) {
                add_saturating(slot.0, n);
                if REGISTRY.retry.swap(false, Ordering::SeqCst) {
                    REGISTRY.drain_pending(&mut state);
                }
                return;
            }
        }
        add_saturating(&self.pending, n);
        // A file may have opened between our look at the generation and our add to
        // `pending`, after its opener drained this counter: drain it ourselves.
        if REGISTRY.generation.load(Ordering::SeqCst) != generation {
            self.resolve(&mut REGISTRY.lock());
        }
    }

    /// Points the counter at its record in the open file and moves pending counts
    /// there. Called with the registry lock held.
    fn resolve(&'static self, state: &mut Option<MappedFile>) -> Option<Slot> {
        let generation = REGISTRY.generation.load(Ordering::SeqCst);
        let file = state.as_mut()?;
        // Whatever the look-up says, the process counts: it may need rotating (a file
        // deleted under it, `Gone`, is left by rotation).
        REGISTRY.counting.store(true, Ordering::SeqCst);
        let repairs = mapped::repairs();
        match file.get_or_create(self.name) {
            Ok(slot) => {
                self.slot.set(slot);
                if mapped::repairs() != repairs {
                    // A page was repaired while we looked, so the fault handler's
                    // emptying of every cell may have come before this one was set:
                    // look again on the next increment.
                    self.slot.clear();
                }
                let pending = self.pending.swap(0, Ordering::SeqCst);
                if pending > 0 {
                    add_saturating(slot.0, pending);
                }
                Some(slot)
            }
            Err(FileError::Busy) => {
                // Other processes outran us, or an upload run holds the file: not a
                // fault of the file. Try again on this counter's next increment, or
                // when another counter gets in.
                REGISTRY.retry.store(true, Ordering::SeqCst);
                None
            }
            Err(_) => {
                self.failed_generation.store(generation, Ordering::Relaxed);
                None
            }
        }
    }

    /// Adds the counter to the registry's list, once. This takes a lock, but only on
    /// a counter's first increment in the process.
    fn register(&'static self) {
        if self.registered.load(Ordering::Acquire) {
            return;
        }
        let mut counters = REGISTRY
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.registered.swap(true, Ordering::AcqRel) {
            counters.push(self);
        }
    }

    /// The value counted in memory and not (yet) in a file.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn slot(&self) -> Option<&'static AtomicU64> {
        self.slot.get()
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Adds `n` to `value`, pinning at `u64::MAX` instead of wrapping. The common case is
/// a single `fetch_add`; only an overflow (never, in practice) pays for a store.
#[inline(always)]
pub(crate) fn add_saturating(value: &AtomicU64, n: u64) {
    let old = value.fetch_add(n, Ordering::Relaxed);
    if old.checked_add(n).is_none() {
        value.store(u64::MAX, Ordering::Relaxed);
    }
}

/// The process's counters and its open counter file, if any.
pub(crate) struct Registry {
    /// Every counter incremented at least once. Lock order: `file` before `counters`.
    counters: Mutex<Vec<&'static Counter>>,
    /// Bumped each time a file is opened; 0 while none ever was.
    generation: AtomicU64,
    file: Mutex<Option<MappedFile>>,
    /// Set when a counter could not get its record because the file was growing too
    /// fast: its counts wait in memory until the next counter that gets in moves them.
    retry: AtomicBool,
    /// Set once a counter has looked for its record in a file: the process counts,
    /// so it may need rotating (`file::start_rotation_if_counting`).
    counting: AtomicBool,
}

pub(crate) static REGISTRY: Registry = Registry {
    counters: Mutex::new(Vec::new()),
    generation: AtomicU64::new(0),
    file: Mutex::new(None),
    retry: AtomicBool::new(false),
    counting: AtomicBool::new(false),
};

impl Registry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<MappedFile>> {
        // A panic while holding the lock cannot leave the file inconsistent (it is
        // shared with other processes and is consistent at every step), so carry on.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `file` the process's counter file: every counter finds its record there
    /// on its next increment, and pending counts move in now.
    pub(crate) fn install(&self, file: MappedFile) {
        let mut state = self.lock();
        *state = Some(file);
        self.generation.fetch_add(1, Ordering::SeqCst);
        for counter in self.counters() {
            counter.slot.clear();
            if counter.pending() > 0 {
                counter.resolve(&mut state);
            }
        }
    }

    /// Moves the pending counts of every counter without a record into the file.
    /// Called with the file lock held.
    fn drain_pending(&self, state: &mut Option<MappedFile>) {
        for counter in self.counters() {
            if counter.slot.get().is_none() && counter.pending() > 0 {
                counter.resolve(state);
            }
        }
    }

    /// Whether a counter has looked for its record in a file in this process.
    pub(crate) fn counting(&self) -> bool {
        self.counting.load(Ordering::SeqCst)
    }

    /// The path of the open file.
    pub(crate) fn path(&self) -> Option<std::path::PathBuf> {
        self.lock().as_ref().map(|f| f.path().to_owned())
    }

    /// A snapshot of every registered counter.
    pub(crate) fn counters(&self) -> Vec<&'static Counter> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Counters for names built at run time, each leaked once and then reused.
static DYNAMIC: RwLock<Option<HashMap<Box<str>, &'static Counter>>> = RwLock::new(None);

/// The counter for `name`, interned so that later calls cost a read lock and a hash.
pub(crate) fn named(name: &str) -> &'static Counter {
    if let Some(found) = DYNAMIC
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(name))
    {
        return found;
    }
    let mut map = DYNAMIC.write().unwrap_or_else(PoisonError::into_inner);
    map.get_or_insert_with(HashMap::new)
        .entry(name.into())
        .or_insert_with(|| {
            let name: &'static str = Box::leak(name.into());
            Box::leak(Box::new(Counter::new(name)))
        })
}
