//! Which file the process counts into: its name, its metadata, opening and rotation.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use telemetry_internal::{ARCH, Date, Day, Dir, FileSpan, OS, Program, format_date, toolchain};

use crate::counter::REGISTRY;
use crate::layout;
use crate::mapped::{FileError, MappedFile};

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

/// Opens today's counter file in the telemetry directory `dir` and counts into it
/// from now on; counts made before are moved in. Reads the mode first: under `off`
/// nothing is created. A second call switches to the new directory's file.
pub fn open_dir(dir: impl Into<PathBuf>, program: crate::Program) -> OpenStatus {
    open_on(&Dir::new(dir), &program, telemetry_internal::today())
}

/// [`open_dir`] with the default directory for `program`
/// (`<user config dir>/<program>/telemetry`).
pub fn open(program: crate::Program) -> OpenStatus {
    match Dir::default_for(program.name()) {
        Some(dir) => open_on(&dir, &program, telemetry_internal::today()),
        None => OpenStatus::InMemory(OpenError::NoDefaultDir),
    }
}

/// [`open_dir`] for long-running processes: also starts one background thread that
/// moves counting into a new file when the current one expires. Programs that do not
/// call this get no thread and no timer (Go's timer broke the runtime's deadlock
/// detection for every program: golang/go#68497). The thread follows the directory
/// most recently opened: after a later [`open_dir`] with another directory it rotates
/// that one, never back to this one.
pub fn open_and_rotate(dir: impl Into<PathBuf>, program: crate::Program) -> OpenStatus {
    let status = open_on(&Dir::new(dir), &program, telemetry_internal::today());
    static ROTATING: AtomicBool = AtomicBool::new(false);
    if matches!(status, OpenStatus::Counting(_)) && !ROTATING.swap(true, Ordering::SeqCst) {
        let spawned = std::thread::Builder::new()
            .name("telemetry-rotate".into())
            .spawn(rotate_forever);
        if spawned.is_err() {
            ROTATING.store(false, Ordering::SeqCst);
        }
    }
    status
}

/// The directory and program of the latest open: the ones rotation keeps current.
static LAST_OPENED: Mutex<Option<(Dir, crate::Program)>> = Mutex::new(None);

fn rotate_forever() {
    loop {
        // Wake at least hourly: a suspended laptop's sleep can overshoot midnight.
        std::thread::sleep(Duration::from_secs(3600).min(until_next_utc_midnight()));
        rotate(telemetry_internal::today());
    }
}

/// One wake of the rotation thread on `today`: if the directory last opened still
/// collects and its file for `today` is not the one we count into, opens it. Touches
/// nothing on disk under mode `off` (it used to recreate `local/weekends` there). `None`
/// when there was nothing to do.
pub(crate) fn rotate(today: Date) -> Option<OpenStatus> {
    let (dir, program) = LAST_OPENED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    if !dir.mode().collects() {
        return None;
    }
    let expected = dir.counter_file(&program, Day::from_date(today));
    if REGISTRY.path().as_ref() == Some(&expected) {
        return None;
    }
    Some(open_on(&dir, &program, today))
}

fn until_next_utc_midnight() -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(86_400 - now % 86_400 + 1)
}

/// Opens the file a process starting on `today` counts into.
pub(crate) fn open_on(dir: &Dir, program: &crate::Program, today: Date) -> OpenStatus {
    *LAST_OPENED.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((dir.clone(), program.clone()));
    if !dir.mode().collects() {
        return OpenStatus::Off;
    }
    match open_file(dir, program, today) {
        Ok(file) => {
            let path = file.path().to_owned();
            REGISTRY.install(file);
            OpenStatus::Counting(path)
        }
        Err(err) => OpenStatus::InMemory(err),
    }
}

fn open_file(dir: &Dir, program: &crate::Program, today: Date) -> Result<MappedFile, OpenError> {
    let (path, span) = file_path(dir, program, today)?;
    let header = layout::header(&metadata(program, span))
        .ok_or_else(|| OpenError::InvalidProgram(program.clone()))?;
    MappedFile::open(&path, &header).map_err(|err| match err {
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
    })
}

/// `<local>/<program>@<version>-<toolchain>-<os>-<arch>-<YYYY-MM-DD>.v1.count` and the
/// span it covers. Creates `local/` (0700) and the `weekends` file if needed.
pub(crate) fn file_path(
    dir: &Dir,
    program: &crate::Program,
    today: Date,
) -> Result<(PathBuf, FileSpan), OpenError> {
    if !program.is_valid() {
        return Err(OpenError::InvalidProgram(program.clone()));
    }
    let io_error = |source| OpenError::Io {
        path: dir.local(),
        source,
    };
    let local = dir.ensure_local().map_err(io_error)?;
    let weekend = telemetry_internal::weekend(&local).map_err(io_error)?;
    let span = telemetry_internal::file_span(today, weekend);
    Ok((dir.counter_file(program, Day::from_date(today)), span))
}

/// The counter file name for `program` on `begin`.
pub fn file_name(program: &crate::Program, begin: Date) -> String {
    telemetry_internal::counter_file_name(program, Day::from_date(begin))
}

/// The metadata block for a file covering `span`, in Go's `Key: value` form.
pub(crate) fn metadata(program: &crate::Program, span: FileSpan) -> String {
    format!(
        "TimeBegin: {}T00:00:00Z\nTimeEnd: {}T00:00:00Z\nProgram: {}\nVersion: {}\n\
         Toolchain: {}\nOS: {OS}\nArch: {ARCH}\n\n",
        format_date(span.begin),
        format_date(span.end),
        program.name(),
        program.version(),
        toolchain(),
    )
}
