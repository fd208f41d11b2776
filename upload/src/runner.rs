//! One run's steps, in order: the mode, the areas checked, debris swept, expired
//! weeks found, the config fetched if some week may be uploaded, then each week's
//! transaction (or, for a dry run or a week not over by the real clock, what it
//! would do).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use telemetry_internal::{Day, Dir, Mode, ModeSwitch};
use time::OffsetDateTime;

use crate::config::UploadConfig;
use crate::log::{Log, log};
use crate::{
    ConfigSource, ReportOutcome, ReportStatus, RunSummary, UploadError, WouldSend, debris, url,
    work,
};

/// The tool's own mode, read once. Missing, malformed, a link or oversized means
/// `local`, as everywhere; but a mode file that exists and could not be read this
/// time (an I/O error) stops the run: building every week as local only would lose
/// their uploads for good.
pub(crate) fn tool_mode(dir: &Dir) -> Result<Mode, UploadError> {
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
    pub(crate) source: &'a ConfigSource,
    pub(crate) timeout: Duration,
    /// The real clock.
    pub(crate) now: OffsetDateTime,
    /// The pretended start, if any.
    pub(crate) start: Option<OffsetDateTime>,
    /// The day the run happens (or pretends to).
    pub(crate) today: Day,
    /// The day by the real clock.
    pub(crate) real_today: Day,
    pub(crate) mode: Mode,
    pub(crate) log_bodies: bool,
    pub(crate) dry_run: bool,
}

impl Run<'_> {
    /// The whole run, step by step (see the module documentation).
    pub(crate) fn report_and_upload(
        &self,
        decided_by: ModeSwitch,
        log: &mut Log,
    ) -> Result<RunSummary, UploadError> {
        if self.mode == Mode::Off {
            // Mode off writes nothing at all, not even a debug log.
            log!(log, "telemetry is off ({decided_by:?}): nothing to do");
            return Ok(RunSummary {
                off: Some(decided_by),
                ..RunSummary::default()
            });
        }
        self.start_log(log);
        self.check_places()?;
        self.sweep_debris(log);

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
        let config = if self.needs_config(&weeks, &found, &uploaded) {
            Some(self.load_config(log)?)
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
                let (status, sent) =
                    self.shown_week(week, files, config.as_ref(), &uploaded, not_over, log);
                would_send.extend(sent);
                outcomes.extend(status.map(|status| ReportOutcome { week, status }));
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

    /// Opens the debug log (not in a dry run, which changes nothing in the directory,
    /// not even `debug/`) and says what the run is.
    fn start_log(&self, log: &mut Log) {
        if !self.dry_run {
            log.open_debug(self.dir.debug_if_enabled().as_deref(), self.today);
        }
        log!(
            log,
            "upload run in {} at {}{}, mode {}",
            self.dir.root().display(),
            self.now,
            self.start
                .map(|s| format!(" (pretending {s})"))
                .unwrap_or_default(),
            self.mode,
        );
    }

    /// Where the run may send and write: the URLs (when the mode may upload), and
    /// `local/` and `upload/`, which must be our own directories: a link planted in
    /// their place would make every read and write of the run happen somewhere else.
    fn check_places(&self) -> Result<(), UploadError> {
        if matches!(self.mode, Mode::On { .. }) {
            url::check_url(self.upload_url)?;
            if let ConfigSource::Url(url) = self.source {
                url::check_url(url)?;
            }
        }
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
        Ok(())
    }

    /// Removes what dead runs left (not in a dry run, which changes nothing).
    fn sweep_debris(&self, log: &mut Log) {
        if self.dry_run {
            return;
        }
        match debris::sweep(&self.dir, SystemTime::from(self.now)) {
            Ok(removed) => {
                for path in removed {
                    log!(log, "removed debris {}", path.display());
                }
            }
            Err(err) => log!(log, "cannot look for debris: {err}"),
        }
    }

    /// Whether some week may be uploaded, so that the config is needed: a week to
    /// build whose policy allows upload, or a built report ready to send now.
    fn needs_config(
        &self,
        weeks: &BTreeSet<Day>,
        found: &work::LocalDir,
        uploaded: &BTreeSet<Day>,
    ) -> bool {
        let on = matches!(self.mode, Mode::On { .. });
        weeks.iter().any(|week| {
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
                        && self.mode.allows_upload_of(week.date())
                }
            }
        })
    }

    /// Loads the config and, except in a dry run, saves it in the directory for
    /// `last_config` (a failure to save is logged, not an error).
    fn load_config(&self, log: &mut Log) -> Result<UploadConfig, UploadError> {
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
        Ok(config)
    }

    /// A week only shown, never applied: in a dry run, what would happen to it and
    /// the POST it would make; for a week not over by the real clock, what would
    /// happen at the pretended time, as [`ReportStatus::NotOver`] (and no POST).
    fn shown_week(
        &self,
        week: Day,
        files: Vec<work::Expired>,
        config: Option<&UploadConfig>,
        uploaded: &BTreeSet<Day>,
        not_over: bool,
        log: &mut Log,
    ) -> (Option<ReportStatus>, Option<WouldSend>) {
        let (status, body) = self.dry_week(week, files, config, uploaded, log);
        let sent = match (body, not_over) {
            (Some(body), false) => {
                let url = format!("{}/{week}", self.upload_url.trim_end_matches('/'));
                Some(WouldSend { week, url, body })
            }
            _ => None,
        };
        let status = status.map(|status| {
            if not_over {
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
            }
        });
        (status, sent)
    }
}
