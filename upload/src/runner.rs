//! One run's steps, in order: the mode, the areas checked, debris swept, expired
//! weeks found, the config fetched if some week may be uploaded, then each week's
//! transaction (or, for a dry run or a week not over by the real clock, what it
//! would do).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use telemetry_internal::{Day, Dir, Mode, ModeSwitch};
use time::OffsetDateTime;

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
    pub(crate) fn report_and_upload(
        &self,
        decided_by: ModeSwitch,
        log: &mut Log,
    ) -> Result<RunSummary, UploadError> {
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
}
