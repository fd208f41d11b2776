//! The crash journal file, `local/crash.journal`: opened (and created) by a process
//! that records its crashes into it, and processed by the telemetry child, which
//! counts each recorded crash exactly once.
//!
//! # Opening it to record
//! [`open_for_recording`] opens the file through `telemetry_internal::fs` (no link
//! followed, a regular file, 0600), creating it complete (every byte written, so its
//! blocks are allocated for real and a full disk can never turn a store into its
//! mapping into `SIGBUS`) and published by a hard link, so no process ever maps a
//! half-made journal. A file of the wrong size or with a foreign header is replaced
//! atomically by an empty journal (it was not ours, or was cut: nobody can have
//! mapped it to record). It reads the header and the slots' state words with one
//! `pread`, never through a mapping, so a file truncated by someone else cannot fault:
//! any slot not free means crashes wait for a child.
//!
//! # Counting, exactly once
//! Only the process that holds the journal's exclusive lock (taken without waiting:
//! an exclusive `flock` on Unix; on Windows an exclusive `LockFileEx` on the byte just
//! past the journal's end, since a Windows lock is mandatory and one on the journal's
//! bytes would fail the reads of programs opening it to record) touches slots it did
//! not write, and only it increments crash counters. Another finds the journal busy
//! and leaves it to the holder, so children started together (a build system running
//! the tool many times right after a crash) count each crash once. The lock goes with
//! the handle when it is closed or its process dies. For each
//! sealed slot it names the crash, then:
//! 1. writes the *apply area*: the slot, the counter file (program, day, file name),
//!    the counter's name and its value *before* the increment, with a CRC;
//! 2. sets the slot's state to applying;
//! 3. increments the counter in the counter file;
//! 4. zeroes the slot's record, then sets it free.
//!
//! A child killed anywhere leaves the slot sealed (steps 1-2 not done: it is done
//! again from the start) or applying. An applying slot is settled by the counter's
//! value: above *before*, the increment happened (no other process increments crash
//! counters, so nothing else can have raised it) and the slot is freed; equal, it did
//! not, and steps 3-4 are done. If the counter file named in the apply area is gone
//! (its week was reported and deleted, a day after the week ended, or the user ran
//! `telemetry clean`), whatever it held was reported or removed with it: the slot is
//! freed without a count, so at worst a crash whose child was killed between steps 2
//! and 3, and that no later run saw before its week was reported, is lost; none is
//! ever counted twice. A write to the file by a process killed with `kill -9` is in
//! the page cache and seen by the next reader; only a power loss at that moment could
//! lose one, as it could lose the counter file's own pages.
//!
//! A slot still *writing* whose process is gone (it died inside its handler) is
//! counted as `crash/malformed`: a crash happened, but its record cannot be trusted.
//! One whose process lives is left for a later run. A sealed slot whose record fails
//! its checks counts `crash/malformed` too, in the counter file of the program that
//! processes it. Every count goes into the file of the record's program and version
//! (so a newer version's run counts an older version's crash as the older version's)
//! for the day the processing run counts in. The file's toolchain is the processing
//! build's: the counter crate opens files of its own toolchain only, so a crash of a
//! build made by another toolchain under the same name and version (rare: a rebuild
//! without a version bump) is counted under the newer toolchain. The record keeps its
//! own toolchain for the day the counter crate can open another's file.
//!
//! A file system without locks (rare network mounts) leaves only this: two children
//! running at the same instant could both count one crash (each starts only when its
//! program starts with crashes waiting).

use std::fs::File;
use std::io;
use std::path::Path;

use telemetry_counter::OpenStatus;
use telemetry_internal::{Day, Dir, Mode, Program};

use crate::naming::{self, OwnExe};
use crate::record::{
    self, APPLY_BYTES, APPLY_OFFSET, APPLYING, FREE, HEADER_BYTES, HEADER_WORDS, JOURNAL_LEN,
    SEALED, SLOT_WORDS, SLOTS, SLOTS_END, WRITING,
};

/// An open journal, checked, and whether crashes wait in it.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) pending: bool,
}

/// Opens `dir`'s journal for a process that records into it (see the module docs).
pub(crate) fn open_for_recording(dir: &Dir) -> io::Result<Opened> {
    let path = dir.crash_journal();
    // One `fstat` serves the regular-file check and the length check.
    let open = || telemetry_internal::fs::open_read_write_with_metadata(&path, false);
    let (file, meta) = match open() {
        Ok(opened) => opened,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            dir.ensure_local()?;
            telemetry_internal::fs::create_complete(&path, &record::empty_journal())?;
            open()?
        }
        Err(err) => return Err(err),
    };
    match states_of(&file, meta.len())? {
        Some(pending) => Ok(Opened { file, pending }),
        None => {
            // Closed first: Windows replaces no file that is open.
            drop(file);
            telemetry_internal::fs::write_atomic(&path, &record::empty_journal())?;
            let (file, meta) = open()?;
            match states_of(&file, meta.len())? {
                Some(pending) => Ok(Opened { file, pending }),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the crash journal keeps being replaced",
                )),
            }
        }
    }
}

/// Whether any slot is not free; `None` if the file is not a journal of our layout.
fn states(file: &File) -> io::Result<Option<bool>> {
    states_of(file, file.metadata()?.len())
}

/// [`states`] of a file whose length `len` the caller has just read.
fn states_of(file: &File, len: u64) -> io::Result<Option<bool>> {
    if len != JOURNAL_LEN as u64 {
        return Ok(None);
    }
    let mut bytes = [0u8; HEADER_BYTES];
    read_at(file, &mut bytes, 0)?;
    let words = record::words_of(&bytes);
    if !record::header_ok(&words) {
        return Ok(None);
    }
    Ok(Some((0..SLOTS).any(|i| {
        record::state_of(record::state_in(&words, i)).0 != FREE
    })))
}

/// Whether `dir`'s journal holds crashes to count (read with `pread`, never mapped).
/// False if there is no journal or it is not one.
pub(crate) fn has_pending(dir: &Dir) -> bool {
    telemetry_internal::fs::open_read(&dir.crash_journal())
        .and_then(|file| states(&file))
        .is_ok_and(|pending| pending == Some(true))
}

/// What [`crate::process`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalOutcome {
    /// No journal, or no crash in it. Nothing was counted.
    Empty,
    /// Another process holds the journal: it counts these crashes now.
    Busy,
    /// Mode `off`: nothing was read or written.
    Off,
    /// One counter per crash was incremented (stack counter names, or
    /// `crash/malformed`, `crash/no-frames`), in the order counted; `left` crashes stay
    /// for a later run (their counter file could not be opened, or their process is
    /// still writing).
    Counted {
        /// The counters incremented.
        names: Vec<String>,
        /// Records left in the journal.
        left: usize,
    },
    /// The journal could not be read or written.
    Failed(io::ErrorKind),
}

/// Counts the crashes in `dir`'s journal (see the module docs). `program` is the
/// processing program, whose file counts a malformed record; `alive(pid)` says
/// whether a process still runs.
pub(crate) fn process(
    dir: &Dir,
    program: &Program,
    mode: Mode,
    day: Day,
    alive: &dyn Fn(u32) -> bool,
) -> JournalOutcome {
    if mode == Mode::Off {
        return JournalOutcome::Off;
    }
    let file = match telemetry_internal::fs::open_read_write(&dir.crash_journal(), false) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return JournalOutcome::Empty,
        Err(err) => return JournalOutcome::Failed(err.kind()),
    };
    match states(&file) {
        Ok(Some(true)) => {}
        Ok(_) => return JournalOutcome::Empty,
        Err(err) => return JournalOutcome::Failed(err.kind()),
    }
    // No locks on this file system: go on without (see the module docs).
    if let Ok(false) = try_lock(&file) {
        return JournalOutcome::Busy;
    }
    let mut run = Run {
        file: &file,
        dir,
        mode,
        day,
        own: OwnExe::default(),
        names: Vec::new(),
        left: 0,
    };
    match run.all(program, alive) {
        Ok(()) if run.names.is_empty() && run.left == 0 => JournalOutcome::Empty,
        Ok(()) => JournalOutcome::Counted {
            names: run.names,
            left: run.left,
        },
        Err(err) => JournalOutcome::Failed(err.kind()),
    }
}

/// Takes the journal's processing lock on `file` without waiting: `Ok(true)` if taken
/// (held until `file` is closed), `Ok(false)` if another process (or another handle)
/// holds it, `Err` if the file system has no locks. Unix: an exclusive `flock`;
/// Windows: an exclusive byte-range lock past the journal's end (see the platform
/// module).
fn try_lock(file: &File) -> io::Result<bool> {
    #[cfg(unix)]
    return telemetry_counter::lease::try_exclusive(file);
    #[cfg(windows)]
    return crate::platform::try_lock_journal(file);
    #[cfg(not(any(unix, windows)))]
    {
        let _ = file;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// One processing run, under the journal's lock.
struct Run<'a> {
    file: &'a File,
    dir: &'a Dir,
    mode: Mode,
    day: Day,
    own: OwnExe,
    names: Vec<String>,
    left: usize,
}

/// What applying one count did.
enum Applied {
    Counted,
    /// The counter file could not be opened or read: the slot stays for later.
    Later,
}

impl Run<'_> {
    fn all(&mut self, program: &Program, alive: &dyn Fn(u32) -> bool) -> io::Result<()> {
        let mut bytes = vec![0u8; SLOTS_END];
        read_at(self.file, &mut bytes, 0)?;
        let words = record::words_of(&bytes);
        for index in 0..SLOTS {
            let start = HEADER_WORDS + index * SLOT_WORDS;
            let Some(slot) = words.get(start..start + SLOT_WORDS) else {
                continue;
            };
            let (state, pid) = record::state_of(record::state_in(&words, index));
            let applied = match state {
                FREE => continue,
                APPLYING => self.settle(index, slot, program)?,
                SEALED => match self.sealed(index, slot)? {
                    Ok(record) => {
                        let name = self.own.name(&record);
                        self.apply(index, &record.program, &name)?
                    }
                    Err(_) => self.apply(index, program, naming::MALFORMED)?,
                },
                WRITING if !alive(pid) => self.apply(index, program, naming::MALFORMED)?,
                // Being written by a live process, or a state this layout never
                // writes (left alone rather than guessed at).
                _ => Applied::Later,
            };
            if matches!(applied, Applied::Later) {
                self.left += 1;
            }
        }
        Ok(())
    }

    /// The record in sealed slot `index`, first read as `slot`. One that fails its
    /// checks is read once more before it is taken for garbage: the state word and
    /// the record came in one `pread`, and nothing orders the kernel's copy of the two
    /// against a writer's stores on another CPU (its release store of the state only
    /// orders its own), so a record sealed just then could have been read half-old.
    fn sealed(
        &self,
        index: usize,
        slot: &[u64],
    ) -> io::Result<Result<record::Record, record::Malformed>> {
        let first = record::parse(slot);
        if first.is_ok() {
            return Ok(first);
        }
        let mut bytes = [0u8; SLOT_WORDS * 8];
        read_at(self.file, &mut bytes, record::slot_offset(index))?;
        Ok(record::parse(&record::words_of(&bytes)))
    }

    /// Counts `name` into `program`'s file for slot `index`, then frees the slot.
    fn apply(&mut self, index: usize, program: &Program, name: &str) -> io::Result<Applied> {
        let status =
            telemetry_counter::open_with_mode(self.dir, program.clone(), self.mode, self.day);
        let OpenStatus::Counting(path) = status else {
            return Ok(Applied::Later);
        };
        let Some(before) = value_of(&path, name) else {
            return Ok(Applied::Later);
        };
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            return Ok(Applied::Later);
        };
        let area = ApplyArea {
            slot: index,
            before,
            program: program.clone(),
            day: self.day,
            file_name: file_name.to_owned(),
            name: name.to_owned(),
        };
        write_at(self.file, &area.encode()?, APPLY_OFFSET as u64)?;
        set_state(self.file, index, APPLYING)?;
        self.increment(index, &path, name, before)
    }

    /// Steps 3 and 4: the increment, checked, then the slot freed.
    fn increment(
        &mut self,
        index: usize,
        path: &Path,
        name: &str,
        before: u64,
    ) -> io::Result<Applied> {
        telemetry_counter::inc(name);
        if value_of(path, name) != Some(before.saturating_add(1)) {
            // Counted in memory only (a full file, say): the slot stays applying, and
            // the next run, finding the value unchanged, counts it again.
            return Ok(Applied::Later);
        }
        free(self.file, index)?;
        self.names.push(name.to_owned());
        Ok(Applied::Counted)
    }

    /// An applying slot left by a killed run (see the module docs).
    fn settle(&mut self, index: usize, slot: &[u64], program: &Program) -> io::Result<Applied> {
        let mut bytes = vec![0u8; APPLY_BYTES];
        read_at(self.file, &mut bytes, APPLY_OFFSET as u64)?;
        let Some(area) = ApplyArea::decode(&bytes).filter(|a| a.slot == index) else {
            // Not what step 1 wrote before step 2: count it from the start.
            return match record::parse(slot) {
                Ok(record) => {
                    let name = self.own.name(&record);
                    self.apply(index, &record.program, &name)
                }
                Err(_) => self.apply(index, program, naming::MALFORMED),
            };
        };
        let path = self.dir.local().join(&area.file_name);
        let Some(value) = value_of(&path, &area.name) else {
            if path.exists() {
                return Ok(Applied::Later); // unreadable now; settled later
            }
            // The file is gone with its week: see the module docs.
            free(self.file, index)?;
            return Ok(Applied::Counted);
        };
        if value > area.before {
            free(self.file, index)?;
            self.names.push(area.name);
            return Ok(Applied::Counted);
        }
        let status = telemetry_counter::open_with_mode(self.dir, area.program, self.mode, area.day);
        match status {
            OpenStatus::Counting(opened) if opened == path => {
                self.increment(index, &path, &area.name, area.before)
            }
            _ => Ok(Applied::Later),
        }
    }
}

/// The value of counter `name` in the counter file at `path` (0 if it has none);
/// `None` if the file cannot be read or is damaged.
fn value_of(path: &Path, name: &str) -> Option<u64> {
    let file = telemetry_counter::read_file(path).ok()?;
    Some(file.count.get(name).copied().unwrap_or(0))
}

/// Sets slot `index`'s state word (its pid is of no use once sealed).
fn set_state(file: &File, index: usize, state: u64) -> io::Result<()> {
    write_at(file, &state.to_ne_bytes(), record::state_offset(index))
}

/// Frees slot `index`: its record is zeroed first, while the slot is still ours, then
/// its state word, so that a writer that claims it at once finds nothing of ours
/// written over its record afterwards.
fn free(file: &File, index: usize) -> io::Result<()> {
    let zeros = [0u8; SLOT_WORDS * 8];
    write_at(file, &zeros, record::slot_offset(index))?;
    set_state(file, index, FREE)
}

/// What is being counted: see the module docs.
#[derive(Debug, PartialEq, Eq)]
struct ApplyArea {
    slot: usize,
    before: u64,
    program: Program,
    day: Day,
    file_name: String,
    name: String,
}

impl ApplyArea {
    /// `slot+1 (8) | before (8) | text length (4) | CRC-32 of the rest (4) | text`, the
    /// text being `name\nversion\nday\nfile name\ncounter name`.
    fn encode(&self) -> io::Result<Vec<u8>> {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.program.name(),
            self.program.version(),
            self.day,
            self.file_name,
            self.name
        );
        if 24 + text.len() > APPLY_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
        }
        let mut bytes = Vec::with_capacity(24 + text.len());
        bytes.extend_from_slice(&(self.slot as u64 + 1).to_le_bytes());
        bytes.extend_from_slice(&self.before.to_le_bytes());
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
        let mut crc = record::Crc::new();
        crc.bytes(&bytes);
        crc.bytes(text.as_bytes());
        bytes.extend_from_slice(&crc.finish().to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Option<ApplyArea> {
        let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        let slot = usize::try_from(u64_at(0)?.checked_sub(1)?).ok()?;
        let before = u64_at(8)?;
        let len = u32_at(16)? as usize;
        let text = bytes.get(24..24usize.checked_add(len)?)?;
        let mut crc = record::Crc::new();
        crc.bytes(bytes.get(..20)?);
        crc.bytes(text);
        if crc.finish() != u32_at(20)? {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let mut parts = text.splitn(5, '\n');
        let program = Program::owned(parts.next()?, parts.next()?);
        let day = Day::parse(parts.next()?)?;
        let file_name = parts.next()?.to_owned();
        let name = parts.next()?.to_owned();
        let plain = !file_name.is_empty()
            && !file_name.contains(['/', '\\'])
            && !file_name.starts_with('.');
        (plain && program.is_valid()).then_some(ApplyArea {
            slot,
            before,
            program,
            day,
            file_name,
            name,
        })
    }
}

/// The slot an apply area at the start of `bytes` names, if it decodes: the apply
/// area's reader, for the fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) fn apply_area_slot(bytes: &[u8]) -> Option<usize> {
    ApplyArea::decode(bytes).map(|area| area.slot)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(not(any(unix, windows)))]
fn write_at(_file: &File, _buf: &[u8], _offset: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apply_area_round_trips_and_refuses_damage() {
        let area = ApplyArea {
            slot: 3,
            before: 41,
            program: Program::new("mytool", "1.0.0"),
            day: Day::parse("2026-12-06").expect("a day"),
            file_name: "mytool@1.0.0-1.95.0-linux-x86_64-2026-12-06.v1.count".to_owned(),
            name: "crash/panic\nmytool::main+0x10".to_owned(),
        };
        let bytes = area.encode().expect("fits");
        assert_eq!(ApplyArea::decode(&bytes), Some(area));
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert_eq!(ApplyArea::decode(&bad), None, "byte {at}");
        }
        assert_eq!(ApplyArea::decode(&[0; APPLY_BYTES]), None);
    }

    #[test]
    fn a_new_journal_is_made_and_a_foreign_file_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::new(tmp.path());
        let opened = open_for_recording(&dir).expect("created");
        assert!(!opened.pending);
        assert_eq!(
            opened.file.metadata().expect("meta").len(),
            JOURNAL_LEN as u64
        );
        assert!(!has_pending(&dir));
        // (Windows replaces no file a process has open.)
        drop(opened);
        std::fs::write(dir.crash_journal(), b"not a journal").expect("write");
        let opened = open_for_recording(&dir).expect("replaced");
        assert!(!opened.pending);
        assert_eq!(
            std::fs::read(dir.crash_journal()).expect("read"),
            record::empty_journal()
        );
        // A slot that is not free is a crash waiting.
        let mut bytes = record::empty_journal();
        let at = record::state_offset(5) as usize;
        bytes[at..at + 8].copy_from_slice(&SEALED.to_ne_bytes());
        std::fs::write(dir.crash_journal(), &bytes).expect("write");
        assert!(has_pending(&dir));
        assert!(open_for_recording(&dir).expect("opened").pending);
    }

    /// A journal holding one crash of each of `programs`, written as their handlers
    /// would (no build ID, frames outside the executable: `crash/no-frames`).
    fn journal_of(dir: &Dir, programs: &[Program]) {
        use std::sync::atomic::AtomicU64;
        let words: Vec<AtomicU64> = record::words_of(&record::empty_journal())
            .into_iter()
            .map(AtomicU64::new)
            .collect();
        for program in programs {
            record::prepare(None, 0, program, "1.95.0").expect("fits");
            let frames = [record::Frame::Outside];
            assert!(record::write(&words, 1, record::Kind::Abort, &frames));
        }
        let bytes: Vec<u8> = words
            .iter()
            .flat_map(|w| w.load(std::sync::atomic::Ordering::SeqCst).to_ne_bytes())
            .collect();
        dir.ensure_local().expect("local");
        std::fs::write(dir.crash_journal(), bytes).expect("write journal");
    }

    fn counts_of(dir: &Dir, program: &Program) -> Vec<(String, u64)> {
        let day = Day::of(std::time::SystemTime::now());
        let Ok(file) = telemetry_counter::read_file(dir.counter_file(program, day)) else {
            return Vec::new();
        };
        file.count.into_iter().collect()
    }

    #[test]
    fn each_crash_counts_once_into_its_own_version_s_file() {
        let _turn = record::tests::PREPARED_BY_TEST
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::new(tmp.path());
        let (old, older, new) = (
            Program::new("mytool", "1.0.0"),
            Program::new("mytool", "1.1.0"),
            Program::new("mytool", "2.0.0"),
        );
        journal_of(&dir, &[old.clone(), older.clone()]);
        let today = Day::of(std::time::SystemTime::now());
        // Another process counts them now: this one leaves them alone, while a
        // program still reads the state words to record (a lock on Windows is
        // mandatory: it must not cover them).
        {
            let holder =
                telemetry_internal::fs::open_read_write(&dir.crash_journal(), false).expect("open");
            assert_eq!(try_lock(&holder).ok(), Some(true));
            assert_eq!(
                process(&dir, &new, Mode::Local, today, &|_| false),
                JournalOutcome::Busy
            );
            assert!(has_pending(&dir));
            assert!(open_for_recording(&dir).expect("opened to record").pending);
            assert_eq!(counts_of(&dir, &old), []);
        }
        let outcome = process(&dir, &new, Mode::Local, today, &|_| false);
        let no_frames = telemetry_counter::stack_name::NO_FRAMES.to_owned();
        assert_eq!(
            outcome,
            JournalOutcome::Counted {
                names: vec![no_frames.clone(), no_frames.clone()],
                left: 0
            }
        );
        assert_eq!(counts_of(&dir, &old), [(no_frames.clone(), 1)]);
        assert_eq!(counts_of(&dir, &older), [(no_frames, 1)]);
        assert_eq!(counts_of(&dir, &new), []);
        assert!(!has_pending(&dir));
        assert_eq!(
            process(&dir, &new, Mode::Local, today, &|_| false),
            JournalOutcome::Empty
        );
        // Mode off reads and writes nothing.
        journal_of(&dir, std::slice::from_ref(&old));
        assert_eq!(
            process(&dir, &new, Mode::Off, today, &|_| false),
            JournalOutcome::Off
        );
        assert!(has_pending(&dir));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_its_place_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::new(tmp.path());
        dir.ensure_local().expect("local");
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, b"precious").expect("write");
        std::os::unix::fs::symlink(&target, dir.crash_journal()).expect("symlink");
        assert!(open_for_recording(&dir).is_err());
        assert!(!has_pending(&dir));
        assert_eq!(std::fs::read(&target).expect("read"), b"precious");
    }
}
