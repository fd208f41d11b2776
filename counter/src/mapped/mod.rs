//! The counter file mapped into memory: lock-free lookup, allocation and extension.
//!
//! This is the only module of the crate with `unsafe` code. Everything it hands out is
//! safe to use because of one rule: **a mapping is never unmapped while the process
//! lives.** Counters cache `&'static AtomicU64` pointers into a mapping; when the file
//! grows past the mapping or the week rotates, a new mapping is made and the old one
//! is leaked. Since mappings are `MAP_SHARED` views of the same file, an increment
//! through a stale mapping still lands in the right record. Go unmapped eagerly and
//! crashed on stale pointers twice (golang/go#64577, #68358).
//!
//! To keep stale mappings rare, a Unix mapping reserves more address space than the
//! file holds (at least 1 MiB, doubling), so growth within the reservation needs no new
//! mapping at all. Only bytes below the file length we last saw are ever touched, so
//! the reservation never faults.
//!
//! Other processes write the same file concurrently. The protocol is Go's: the
//! allocation limit and the hash-chain heads change only by compare-and-swap, a record's
//! name is written before the record is linked, and a linked record's name and length
//! never change again. That is other processes' promise, not something we rely on:
//! every word is read atomically and name bytes one atomic byte at a time into a
//! local copy, so a writer that breaks it can make a comparison wrong but never our
//! reads unsound. Every offset read from the file is bounds- and alignment-checked
//! and every chain walk is bounded, so a corrupt file yields an error, never an
//! out-of-bounds access or an endless loop (golang/go#68311). A walk that meets a
//! record past the end of our mapping remaps and walks again for as long as the file
//! keeps growing (another process added pages and linked records into them): a race
//! is never mistaken for corruption.
//!
//! Faults: a page of the file that has no disk block behind it (a sparse file on a
//! full disk) or that another process cut off (`truncate`, golang/go#74651) raises
//! `SIGBUS` on access. We allocate blocks for real when creating or extending the file
//! (`posix_fallocate`), so a full disk is an error we see, not a fault; and on Unix a
//! `SIGBUS` handler ([`fault`]) recognises faults the kernel raised inside our own
//! mappings and maps a private zero page over the faulting page, so the host lives
//! on (counts made through that page are lost); any other `SIGBUS`, a sent one
//! included, goes to the previous action. A repaired page is seen by this process
//! alone, so once one is repaired a file takes no new record from this process
//! ([`MappedFile::check_unrepaired`]): names it holds are still found, new names
//! count in memory until the next file opens.
//!
//! The file protocol lives here; [`fault`] holds the `SIGBUS` handler and its repair,
//! `platform` the file I/O (open, disk blocks, `flock`, positioned reads and writes),
//! and `quiet_thread` the rotation thread's start. They are part of this module, the
//! crate's one `unsafe` module.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

#[cfg(unix)]
pub(crate) mod fault;
mod platform;
#[cfg(unix)]
pub(crate) mod quiet_thread;

#[cfg(unix)]
pub(crate) use platform::flock;
use platform::{allocate, open_regular, open_regular_with_len, read_at, write_at};

use crate::layout::{
    self, DEAD_NEXT, HEADER_PREFIX, LIMIT_OFFSET, MAX_NAME_LEN, MIN_FILE_LEN, NAME_LEN_MARK,
    PAGE_SIZE, RECORD_UNIT,
};

/// Why a counter could not be placed in the file.
#[derive(Debug)]
pub(crate) enum FileError {
    Io(io::Error),
    /// The file is not ours or is damaged; `&str` says how.
    Corrupt(&'static str),
    /// The name is empty or longer than [`MAX_NAME_LEN`].
    BadName,
    /// Other processes kept growing the file faster than we could follow, or an
    /// upload run holds it (it is deleting it): not an error in the file; the counter
    /// stays in memory and tries again later.
    Busy,
    /// The file was deleted (its week reported) before this process first counted
    /// into it: counts stay in memory until the next file opens. Unix only: elsewhere
    /// there is no lease to take, and a mapped file cannot be deleted.
    #[cfg_attr(not(unix), allow(dead_code))]
    Gone,
}

impl From<io::Error> for FileError {
    fn from(err: io::Error) -> Self {
        FileError::Io(err)
    }
}

/// A cell holding a counter's pointer into a mapping, or nothing.
///
/// The cell only ever holds pointers obtained from [`MappedFile::get_or_create`],
/// which point into leaked mappings, so turning one back into a `&'static AtomicU64`
/// is sound.
///
/// Every cell that was ever set is on one lock-free list, so that the fault handler
/// can empty them all when it repairs a page (`forget_all_slots`): a pointer into
/// a page of a file that another process cut may, once the file is rebuilt, point
/// into someone else's record.
pub(crate) struct SlotCell {
    ptr: AtomicPtr<AtomicU64>,
    /// The next cell on the list of [`LISTED`], or null.
    next: AtomicPtr<SlotCell>,
    listed: AtomicBool,
}

/// The most recently listed cell: the head of the list of every cell ever set.
static LISTED: AtomicPtr<SlotCell> = AtomicPtr::new(std::ptr::null_mut());

impl SlotCell {
    pub(crate) const fn new() -> SlotCell {
        SlotCell {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            next: AtomicPtr::new(std::ptr::null_mut()),
            listed: AtomicBool::new(false),
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&'static AtomicU64> {
        let ptr = NonNull::new(self.ptr.load(Ordering::Acquire))?;
        // SAFETY: the only non-null values stored are `Slot`s, which point at 8-byte
        // aligned words inside mappings that are never unmapped (module docs).
        Some(unsafe { ptr.as_ref() })
    }

    pub(crate) fn set(&'static self, slot: Slot) {
        if !self.listed.swap(true, Ordering::AcqRel) {
            let mut head = LISTED.load(Ordering::Acquire);
            loop {
                self.next.store(head, Ordering::Release);
                let me = self as *const SlotCell as *mut SlotCell;
                match LISTED.compare_exchange_weak(head, me, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
        }
        self.ptr
            .store(slot.0 as *const AtomicU64 as *mut _, Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        self.ptr.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Empties every cell: counters find their records again (or count in memory) on
/// their next increment. Async-signal-safe: atomic loads and stores on a list that
/// only grows, each cell on it once.
#[cfg(unix)]
fn forget_all_slots() {
    let mut cell = LISTED.load(Ordering::Acquire);
    // SAFETY: only `&'static SlotCell`s are put on the list (`SlotCell::set`), so
    // each non-null pointer on it is valid for the life of the process.
    while let Some(listed) = unsafe { cell.as_ref() } {
        listed.clear();
        cell = listed.next.load(Ordering::Acquire);
    }
}

/// A counter's value word inside a mapping that lives as long as the process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot(pub(crate) &'static AtomicU64);

/// A reserved region of address space showing the file from offset 0.
struct View {
    map: MmapRaw,
}

impl View {
    fn new(file: &File, file_len: u64) -> io::Result<&'static View> {
        let reserve = if cfg!(unix) {
            // Beyond the end of the file a mapping is just address space (until
            // touched, which we never do), so reserve room to grow.
            file_len.max(1 << 20).next_power_of_two()
        } else {
            // Windows would grow the file to the mapping's size.
            file_len
        };
        let len = usize::try_from(reserve).map_err(io::Error::other)?;
        let map = MmapOptions::new().len(len).map_raw(file)?;
        #[cfg(unix)]
        fault::watch(map.as_ptr() as usize, map.len());
        // Leaked on purpose: see the module docs.
        Ok(Box::leak(Box::new(View { map })))
    }

    fn len(&self) -> u64 {
        self.map.len() as u64
    }
}

/// The header a file must begin with: known in advance, or built by a function that
/// is told whether the open makes the file (`None`) or finds one (`Some`: the file's
/// first [`EXISTING_PROBE`] bytes), so that an existing file's header can be checked
/// without reading what a new file's would be built from.
#[derive(Clone, Copy)]
pub(crate) enum Header<'a> {
    /// Tests and test helpers open files whose header they wrote themselves.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    Known(&'a [u8]),
    Built(&'a BuildHeader<'a>),
}

/// Builds a header: for a new file (`None`), or for an existing one from its first
/// bytes (`Some`).
pub(crate) type BuildHeader<'a> = dyn Fn(Option<&[u8]>) -> Result<Vec<u8>, FileError> + 'a;

/// How many of an existing file's first bytes [`Header::Built`] is shown; every file
/// is longer ([`MIN_FILE_LEN`]).
pub(crate) const EXISTING_PROBE: usize = 128;

/// An open counter file.
pub(crate) struct MappedFile {
    path: PathBuf,
    file: File,
    header_len: u32,
    view: &'static View,
    /// Bytes of the file known to exist: never more than the file or the view.
    file_len: u32,
    /// [`fault::repairs`] when the file was opened. Once the count moves, this file
    /// is sealed: see [`MappedFile::check_unrepaired`].
    repairs_at_open: usize,
    /// Whether this process holds the file's lease (or the file system has no locks):
    /// taken before anything of ours is written into the file but the header.
    leased: bool,
    /// Whether this open wrote the file's header (the file was new, or a prefix of it
    /// left by a process that died creating it).
    created: bool,
}

impl Drop for MappedFile {
    /// Gives the file's lease back: this process no longer counts into it (its
    /// mapping stays, and would keep a `flock` alive until the process exits).
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock takes a descriptor this `File` owns and a flag; it touches
            // no memory of ours.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

impl MappedFile {
    /// Opens or creates the file at `path` with `header`, as Go's `openMapped` does:
    /// a file shorter than the minimum gets the header and is extended to 16 KiB; a
    /// file whose header differs from `header` is rejected. Only a regular file is
    /// used, never through a symbolic link, and a new file gets real disk blocks.
    /// The file's lease is taken now.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) fn open(path: &Path, header: &[u8]) -> Result<MappedFile, FileError> {
        Self::open_with(path, Header::Known(header), true)
    }

    /// [`MappedFile::open`] with a header known in advance or built once the open
    /// knows whether it makes the file. `lease`: take the file's lease now; else it is
    /// taken by the first look-up of a counter ([`MappedFile::get_or_create`]), so a
    /// process that never counts holds no week back. That is for files a rotating
    /// process opens: if an upload run reported and deleted the file first, that
    /// look-up fails with [`FileError::Gone`] and rotation moves the process to the
    /// file of its day (the deleted file's week was over).
    pub(crate) fn open_with(
        path: &Path,
        header_source: Header<'_>,
        lease: bool,
    ) -> Result<MappedFile, FileError> {
        let (file, mut len) = if lease {
            crate::lease::open_shared(path, open_regular)?
        } else {
            open_regular_with_len(path)?
        };
        let created = len < u64::from(MIN_FILE_LEN);
        let built;
        let mut header = match header_source {
            Header::Known(header) => Some(header),
            Header::Built(build) if created => {
                built = build(None)?;
                Some(&built[..])
            }
            Header::Built(_) => None,
        };
        if let Some(header) = header.filter(|_| created) {
            // A new file. Two processes creating it at once write the same bytes, so
            // what is there already must be a prefix of what we would write; anything
            // else is a damaged file, which we must not paper over.
            let mut existing = vec![0; len as usize];
            read_at(&file, &mut existing, 0)?;
            let expected = header.iter().copied().chain(std::iter::repeat(0));
            if !existing.iter().copied().zip(expected).all(|(a, b)| a == b) {
                return Err(FileError::Corrupt("truncated or foreign file"));
            }
            write_at(&file, header, 0)?;
            allocate(&file, 0, u64::from(MIN_FILE_LEN))?;
            // Only a file we just extended needs a second look at its length.
            len = file.metadata()?.len();
            if len < u64::from(MIN_FILE_LEN) {
                return Err(FileError::Corrupt("writing the file did not extend it"));
            }
        }
        let file_len = u32::try_from(len).map_err(|_| FileError::Corrupt("file too large"))?;
        let view = View::new(&file, len)?;
        let mut mapped = MappedFile {
            path: path.to_owned(),
            file,
            header_len: 0,
            view,
            file_len,
            repairs_at_open: repairs(),
            leased: lease,
            created,
        };
        let built_for_existing;
        if let (None, Header::Built(build)) = (header, header_source) {
            // An existing file: what it must hold may depend on what it says.
            let mut first = [0u8; EXISTING_PROBE];
            for (at, byte) in (0..).zip(first.iter_mut()) {
                *byte = mapped.byte(at);
            }
            built_for_existing = build(Some(&first))?;
            header = Some(&built_for_existing[..]);
        }
        let header = header.unwrap_or_default();
        mapped.header_len = header.len() as u32;
        if !mapped.bytes_equal(0, header) {
            return Err(FileError::Corrupt(
                if mapped.bytes_equal(0, HEADER_PREFIX) {
                    "header belongs to another program or week"
                } else {
                    "not a v1 counter file"
                },
            ));
        }
        let limit = mapped.limit()?;
        if limit > mapped.file_len {
            // Another process extended the file after our look at its length, then
            // moved the limit: not damage.
            mapped.refresh()?;
        }
        mapped.check_limit(limit)?;
        Ok(mapped)
    }

    /// Writes a whole file for a test: `counts` into the file at `path` (created with
    /// `header` if need be), then gives the mapping back on Windows, which refuses to
    /// delete a mapped file (`ERROR_USER_MAPPED_FILE`) and so would keep tests of
    /// what deletes counter files from working. The exception to the module's rule is
    /// sound because no pointer into this mapping leaves this function. On Unix the
    /// view stays: a mapped file can be deleted there, and the fault handler keeps
    /// watching every range it was given.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn write_once(
        path: &Path,
        header: &[u8],
        counts: &[(&str, u64)],
    ) -> Result<(), FileError> {
        let mut file = MappedFile::open(path, header)?;
        let first_view: *const View = file.view;
        for &(name, n) in counts {
            let slot = file.get_or_create(name)?;
            crate::counter::add_saturating(slot.0, n);
        }
        let only_view = std::ptr::eq(file.view, first_view);
        drop(file);
        #[cfg(windows)]
        if only_view {
            // SAFETY: the view was leaked by `View::new` in `open` above and is still
            // the only one (the file never grew), so this is its one owner; the slots
            // made above, the only pointers into it, are gone.
            drop(unsafe { Box::from_raw(first_view.cast_mut()) });
        }
        #[cfg(not(windows))]
        let _ = only_view;
        Ok(())
    }

    /// An allocation limit must lie between the end of the hash table and the end of
    /// the file (or be 0: no record yet). One inside the header would make the next
    /// record overwrite the header, destroying the file for every process.
    fn check_limit(&self, limit: u32) -> Result<(), FileError> {
        if limit != 0 && limit < layout::table_end(self.header_len) {
            return Err(FileError::Corrupt(
                "allocation limit inside the header or hash table",
            ));
        }
        if limit > self.file_len {
            return Err(FileError::Corrupt(
                "allocation limit past the end of the file",
            ));
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this open wrote the file's header: no process had made the file before.
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// Takes the file's shared lease if this process does not hold it yet, without
    /// waiting (see `lease.rs`): [`FileError::Busy`] while an upload run holds the
    /// file, [`FileError::Gone`] once it was deleted.
    fn take_lease(&mut self) -> Result<(), FileError> {
        if self.leased {
            return Ok(());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match flock(&self.file, false) {
                Ok(false) => return Err(FileError::Busy),
                Ok(true) if self.file.metadata()?.nlink() == 0 => return Err(FileError::Gone),
                // Leased; or no locks on this file system: the real-clock rule alone.
                Ok(true) | Err(_) => {}
            }
        }
        self.leased = true;
        Ok(())
    }

    fn limit(&self) -> Result<u32, FileError> {
        self.load32(self.header_len + LIMIT_OFFSET)
            .ok_or(FileError::Corrupt("allocation limit unreadable"))
    }

    /// The value word of `name`, allocating a record if the file has none. Takes the
    /// file's lease first if it is not held yet: whoever gets a slot adds to it.
    pub(crate) fn get_or_create(&mut self, name: &str) -> Result<Slot, FileError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(FileError::BadName);
        }
        self.take_lease()?;
        let name = name.as_bytes();
        // A record that exists is found through checked reads, so a sealed file still
        // finds the names it holds; only a new record needs the file whole.
        let (head_off, mut head) = match self.lookup_refreshing(name)? {
            Lookup::Found(slot) => return Ok(slot),
            Lookup::Absent { head_off, head } => (head_off, head),
        };
        self.check_unrepaired()?;

        // Reserve space: other processes compete for the same limit word.
        let limit_off = self.header_len + LIMIT_OFFSET;
        let start = loop {
            let limit = self.limit()?;
            if limit > self.file_len {
                // Another process extended the file and then moved the limit.
                self.refresh()?;
            }
            self.check_limit(limit)?;
            let (start, end) = layout::place(self.header_len, limit, name.len())
                .ok_or(FileError::Corrupt("allocation limit overflows"))?;
            if end > self.file_len {
                self.extend(end)?;
                continue;
            }
            if self.cas32(limit_off, limit, end)? {
                break start;
            }
        };

        // Write the record; it is ours alone until linked. A page cut off while we
        // wrote would have taken the bytes into a private zero page: look again before
        // linking, so a record only this process can see is never linked (the space
        // it reserved stays unused, like a record that lost a race).
        self.check_unrepaired()?;
        self.write_bytes(start + 16, name)?;
        self.store32(start + 8, name.len() as u32 | NAME_LEN_MARK)?;
        let slot = self
            .value_at(start)
            .ok_or(FileError::Corrupt("record misplaced"))?;
        self.check_unrepaired()?;

        // Link it, unless another process linked the same name meanwhile (Go's rule:
        // the name does not occur in the chain from `head` on, so only newer records
        // need checking after a failed swap).
        loop {
            self.store32(start + 12, head)?;
            if self.cas32(head_off, head, start)? {
                return Ok(slot);
            }
            let old = head;
            head = self
                .load32(head_off)
                .ok_or(FileError::Corrupt("hash table unreadable"))?;
            let mut off = head;
            let mut steps = 0;
            while off != old {
                steps += 1;
                if steps > self.max_records() {
                    return Err(FileError::Corrupt("cycle in a hash chain"));
                }
                let record = self.record_refreshing(off)?;
                if self.bytes_equal(off + 16, name) && record.name_len as usize == name.len() {
                    self.store32(start + 12, DEAD_NEXT)?;
                    return Ok(record.value);
                }
                off = record.next;
            }
        }
    }

    /// The value word of `name` if the file has a record for it; never allocates.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn find(&mut self, name: &str) -> Option<Slot> {
        match self.lookup_refreshing(name.as_bytes()).ok()? {
            Lookup::Found(slot) => Some(slot),
            Lookup::Absent { .. } => None,
        }
    }

    /// Looks `name` up, remapping while the chain leads past what we have mapped and
    /// the file keeps growing: another process added pages and linked records into
    /// them, perhaps several times while we walked. A pointer past the end of a file
    /// that did not grow is corruption.
    fn lookup_refreshing(&mut self, name: &[u8]) -> Result<Lookup, FileError> {
        for _ in 0..MAX_REMAPS {
            if let Some(found) = self.lookup(name) {
                return Ok(found);
            }
            if !self.grew()? {
                return Err(FileError::Corrupt("bad record in a hash chain"));
            }
        }
        Err(FileError::Busy)
    }

    /// Fails, for good, once the fault handler has repaired a page in this process
    /// since the file was opened: the file is sealed, and new names count in memory
    /// until the next file opens (the next week's, or another `open_dir`).
    ///
    /// A repaired page is private to this process, and the file behind it may since
    /// have been cut and rebuilt by another process (which rewrites the header and
    /// places its records from the start again). The allocation limit and the chain
    /// heads may still be shared while the page a new record would go into is not:
    /// the record would be written where only we can see it and linked where every
    /// reader follows the link, which cost every process the week
    /// (golang/go#74651 is the truncation; the link is ours to avoid). Whether the
    /// file is now shorter, longer or the same length tells nothing, so any repair
    /// seals. One atomic load.
    fn check_unrepaired(&self) -> Result<(), FileError> {
        if repairs() != self.repairs_at_open {
            return Err(FileError::Corrupt(
                "a page of the file was cut off under this process: no new records",
            ));
        }
        Ok(())
    }

    /// Remaps to the file's current length; whether it grew since we last looked.
    fn grew(&mut self) -> Result<bool, FileError> {
        let before = self.file_len;
        self.refresh()?;
        Ok(self.file_len > before)
    }

    /// `None` if the chain holds an invalid pointer.
    fn lookup(&self, name: &[u8]) -> Option<Lookup> {
        let head_off = layout::bucket_offset(self.header_len, layout::bucket(name));
        let head = self.load32(head_off)?;
        let mut off = head;
        let mut steps = 0;
        while off != 0 {
            steps += 1;
            if steps > self.max_records() {
                return None; // a cycle
            }
            let record = self.record(off)?;
            if record.name_len as usize == name.len() && self.bytes_equal(off + 16, name) {
                return Some(Lookup::Found(record.value));
            }
            off = record.next;
        }
        Some(Lookup::Absent { head_off, head })
    }

    /// The record at `off`, remapping while it lies past what we have mapped and the
    /// file keeps growing: a record another process just linked may sit in a page it
    /// just added.
    fn record_refreshing(&mut self, off: u32) -> Result<Record, FileError> {
        for _ in 0..MAX_REMAPS {
            if let Some(record) = self.record(off) {
                return Ok(record);
            }
            if !self.grew()? {
                return Err(FileError::Corrupt("bad record in a hash chain"));
            }
        }
        Err(FileError::Busy)
    }

    fn max_records(&self) -> u32 {
        self.file_len / RECORD_UNIT
    }

    /// The record at `off`, if it lies wholly inside the known file.
    fn record(&self, off: u32) -> Option<Record> {
        if off < self.header_len + layout::HASH_OFFSET {
            return None;
        }
        let name_len = self.load32(off.checked_add(8)?)? & !NAME_LEN_MARK;
        let end = off.checked_add(16)?.checked_add(name_len)?;
        if name_len == 0 || end > self.file_len {
            return None;
        }
        Some(Record {
            value: self.value_at(off)?,
            name_len,
            next: self.load32(off + 12)?,
        })
    }

    /// Grows the file to hold `end`, a page at a time as Go does, so that the same
    /// records make the same file. The new pages get real disk blocks: on a full disk
    /// this fails here, and the counter stays in memory, instead of a later write
    /// into a hole raising `SIGBUS`.
    fn extend(&mut self, end: u32) -> Result<(), FileError> {
        let new_len =
            layout::round_up(end, PAGE_SIZE).ok_or(FileError::Corrupt("file too large"))?;
        // Catch a truncation first: extending a file someone cut would fill it with
        // zeros where its header was.
        self.check_unrepaired()?;
        self.refresh()?;
        if self.file_len < new_len {
            allocate(
                &self.file,
                u64::from(self.file_len),
                u64::from(new_len - self.file_len),
            )?;
        }
        self.refresh()
    }

    /// Catches up with the file's length, mapping a larger view if it outgrew ours.
    fn refresh(&mut self) -> Result<(), FileError> {
        let len = self.file.metadata()?.len();
        if len < u64::from(self.file_len) {
            // Counter files only grow. Pages cut off fault on access; the fault
            // handler keeps that from killing us, and no new record goes in.
            return Err(FileError::Corrupt("file truncated by another process"));
        }
        let len32 = u32::try_from(len).map_err(|_| FileError::Corrupt("file too large"))?;
        if len > self.view.len() {
            self.view = View::new(&self.file, len)?;
        }
        self.file_len = self.file_len.max(len32.min(self.view.len() as u32));
        Ok(())
    }

    fn ptr(&self, off: u32) -> *mut u8 {
        debug_assert!(off < self.file_len);
        // SAFETY: callers check `off` against `file_len`, which never exceeds the
        // view's length, so the result stays inside the mapping.
        unsafe { self.view.map.as_mut_ptr().add(off as usize) }
    }

    fn atomic32(&self, off: u32) -> Option<&AtomicU32> {
        if off % 4 != 0 || off.checked_add(4)? > self.file_len {
            return None;
        }
        // SAFETY: in bounds (checked above), 4-byte aligned (mappings are page-aligned
        // and `off` is a multiple of 4), and the mapping outlives `self`. Every access
        // to these words, here and in other processes, is atomic.
        Some(unsafe { AtomicU32::from_ptr(self.ptr(off).cast()) })
    }

    fn load32(&self, off: u32) -> Option<u32> {
        Some(self.atomic32(off)?.load(Ordering::Acquire))
    }

    fn store32(&self, off: u32, value: u32) -> Result<(), FileError> {
        let word = self
            .atomic32(off)
            .ok_or(FileError::Corrupt("offset out of range"))?;
        word.store(value, Ordering::Release);
        Ok(())
    }

    fn cas32(&self, off: u32, old: u32, new: u32) -> Result<bool, FileError> {
        let word = self
            .atomic32(off)
            .ok_or(FileError::Corrupt("offset out of range"))?;
        // Go panicked here on a bad offset; an error ends the attempt instead.
        Ok(word
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok())
    }

    fn value_at(&self, off: u32) -> Option<Slot> {
        if off % 8 != 0 || off.checked_add(8)? > self.file_len {
            return None;
        }
        // SAFETY: in bounds and 8-byte aligned (checked above) inside a mapping that is
        // never unmapped (module docs), so the reference may be `'static`. Value words
        // are only ever accessed atomically.
        Some(Slot(unsafe { AtomicU64::from_ptr(self.ptr(off).cast()) }))
    }

    /// Whether the file holds `expected` at `off`. The bytes are other processes'
    /// writing (a record's name, the header): that they never change once linked is
    /// only their promise, and a damaged or hostile file keeps none. So they are read
    /// one relaxed atomic load at a time, each into a local, and only the copy is
    /// compared: a byte changing under us makes a wrong answer, never undefined
    /// behaviour, and every offset and length used was checked against the file.
    fn bytes_equal(&self, off: u32, expected: &[u8]) -> bool {
        let Some(end) = off.checked_add(expected.len() as u32) else {
            return false;
        };
        if end > self.file_len {
            return false;
        }
        expected
            .iter()
            .zip(off..end)
            .all(|(&want, at)| self.byte(at) == want)
    }

    /// The byte at `off`, which the caller checked lies inside the file.
    fn byte(&self, off: u32) -> u8 {
        debug_assert!(off < self.file_len);
        // SAFETY: `off` is inside the file, which never exceeds the mapping (callers
        // check it against `file_len`), and the mapping is never unmapped. Any byte
        // pattern is a valid `AtomicU8`, and the load is atomic, so a concurrent
        // write by another process or thread is not a data race.
        unsafe { AtomicU8::from_ptr(self.ptr(off)) }.load(Ordering::Relaxed)
    }

    /// Writes `bytes` at `off`, into a record this process reserved by
    /// compare-and-swap and has not linked yet. Another process should not touch
    /// them; one that does (a damaged or hostile writer) changes only what readers
    /// find there, which they check: the stores are atomic, one byte each.
    fn write_bytes(&self, off: u32, bytes: &[u8]) -> Result<(), FileError> {
        let end = off
            .checked_add(bytes.len() as u32)
            .filter(|&end| end <= self.file_len)
            .ok_or(FileError::Corrupt("record past the end of the file"))?;
        for (&byte, at) in bytes.iter().zip(off..end) {
            // SAFETY: as in `byte`: inside the file (checked above) and the mapping,
            // which is never unmapped; an atomic store races with nothing.
            unsafe { AtomicU8::from_ptr(self.ptr(at)) }.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How often a walk may remap and retry while other processes keep growing the file.
/// Each retry needs the file to have grown, so corruption ends the loop at once; the
/// bound only stops a walk from chasing a file that grows without end. Go's
/// `newCounter` retries ten times; a walk here retries more cheaply (no reopen).
const MAX_REMAPS: usize = 64;

enum Lookup {
    Found(Slot),
    Absent { head_off: u32, head: u32 },
}

struct Record {
    value: Slot,
    name_len: u32,
    next: u32,
}

/// How many pages the fault handler has repaired in this process so far.
pub(crate) fn repairs() -> usize {
    #[cfg(unix)]
    return fault::repairs();
    #[cfg(not(unix))]
    return 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> MappedFile {
        let header = layout::header("TimeBegin: 2026-11-25T00:00:00Z\n\n").unwrap();
        MappedFile::open(&dir.join("f.v1.count"), &header).unwrap()
    }

    #[test]
    fn creates_finds_and_reuses() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = open(tmp.path());
        let a = f.get_or_create("a").unwrap();
        a.0.fetch_add(3, Ordering::Relaxed);
        let again = f.get_or_create("a").unwrap();
        assert!(std::ptr::eq(a.0, again.0));
        let b = f.get_or_create("b").unwrap();
        assert!(!std::ptr::eq(a.0, b.0));
        // A second opener of the same file sees the same record.
        let mut g = open(tmp.path());
        assert_eq!(g.get_or_create("a").unwrap().0.load(Ordering::Relaxed), 3);
        let parsed = crate::parse(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(parsed.count["a"], 3);
        assert_eq!(parsed.count["b"], 0);
    }

    #[test]
    fn rejects_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = open(tmp.path());
        assert!(matches!(f.get_or_create(""), Err(FileError::BadName)));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(f.get_or_create(&long), Err(FileError::BadName)));
        let max = "x".repeat(MAX_NAME_LEN);
        f.get_or_create(&max).unwrap();
        assert_eq!(crate::testing::read_path(f.path()).unwrap().count[&max], 0);
    }

    #[test]
    fn foreign_header_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.v1.count");
        std::fs::write(&path, vec![b'z'; 16384]).unwrap();
        let header = layout::header("TimeBegin: x\n\n").unwrap();
        assert!(matches!(
            MappedFile::open(&path, &header),
            Err(FileError::Corrupt("not a v1 counter file"))
        ));
        let other = layout::header("TimeBegin: y\n\n").unwrap();
        MappedFile::open(&tmp.path().join("g"), &other).unwrap();
        assert!(matches!(
            MappedFile::open(&tmp.path().join("g"), &header),
            Err(FileError::Corrupt(_))
        ));
    }
}
