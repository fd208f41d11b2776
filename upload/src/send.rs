//! Sending one week's upload report: only a report this code built, re-read into
//! [`Report`], matched against its local report and re-checked against the upload
//! config at send time (invariant 9 of ARCHITECTURE.md), and acknowledged so that it is never sent
//! again (invariant 8). The caller holds the week's lock.
//!
//! # What an answer does to the report
//! - **2xx**: accepted; the report moves to `upload/` and is never sent again.
//! - **400, 413, 422**: the server says the report itself is invalid, so sending the
//!   same bytes again cannot succeed: it is deleted (its `local.DATE.json` stays).
//! - **Anything else** keeps it for the next daily run, for as long as the week is at
//!   most [`MAX_REPORT_AGE_DAYS`] days old: 404, 401, 403, 405 (a tool with a wrong
//!   upload URL or a collector that moved: the user's week must not pay for it), 408
//!   and 429 (the server is busy), 425 Too Early (the collector's answer to a week
//!   that has not ended by its own clock, which is what a client whose clock runs a
//!   few days fast sends), any other 4xx, 3xx, 5xx, time-outs and network errors.
//!   Each is logged with the status and the URL.
//!
//! Go's uploader deletes a report on every 4xx; a lost week is a hole in every chart
//! that includes it (golang/go#65970 shows how costly they are), so here only the
//! three statuses that mean "this report is invalid" lose one.
//!
//! **`Retry-After`** (with 425, 429 or 503) is logged and respected within the
//! once-a-day rule: the next attempt is the next daily run (the facade's upload token
//! allows one run per directory per 24 hours), which is never earlier than a server
//! that asks for less than a day wants. No not-before time is stored: a server that
//! asks for more than a day gets one small POST a day, to which it can answer the
//! same, until the report is accepted or turns 21 days old.

use std::io;
use std::time::Duration;

use telemetry_internal::{Day, Dir};

use crate::config::UploadConfig;
use crate::log::{Log, log};
use crate::report::{self, Report};
use crate::{LocalOnlyReason, MAX_REPORT_AGE_DAYS, ReportStatus};

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
        let (status, retry_after) = match answer {
            Ok(response) => (
                response.status().as_u16(),
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(retry_after),
            ),
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
        match Answer::of(status) {
            Answer::Accepted => {
                self.acknowledge(week, body, log);
                log!(log, "{week}: uploaded to {url}");
                ReportStatus::Uploaded
            }
            Answer::Invalid => {
                log!(
                    log,
                    "{week}: POST {url} answered {status}: the server says the report is \
                     invalid; deleting it"
                );
                remove(&ready, log);
                ReportStatus::Rejected { status }
            }
            Answer::Later => {
                let wait = retry_after
                    .map(|after| format!(" (Retry-After: {after})"))
                    .unwrap_or_default();
                let hint = match status {
                    401 | 403 | 404 | 405 => " (is the tool's upload URL right?)",
                    _ => "",
                };
                log!(
                    log,
                    "{week}: POST {url} answered {status}{wait}{hint}; keeping the report for \
                     the next daily run (it is sent for at most {MAX_REPORT_AGE_DAYS} days \
                     after its week)"
                );
                ReportStatus::KeptForRetry {
                    reason: format!("server said {status} at {url}{wait}"),
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

/// What an upload's HTTP status means for the report.
///
/// Only an answer that says the report itself is invalid drops it: 400 (Bad Request),
/// 413 (Content Too Large) and 422 (Unprocessable Content); sending the same bytes again
/// could never succeed. Every other answer keeps it for the next daily run, within
/// the age limit: 404, 401, 403 and 405 say the tool is misconfigured (a wrong upload
/// URL must not cost the user their week), 408 and 429 say "later", 425 (Too Early)
/// is the collector's answer to a week that has not ended by its clock (a client
/// whose clock runs fast), and 5xx and 3xx are the server's trouble. Go drops a report
/// on every 4xx; lost weeks are costly to the people reading the data
/// (golang/go#65970), so this errs the other way: at worst a misconfigured tool sends
/// one small POST a day for 21 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 2xx: stored.
    Accepted,
    /// 400, 413, 422: the report can never be accepted.
    Invalid,
    /// Anything else: try again at the next daily run.
    Later,
}

impl Answer {
    pub(crate) fn of(status: u16) -> Answer {
        match status {
            200..=299 => Answer::Accepted,
            400 | 413 | 422 => Answer::Invalid,
            _ => Answer::Later,
        }
    }
}

/// A `Retry-After` value as it may be shown in a log line: delta-seconds or an
/// HTTP date, nothing else, at most 40 characters (it comes from the network).
fn retry_after(value: &str) -> String {
    let value = value.trim();
    let shown: String = value
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ,:-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    match value.parse::<u64>() {
        Ok(seconds) => format!("{seconds} s"),
        Err(_) => shown,
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
