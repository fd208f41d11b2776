//! Turns a telemetry directory's expired weekly counter files into reports, and
//! uploads the part of each report that a public upload config approves — only if the
//! user opted in.
//!
//! One call does a whole run: [`run`] finds the counter files whose week has ended,
//! writes `local/local.DATE.json` with every counter (for the user to read), and, when
//! the mode is `on`, `local/DATE.json` with only the approved counters, which it then
//! POSTs to `<upload_url>/DATE`. It is what the `telemetry` facade's upload child and
//! the `telemetry upload` command call.
//!
//! ```
//! use telemetry_internal::{Ambient, Day, Dir, Program, parse_date};
//! use telemetry_upload::{ConfigSource, ReportStatus, RunConfig};
//!
//! let tmp = tempfile::tempdir()?;
//! // A week of counting by `mytool`, ended on 2026-11-20.
//! let program = Program::new("mytool", "1.0.0");
//! let (begin, end) = (parse_date("2026-11-13").unwrap(), parse_date("2026-11-20").unwrap());
//! telemetry_counter::testing::write_file(&tmp.path().join("local"), &program, begin, end, &[("mytool/runs", 3)])?;
//!
//! // No mode file means `local`: reports are written, nothing is fetched or sent.
//! let mut config = RunConfig::new(
//!     tmp.path(),
//!     "https://telemetry.example.com/upload",
//!     ConfigSource::Url("https://telemetry.example.com/config.json".into()),
//! );
//! // The environment and the clock come in here: no DO_NOT_TRACK, no user-wide
//! // switch, and the run happens on 2026-11-22, after the week ended.
//! config.ambient = Ambient::default();
//! config.now = Day::parse("2026-11-22").unwrap().start();
//! let summary = telemetry_upload::run(config)?;
//! assert!(matches!(summary.reports[0].status, ReportStatus::LocalOnly { .. }));
//! assert!(Dir::new(tmp.path()).local_report(Day::parse("2026-11-20").unwrap()).exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Only approved counters leave the machine.** The uploadable report is built by
//!   copying in what the config approves for the program, version, OS, arch and
//!   toolchain (stack counters by their prefix), each at its sampling rate; nothing is
//!   copied otherwise. Data collected on or before the opt-in date is never sent, nor
//!   is a week older than 21 days.
//! - **Only built reports leave** (invariant 9 of ARCHITECTURE.md). The body of every POST is a
//!   report re-read into [`Report`], matched against the week's local report and
//!   re-checked with [`UploadConfig::check_report`] just before sending; a planted
//!   file or link under a report's name is skipped and logged, never sent. Files in the
//!   telemetry directory are opened without following links and read with a bound.
//! - **Crash-consistent** (invariant 8 of ARCHITECTURE.md). A `kill -9` at any instant or a full
//!   disk loses no week: a week is built from its counter files, which are deleted
//!   last, and committed by its local report, written last; the server's 2xx is
//!   recorded by moving the report to `upload/` in one rename, so an accepted report
//!   is never sent again, and a report is POSTed twice only if the first POST was in
//!   flight when a run died. The argument is written out in the `week` module. What
//!   dead runs leave (temporary files, locks) is removed by the next run, or by
//!   [`remove_debris`].
//! - **At most one POST per report** across any number of concurrent runs: each week
//!   is built and sent under a per-week lock with a re-check.
//!   A 2xx moves the report to `upload/`; only 400, 413 and 422 (the report itself
//!   is invalid) drop it; anything else (404 and the other 4xx of a misconfigured
//!   tool, 408, 425 and 429 that mean "later", 5xx, network error, time-out) keeps it
//!   for the next daily run, within the 21-day age limit (the `send` module says why).
//! - **A dry run shows exactly what would leave.** With [`RunConfig::dry_run`] every
//!   report is built and checked as in a real run, and the bodies are returned
//!   ([`RunSummary::would_send`]); nothing is sent and nothing in the directory changes.
//! - **Never under a live process, never early.** A week is committed (its reports
//!   written) and its counter files deleted only after it ended a day ago by the real
//!   clock ([`RunConfig::now`]), whatever time the run pretends
//!   ([`RunConfig::start_time`]): a pretended future shows what it would do and
//!   changes nothing for a week that is not over.
//! - **Bounded on hostile configs.** A config is at most [`MAX_CONFIG_BYTES`] and names
//!   at most [`MAX_EXPANDED_NAMES`] counters once `{a,b}` buckets are expanded.
//! - **Bounded and quiet.** Every request has a deadline ([`RunConfig::timeout`]);
//!   the config is downloaded only when a report may be uploaded (Go fetched it on
//!   every run: golang/go#68946, #69262). A run never panics (a panic inside is caught
//!   and returned as [`UploadError::Panicked`]) and never prints: it logs to
//!   [`RunConfig::log`] and, if the user created `debug/`, to a file there.
//! - **Nothing is lost to a bad input.** A counter file that does not parse is logged
//!   and skipped; a config that cannot be fetched or parsed is an error that leaves
//!   every file in place. Mode `off` (or `DO_NOT_TRACK`, which comes in through
//!   [`RunConfig::ambient`]) writes nothing, and [`RunSummary::off`] says which switch
//!   turned it off.

#![forbid(unsafe_code)]

mod config;
mod debris;
mod dry_run;
mod error;
mod expand;
mod http;
mod log;
mod outcome;
mod plan;
mod report;
mod runner;
mod send;
mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod url;
mod week;
mod work;

use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use telemetry_internal::{Ambient, Day, Dir, ModeSwitch};
use time::OffsetDateTime;

pub use config::{MAX_CONFIG_BYTES, MAX_EXPANDED_NAMES, Rejection, UploadConfig};
pub use debris::remove_debris;
pub use error::UploadError;
pub use outcome::{LocalOnlyReason, ReportOutcome, ReportStatus, RunSummary, WouldSend};
pub use report::{MAX_REPORT_COUNT, ProgramReport, Report};
pub use source::{ConfigSource, last_config};

use crate::log::{Log, log};
use crate::runner::{Run, tool_mode};

/// Reports older than this many days (from their week's last day to the run's start)
/// are never uploaded.
pub const MAX_REPORT_AGE_DAYS: i64 = 21;

/// What one upload run works on. Build it with [`RunConfig::new`], then set the
/// optional fields.
pub struct RunConfig {
    /// The telemetry directory's root (holding `mode`, `local/`, `upload/`).
    pub dir: PathBuf,
    /// Reports are POSTed to `<upload_url>/<YYYY-MM-DD>`. Must be https, or http to
    /// a loopback host.
    pub upload_url: String,
    /// Where the upload config comes from.
    pub config: ConfigSource,
    /// What the environment says (`DO_NOT_TRACK`, the user-wide switch in the
    /// telemetry root). [`RunConfig::new`] reads this process's; tests set their own.
    pub ambient: Ambient,
    /// The real time now. [`RunConfig::new`] reads the clock; tests set their own. It
    /// decides which weeks no process can still count into (they ended a day before
    /// `now`): only those are committed and only their files deleted, whatever
    /// `start_time` pretends.
    pub now: SystemTime,
    /// Pretend the run happens at this time (tests and diagnostics): weeks that ended
    /// by then are looked at. `None`: weeks that ended a day before `now`.
    ///
    /// A pretended time never commits a week that is not over by the real clock
    /// (`now`): such a week is only shown, as a dry run would show it
    /// ([`ReportStatus::NotOver`]); no report is written, sent or deleted for it, and
    /// its counter files stay, so a later real run reports every count. Nor does a
    /// pretended future make a report too old to send: age is judged by the earlier
    /// of the two clocks.
    pub start_time: Option<SystemTime>,
    /// Where the run logs what it does, a line per event; `None` logs nowhere but the
    /// debug directory.
    pub log: Option<Box<dyn Write + Send>>,
    /// Also log each upload's exact body, on one line, just before it is sent (for
    /// `TELEMETRY_DEBUG`: a person can see precisely what leaves the machine).
    pub log_bodies: bool,
    /// The longest any one HTTP request may take, connecting included. Default 30 s.
    pub timeout: Duration,
    /// Build and check every report as a run would, but send nothing and change
    /// nothing in the directory (no report, lock, deletion or saved config): the
    /// bodies that would be POSTed are in [`RunSummary::would_send`]. The config is
    /// still fetched if a report needs it. A report built now gets its random `X` now,
    /// so its body differs in `X` from the one a later real run sends.
    pub dry_run: bool,
}

impl RunConfig {
    /// A run over `dir` that sends to `upload_url`, starting now, logging nowhere, with
    /// this process's environment ([`Ambient::from_process`]) and clock.
    pub fn new(
        dir: impl Into<PathBuf>,
        upload_url: impl Into<String>,
        config: ConfigSource,
    ) -> RunConfig {
        RunConfig {
            dir: dir.into(),
            upload_url: upload_url.into(),
            config,
            ambient: Ambient::from_process(),
            now: SystemTime::now(),
            start_time: None,
            log: None,
            log_bodies: false,
            timeout: Duration::from_secs(30),
            dry_run: false,
        }
    }
}

impl fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunConfig")
            .field("dir", &self.dir)
            .field("upload_url", &self.upload_url)
            .field("config", &self.config)
            .field("ambient", &self.ambient)
            .field("now", &self.now)
            .field("start_time", &self.start_time)
            .field("log", &self.log.as_ref().map(|_| "…"))
            .field("log_bodies", &self.log_bodies)
            .field("timeout", &self.timeout)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// Builds the reports of every expired week and uploads the ready ones (see the crate
/// documentation). Never panics; an `Err` means nothing was changed that matters and
/// the next run will try again.
pub fn run(config: RunConfig) -> Result<RunSummary, UploadError> {
    let RunConfig {
        dir,
        upload_url,
        config: source,
        ambient,
        now,
        start_time,
        log,
        log_bodies,
        timeout,
        dry_run,
    } = config;
    let mut log = Log::new(log);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        if tests::PANIC_IN_RUN.with(std::cell::Cell::get) {
            panic!("a test asked for a panic");
        }
        // Inside the catch: converting an absurd SystemTime may panic.
        let utc = |t: SystemTime| OffsetDateTime::from(t).to_offset(time::UtcOffset::UTC);
        let now = utc(now);
        let start = start_time.map(utc);
        let dir = Dir::new(dir);
        let effective = dir.effective_mode(&ambient);
        let mode = match effective.decided_by {
            ModeSwitch::Tool => tool_mode(&dir)?,
            _ => effective.mode,
        };
        let run = Run {
            dir,
            upload_url: &upload_url,
            source: &source,
            timeout,
            now,
            start,
            today: Day::from_date(start.unwrap_or(now).date()),
            real_today: Day::from_date(now.date()),
            mode,
            log_bodies,
            dry_run,
        };
        run.report_and_upload(effective.decided_by, &mut log)
    }));
    match result {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(err)) => {
            log!(log, "upload run stopped: {err}");
            Err(err)
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            log!(log, "upload run panicked: {message}");
            Err(UploadError::Panicked { message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        pub(crate) static PANIC_IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panic_is_caught_logged_and_returned() {
        let tmp = tempfile::tempdir().unwrap();
        let captured = Captured::default();
        let mut config = RunConfig::new(
            tmp.path(),
            "https://example.invalid/upload",
            ConfigSource::File(tmp.path().join("none.json")),
        );
        config.log = Some(Box::new(captured.clone()));
        PANIC_IN_RUN.with(|p| p.set(true));
        let result = run(config);
        PANIC_IN_RUN.with(|p| p.set(false));
        let err = result.unwrap_err();
        assert!(
            matches!(&err, UploadError::Panicked { message } if message == "a test asked for a panic")
        );
        assert!(err.to_string().contains("please report it"));
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("upload run panicked: a test asked for a panic"),
            "{log}"
        );
    }
}
