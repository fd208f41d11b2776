//! Sending one ready report, at most once.

use std::path::Path;
use std::time::Duration;

use telemetry_internal::{Date, format_date};

use crate::ReportStatus;
use crate::log::{Log, log};
use telemetry_internal::create_complete;

/// What the sender needs to know.
pub(crate) struct Sender<'a> {
    pub(crate) upload_dir: &'a Path,
    pub(crate) upload_url: &'a str,
    pub(crate) timeout: Duration,
}

/// The largest report we send; a bigger file is not one we wrote.
const MAX_REPORT_BYTES: u64 = 64 << 20;

impl Sender<'_> {
    /// Sends `local/DATE.json` under a per-report lock in `upload/`.
    ///
    /// The lock makes concurrent uploaders take turns; whoever gets it second
    /// re-checks and finds the report sent (copied to `upload/`) or dropped (gone from
    /// `local/`), so a report is POSTed once. The copy in `upload/` is written before
    /// the local report is removed, and if either step fails after a 2xx the report is
    /// still never sent again: an accepted report counts once, so losing the copy is
    /// better than sending it twice.
    pub(crate) fn send(&self, week: Date, ready: &Path, log: &mut Log) -> ReportStatus {
        let date = format_date(week);
        if let Err(err) = std::fs::create_dir_all(self.upload_dir) {
            return ReportStatus::KeptForRetry {
                reason: format!("cannot create {}: {err}", self.upload_dir.display()),
            };
        }
        let lock_path = self.upload_dir.join(format!("{date}.lock"));
        let lock_file = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        {
            Ok(file) => file,
            Err(err) => {
                return ReportStatus::KeptForRetry {
                    reason: format!("cannot open {}: {err}", lock_path.display()),
                };
            }
        };
        let mut lock = fd_lock::RwLock::new(lock_file);
        // Never wait for another uploader: it is sending this report right now.
        let Ok(_guard) = lock.try_write() else {
            log!(log, "{date}: another process is uploading it");
            return ReportStatus::Busy;
        };

        let uploaded = self.upload_dir.join(format!("{date}.json"));
        if uploaded.exists() {
            // Sent by someone else after we listed local/; tidy what they left.
            let _ = std::fs::remove_file(ready);
            return ReportStatus::AlreadyUploaded;
        }
        let body = match std::fs::read(ready) {
            Ok(body) => body,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return ReportStatus::HandledElsewhere;
            }
            Err(err) => {
                return ReportStatus::KeptForRetry {
                    reason: format!("cannot read {}: {err}", ready.display()),
                };
            }
        };
        if body.len() as u64 > MAX_REPORT_BYTES {
            log!(
                log,
                "{date}: {} bytes is too big to be a report; deleting it",
                body.len()
            );
            let _ = std::fs::remove_file(ready);
            return ReportStatus::Discarded {
                reason: format!("{} bytes is too big to be a report", body.len()),
            };
        }

        let url = format!("{}/{date}", self.upload_url.trim_end_matches('/'));
        let answer = crate::http::agent(&url, self.timeout, false)
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body[..]);
        let status = match answer {
            Ok(response) => response.status().as_u16(),
            Err(err) => {
                log!(
                    log,
                    "{date}: POST {url} failed: {err}; keeping it for the next run"
                );
                return ReportStatus::KeptForRetry {
                    reason: err.to_string(),
                };
            }
        };
        match status {
            200..=299 => {
                match create_complete(&uploaded, &body) {
                    Ok(_) => {}
                    Err(err) => log!(
                        log,
                        "{date}: uploaded, but cannot copy it to {}: {err}",
                        uploaded.display()
                    ),
                }
                if let Err(err) = std::fs::remove_file(ready) {
                    log!(
                        log,
                        "{date}: uploaded, but cannot remove {}: {err}",
                        ready.display()
                    );
                }
                log!(log, "{date}: uploaded to {url}");
                ReportStatus::Uploaded
            }
            400..=499 => {
                log!(
                    log,
                    "{date}: the server refused it with {status}; deleting it"
                );
                let _ = std::fs::remove_file(ready);
                ReportStatus::Rejected { status }
            }
            _ => {
                log!(
                    log,
                    "{date}: the server answered {status}; keeping it for the next run"
                );
                ReportStatus::KeptForRetry {
                    reason: format!("server said {status}"),
                }
            }
        }
    }
}
