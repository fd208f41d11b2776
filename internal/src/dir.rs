//! The telemetry directory as a typed store: every path and file name in it is spelled
//! here and nowhere else.
//!
//! ```text
//! <config dir>/telemetry/          the root (`Root`)
//!   mode                           `off` turns every tool off; anything else defers
//!   directories                    NAME<TAB>PATH of tools whose directory is elsewhere
//!   <program>/                     one tool's directory (`Dir`)
//!     mode                         on YYYY-MM-DD | local | off
//!     local/
//!       <program>@<version>-<toolchain>-<os>-<arch>-<YYYY-MM-DD>.v1.count
//!       weekends                   the weekday weeks end on, 0-6
//!       upload.token               when the last upload child was started
//!       crash.journal              crashes recorded by the program, not yet counted
//!       local.YYYY-MM-DD.json      a week's report with every counter
//!       YYYY-MM-DD.json            the same week's report with approved counters only
//!     upload/
//!       YYYY-MM-DD.json            a copy of each report the server accepted
//!       YYYY-MM-DD.lock            held while one process sends that report
//!       config.json                the upload config last fetched
//!     debug/                       logs, only if it exists as a directory
//!       sidecar.log
//! ```

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ambient::Ambient;
use crate::day::Day;
use crate::fs::{SMALL_FILE_LIMIT, TEMP_MARKER, ensure_private_dir, read_bounded, write_atomic};
use crate::mode::{Mode, ModeError};
use crate::program::{ARCH, OS, Program, toolchain};

/// The suffix of counter files.
pub(crate) const COUNTER_FILE_SUFFIX: &str = ".v1.count";

/// The telemetry root, `<user config dir>/telemetry`: one [`Dir`] per tool below it, and
/// the user-wide switch (`telemetry off` with no tool named) in its `mode` file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// The root at `path`. Touches nothing on disk.
    pub(crate) fn new(path: impl Into<PathBuf>) -> Root {
        Root { path: path.into() }
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The user-wide `mode` file: `off` turns every tool off.
    pub fn mode_file(&self) -> PathBuf {
        self.path.join("mode")
    }

    /// What the user-wide `mode` file says. Missing is `Local` (defer to each tool);
    /// unreadable or malformed is an error for `telemetry env` to explain.
    pub fn read_mode(&self) -> Result<Mode, ModeError> {
        read_mode_file(&self.mode_file())
    }

    /// Whether the user-wide switch is off. Only a well-formed `off` turns tools off.
    pub fn is_off(&self) -> bool {
        matches!(self.read_mode(), Ok(Mode::Off))
    }

    /// Writes the user-wide mode file.
    pub fn set_mode(&self, mode: Mode) -> io::Result<()> {
        ensure_private_dir(&self.path)?;
        write_atomic(&self.mode_file(), format!("{mode}\n").as_bytes())
    }

    /// The directory of the tool called `name`: `<root>/<name>`.
    pub fn tool(&self, name: &str) -> Dir {
        Dir::new(self.path.join(name))
    }

    /// `directories`: the registry of tools whose directory is elsewhere (set with
    /// `Config::dir`), so that a person finds their data from the root.
    pub fn registry_file(&self) -> PathBuf {
        self.path.join("directories")
    }

    /// Records that the tool `name` keeps its data in `dir`, when `dir` is not
    /// `<root>/<name>` (where it is found anyway). Cheap when it is already recorded:
    /// one bounded read, no write. Otherwise the registry is rewritten atomically
    /// (never through a link), without entries whose directory is gone, keeping the
    /// newest 256 (`REGISTRY_MAX_ENTRIES`). Creates the root (`0700`) if needed: call it
    /// only when the mode is not off. Returns whether it wrote. Of two tools listed for
    /// the first time at the same instant one may be lost; its next start lists it.
    pub fn register(&self, name: &str, dir: &Dir) -> io::Result<bool> {
        if *dir == self.tool(name) {
            return Ok(false);
        }
        let Some(line) = registry_line(name, dir.root()) else {
            // A name or path the one-line format cannot hold: not findable, not an error.
            return Ok(false);
        };
        let text = match read_bounded(&self.registry_file(), REGISTRY_LIMIT) {
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            // Oversized or not a regular file: rebuilt below, never read whole.
            Err(err) if err.kind() == io::ErrorKind::InvalidData => String::new(),
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => String::new(),
            Err(err) => return Err(err),
        };
        if text.lines().any(|l| l == line) {
            return Ok(false);
        }
        let mut kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                parse_registry_line(l).is_some_and(|(_, path)| fs::symlink_metadata(path).is_ok())
            })
            .collect();
        kept.push(&line);
        let excess = kept.len().saturating_sub(REGISTRY_MAX_ENTRIES);
        let mut out = String::new();
        for l in &kept[excess..] {
            out.push_str(l);
            out.push('\n');
        }
        ensure_private_dir(&self.path)?;
        write_atomic(&self.registry_file(), out.as_bytes())?;
        Ok(true)
    }

    /// The tools recorded by [`Root::register`] whose directory still exists as a real
    /// directory of this user, newest last, each path once (a directory under the
    /// root is not listed: [`Root::tools`] has it). Never fails: an unreadable
    /// registry lists nothing.
    pub fn registered(&self) -> Vec<(String, Dir)> {
        let Ok(bytes) = read_bounded(&self.registry_file(), REGISTRY_LIMIT) else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut found: Vec<(String, Dir)> = Vec::new();
        for (name, path) in text.lines().filter_map(parse_registry_line) {
            let dir = Dir::new(path);
            if dir.root().parent() == Some(self.path.as_path())
                || crate::fs::check_private_dir(dir.root()).is_err()
            {
                continue;
            }
            found.retain(|(_, d)| *d != dir);
            found.push((name.to_owned(), dir));
        }
        found
    }

    /// Every tool's directory under the root, sorted by name. A missing root has none.
    pub fn tools(&self) -> io::Result<Vec<Dir>> {
        let mut tools = Vec::new();
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(tools),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                tools.push(Dir::new(entry.path()));
            }
        }
        tools.sort_by(|a, b| a.root.cmp(&b.root));
        Ok(tools)
    }
}

/// The most bytes [`Root::registry_file`] may hold.
pub(crate) const REGISTRY_LIMIT: u64 = 64 * 1024;
/// The most tools [`Root::registry_file`] records (the newest are kept).
pub(crate) const REGISTRY_MAX_ENTRIES: usize = 256;

/// `NAME<TAB>ABSOLUTE PATH`, or `None` if either cannot be written on one line.
fn registry_line(name: &str, path: &Path) -> Option<String> {
    let path = path.to_str()?;
    let plain = |t: &str| !t.is_empty() && !t.contains(['\t', '\n', '\r']);
    (plain(name) && plain(path) && Path::new(path).is_absolute()).then(|| format!("{name}\t{path}"))
}

fn parse_registry_line(line: &str) -> Option<(&str, &Path)> {
    let (name, path) = line.split_once('\t')?;
    let path = Path::new(path);
    (!name.is_empty() && path.is_absolute()).then_some((name, path))
}

/// Which switch decided the effective mode, for people asking "why is it off?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModeSwitch {
    /// `DO_NOT_TRACK` is set.
    DoNotTrack,
    /// No home directory: nowhere to keep anything.
    NoHome,
    /// The telemetry root's `mode` file says `off`.
    UserWide,
    /// The tool's own `mode` file (or its absence: `local`).
    Tool,
}

/// The mode in force and the switch that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EffectiveMode {
    /// What telemetry may do.
    pub mode: Mode,
    /// Why.
    pub decided_by: ModeSwitch,
}

impl EffectiveMode {
    /// Why this mode is in force for `dir`, in the words that the decision log of
    /// `start` and `telemetry env` share: which switch decided, and what the tool's own
    /// mode file says (`no mode file; local is the default`, `the mode file says off`,
    /// `DO_NOT_TRACK is set; the mode file says on 2026-11-20`). Reads the mode file
    /// again: call it only to show the answer to someone.
    pub fn explain(&self, dir: &Dir, ambient: &Ambient) -> String {
        let own = mode_file_says(dir.read_mode(), &dir.mode_file());
        match self.decided_by {
            ModeSwitch::DoNotTrack => format!("DO_NOT_TRACK is set; {own}"),
            ModeSwitch::UserWide => {
                let file = ambient.root().map(|r| r.mode_file()).unwrap_or_default();
                format!("the user-wide switch {} is off; {own}", file.display())
            }
            ModeSwitch::NoHome => format!("there is no home directory; {own}"),
            ModeSwitch::Tool => own,
        }
    }
}

/// What one mode file says, for people: `the mode file says local`, `no mode file;
/// local is the default`, or why it is read as `local`.
pub fn mode_file_says(read: Result<Mode, ModeError>, file: &Path) -> String {
    match read {
        Ok(mode) if fs::symlink_metadata(file).is_ok() => format!("the mode file says {mode}"),
        Ok(_) => "no mode file; local is the default".to_owned(),
        Err(err) => format!("{err}; read as local"),
    }
}

/// One telemetry directory (one tool's). Creating a `Dir` touches nothing on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dir {
    root: PathBuf,
}

impl Dir {
    /// A telemetry directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Dir {
        Dir { root: root.into() }
    }

    /// The default directory of the tool `program`: `<user config dir>/telemetry/<program>`.
    /// `None` without a home directory, which callers treat as off.
    pub fn for_program(ambient: &Ambient, program: &str) -> Option<Dir> {
        ambient.root().map(|root| root.tool(program))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `local/`: counter files, `weekends`, the upload token and reports not yet sent.
    pub fn local(&self) -> PathBuf {
        self.root.join("local")
    }

    /// `upload/`: copies of uploaded reports, per-report locks, the last config.
    pub fn upload(&self) -> PathBuf {
        self.root.join("upload")
    }

    /// `debug/`: logs are written here only if it exists as a directory.
    pub fn debug(&self) -> PathBuf {
        self.root.join("debug")
    }

    /// `debug/` if it exists and is a real directory of ours (a plain file, or a link,
    /// named `debug` is not).
    pub fn debug_if_enabled(&self) -> Option<PathBuf> {
        let debug = self.debug();
        crate::fs::check_private_dir(&debug)
            .is_ok()
            .then_some(debug)
    }

    /// The tool's `mode` file.
    pub fn mode_file(&self) -> PathBuf {
        self.root.join("mode")
    }

    /// `local/weekends`.
    pub fn weekends(&self) -> PathBuf {
        self.local().join("weekends")
    }

    /// `local/upload.token`.
    pub fn upload_token(&self) -> PathBuf {
        self.local().join("upload.token")
    }

    /// `local/crash.journal`: the crash records of the tool's processes, until the
    /// telemetry child counts them.
    pub fn crash_journal(&self) -> PathBuf {
        self.local().join(CRASH_JOURNAL)
    }

    /// The counter file of `program` begun on `begin`.
    pub fn counter_file(&self, program: &Program, begin: Day) -> PathBuf {
        self.local().join(counter_file_name(program, begin))
    }

    /// `local/YYYY-MM-DD.json`: the week's report with approved counters only.
    pub fn report(&self, week: Day) -> PathBuf {
        self.local().join(format!("{week}.json"))
    }

    /// `local/local.YYYY-MM-DD.json`: the week's report with every counter.
    pub fn local_report(&self, week: Day) -> PathBuf {
        self.local().join(format!("local.{week}.json"))
    }

    /// `upload/YYYY-MM-DD.json`: the copy of a report the server accepted.
    pub fn uploaded_report(&self, week: Day) -> PathBuf {
        self.upload().join(format!("{week}.json"))
    }

    /// `upload/YYYY-MM-DD.lock`: held while one process sends that week's report.
    pub fn report_lock(&self, week: Day) -> PathBuf {
        self.upload().join(format!("{week}.lock"))
    }

    /// `upload/config.json`: the upload config last fetched, for `telemetry view`.
    pub fn uploaded_config(&self) -> PathBuf {
        self.upload().join("config.json")
    }

    /// `debug/sidecar.log`: the telemetry child's log.
    pub fn sidecar_log(&self) -> PathBuf {
        self.debug().join("sidecar.log")
    }

    /// `view.html`: the page `telemetry view` writes.
    pub fn view_html(&self) -> PathBuf {
        self.root.join("view.html")
    }

    /// The mode in force for this directory: `DO_NOT_TRACK` first, then the user-wide
    /// switch in the telemetry root, then the tool's own mode file, where anything
    /// missing, unreadable or malformed means `local` (never upload by accident).
    pub fn effective_mode(&self, ambient: &Ambient) -> EffectiveMode {
        let decided = |mode, decided_by| EffectiveMode { mode, decided_by };
        if ambient.do_not_track {
            return decided(Mode::Off, ModeSwitch::DoNotTrack);
        }
        if ambient.root().is_some_and(|root| root.is_off()) {
            return decided(Mode::Off, ModeSwitch::UserWide);
        }
        decided(self.read_mode().unwrap_or(Mode::Local), ModeSwitch::Tool)
    }

    /// What the tool's mode file says, ignoring every other switch. A missing file is
    /// `Local`; an unreadable, oversized or malformed one is an error.
    pub fn read_mode(&self) -> Result<Mode, ModeError> {
        read_mode_file(&self.mode_file())
    }

    /// Writes the mode file atomically, creating the directory (`0700`) if needed.
    pub fn set_mode(&self, mode: Mode) -> io::Result<()> {
        ensure_private_dir(&self.root)?;
        write_atomic(&self.mode_file(), format!("{mode}\n").as_bytes())
    }

    /// Creates the directory and `local/` (`0700`) if needed, refusing links and
    /// directories of other users, and returns `local/`.
    pub fn ensure_local(&self) -> io::Result<PathBuf> {
        ensure_private_dir(&self.root)?;
        let local = self.local();
        ensure_private_dir(&local)?;
        Ok(local)
    }

    /// Creates `upload/` (`0700`) if needed, like [`Dir::ensure_local`].
    pub fn ensure_upload(&self) -> io::Result<PathBuf> {
        ensure_private_dir(&self.root)?;
        let upload = self.upload();
        ensure_private_dir(&upload)?;
        Ok(upload)
    }

    /// Checks the directory before anything reads or removes files in it: each of
    /// `local/`, `upload/` and `debug/` that exists must be a real directory (not a
    /// link) owned by this user, else everything done through it would happen
    /// somewhere else (a `local` link planted towards another directory would have
    /// `telemetry clean` delete files there). Missing ones are fine. The one check
    /// every command and the uploader apply.
    pub fn check_areas(&self) -> io::Result<()> {
        for area in [self.local(), self.upload(), self.debug()] {
            match crate::fs::check_private_dir(&area) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }

    /// The files in `area`, each classified by name, sorted by path. A missing area
    /// has none; one that is a link, or not ours, is an error (never listed through).
    pub fn entries(&self, area: Area) -> io::Result<Vec<Entry>> {
        let path = match area {
            Area::Local => self.local(),
            Area::Upload => self.upload(),
        };
        let mut found = Vec::new();
        match crate::fs::check_private_dir(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(err) => return Err(err),
            Ok(()) => {}
        }
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let kind = FileKind::classify(area, &entry.file_name());
            found.push(Entry {
                path: entry.path(),
                kind,
            });
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }
}

/// The two areas of a telemetry directory that hold data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// `local/`.
    Local,
    /// `upload/`.
    Upload,
}

/// The crash journal's name in `local/`.
const CRASH_JOURNAL: &str = "crash.journal";

/// What a file in `local/` or `upload/` is, judged by its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// `*.v1.count` in `local/`.
    CounterFile,
    /// `YYYY-MM-DD.json` in `local/`: approved counters, to be sent.
    Report(Day),
    /// `local.YYYY-MM-DD.json` in `local/`: every counter, never sent.
    LocalReport(Day),
    /// `YYYY-MM-DD.json` in `upload/`: a report the server accepted.
    UploadedReport(Day),
    /// `YYYY-MM-DD.lock` in `upload/`.
    ReportLock(Day),
    /// `weekends` in `local/`.
    Weekends,
    /// `upload.token` in `local/`.
    UploadToken,
    /// `crash.journal` in `local/`.
    CrashJournal,
    /// `config.json` in `upload/`.
    UploadedConfig,
    /// A temporary file of an interrupted atomic write (`*.tmp-*`).
    Temporary,
    /// Anything else: never ours, never read as data.
    Other,
}

impl FileKind {
    /// Classifies the file called `name` in `area`.
    pub fn classify(area: Area, name: &OsStr) -> FileKind {
        let Some(name) = name.to_str() else {
            return FileKind::Other;
        };
        if name.contains(TEMP_MARKER) {
            return FileKind::Temporary;
        }
        let day_of = |rest: &str, suffix: &str| rest.strip_suffix(suffix).and_then(Day::parse);
        match area {
            Area::Local => {
                if name.ends_with(COUNTER_FILE_SUFFIX) && name.len() > COUNTER_FILE_SUFFIX.len() {
                    FileKind::CounterFile
                } else if name == "weekends" {
                    FileKind::Weekends
                } else if name == "upload.token" {
                    FileKind::UploadToken
                } else if name == CRASH_JOURNAL {
                    FileKind::CrashJournal
                } else if let Some(day) =
                    name.strip_prefix("local.").and_then(|r| day_of(r, ".json"))
                {
                    FileKind::LocalReport(day)
                } else if let Some(day) = day_of(name, ".json") {
                    FileKind::Report(day)
                } else {
                    FileKind::Other
                }
            }
            Area::Upload => {
                if name == "config.json" {
                    FileKind::UploadedConfig
                } else if let Some(day) = day_of(name, ".json") {
                    FileKind::UploadedReport(day)
                } else if let Some(day) = day_of(name, ".lock") {
                    FileKind::ReportLock(day)
                } else {
                    FileKind::Other
                }
            }
        }
    }

    /// Whether the file holds collected data (counts or reports) that `telemetry clean`
    /// removes.
    pub fn holds_data(self) -> bool {
        matches!(
            self,
            FileKind::CounterFile
                | FileKind::CrashJournal
                | FileKind::Report(_)
                | FileKind::LocalReport(_)
                | FileKind::UploadedReport(_)
                | FileKind::Temporary
        )
    }
}

/// A file found in a telemetry directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Where it is.
    pub path: PathBuf,
    /// What its name says it is.
    pub kind: FileKind,
}

/// `<program>@<version>-<toolchain>-<os>-<arch>-<YYYY-MM-DD>.v1.count`.
pub fn counter_file_name(program: &Program, begin: Day) -> String {
    // Pieces pushed one by one, not `format!`: every `start` spells this name.
    let date = crate::date::format_date(begin.date());
    let pieces = [
        program.name(),
        "@",
        program.version(),
        "-",
        toolchain(),
        "-",
        OS,
        "-",
        ARCH,
        "-",
        &date,
        COUNTER_FILE_SUFFIX,
    ];
    let mut name = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    pieces.iter().for_each(|p| name.push_str(p));
    name
}

fn read_mode_file(path: &Path) -> Result<Mode, ModeError> {
    match read_bounded(path, SMALL_FILE_LIMIT) {
        Ok(bytes) => Mode::parse_file(&bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Mode::Local),
        Err(err) => Err(ModeError::Unreadable(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    #[test]
    fn layout() {
        let dir = Dir::new("/t");
        assert_eq!(dir.local(), Path::new("/t/local"));
        assert_eq!(dir.upload(), Path::new("/t/upload"));
        assert_eq!(dir.debug(), Path::new("/t/debug"));
        assert_eq!(dir.mode_file(), Path::new("/t/mode"));
        let w = day("2026-11-20");
        assert_eq!(dir.report(w), Path::new("/t/local/2026-11-20.json"));
        assert_eq!(
            dir.local_report(w),
            Path::new("/t/local/local.2026-11-20.json")
        );
        assert_eq!(
            dir.uploaded_report(w),
            Path::new("/t/upload/2026-11-20.json")
        );
        assert_eq!(dir.report_lock(w), Path::new("/t/upload/2026-11-20.lock"));
        let name = counter_file_name(&Program::new("mytool", "1.0.0"), w);
        assert!(name.starts_with("mytool@1.0.0-"), "{name}");
        assert!(name.ends_with("-2026-11-20.v1.count"), "{name}");
        assert_eq!(
            Dir::for_program(&Ambient::with_config_dir("/c"), "mytool").unwrap(),
            Dir::new("/c/telemetry/mytool")
        );
        assert_eq!(Dir::for_program(&Ambient::default(), "mytool"), None);
    }

    #[test]
    fn every_name_classifies_back() {
        let dir = Dir::new("/t");
        let w = day("2026-11-20");
        let local = |p: PathBuf| FileKind::classify(Area::Local, p.file_name().unwrap());
        let upload = |p: PathBuf| FileKind::classify(Area::Upload, p.file_name().unwrap());
        assert_eq!(local(dir.report(w)), FileKind::Report(w));
        assert_eq!(local(dir.local_report(w)), FileKind::LocalReport(w));
        assert_eq!(local(dir.weekends()), FileKind::Weekends);
        assert_eq!(local(dir.upload_token()), FileKind::UploadToken);
        assert_eq!(local(dir.crash_journal()), FileKind::CrashJournal);
        assert_eq!(
            local(dir.counter_file(&Program::new("p", "1"), w)),
            FileKind::CounterFile
        );
        assert_eq!(upload(dir.uploaded_report(w)), FileKind::UploadedReport(w));
        assert_eq!(upload(dir.report_lock(w)), FileKind::ReportLock(w));
        assert_eq!(upload(dir.uploaded_config()), FileKind::UploadedConfig);
        for other in [
            "2026-13-01.json",
            "local.json",
            ".v1.count",
            "x.json",
            "local.2026-11-20.jsonx",
        ] {
            assert_eq!(
                FileKind::classify(Area::Local, OsStr::new(other)),
                FileKind::Other,
                "{other}"
            );
        }
        assert_eq!(
            FileKind::classify(Area::Local, OsStr::new("2026-11-20.json.tmp-12-ab")),
            FileKind::Temporary
        );
    }

    #[cfg(unix)]
    #[test]
    fn areas_that_are_links_are_refused_never_listed_through() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("a-2026-11-20.v1.count"), "x").unwrap();
        let dir = Dir::new(tmp.path().join("tool"));
        assert!(dir.check_areas().is_ok(), "a missing directory is fine");
        fs::create_dir(dir.root()).unwrap();
        std::os::unix::fs::symlink(&victim, dir.local()).unwrap();
        let err = dir.check_areas().unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(dir.entries(Area::Local).is_err());
        fs::remove_file(dir.local()).unwrap();
        fs::create_dir(dir.local()).unwrap();
        dir.check_areas().unwrap();
        for area in [dir.upload(), dir.debug()] {
            std::os::unix::fs::symlink(&victim, &area).unwrap();
            assert!(dir.check_areas().is_err(), "{}", area.display());
            fs::remove_file(&area).unwrap();
            fs::write(&area, "").unwrap();
            assert!(dir.check_areas().is_err(), "a file: {}", area.display());
            fs::remove_file(&area).unwrap();
        }
        assert!(dir.entries(Area::Upload).unwrap().is_empty());
    }

    #[test]
    fn entries_lists_and_classifies() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        assert!(dir.entries(Area::Local).unwrap().is_empty());
        dir.ensure_local().unwrap();
        fs::write(dir.report(day("2026-11-20")), "{}").unwrap();
        fs::write(dir.local().join("notes.txt"), "").unwrap();
        let kinds: Vec<FileKind> = dir
            .entries(Area::Local)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [FileKind::Report(day("2026-11-20")), FileKind::Other]
        );
    }

    #[test]
    fn debug_only_when_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        assert_eq!(dir.debug_if_enabled(), None);
        fs::write(dir.debug(), "not a dir").unwrap();
        assert_eq!(dir.debug_if_enabled(), None);
        fs::remove_file(dir.debug()).unwrap();
        fs::create_dir(dir.debug()).unwrap();
        assert_eq!(dir.debug_if_enabled(), Some(dir.debug()));
    }

    #[test]
    fn the_registry_finds_directories_elsewhere_and_writes_only_when_needed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("telemetry"));
        let custom = Dir::new(tmp.path().join("elsewhere/mytool"));
        // The default place needs no entry; nothing is written.
        assert!(!root.register("mytool", &root.tool("mytool")).unwrap());
        assert!(!root.registry_file().exists());
        fs::create_dir_all(custom.root()).unwrap();
        assert!(root.register("mytool", &custom).unwrap());
        assert_eq!(root.registered(), [("mytool".to_owned(), custom.clone())]);
        // Already listed: no write.
        let before = fs::metadata(root.registry_file())
            .unwrap()
            .modified()
            .unwrap();
        assert!(!root.register("mytool", &custom).unwrap());
        let after = fs::metadata(root.registry_file())
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // A directory that is gone is not listed, and is dropped at the next write.
        let other = Dir::new(tmp.path().join("other"));
        fs::create_dir_all(other.root()).unwrap();
        fs::remove_dir_all(custom.root()).unwrap();
        assert!(root.registered().is_empty());
        assert!(root.register("other", &other).unwrap());
        let text = fs::read_to_string(root.registry_file()).unwrap();
        assert_eq!(text, format!("other\t{}\n", other.root().display()));
        // Bounded: the newest entries are kept.
        for i in 0..REGISTRY_MAX_ENTRIES + 10 {
            let dir = Dir::new(tmp.path().join(format!("many/{i}")));
            fs::create_dir_all(dir.root()).unwrap();
            root.register("many", &dir).unwrap();
        }
        let listed = root.registered();
        assert_eq!(listed.len(), REGISTRY_MAX_ENTRIES);
        assert!(
            listed
                .last()
                .unwrap()
                .1
                .root()
                .ends_with(format!("many/{}", REGISTRY_MAX_ENTRIES + 9))
        );
        // Garbage or an oversized file lists nothing and is rebuilt.
        fs::write(
            root.registry_file(),
            vec![b'x'; REGISTRY_LIMIT as usize + 1],
        )
        .unwrap();
        assert!(root.registered().is_empty());
        assert!(root.register("other", &other).unwrap());
        assert_eq!(root.registered(), [("other".to_owned(), other)]);
    }

    #[cfg(unix)]
    #[test]
    fn the_registry_is_never_written_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("telemetry"));
        fs::create_dir_all(root.path()).unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, root.registry_file()).unwrap();
        assert!(root.registered().is_empty());
        let dir = Dir::new(tmp.path().join("elsewhere"));
        fs::create_dir_all(dir.root()).unwrap();
        assert!(root.register("t", &dir).unwrap());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(root.registered(), [("t".to_owned(), dir)]);
    }

    #[test]
    fn effective_mode_says_which_switch_decided() {
        let tmp = tempfile::tempdir().unwrap();
        let ambient = Ambient::with_config_dir(tmp.path());
        let root = ambient.root().unwrap();
        let dir = Dir::for_program(&ambient, "mytool").unwrap();
        let since = day("2026-11-01").date();
        dir.set_mode(Mode::On { since }).unwrap();
        let tool = EffectiveMode {
            mode: Mode::On { since },
            decided_by: ModeSwitch::Tool,
        };
        assert_eq!(dir.effective_mode(&ambient), tool);
        assert_eq!(
            dir.effective_mode(&ambient.clone().do_not_track(true)),
            EffectiveMode {
                mode: Mode::Off,
                decided_by: ModeSwitch::DoNotTrack
            }
        );
        root.set_mode(Mode::Off).unwrap();
        assert_eq!(
            dir.effective_mode(&ambient),
            EffectiveMode {
                mode: Mode::Off,
                decided_by: ModeSwitch::UserWide
            }
        );
        // Anything but `off` in the root defers to the tool.
        root.set_mode(Mode::Local).unwrap();
        assert_eq!(dir.effective_mode(&ambient), tool);
        fs::write(root.mode_file(), "garbage").unwrap();
        assert_eq!(dir.effective_mode(&ambient), tool);
        assert_eq!(root.tools().unwrap(), [dir]);
    }

    #[test]
    fn mode_file_is_read_bounded_and_never_through_a_fifo() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        fs::write(dir.mode_file(), vec![b' '; 10_000]).unwrap();
        assert!(matches!(dir.read_mode(), Err(ModeError::Unreadable(_))));
        assert_eq!(dir.effective_mode(&Ambient::default()).mode, Mode::Local);
        #[cfg(unix)]
        {
            fs::remove_file(dir.mode_file()).unwrap();
            let ok = std::process::Command::new("mkfifo")
                .arg(dir.mode_file())
                .status()
                .unwrap();
            assert!(ok.success());
            assert!(matches!(dir.read_mode(), Err(ModeError::Unreadable(_))));
        }
    }

    #[test]
    fn unwritable_root_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        // A root below a plain file can never be created.
        let dir = Dir::new(file.join("telemetry"));
        assert!(dir.set_mode(Mode::Off).is_err());
        // Unix says "not a directory"; Windows calls a path below a file not found,
        // so there the mode file is simply missing, and the default holds.
        if cfg!(windows) {
            assert!(matches!(dir.read_mode(), Ok(Mode::Local)));
        } else {
            assert!(matches!(dir.read_mode(), Err(ModeError::Unreadable(_))));
        }
        assert_eq!(dir.effective_mode(&Ambient::default()).mode, Mode::Local);
    }
}
