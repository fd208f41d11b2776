//! Which file the process counts into: its name, its metadata, opening and rotation.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry_internal::{
    ARCH, Ambient, Date, Day, Dir, FileSpan, Mode, OS, Program, format_date, toolchain,
};

use crate::counter::REGISTRY;
use crate::layout;
use crate::mapped::{FileError, Header, MappedFile};

/// What [`open_dir`] did.
#[derive(Debug)]
pub enum OpenStatus {
    /// Counting into the file at this path.
    Counting(PathBuf),
    /// The effective mode is `off` (or `DO_NOT_TRACK` is set): nothing was written,
    /// and counts stay in memory.
    Off,
    /// The file could not be used; counts stay in memory.
    InMemory(OpenError),
}

impl OpenStatus {
    /// The counter file's path, when counting into one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            OpenStatus::Counting(path) => Some(path),
            _ => None,
        }
    }
}

/// Why a counter file could not be opened. Counting carries on in memory.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// There is no home directory, so no default telemetry directory.
    NoDefaultDir,
    /// The program name or version cannot appear in a file name.
    InvalidProgram(Program),
    /// A file system operation failed (unwritable directory, full disk, …).
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file exists but is not a counter file this program can write into.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NoDefaultDir => f.write_str("no home directory for the telemetry data"),
            OpenError::InvalidProgram(p) => {
                write!(f, "program name {p:?} is not usable in a file name")
            }
            OpenError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            OpenError::Corrupt { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What [`open_with_mode_and_rotate`] did, and whether it made the file.
#[derive(Debug)]
pub struct Opened {
    /// What the open did.
    pub status: OpenStatus,
    /// Whether this open wrote the header of the file it counts into: no process had
    /// made today's file before. A day's first run does the once-a-day work (such as
    /// keeping the directory listed in the root's registry) when this is true.
    pub created: bool,
}

/// Opens today's counter file in the telemetry directory `dir` and counts into it
/// from now on; counts made before are moved in. Reads the mode first: under `off`
/// nothing is created. A second call switches to the new directory's file.
pub fn open_dir(dir: impl Into<PathBuf>, program: crate::Program) -> OpenStatus {
    open_from_process(Some(Dir::new(dir)), &program, Lease::AtOpen)
}

/// [`open_dir`] for a caller that has already read the environment and decided the
/// mode (`telemetry::start` reads it once, at its boundary, and passes it down), on
/// the day `today`. Nothing is read here but the counter file itself.
pub fn open_with_mode(dir: &Dir, program: crate::Program, mode: Mode, today: Day) -> OpenStatus {
    open_decided(dir, &program, mode, None, today.date(), Lease::AtOpen).status
}

/// [`open_with_mode`] for a process that may outlive its week (what
/// `telemetry::start` calls): also keeps it counting into the current file, as
/// [`open_and_rotate`] does. Each rotation decides the mode again from `ambient` (the
/// one the caller read at its boundary) and the mode files, so a user who turns
/// telemetry off, for this tool or for every tool, stops the next file being created.
pub fn open_with_mode_and_rotate(
    dir: &Dir,
    program: crate::Program,
    mode: Mode,
    today: Day,
    ambient: &Ambient,
) -> Opened {
    open_decided(
        dir,
        &program,
        mode,
        Some(ambient),
        today.date(),
        Lease::AtFirstCount,
    )
}

/// [`open_with_mode_and_rotate`], put off until the process's first count: a run that
/// counts nothing (a tool asked for its `--version`) neither opens, maps nor creates
/// a file. The first increment of any counter opens today's file by the counter clock
/// (the day of that count, not of this call), moves what was counted in memory in,
/// and then calls `then` with what the open did, on the thread that counted, with no
/// lock held. Any open before that (a later call of this or another entry point)
/// replaces this one, and its `then` is never called.
///
/// For a caller that needs nothing from the open until something counts: one that
/// will start no process to work on the directory in this run.
pub fn open_with_mode_at_first_count(
    dir: &Dir,
    program: crate::Program,
    mode: Mode,
    ambient: &Ambient,
    then: impl FnOnce(Opened) + Send + 'static,
) {
    let mut deferred = DEFERRED.lock().unwrap_or_else(PoisonError::into_inner);
    *deferred = Some(DeferredOpen {
        dir: dir.clone(),
        program,
        mode,
        ambient: ambient.clone(),
        then: Box::new(then),
    });
    DEFERRING.store(true, Ordering::SeqCst);
}

/// An open that waits for the process's first count
/// ([`open_with_mode_at_first_count`]).
struct DeferredOpen {
    dir: Dir,
    program: crate::Program,
    mode: Mode,
    ambient: Ambient,
    then: Box<dyn FnOnce(Opened) + Send>,
}

static DEFERRED: Mutex<Option<DeferredOpen>> = Mutex::new(None);
/// Whether [`DEFERRED`] may hold an open, so that the counters' cold path (every
/// increment of a process counting in memory) looks without taking a lock.
static DEFERRING: AtomicBool = AtomicBool::new(false);

/// Does the open that waits for the first count, if one does: called by a counter
/// that has no record yet, before it looks for one.
pub(crate) fn open_if_deferred() {
    if !DEFERRING.load(Ordering::Relaxed) {
        return;
    }
    // Taken before opening: a count made while the file opens (by another thread, or
    // by this one inside the open) goes the usual way, into memory, and moves into
    // the file with the rest when it is installed.
    if let Some(open) = take_deferred() {
        let opened = open_decided(
            &open.dir,
            &open.program,
            open.mode,
            Some(&open.ambient),
            counter_today(),
            Lease::AtFirstCount,
        );
        (open.then)(opened);
    }
}

/// The open waiting for the first count, if any, which no longer waits. An open of
/// any kind takes it first ([`open_on`]): one that comes before the first count
/// replaces it.
fn take_deferred() -> Option<DeferredOpen> {
    if !DEFERRING.swap(false, Ordering::SeqCst) {
        return None;
    }
    DEFERRED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// [`open_dir`] with the default directory for `program`
/// (`<user config dir>/telemetry/<program>`).
pub fn open(program: crate::Program) -> OpenStatus {
    open_from_process(None, &program, Lease::AtOpen)
}

/// [`open_dir`] for long-running processes: also keeps one background thread that
/// moves counting into a new file when the day changes (Go's `OpenAndRotate`), so a
/// process that outlives its week never counts into a file whose week has been
/// reported. The thread starts with the process's first count into the file (here, if
/// a counter was incremented before), not before: a run that counts nothing needs no
/// rotation and pays for no thread. Programs that do not call this (or
/// `telemetry::start`) get no thread and no timer (Go's timer broke the runtime's
/// deadlock detection for every program: golang/go#68497). The thread follows the
/// directory most recently opened: after a later [`open_dir`] with another directory
/// it rotates that one, never back to this one.
pub fn open_and_rotate(dir: impl Into<PathBuf>, program: crate::Program) -> OpenStatus {
    open_from_process(Some(Dir::new(dir)), &program, Lease::AtFirstCount)
}

/// What the entry points that read the process's surroundings themselves share: the
/// environment read once, the directory (`dir`, else the program's default one), the
/// mode decided, then [`open_decided`] on today by the counter clock.
fn open_from_process(dir: Option<Dir>, program: &crate::Program, lease: Lease) -> OpenStatus {
    let ambient = Ambient::from_process();
    let Some(dir) = dir.or_else(|| Dir::for_program(&ambient, program.name())) else {
        return OpenStatus::InMemory(OpenError::NoDefaultDir);
    };
    let mode = dir.effective_mode(&ambient).mode;
    open_decided(&dir, program, mode, Some(&ambient), counter_today(), lease).status
}

/// Every entry point's open once the mode is decided: [`open_on`], then, for a
/// rotating process ([`Lease::AtFirstCount`]) that counts into a file, the rotation
/// thread asked for.
fn open_decided(
    dir: &Dir,
    program: &crate::Program,
    mode: Mode,
    ambient: Option<&Ambient>,
    today: Date,
    lease: Lease,
) -> Opened {
    let opened = open_on(dir, program, mode, ambient, today, lease);
    if lease == Lease::AtFirstCount && matches!(opened.status, OpenStatus::Counting(_)) {
        keep_rotating();
    }
    opened
}

/// Whether an entry point that rotates opened a file ([`keep_rotating`]).
static ROTATION_WANTED: AtomicBool = AtomicBool::new(false);
/// Whether the rotation thread runs (or is being started).
static ROTATING: AtomicBool = AtomicBool::new(false);

/// Asks for the rotation thread. It starts at the process's first count into a file:
/// now, if a counter already has its record (counts made before the file opened moved
/// in), else from the first counter to get one ([`start_rotation_if_counting`], on the
/// counters' cold path). A process that never counts, such as a tool run for its
/// `--version`, starts no thread: a thread is most of what opening costs a short run.
fn keep_rotating() {
    ROTATION_WANTED.store(true, Ordering::SeqCst);
    start_rotation_if_counting();
}

/// Starts the rotation thread, once per process, if it was asked for and a counter
/// counts into a file. Called after a counter's first look-up in a file (outside the
/// registry lock) and by [`keep_rotating`]: both sides store their flag before they
/// read the other's (sequentially consistent), so whichever comes second starts it.
///
/// Where there is no lease (Windows), the thread starts with the open instead: there
/// nothing keeps a reported week's file from a process that counts into it late, so
/// the thread must move the process at midnight whether it has counted yet or not.
pub(crate) fn start_rotation_if_counting() {
    if ROTATING.load(Ordering::Relaxed)
        || !ROTATION_WANTED.load(Ordering::SeqCst)
        || (cfg!(unix) && !REGISTRY.counting())
    {
        return;
    }
    if !ROTATING.swap(true, Ordering::SeqCst) && spawn_rotation_thread().is_err() {
        ROTATING.store(false, Ordering::SeqCst);
    }
}

#[cfg(unix)]
fn spawn_rotation_thread() -> io::Result<()> {
    static ROTATION: crate::mapped::quiet_thread::Job = (c"telemetry-rotate", rotate_forever);
    crate::mapped::quiet_thread::spawn(&ROTATION)
}

#[cfg(not(unix))]
fn spawn_rotation_thread() -> io::Result<()> {
    std::thread::Builder::new()
        .name("telemetry-rotate".into())
        // It opens files and formats a header; the default 2 MiB is far more.
        .stack_size(256 << 10)
        .spawn(rotate_forever)
        .map(drop)
}

/// What rotation keeps current: the directory and program of the latest open, and
/// the ambient inputs its mode is decided with: the ones a public entry point read
/// at its boundary. `None` only until an entry point that reads them has run
/// ([`open_with_mode`] passes none and keeps the previous ones).
struct LastOpened {
    dir: Dir,
    program: crate::Program,
    ambient: Option<Ambient>,
}

static LAST_OPENED: Mutex<Option<LastOpened>> = Mutex::new(None);

/// The counter clock: the real clock, unless a test set a pretended time
/// ([`crate::testing::set_now`]), in seconds since the epoch plus one (0: real).
static PRETENDED_NOW: AtomicU64 = AtomicU64::new(0);

/// The day of the file the process last opened to count into (its Julian day; 0
/// before any), so that the rotation thread sees without allocating whether it must
/// move at once.
static OPENED_ON: AtomicI32 = AtomicI32::new(0);

/// Wakes the rotation thread early (when a test moves the counter clock).
static WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Now, by the counter clock.
pub(crate) fn counter_now() -> SystemTime {
    match PRETENDED_NOW.load(Ordering::SeqCst) {
        0 => SystemTime::now(),
        secs => UNIX_EPOCH + Duration::from_secs(secs - 1),
    }
}

/// Today (UTC), by the counter clock.
pub(crate) fn counter_today() -> Date {
    Day::of(counter_now()).date()
}

/// Sets the counter clock (`None`: the real one) and wakes the rotation thread, which
/// rotates at once if the day changed.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn set_now(now: Option<SystemTime>) {
    let secs = now.map_or(0, |t| {
        t.duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().saturating_add(1))
    });
    PRETENDED_NOW.store(secs, Ordering::SeqCst);
    // Only a running thread is woken: one started later looks at the day itself.
    if ROTATING.load(Ordering::SeqCst) {
        *WAKE.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        WAKE.1.notify_all();
    }
}

fn rotate_forever() {
    // Started by the process's first count, which may come days after its file was
    // opened: a file of another day is left at once, not at the next wake.
    if OPENED_ON.load(Ordering::SeqCst) != counter_today().to_julian_day() {
        rotate(counter_today());
    }
    loop {
        // Wake at midnight, and at least hourly: the wait runs on a clock that stops
        // while the machine sleeps, so a laptop suspended across midnight rotates
        // within the hour after it wakes.
        let wait = Duration::from_secs(3600).min(until_next_utc_midnight(counter_now()));
        let woken = WAKE.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = WAKE
            .1
            .wait_timeout_while(woken, wait, |woken| !*woken)
            .unwrap_or_else(PoisonError::into_inner);
        *woken = false;
        drop(woken);
        rotate(counter_today());
    }
}

/// One wake of the rotation thread on `today`: if the directory last opened still
/// collects and its file for `today` is not the one we count into, opens it. Touches
/// nothing on disk under mode `off` (not even `local/weekends`). `None`
/// when there was nothing to do.
pub(crate) fn rotate(today: Date) -> Option<OpenStatus> {
    let (dir, program, ambient) = {
        let last = LAST_OPENED.lock().unwrap_or_else(PoisonError::into_inner);
        let last = last.as_ref()?;
        (last.dir.clone(), last.program.clone(), last.ambient.clone())
    };
    // Without ambient inputs no caller asked for rotation (only `open_with_mode`
    // ran, which never starts the thread): nothing to decide with, nothing to do.
    let mode = dir.effective_mode(ambient.as_ref()?).mode;
    if !mode.collects() {
        return None;
    }
    let expected = dir.counter_file(&program, Day::from_date(today));
    if REGISTRY.path().as_ref() == Some(&expected) {
        return None;
    }
    Some(
        open_on(
            &dir,
            &program,
            mode,
            ambient.as_ref(),
            today,
            Lease::AtFirstCount,
        )
        .status,
    )
}

fn until_next_utc_midnight(now: SystemTime) -> Duration {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Duration::from_secs(86_400 - now % 86_400 + 1)
}

/// When a process takes the lease on a file it opens (see `lease.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lease {
    /// At once: a process that does not rotate holds its file until it exits.
    AtOpen,
    /// At the first count into it: a rotating process (which starts its rotation
    /// thread then too) that counts nothing holds no week back, however long it runs.
    AtFirstCount,
}

/// Opens the file a process starting on `today` counts into.
pub(crate) fn open_on(
    dir: &Dir,
    program: &crate::Program,
    mode: Mode,
    ambient: Option<&Ambient>,
    today: Date,
    lease: Lease,
) -> Opened {
    drop(take_deferred());
    {
        let mut last = LAST_OPENED.lock().unwrap_or_else(PoisonError::into_inner);
        let ambient = match ambient {
            Some(ambient) => Some(ambient.clone()),
            None => last.take().and_then(|last| last.ambient),
        };
        *last = Some(LastOpened {
            dir: dir.clone(),
            program: program.clone(),
            ambient,
        });
    }
    let (status, created) = if !mode.collects() {
        (OpenStatus::Off, false)
    } else {
        match open_file(dir, program, today, lease) {
            Ok(file) => {
                let path = file.path().to_owned();
                let created = file.created();
                OPENED_ON.store(today.to_julian_day(), Ordering::SeqCst);
                REGISTRY.install(file);
                (OpenStatus::Counting(path), created)
            }
            Err(err) => (OpenStatus::InMemory(err), false),
        }
    };
    Opened { status, created }
}

fn open_file(
    dir: &Dir,
    program: &crate::Program,
    today: Date,
    lease: Lease,
) -> Result<MappedFile, OpenError> {
    if !program.is_valid() {
        return Err(OpenError::InvalidProgram(program.clone()));
    }
    let local = dir.ensure_local().map_err(|source| OpenError::Io {
        path: dir.local(),
        source,
    })?;
    let path = dir.counter_file(program, Day::from_date(today));
    // The header with today as its end, to be given its real end below. Its length
    // does not depend on the dates, so a program too long for it is refused here.
    let template = layout::header(&metadata(
        program,
        FileSpan {
            begin: today,
            end: today,
        },
    ))
    .ok_or_else(|| OpenError::InvalidProgram(program.clone()))?;
    // The end of the file's span comes from the `weekends` file, which only the run
    // that makes the day's file needs to read: a file that exists says its end in its
    // header (checked to be within a week of today, then the whole header is compared
    // as always), and the other runs of the day skip four system calls.
    let weekend_error = std::cell::Cell::new(None);
    let build = |existing: Option<&[u8]>| {
        let said = existing
            .and_then(span_end_in)
            .filter(|end| (1..=7).contains(&(end.to_julian_day() - today.to_julian_day())));
        let end = match said {
            Some(end) => end,
            None => match telemetry_internal::weekend(&local) {
                Ok(weekend) => telemetry_internal::file_span(today, weekend).end,
                Err(err) => {
                    let kind = err.kind();
                    weekend_error.set(Some(err));
                    return Err(FileError::Io(kind.into()));
                }
            },
        };
        Ok(with_span_end(&template, end))
    };
    let opened = MappedFile::open_with(&path, Header::Built(&build), lease == Lease::AtOpen);
    if let Some(source) = weekend_error.take() {
        return Err(OpenError::Io {
            path: dir.local(),
            source,
        });
    }
    opened.map_err(|err| match err {
        FileError::Io(source) => OpenError::Io {
            path: path.clone(),
            source,
        },
        FileError::Corrupt(reason) => OpenError::Corrupt {
            path: path.clone(),
            reason,
        },
        FileError::BadName => OpenError::Corrupt {
            path: path.clone(),
            reason: "bad name",
        },
        FileError::Busy => OpenError::Corrupt {
            path: path.clone(),
            reason: "other processes kept growing the file",
        },
        FileError::Gone => OpenError::Corrupt {
            path: path.clone(),
            reason: "deleted as it was opened",
        },
    })
}

/// Where a header holds the date its file's span ends: after the prefix and the
/// length word, the line `TimeBegin: YYYY-MM-DDT00:00:00Z\n`, then `TimeEnd: `
/// ([`metadata`] writes both; a test checks the place).
const SPAN_END_AT: usize = layout::HEADER_LEN_OFFSET + 4 + 32 + 9;
const DATE_LEN: usize = "YYYY-MM-DD".len();

/// The end date a file's first bytes say, if they say one there.
fn span_end_in(first: &[u8]) -> Option<Date> {
    let text = first.get(SPAN_END_AT..SPAN_END_AT + DATE_LEN)?;
    Day::parse(std::str::from_utf8(text).ok()?).map(Day::date)
}

/// `template` (a header built by [`metadata`]) with `end` as its span's end.
fn with_span_end(template: &[u8], end: Date) -> Vec<u8> {
    let mut header = template.to_vec();
    if let Some(at) = header.get_mut(SPAN_END_AT..SPAN_END_AT + DATE_LEN) {
        at.copy_from_slice(format_date(end).as_bytes());
    }
    header
}

/// The counter file name for `program` on `begin`.
pub fn file_name(program: &crate::Program, begin: Date) -> String {
    telemetry_internal::counter_file_name(program, Day::from_date(begin))
}

/// The metadata block for a file covering `span`, in Go's `Key: value` form.
pub(crate) fn metadata(program: &crate::Program, span: FileSpan) -> String {
    // Pieces pushed one by one, not `format!`: every `start` writes this block.
    let (begin, end) = (format_date(span.begin), format_date(span.end));
    let pieces = [
        "TimeBegin: ",
        &begin,
        "T00:00:00Z\nTimeEnd: ",
        &end,
        "T00:00:00Z\nProgram: ",
        program.name(),
        "\nVersion: ",
        program.version(),
        "\nToolchain: ",
        toolchain(),
        "\nOS: ",
        OS,
        "\nArch: ",
        ARCH,
        "\n\n",
    ];
    let mut text = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    pieces.iter().for_each(|p| text.push_str(p));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapped::EXISTING_PROBE;

    fn program() -> crate::Program {
        crate::Program::new("filetest", "1.0.0")
    }

    fn day(text: &str) -> Date {
        Day::parse(text).unwrap().date()
    }

    #[test]
    fn metadata_is_gos_key_value_block() {
        let (begin, end) = (day("2026-12-06"), day("2026-12-09"));
        let expected = format!(
            "TimeBegin: 2026-12-06T00:00:00Z\nTimeEnd: 2026-12-09T00:00:00Z\nProgram: filetest\n\
             Version: 1.0.0\nToolchain: {}\nOS: {OS}\nArch: {ARCH}\n\n",
            toolchain()
        );
        assert_eq!(metadata(&program(), FileSpan { begin, end }), expected);
    }

    #[test]
    fn the_span_end_is_where_metadata_writes_it() {
        let (begin, end) = (day("2026-12-06"), day("2026-12-09"));
        let header = layout::header(&metadata(&program(), FileSpan { begin, end })).unwrap();
        assert_eq!(span_end_in(&header), Some(end));
        let template =
            layout::header(&metadata(&program(), FileSpan { begin, end: begin })).unwrap();
        assert_eq!(with_span_end(&template, end), header);
    }

    /// Only the run that makes the day's file reads `weekends`: an existing file says
    /// its span's end itself, and that end is kept even if `weekends` changed since.
    #[test]
    fn an_existing_file_is_opened_without_reading_weekends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let today = day("2026-12-06");
        let made = open_file(&dir, &program(), today, Lease::AtOpen).unwrap();
        assert!(made.created());
        let path = made.path().to_owned();
        drop(made);
        let header_before = std::fs::read(&path).unwrap()[..EXISTING_PROBE].to_vec();

        // Another day's number in `weekends`: the existing file keeps its end.
        let weekends = dir.local().join("weekends");
        let other = match std::fs::read(&weekends).unwrap()[0] {
            b'0' => "1\n",
            _ => "0\n",
        };
        std::fs::write(&weekends, other).unwrap();
        let again = open_file(&dir, &program(), today, Lease::AtOpen).unwrap();
        assert!(!again.created());
        drop(again);
        assert_eq!(
            std::fs::read(&path).unwrap()[..EXISTING_PROBE],
            header_before[..]
        );

        // `weekends` unreadable: the existing file opens all the same, since nothing
        // reads it; a new day's file, which needs it, does not.
        std::fs::remove_file(&weekends).unwrap();
        std::fs::create_dir(&weekends).unwrap();
        let again = open_file(&dir, &program(), today, Lease::AtOpen).unwrap();
        assert!(!again.created());
        let tomorrow = today.next_day().unwrap();
        let new_day = open_file(&dir, &program(), tomorrow, Lease::AtOpen);
        assert!(
            matches!(new_day, Err(OpenError::Io { ref path, .. }) if *path == dir.local()),
            "{:?}",
            new_day.err()
        );
    }
}
