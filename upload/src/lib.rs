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
//! use telemetry_internal::{Program, parse_date};
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
//! // Pretend the run happens on 2026-11-21, after the week ended.
//! let nov_21 = std::time::Duration::from_secs(1_795_219_200);
//! config.start_time = Some(std::time::SystemTime::UNIX_EPOCH + nov_21);
//! let summary = telemetry_upload::run(config)?;
//! if std::env::var_os("DO_NOT_TRACK").is_none() {
//!     assert!(matches!(summary.reports[0].status, ReportStatus::LocalOnly { .. }));
//!     assert!(tmp.path().join("local/local.2026-11-20.json").exists());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Only approved counters leave the machine.** The uploadable report is built by
//!   copying in what the config approves for the program, version, OS, arch and
//!   toolchain (stack counters by their prefix), each at its sampling rate; nothing is
//!   copied otherwise. Data collected on or before the opt-in date is never sent, nor
//!   is a week older than 21 days.
//! - **At most one POST per report** across any number of concurrent runs: reports are
//!   created exclusively and completely (never torn or duplicated, unlike Go's
//!   golang/go#65970), and each upload happens under a per-report lock with a re-check.
//!   A 2xx moves the report to `upload/`, a 4xx drops it, anything else (5xx, network
//!   error, time-out) keeps it for the next run.
//! - **Bounded and quiet.** Every request has a deadline ([`RunConfig::timeout`]);
//!   the config is downloaded only when a report may be uploaded (Go fetched it on
//!   every run: golang/go#68946, #69262). A run never panics (a panic inside is caught
//!   and returned as [`UploadError::Panicked`]) and never prints: it logs to
//!   [`RunConfig::log`] and, if the user created `debug/`, to a file there.
//! - **Nothing is lost to a bad input.** A counter file that does not parse is logged
//!   and skipped; a config that cannot be fetched or parsed is an error that leaves
//!   every file in place. Mode `off` writes nothing.

#![forbid(unsafe_code)]

mod check;
mod config;
mod error;
mod http;
mod log;
mod report;
mod send;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod work;

use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use telemetry_internal::{Date, Dir, Mode, format_date};
use time::OffsetDateTime;

pub use check::Unapproved;
pub use config::{ConfigSource, UploadConfig, last_config};
pub use error::UploadError;
pub use report::{ProgramReport, Report};

use crate::log::{Log, log};
use crate::report::{aggregate, approved_only, has_counts, random_x};
use crate::work::Expired;
use telemetry_internal::create_complete;

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
    /// Pretend the run happens at this time (tests and diagnostics); `None` is now.
    pub start_time: Option<SystemTime>,
    /// Where the run logs what it does, a line per event; `None` logs nowhere but the
    /// debug directory.
    pub log: Option<Box<dyn Write + Send>>,
    /// The longest any one HTTP request may take, connecting included. Default 30 s.
    pub timeout: Duration,
}

impl RunConfig {
    /// A run over `dir` that sends to `upload_url`, starting now, logging nowhere.
    pub fn new(
        dir: impl Into<PathBuf>,
        upload_url: impl Into<String>,
        config: ConfigSource,
    ) -> RunConfig {
        RunConfig {
            dir: dir.into(),
            upload_url: upload_url.into(),
            config,
            start_time: None,
            log: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a run did, a [`ReportOutcome`] per week it touched, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    /// One entry per report built or found ready in this run.
    pub reports: Vec<ReportOutcome>,
}

impl fmt::Display for RunSummary {
    /// One line per report, e.g. `2026-11-20: uploaded`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for report in &self.reports {
            writeln!(f, "{report}")?;
        }
        Ok(())
    }
}

/// What happened to one week's report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOutcome {
    /// The week, named by its last day (the counter files' expiry date).
    pub week: Date,
    /// What happened.
    pub status: ReportStatus,
}

impl fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", format_date(self.week), self.status)
    }
}

/// What happened to a report.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReportStatus {
    /// Sent and accepted; a copy is in `upload/`.
    Uploaded,
    /// The server refused it with this 4xx status; it was deleted and is not retried.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// Not sent this time (5xx, network error, time-out); the next run tries again.
    KeptForRetry {
        /// What went wrong.
        reason: String,
    },
    /// Written as `local.DATE.json` only; nothing of it will be sent.
    LocalOnly {
        /// Why it is not uploadable.
        reason: LocalOnlyReason,
    },
    /// A ready report deleted without being sent.
    Discarded {
        /// Why.
        reason: String,
    },
    /// A ready report dated after the run's start: kept, not sent.
    NotYetDue,
    /// Another process holds its upload lock and is sending it now.
    Busy,
    /// Another process sent it between our listing and our lock.
    AlreadyUploaded,
    /// Another process sent or dropped it between our listing and our lock.
    HandledElsewhere,
    /// The report could not be written; its counter files are kept.
    Failed {
        /// The error.
        reason: String,
    },
}

impl fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportStatus::Uploaded => f.write_str("uploaded"),
            ReportStatus::Rejected { status } => {
                write!(f, "rejected by the server ({status}); deleted")
            }
            ReportStatus::KeptForRetry { reason } => write!(f, "kept for retry: {reason}"),
            ReportStatus::LocalOnly { reason } => write!(f, "local only ({reason})"),
            ReportStatus::Discarded { reason } => write!(f, "not sent: {reason}; deleted"),
            ReportStatus::NotYetDue => f.write_str("dated after today; kept for later"),
            ReportStatus::Busy => f.write_str("being uploaded by another process"),
            ReportStatus::AlreadyUploaded => f.write_str("already uploaded"),
            ReportStatus::HandledElsewhere => f.write_str("handled by another process"),
            ReportStatus::Failed { reason } => write!(f, "not written: {reason}"),
        }
    }
}

/// Why a report stays on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalOnlyReason {
    /// The mode is `local` (or the mode file is missing or malformed).
    ModeNotOn,
    /// The week holds data from on or before the day the user opted in.
    BeforeOptIn,
    /// The week ended more than [`MAX_REPORT_AGE_DAYS`] days before the run.
    TooOld,
    /// The report's random `X` is above the config's `SampleRate`.
    NotSampled,
    /// The config approves none of the week's counters.
    NothingApproved,
}

impl fmt::Display for LocalOnlyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocalOnlyReason::ModeNotOn => "mode is not on",
            LocalOnlyReason::BeforeOptIn => "holds data from before the opt-in date",
            LocalOnlyReason::TooOld => "older than 21 days",
            LocalOnlyReason::NotSampled => "not in this week's sample",
            LocalOnlyReason::NothingApproved => "no counter in it is approved for upload",
        })
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
        start_time,
        log,
        timeout,
    } = config;
    let mut log = Log::new(log);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // Inside the catch: converting an absurd SystemTime may panic.
        let start = start_time.map_or_else(OffsetDateTime::now_utc, OffsetDateTime::from);
        let start = start.to_offset(time::UtcOffset::UTC);
        let run = Run {
            dir: Dir::new(dir),
            upload_url: &upload_url,
            source: &source,
            timeout,
            start,
            today: start.date(),
        };
        run.go(&mut log)
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

/// One run's settings, shared by its steps.
struct Run<'a> {
    dir: Dir,
    upload_url: &'a str,
    source: &'a ConfigSource,
    timeout: Duration,
    start: OffsetDateTime,
    today: Date,
}

/// What to do with one expired week, decided before anything is changed.
struct Plan {
    week: Date,
    files: Vec<Expired>,
    /// `None`: its report exists already, only the counter files are left to delete.
    /// `Some(Ok)`: may be uploaded, if sampled and approved. `Some(Err)`: local only.
    upload: Option<Result<(), LocalOnlyReason>>,
}

impl Run<'_> {
    fn go(&self, log: &mut Log) -> Result<RunSummary, UploadError> {
        #[cfg(test)]
        if tests::PANIC_IN_RUN.with(std::cell::Cell::get) {
            panic!("a test asked for a panic");
        }
        let mode = self.dir.mode();
        if mode == Mode::Off {
            // Mode off writes nothing at all, not even a debug log.
            log!(log, "mode is off: nothing to do");
            return Ok(RunSummary::default());
        }
        log.open_debug(
            self.dir.debug_if_enabled().as_deref(),
            &format_date(self.today),
        );
        log!(
            log,
            "upload run in {} at {}, mode {mode}",
            self.dir.root().display(),
            self.start
        );
        let on = matches!(mode, Mode::On { .. });
        if on {
            config::check_url(self.upload_url)?;
            if let ConfigSource::Url(url) = self.source {
                config::check_url(url)?;
            }
        }

        let (local, upload) = (self.dir.local(), self.dir.upload());
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| UploadError::Io { path, source }
        };
        let found = work::scan_local(&local, self.start, log).map_err(io_err(&local))?;
        let uploaded = work::scan_uploaded(&upload).map_err(io_err(&upload))?;

        let plans: Vec<Plan> = found
            .weeks
            .into_iter()
            .map(|(week, files)| {
                let exists = found.built.contains(&week)
                    || found.ready.contains_key(&week)
                    || uploaded.contains(&week);
                let upload = (!exists).then(|| self.policy(mode, week, &files));
                Plan {
                    week,
                    files,
                    upload,
                }
            })
            .collect();

        // Fetch the config only if some week may be uploaded, and before changing
        // anything, so a bad config leaves every file as it was.
        let config = if plans.iter().any(|p| matches!(p.upload, Some(Ok(())))) {
            let (config, bytes) = self.source.load(self.timeout)?;
            let saved = config::saved_config_path(self.dir.root());
            if let Err(err) = std::fs::create_dir_all(&upload)
                .and_then(|()| telemetry_internal::write_atomic(&saved, &bytes))
            {
                log!(log, "cannot save the config to {}: {err}", saved.display());
            }
            Some(config)
        } else {
            None
        };

        let mut outcomes = Vec::new();
        for plan in plans {
            let week = plan.week;
            if let Some(status) = self.build(plan, config.as_ref(), &uploaded, log) {
                outcomes.push(ReportOutcome { week, status });
            }
        }

        let sender = send::Sender {
            upload_dir: &upload,
            upload_url: self.upload_url,
            timeout: self.timeout,
        };
        for (week, path) in work::scan_ready(&local).map_err(io_err(&local))? {
            let status = if week > self.today {
                log!(
                    log,
                    "{}: dated after {}; not sending it",
                    format_date(week),
                    format_date(self.today)
                );
                ReportStatus::NotYetDue
            } else if self.too_old(week) {
                log!(log, "{}: too old to send; deleting it", format_date(week));
                let _ = std::fs::remove_file(&path);
                ReportStatus::Discarded {
                    reason: LocalOnlyReason::TooOld.to_string(),
                }
            } else if !on {
                ReportStatus::LocalOnly {
                    reason: LocalOnlyReason::ModeNotOn,
                }
            } else if !mode.allows_upload_of(week) {
                // Built under an earlier opt-in; the current one is later.
                ReportStatus::LocalOnly {
                    reason: LocalOnlyReason::BeforeOptIn,
                }
            } else {
                sender.send(week, &path, log)
            };
            outcomes.push(ReportOutcome { week, status });
        }
        // Keep upload/ from growing a lock file a week forever.
        if let Some(cutoff) = self
            .today
            .checked_sub(time::Duration::days(2 * MAX_REPORT_AGE_DAYS))
        {
            for lock in work::stale_locks(&upload, cutoff).unwrap_or_default() {
                let _ = std::fs::remove_file(lock);
            }
        }
        outcomes.sort_by_key(|o| o.week);
        for outcome in &outcomes {
            log!(log, "{outcome}");
        }
        Ok(RunSummary { reports: outcomes })
    }

    /// Whether a week's report may be uploaded, before looking at the config.
    fn policy(&self, mode: Mode, week: Date, files: &[Expired]) -> Result<(), LocalOnlyReason> {
        if !matches!(mode, Mode::On { .. }) {
            return Err(LocalOnlyReason::ModeNotOn);
        }
        // Any file of the week that began on or before the opt-in day may hold data
        // counted before the user agreed.
        let first_day = files.iter().map(|f| f.begin).min().unwrap_or(week);
        if !mode.allows_upload_of(first_day) {
            return Err(LocalOnlyReason::BeforeOptIn);
        }
        if self.too_old(week) {
            return Err(LocalOnlyReason::TooOld);
        }
        Ok(())
    }

    fn too_old(&self, week: Date) -> bool {
        (self.today - week).whole_days() > MAX_REPORT_AGE_DAYS
    }

    /// Writes one week's reports and deletes its counter files. `None` if the upload
    /// step will say what became of it (a `DATE.json` was written) or another process
    /// built it.
    fn build(
        &self,
        plan: Plan,
        config: Option<&UploadConfig>,
        uploaded: &std::collections::BTreeSet<Date>,
        log: &mut Log,
    ) -> Option<ReportStatus> {
        let date = format_date(plan.week);
        let paths: Vec<PathBuf> = plan.files.iter().map(|f| f.path.clone()).collect();
        let Some(policy) = plan.upload else {
            log!(
                log,
                "{date}: report exists; deleting {} counter file(s)",
                paths.len()
            );
            delete_all(&paths, log);
            return None;
        };
        let x = random_x();
        let last_week = uploaded
            .range(..plan.week)
            .next_back()
            .map(|d| format_date(*d))
            .unwrap_or_default();
        let programs = aggregate(plan.files.into_iter().map(|f| f.file));
        let config_version = config.map(|c| c.version().to_owned()).unwrap_or_default();

        let mut verdict = policy;
        let mut upload_report = None;
        if let (Ok(()), Some(config)) = (verdict, config) {
            let kept = approved_only(&programs, config, x);
            verdict = if x > config.sample_rate() {
                Err(LocalOnlyReason::NotSampled)
            } else if !has_counts(&kept) {
                Err(LocalOnlyReason::NothingApproved)
            } else {
                Ok(())
            };
            upload_report = verdict.is_ok().then(|| Report {
                week: date.clone(),
                last_week: last_week.clone(),
                x,
                config: config_version.clone(),
                programs: kept,
            });
        }
        let local_report = Report {
            week: date.clone(),
            last_week,
            x,
            config: config_version,
            programs,
        };

        // local.DATE.json is the claim on the week: it is never deleted, and only one
        // process can create it. Every process read its counter files before trying,
        // so the winner's report holds them all, and the others may delete them.
        let local_dir = self.dir.local();
        let local_path = local_dir.join(format!("local.{date}.json"));
        match create_complete(&local_path, &report::to_json(&local_report)) {
            Ok(true) => {}
            Ok(false) => {
                log!(log, "{date}: another process built this report");
                delete_all(&paths, log);
                return None;
            }
            Err(err) => {
                log!(log, "{date}: cannot write {}: {err}", local_path.display());
                return Some(ReportStatus::Failed {
                    reason: err.to_string(),
                });
            }
        }
        let mut status = verdict
            .err()
            .map(|reason| ReportStatus::LocalOnly { reason });
        if let Some(upload_report) = upload_report {
            let path = local_dir.join(format!("{date}.json"));
            match create_complete(&path, &report::to_json(&upload_report)) {
                Ok(true) => log!(log, "{date}: report ready to upload"),
                Ok(false) => log!(log, "{date}: {} exists already", path.display()),
                Err(err) => {
                    log!(log, "{date}: cannot write {}: {err}", path.display());
                    status = Some(ReportStatus::Failed {
                        reason: err.to_string(),
                    });
                }
            }
        }
        delete_all(&paths, log);
        status
    }
}

fn delete_all(paths: &[PathBuf], log: &mut Log) {
    for path in paths {
        // Another uploader may have deleted it first; that is fine.
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                log!(log, "cannot delete {}: {err}", path.display());
            }
            _ => {}
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

    #[test]
    fn outcomes_read_as_one_line_each() {
        let week = telemetry_internal::parse_date("2026-11-20").unwrap();
        let summary = RunSummary {
            reports: vec![
                ReportOutcome {
                    week,
                    status: ReportStatus::Uploaded,
                },
                ReportOutcome {
                    week,
                    status: ReportStatus::KeptForRetry {
                        reason: "server said 503".into(),
                    },
                },
                ReportOutcome {
                    week,
                    status: ReportStatus::LocalOnly {
                        reason: LocalOnlyReason::ModeNotOn,
                    },
                },
            ],
        };
        assert_eq!(
            summary.to_string(),
            "2026-11-20: uploaded\n2026-11-20: kept for retry: server said 503\n\
             2026-11-20: local only (mode is not on)\n"
        );
    }
}
