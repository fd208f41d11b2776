//! Sending one week's upload report: only a report this code built, re-read into
//! [`Report`], matched against its local report and re-checked against the upload
//! config at send time (invariant 9 of ARCHITECTURE.md), and acknowledged so that it is never sent
//! again (invariant 8). The caller holds the week's lock.

use std::io;
use std::time::Duration;

use telemetry_internal::{Day, Dir};

use crate::config::UploadConfig;
use crate::log::{Log, log};
use crate::report::{self, Report};
use crate::{LocalOnlyReason, ReportStatus};

/// The largest report read back; a bigger file is not one we wrote.
const MAX_REPORT_BYTES: u64 = 64 << 20;

/// What the sender needs to know.
pub(crate) struct Sender<'a> {
    pub(crate) dir: &'a Dir,
    pub(crate) upload_url: &'a str,
    pub(crate) timeout: Duration,
    /// Log each body, exactly, before it is sent.
    pub(crate) log_bodies: bool,
}

impl Sender<'_> {
    /// Sends `local/DATE.json`. The week is built (its `local.DATE.json` exists) and not
    /// acknowledged (no `upload/DATE.json`); the caller checked both under the lock.
    /// `fresh` is the report and its bytes if this run just built and wrote it (with
    /// this config): it is checked again but not read back.
    pub(crate) fn send(
        &self,
        week: Day,
        config: &UploadConfig,
        fresh: Option<(Report, Vec<u8>)>,
        log: &mut Log,
    ) -> ReportStatus {
        if let Some((report, body)) = fresh {
            if let Err(rejection) = config.check_report(&report) {
                // A bug in building, never an input: still, nothing unchecked leaves.
                log!(
                    log,
                    "{week}: the report just built fails the check: {rejection}"
                );
                return ReportStatus::Skipped {
                    reason: rejection.to_string(),
                };
            }
            return self.post(week, &body, log);
        }
        match self.checked_body(week, config, false, log) {
            Ok(body) => self.post(week, &body, log),
            Err(status) => status,
        }
    }

    /// Reads the week's ready report back and returns the body to send: the report
    /// this code built (see [`Sender::read_built`]), cut to what `config` approves now
    /// and checked by [`UploadConfig::check_report`]. Unless `dry`, a report that is no
    /// longer sendable is deleted, and one that was cut is rewritten to the body, so
    /// that what is on disk (and later acknowledged) is exactly what was sent.
    pub(crate) fn checked_body(
        &self,
        week: Day,
        config: &UploadConfig,
        dry: bool,
        log: &mut Log,
    ) -> Result<Vec<u8>, ReportStatus> {
        let ready = self.dir.report(week);
        let skipped = |log: &mut Log, reason: String| {
            log!(
                log,
                "{week}: {} is not a report this code built ({reason}); not sending it",
                ready.display()
            );
            ReportStatus::Skipped { reason }
        };
        let on_disk = match telemetry_internal::fs::read_bounded(&ready, MAX_REPORT_BYTES) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ReportStatus::HandledElsewhere);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
                ) =>
            {
                // A link, FIFO or device planted under the report's name, or too big.
                return Err(skipped(log, err.to_string()));
            }
            Err(err) => {
                return Err(ReportStatus::KeptForRetry {
                    reason: format!("cannot read {}: {err}", ready.display()),
                });
            }
        };
        let built = self
            .read_built(week, &on_disk)
            .map_err(|reason| skipped(log, reason))?;

        // Re-check against the config of this run: a counter approved when the report
        // was built but not any more is dropped, never sent.
        if !config.samples(built.x) {
            if !dry {
                log!(log, "{week}: no longer in the sample; deleting it");
                remove(&ready, log);
            }
            return Err(ReportStatus::LocalOnly {
                reason: LocalOnlyReason::NotSampled,
            });
        }
        let approved = config.approved_part(&built);
        if let Err(rejection) = config.check_report(&approved) {
            return Err(skipped(log, rejection.to_string()));
        }
        if !report::has_counts(&approved.programs) {
            if !dry {
                log!(
                    log,
                    "{week}: the config approves none of it now; deleting it"
                );
                remove(&ready, log);
            }
            return Err(ReportStatus::LocalOnly {
                reason: LocalOnlyReason::NothingApproved,
            });
        }
        let body = report::to_body(&approved);
        if body != on_disk && !dry {
            // Keep on disk exactly what is sent, so the acknowledged copy is the body.
            if let Err(err) = telemetry_internal::write_atomic(&ready, &body) {
                return Err(ReportStatus::KeptForRetry {
                    reason: format!("cannot rewrite {}: {err}", ready.display()),
                });
            }
        }
        Ok(body)
    }

    /// POSTs `body`, which is also what `local/DATE.json` holds, and acts on the answer.
    fn post(&self, week: Day, body: &[u8], log: &mut Log) -> ReportStatus {
        let ready = self.dir.report(week);
        let url = format!("{}/{week}", self.upload_url.trim_end_matches('/'));
        if self.log_bodies {
            log!(
                log,
                "{week}: POST {url} body: {}",
                String::from_utf8_lossy(body)
            );
        }
        let answer = crate::http::agent(&url, self.timeout, false)
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body);
        let status = match answer {
            Ok(response) => response.status().as_u16(),
            Err(err) => {
                log!(
                    log,
                    "{week}: POST {url} failed: {err}; keeping it for the next run"
                );
                return ReportStatus::KeptForRetry {
                    reason: err.to_string(),
                };
            }
        };
        match status {
            200..=299 => {
                self.acknowledge(week, body, log);
                log!(log, "{week}: uploaded to {url}");
                ReportStatus::Uploaded
            }
            400..=499 => {
                log!(
                    log,
                    "{week}: the server refused it with {status}; deleting it"
                );
                remove(&ready, log);
                ReportStatus::Rejected { status }
            }
            _ => {
                log!(
                    log,
                    "{week}: the server answered {status}; keeping it for the next run"
                );
                ReportStatus::KeptForRetry {
                    reason: format!("server said {status}"),
                }
            }
        }
    }

    /// Parses the upload report and checks that it is the one this code built with the
    /// week's local report: same week, same `X` and config version, and every program
    /// and count in it also in the local report. A planted file would have to plant a
    /// matching local report too, and even then only approved counters leave.
    fn read_built(&self, week: Day, on_disk: &[u8]) -> Result<Report, String> {
        let built = Report::parse(on_disk).map_err(|err| err.to_string())?;
        if built.week != week.to_string() {
            return Err(format!("its Week is {:?}", built.week));
        }
        let local_path = self.dir.local_report(week);
        let local = telemetry_internal::fs::read_bounded(&local_path, MAX_REPORT_BYTES)
            .map_err(|err| format!("its local report: {err}"))?;
        let local = Report::parse(&local).map_err(|err| format!("its local report: {err}"))?;
        if local.week != built.week || local.x != built.x || local.config != built.config {
            return Err("it does not match its local report".to_owned());
        }
        for program in &built.programs {
            let Some(full) = local.programs.iter().find(|p| p.key() == program.key()) else {
                return Err("it holds a program its local report does not".to_owned());
            };
            let within =
                |part: &std::collections::BTreeMap<String, u64>,
                 whole: &std::collections::BTreeMap<String, u64>| {
                    part.iter().all(|(name, n)| whole.get(name) == Some(n))
                };
            if !within(&program.counters, &full.counters) || !within(&program.stacks, &full.stacks)
            {
                return Err("its counts differ from its local report's".to_owned());
            }
        }
        Ok(built)
    }

    /// Records that the server accepted the week's report. The record is the report
    /// itself, moved from `local/DATE.json` to `upload/DATE.json` by one rename: at
    /// every instant exactly one of the two exists, so a crash can neither lose the
    /// record (and send the report again) nor keep a copy that would be sent again. A
    /// rename needs no new data blocks, so it works on a full disk too.
    fn acknowledge(&self, week: Day, body: &[u8], log: &mut Log) {
        let ready = self.dir.report(week);
        let record = self.dir.uploaded_report(week);
        if std::fs::rename(&ready, &record).is_ok() {
            return;
        }
        // `upload/` on another file system: copy, then remove. A crash in between
        // leaves both, and the next run sees the record and only removes the report.
        match telemetry_internal::create_complete(&record, body) {
            Ok(_) => remove(&ready, log),
            Err(err) => {
                // Without a record the report would be sent again: better lose the
                // copy than count the week twice.
                log!(
                    log,
                    "{week}: uploaded, but cannot record it in {}: {err}; deleting it",
                    record.display()
                );
                remove(&ready, log);
            }
        }
    }
}

pub(crate) fn remove(path: &std::path::Path, log: &mut Log) {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            log!(log, "cannot delete {}: {err}", path.display());
        }
        _ => {}
    }
}
