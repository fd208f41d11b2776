//! `Config`: what a program asks of telemetry.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use telemetry_internal::{Ambient, Dir, Program};

use crate::log::SharedWriter;

/// What a program asks of telemetry, built with chained calls:
///
/// ```
/// let config = telemetry::Config::new(telemetry::program!())
///     .report_crashes(true)
///     .upload(true)
///     .upload_url("https://telemetry.example.com/upload")
///     .config_url("https://telemetry.example.com/config.json");
/// assert!(config.get_report_crashes());
/// assert!(config.uploads());
/// ```
///
/// Each setter has a getter of the same name with `get_` in front, as
/// `std::process::Command` has (`arg` / `get_args`).
#[derive(Clone)]
#[must_use = "a Config does nothing until it is passed to telemetry::start"]
pub struct Config {
    program: Program,
    dir: Option<PathBuf>,
    report_crashes: bool,
    upload: bool,
    upload_url: Option<String>,
    config_url: Option<String>,
    upload_start_time: Option<SystemTime>,
    clock: Option<SystemTime>,
    logger: Option<SharedWriter>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("program", &self.program)
            .field("dir", &self.dir)
            .field("report_crashes", &self.report_crashes)
            .field("upload", &self.upload)
            .field("upload_url", &self.upload_url)
            .field("config_url", &self.config_url)
            .field("upload_start_time", &self.upload_start_time)
            .field("clock", &self.clock)
            .field("logger", &self.logger.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Config {
    /// Telemetry for `program` (usually [`program!()`](crate::program)): counting only,
    /// in the default directory, no crash reporting, no upload, no log.
    pub fn new(program: Program) -> Config {
        Config {
            program,
            dir: None,
            report_crashes: false,
            upload: false,
            upload_url: None,
            config_url: None,
            upload_start_time: None,
            clock: None,
            logger: None,
        }
    }

    /// Uses `dir` as the telemetry directory instead of
    /// `<user config dir>/telemetry/<program name>`. A relative path is made absolute
    /// once, against the working directory at [`start`](crate::start).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.dir = Some(dir.into());
        self
    }

    /// Counts crashes (panics, fatal signals, aborts) as stack counters, from a child
    /// process that outlives the crash. On Linux, macOS, Windows and the BSDs; elsewhere
    /// it is accepted and does nothing (see the crate docs' platform table).
    pub fn report_crashes(mut self, on: bool) -> Config {
        self.report_crashes = on;
        self
    }

    /// Turns expired weeks into reports at most once a day, and uploads them if the
    /// user opted in. Needs both [`upload_url`](Config::upload_url) and
    /// [`config_url`](Config::config_url): without them nothing is uploaded, and the
    /// [logger](Config::logger) says so.
    pub fn upload(mut self, on: bool) -> Config {
        self.upload = on;
        self
    }

    /// Where reports go: each is POSTed to `<url>/<YYYY-MM-DD>`.
    pub fn upload_url(mut self, url: impl Into<String>) -> Config {
        self.upload_url = Some(url.into());
        self
    }

    /// Where the upload config (which counters may leave the machine) is fetched from.
    pub fn config_url(mut self, url: impl Into<String>) -> Config {
        self.config_url = Some(url.into());
        self
    }

    /// Pretends the upload runs at `time`, for tests and diagnostics: weeks that have
    /// ended by then are reported. Only the upload's clock moves: counts still go into
    /// the real week, so this cannot make the current week arrive at a collector (the
    /// uploader never commits a week that has not ended by the real clock, a collector
    /// refuses it, and the opt-in date is today). To see a week arrive, back-date it
    /// with [`clock`](Config::clock).
    pub fn upload_start_time(mut self, time: impl Into<SystemTime>) -> Config {
        self.upload_start_time = Some(time.into());
        self
    }

    /// Runs this process's telemetry as if the clock read `time`, for tests and
    /// demonstrations: counts (crashes included) go into the file of `time`'s week,
    /// the daily upload token is judged at `time`, an upload started now reports
    /// the weeks ended by `time` (unless [`upload_start_time`](Config::upload_start_time)
    /// says otherwise), and the embedded `telemetry on` (`telemetry_cli::run` with this
    /// `Config`) dates the opt-in `time`'s day.
    ///
    /// A time in the past is what it is for: a week that has really ended, filled by
    /// a test, which the next ordinary run uploads and a collector accepts. The
    /// uploader keeps to the real clock for everything that could lose data (which
    /// counter files it deletes, which weeks it commits), so a time in the future only
    /// files counts under a later week, reported once that week has really ended.
    /// See the crate docs, "Checking that your counters arrive".
    pub fn clock(mut self, time: impl Into<SystemTime>) -> Config {
        self.clock = Some(time.into());
        self
    }

    /// Writes one plain line per decision [`start`](crate::start) makes to `writer`:
    /// the effective mode and which switch decided it, the counter file opened or why
    /// counting stays in memory, whether an upload was due, whether a child was started
    /// and why not, and failures that are otherwise swallowed. The child's lines go to
    /// `debug/sidecar.log` in the telemetry directory (created if needed).
    ///
    /// Without a logger nothing is written anywhere; `TELEMETRY_DEBUG=1` in the
    /// environment logs to stderr without code. Hand in `std::io::stderr()` only if the
    /// program's stderr is meant for people.
    pub fn logger(mut self, writer: impl Write + Send + 'static) -> Config {
        self.logger = Some(Arc::new(Mutex::new(Box::new(writer))));
        self
    }

    /// The program being counted.
    pub fn get_program(&self) -> &Program {
        &self.program
    }

    /// The directory set with [`dir`](Config::dir), as given.
    pub fn get_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether crash reporting was asked for.
    pub fn get_report_crashes(&self) -> bool {
        self.report_crashes
    }

    /// Whether uploading was asked for (see [`uploads`](Config::uploads)).
    pub fn get_upload(&self) -> bool {
        self.upload
    }

    /// The upload URL, if set.
    pub fn get_upload_url(&self) -> Option<&str> {
        self.upload_url.as_deref()
    }

    /// The upload config URL, if set.
    pub fn get_config_url(&self) -> Option<&str> {
        self.config_url.as_deref()
    }

    /// The pretended upload time, if set.
    pub fn get_upload_start_time(&self) -> Option<SystemTime> {
        self.upload_start_time
    }

    /// The pretended clock, if set (see [`clock`](Config::clock)).
    pub fn get_clock(&self) -> Option<SystemTime> {
        self.clock
    }

    /// Whether a logger was set.
    pub fn has_logger(&self) -> bool {
        self.logger.is_some()
    }

    /// Whether uploading was asked for and both URLs are set.
    pub fn uploads(&self) -> bool {
        self.upload && self.upload_url.is_some() && self.config_url.is_some()
    }

    /// The telemetry directory under `ambient`: the one set with [`dir`](Config::dir)
    /// (made absolute against the working directory), else
    /// `<config dir>/telemetry/<program name>`. `None` without a home directory (or
    /// without a working directory to resolve a relative one), which means off.
    pub fn telemetry_dir_in(&self, ambient: &Ambient) -> Option<Dir> {
        match &self.dir {
            Some(dir) => std::path::absolute(dir).ok().map(Dir::new),
            None => Dir::for_program(ambient, self.program.name()),
        }
    }

    /// [`telemetry_dir_in`](Config::telemetry_dir_in) with this process's environment.
    pub fn telemetry_dir(&self) -> Option<Dir> {
        self.telemetry_dir_in(&Ambient::from_process())
    }

    pub(crate) fn shared_logger(&self) -> Option<SharedWriter> {
        self.logger.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_return_what_setters_set() {
        let t = SystemTime::UNIX_EPOCH;
        let config = Config::new(Program::new("p", "1"))
            .dir("d")
            .report_crashes(true)
            .upload(true)
            .upload_url("u")
            .upload_start_time(t)
            .clock(t + std::time::Duration::from_secs(1))
            .logger(std::io::sink());
        assert_eq!(config.get_program().name(), "p");
        assert_eq!(config.get_dir(), Some(Path::new("d")));
        assert!(config.get_report_crashes());
        assert!(config.get_upload());
        assert_eq!(config.get_upload_url(), Some("u"));
        assert_eq!(config.get_config_url(), None);
        assert!(!config.uploads(), "no config URL");
        assert_eq!(config.get_upload_start_time(), Some(t));
        assert_eq!(
            config.get_clock(),
            Some(t + std::time::Duration::from_secs(1))
        );
        assert_eq!(Config::new(Program::new("p", "1")).get_clock(), None);
        assert!(config.has_logger());
        assert!(format!("{config:?}").contains("logger: Some(\"set\")"));
    }

    #[test]
    fn relative_dir_is_made_absolute() {
        let config = Config::new(Program::new("p", "1")).dir("rel/dir");
        let dir = config.telemetry_dir_in(&Ambient::default()).unwrap();
        assert!(dir.root().is_absolute());
        assert_eq!(dir.root(), std::env::current_dir().unwrap().join("rel/dir"));
        let default = Config::new(Program::new("p", "1"));
        assert_eq!(default.telemetry_dir_in(&Ambient::default()), None);
        let home = Ambient::with_config_dir("/c");
        assert_eq!(
            default.telemetry_dir_in(&home).unwrap().root(),
            Path::new("/c/telemetry/p")
        );
    }
}
