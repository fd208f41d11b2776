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
mod error;
mod expand;
mod http;
mod log;
mod report;
mod send;
mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod url;
mod week;
mod work;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use telemetry_internal::{Ambient, Day, Dir, Mode, ModeSwitch};
use time::OffsetDateTime;

pub use config::{MAX_CONFIG_BYTES, MAX_EXPANDED_NAMES, Rejection, UploadConfig};
pub use debris::remove_debris;
pub use error::UploadError;
pub use report::{MAX_REPORT_COUNT, ProgramReport, Report};
pub use source::{ConfigSource, last_config};

use crate::log::{Log, log};

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

/// What a run did, a [`ReportOutcome`] per week it touched, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RunSummary {
    /// `Some` if telemetry is off, and which switch turned it off: the run read,
    /// wrote and sent nothing.
    pub off: Option<ModeSwitch>,
    /// One entry per report built or found ready in this run.
    pub reports: Vec<ReportOutcome>,
    /// A dry run ([`RunConfig::dry_run`]): each body that would be POSTed, exactly,
    /// with its URL, oldest week first. Empty for a real run.
    pub would_send: Vec<WouldSend>,
}

/// A POST a dry run would have made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WouldSend {
    /// The report's week.
    pub week: Day,
    /// `<upload_url>/<week>`.
    pub url: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

impl fmt::Display for RunSummary {
    /// One line per report, e.g. `2026-11-20: uploaded`; or why nothing was done.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(switch) = self.off {
            let why = match switch {
                ModeSwitch::DoNotTrack => "DO_NOT_TRACK is set",
                ModeSwitch::NoHome => "there is no home directory",
                ModeSwitch::UserWide => "it is turned off for every tool",
                _ => "its mode is off",
            };
            return writeln!(f, "Telemetry is off ({why}): nothing was uploaded.");
        }
        if self.reports.is_empty() {
            return writeln!(
                f,
                "No week has ended since the last run: nothing to report."
            );
        }
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
    pub week: Day,
    /// What happened.
    pub status: ReportStatus,
}

impl fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.week, self.status)
    }
}

/// What happened to a report.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReportStatus {
    /// Sent and accepted; a copy is in `upload/`.
    Uploaded,
    /// The server said the report itself is invalid (400, 413 or 422); it was deleted
    /// and is not retried.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// Not sent this time (any answer but 2xx, 400, 413 and 422; a network error or
    /// time-out); the next daily run tries again, within the 21-day age limit.
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
    /// A file named like a ready report that this code did not build (no matching
    /// local report, not a regular file, not a report, or not approved): left alone,
    /// never sent.
    Skipped {
        /// Why.
        reason: String,
    },
    /// A dry run: this report would be sent now (its body is in
    /// [`RunSummary::would_send`]); nothing was sent or changed.
    WouldBeSent,
    /// A ready report dated after the run's start: kept, not sent.
    NotYetDue,
    /// A week that only a pretended start time ([`RunConfig::start_time`]) reports:
    /// by the real clock it is not over (processes may still count into its files), so
    /// nothing of it was written, sent or deleted. `pretended` is what a run at the
    /// pretended time would do with it (as a dry run says it).
    NotOver {
        /// What would happen at the pretended time.
        pretended: Box<ReportStatus>,
    },
    /// Another process holds its lock and is working on it now.
    Busy,
    /// Its week is over, but a process still holds one of its counter files and may
    /// count into it (it counts without rotating, or has not rotated yet, or another
    /// upload run is reading it): not built, kept for a later run.
    InUse,
    /// Sent already (an earlier run was interrupted after the server accepted it).
    AlreadyUploaded,
    /// Another process built, sent or dropped it between our listing and our lock.
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
            ReportStatus::Skipped { reason } => write!(f, "not sent, not ours: {reason}"),
            ReportStatus::WouldBeSent => f.write_str("would be sent"),
            ReportStatus::NotYetDue => f.write_str("dated after today; kept for later"),
            ReportStatus::NotOver { pretended } => write!(
                f,
                "not over by the real clock: nothing written, sent or deleted \
                 (at the pretended time: {pretended})"
            ),
            ReportStatus::Busy => f.write_str("being processed by another process"),
            ReportStatus::InUse => {
                f.write_str("a process still counts into its counter files; kept for later")
            }
            ReportStatus::AlreadyUploaded => f.write_str("already uploaded"),
            ReportStatus::HandledElsewhere => f.write_str("handled by another process"),
            ReportStatus::Failed { reason } => {
                write!(f, "not written: {reason}; counter files kept")
            }
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

/// The tool's own mode, read once. Missing, malformed, a link or oversized means
/// `local`, as everywhere; but a mode file that exists and could not be read this
/// time (an I/O error) stops the run: building every week as local only would lose
/// their uploads for good.
fn tool_mode(dir: &Dir) -> Result<Mode, UploadError> {
    match dir.read_mode() {
        Ok(mode) => Ok(mode),
        Err(telemetry_internal::ModeError::Unreadable(err))
            if !matches!(
                err.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            ) =>
        {
            Err(UploadError::Io {
                path: dir.mode_file(),
                source: err,
            })
        }
        Err(_) => Ok(Mode::Local),
    }
}

/// One run's settings, shared by its steps.
pub(crate) struct Run<'a> {
    pub(crate) dir: Dir,
    pub(crate) upload_url: &'a str,
    source: &'a ConfigSource,
    pub(crate) timeout: Duration,
    /// The real clock.
    now: OffsetDateTime,
    /// The pretended start, if any.
    start: Option<OffsetDateTime>,
    /// The day the run happens (or pretends to).
    pub(crate) today: Day,
    /// The day by the real clock.
    real_today: Day,
    pub(crate) mode: Mode,
    pub(crate) log_bodies: bool,
    dry_run: bool,
}

impl Run<'_> {
    fn report_and_upload(
        &self,
        decided_by: ModeSwitch,
        log: &mut Log,
    ) -> Result<RunSummary, UploadError> {
        #[cfg(test)]
        if tests::PANIC_IN_RUN.with(std::cell::Cell::get) {
            panic!("a test asked for a panic");
        }
        let mode = self.mode;
        if mode == Mode::Off {
            // Mode off writes nothing at all, not even a debug log.
            log!(log, "telemetry is off ({decided_by:?}): nothing to do");
            return Ok(RunSummary {
                off: Some(decided_by),
                ..RunSummary::default()
            });
        }
        if !self.dry_run {
            // A dry run changes nothing in the directory, not even `debug/`.
            log.open_debug(self.dir.debug_if_enabled().as_deref(), self.today);
        }
        log!(
            log,
            "upload run in {} at {}{}, mode {mode}",
            self.dir.root().display(),
            self.now,
            self.start
                .map(|s| format!(" (pretending {s})"))
                .unwrap_or_default(),
        );
        let on = matches!(mode, Mode::On { .. });
        if on {
            url::check_url(self.upload_url)?;
            if let ConfigSource::Url(url) = self.source {
                url::check_url(url)?;
            }
        }

        // `local/` and `upload/` must be our own directories: a link planted in their
        // place would make every read and write below happen somewhere else.
        for area in [self.dir.local(), self.dir.upload()] {
            match telemetry_internal::fs::check_private_dir(&area) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(UploadError::Io {
                        path: area,
                        source: err,
                    });
                }
                _ => {}
            }
        }

        let real_now = SystemTime::from(self.now);
        // A dry run changes nothing, not even debris.
        let sweep = (!self.dry_run).then(|| debris::sweep(&self.dir, real_now));
        match sweep {
            Some(Ok(removed)) => {
                for path in removed {
                    log!(log, "removed debris {}", path.display());
                }
            }
            Some(Err(err)) => log!(log, "cannot look for debris: {err}"),
            None => {}
        }

        let io_err = |path: PathBuf| move |source| UploadError::Io { path, source };
        // Without a pretended time, a week is reported once no process can count into
        // its files any more (a report never covers a file still being written).
        let report_by = self
            .start
            .unwrap_or_else(|| self.now.checked_sub(work::GRACE).unwrap_or(self.now));
        let found = work::scan_local(&self.dir, report_by, self.now, log)
            .map_err(io_err(self.dir.local()))?;
        let mut uploaded = work::scan_uploaded(&self.dir).map_err(io_err(self.dir.upload()))?;

        // Every week with something to do: files to report or delete, a report to send.
        let weeks: BTreeSet<Day> = found
            .weeks
            .keys()
            .chain(found.ready.iter())
            .copied()
            .collect();

        // Fetch the config only if some week may be uploaded, and before changing
        // anything, so a bad config leaves every file as it was.
        let needs_config = weeks.iter().any(|week| {
            let built = found.built.contains(week);
            let sent = uploaded.contains(week);
            match found.weeks.get(week) {
                Some(files) if !built && !sent => {
                    let first_day = files.iter().map(|f| f.begin).min().unwrap_or(*week);
                    self.policy(*week, first_day).is_ok()
                }
                _ => {
                    built
                        && !sent
                        && found.ready.contains(week)
                        && on
                        && *week <= self.today
                        && !self.too_old(*week)
                        && mode.allows_upload_of(week.date())
                }
            }
        });
        let config = if needs_config {
            let (config, bytes) = self.source.load(self.timeout)?;
            let saved = self.dir.uploaded_config();
            if self.dry_run {
                // Changes nothing.
            } else if let Err(err) = self
                .dir
                .ensure_upload()
                .and_then(|_| telemetry_internal::write_atomic(&saved, &bytes))
            {
                log!(log, "cannot save the config to {}: {err}", saved.display());
            }
            Some(config)
        } else {
            None
        };

        let mut files_by_week = found.weeks;
        let mut outcomes = Vec::new();
        let mut would_send = Vec::new();
        for week in weeks {
            let files = files_by_week.remove(&week).unwrap_or_default();
            // Only a pretended time reaches a week whose files are not settled by the
            // real clock: it is shown, never committed (see `work::settled`).
            let not_over = files.iter().any(|f| matches!(f.hold, work::Hold::NotOver));
            if self.dry_run || not_over {
                let (status, body) = self.dry_week(week, files, config.as_ref(), &uploaded, log);
                if let (Some(body), false) = (body, not_over) {
                    let url = format!("{}/{week}", self.upload_url.trim_end_matches('/'));
                    would_send.push(WouldSend { week, url, body });
                }
                if let Some(status) = status {
                    let status = if not_over {
                        log!(
                            log,
                            "{week}: not over by the real clock ({}): nothing written, sent \
                             or deleted; at the pretended time it would be: {status}",
                            self.now
                        );
                        ReportStatus::NotOver {
                            pretended: Box::new(status),
                        }
                    } else {
                        status
                    };
                    outcomes.push(ReportOutcome { week, status });
                }
                continue;
            }
            if let Some(status) = self.week(week, files, config.as_ref(), &uploaded, log) {
                if status == ReportStatus::Uploaded {
                    uploaded.insert(week);
                }
                outcomes.push(ReportOutcome { week, status });
            }
        }
        for outcome in &outcomes {
            log!(log, "{outcome}");
        }
        Ok(RunSummary {
            off: None,
            reports: outcomes,
            would_send,
        })
    }

    /// Whether a week's report may be uploaded, before looking at the config.
    /// `first_day` is the earliest day any of its files began.
    pub(crate) fn policy(&self, week: Day, first_day: Day) -> Result<(), LocalOnlyReason> {
        if !matches!(self.mode, Mode::On { .. }) {
            return Err(LocalOnlyReason::ModeNotOn);
        }
        // Any file of the week that began on or before the opt-in day may hold data
        // counted before the user agreed.
        if !self.mode.allows_upload_of(first_day.date()) {
            return Err(LocalOnlyReason::BeforeOptIn);
        }
        if self.too_old(week) {
            return Err(LocalOnlyReason::TooOld);
        }
        Ok(())
    }

    /// Whether a week is too old to upload, by the earlier of the pretended and the
    /// real clock: a pretended future never ages a report out of being sent (it would
    /// commit a week as local only, or delete a ready report, that the real clock
    /// still allows to be uploaded).
    pub(crate) fn too_old(&self, week: Day) -> bool {
        week.days_until(self.today.min(self.real_today)) > MAX_REPORT_AGE_DAYS
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
        let week = Day::parse("2026-11-20").unwrap();
        let summary = RunSummary {
            off: None,
            would_send: Vec::new(),
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
        let off = |switch| RunSummary {
            off: Some(switch),
            ..RunSummary::default()
        };
        assert_eq!(
            off(ModeSwitch::DoNotTrack).to_string(),
            "Telemetry is off (DO_NOT_TRACK is set): nothing was uploaded.\n"
        );
        assert_eq!(
            off(ModeSwitch::Tool).to_string(),
            "Telemetry is off (its mode is off): nothing was uploaded.\n"
        );
        assert_eq!(
            RunSummary::default().to_string(),
            "No week has ended since the last run: nothing to report.\n"
        );
    }
}
