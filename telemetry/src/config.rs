//! `Config`: what a program asks of telemetry.

use std::path::PathBuf;
use std::time::SystemTime;

use telemetry_internal::{Dir, Program};

/// What a program asks of telemetry, built with chained calls:
///
/// ```
/// let config = telemetry::Config::new(telemetry::program!())
///     .report_crashes(true)
///     .upload(true)
///     .upload_url("https://telemetry.example.com/upload")
///     .config_url("https://telemetry.example.com/config.json");
/// assert!(config.reports_crashes());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    program: Program,
    dir: Option<PathBuf>,
    report_crashes: bool,
    upload: bool,
    upload_url: Option<String>,
    config_url: Option<String>,
    upload_start_time: Option<SystemTime>,
}

impl Config {
    /// Telemetry for `program` (usually [`program!()`](crate::program)): counting only,
    /// in the default directory, no crash reporting, no upload.
    pub fn new(program: Program) -> Config {
        Config {
            program,
            dir: None,
            report_crashes: false,
            upload: false,
            upload_url: None,
            config_url: None,
            upload_start_time: None,
        }
    }

    /// Uses `dir` as the telemetry directory instead of
    /// `<user config dir>/<program name>/telemetry`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Config {
        self.dir = Some(dir.into());
        self
    }

    /// Counts crashes (panics, fatal signals, aborts) as stack counters, from a child
    /// process that outlives the crash.
    pub fn report_crashes(mut self, on: bool) -> Config {
        self.report_crashes = on;
        self
    }

    /// Turns expired weeks into reports at most once a day, and uploads them if the
    /// user opted in. Needs [`upload_url`](Config::upload_url) and
    /// [`config_url`](Config::config_url).
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

    /// Pretends the upload runs at `time`, for tests and diagnostics.
    pub fn upload_start_time(mut self, time: impl Into<SystemTime>) -> Config {
        self.upload_start_time = Some(time.into());
        self
    }

    /// The program being counted.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The telemetry directory: the one set with [`dir`](Config::dir), else the
    /// default. `None` when there is no home directory, which means telemetry is off.
    pub fn telemetry_dir(&self) -> Option<Dir> {
        match &self.dir {
            Some(dir) => Some(Dir::new(dir.clone())),
            None => Dir::default_for(self.program.name()),
        }
    }

    /// Whether crash reporting was asked for.
    pub fn reports_crashes(&self) -> bool {
        self.report_crashes
    }

    /// Whether uploading was asked for and both URLs are set.
    pub fn uploads(&self) -> bool {
        self.upload && self.upload_url.is_some() && self.config_url.is_some()
    }

    /// The upload URL, if set.
    pub fn upload_url_str(&self) -> Option<&str> {
        self.upload_url.as_deref()
    }

    /// The upload config URL, if set.
    pub fn config_url_str(&self) -> Option<&str> {
        self.config_url.as_deref()
    }

    /// The pretended upload time, if set.
    pub fn upload_time(&self) -> Option<SystemTime> {
        self.upload_start_time
    }
}
