//! One week's transaction: counter files → `local/DATE.json` (the upload report) →
//! `local/local.DATE.json` (the commit record) → POST → `upload/DATE.json` (the
//! acknowledgement) → counter files deleted. It applies what `plan` decides; a dry
//! run (`dry_run`) decides the same way and applies nothing.
//!
//! # Why no crash loses a week (invariant 8 of ARCHITECTURE.md)
//!
//! Notation for week W: **C** its counter files, **R** `local/W.json` (the report to
//! upload, if any), **L** `local/local.W.json` (every counter), **U** `upload/W.json`.
//! Every step below runs under the week's lock (`upload/W.lock`, an advisory lock the
//! kernel drops when its holder dies, taken without waiting), and every step first
//! re-reads the state it acts on. The order of effects is:
//!
//! 1. write R (if the week may be uploaded), atomically: a temporary file, then rename;
//! 2. write L, atomically and exclusively: **L is the commit point** of the build;
//! 3. POST R's re-checked contents;
//! 4. on 2xx, rename R to U: **U is the acknowledgement**, and one rename makes it, so
//!    R and U never both exist (a 4xx deletes R instead);
//! 5. delete C, only once L exists and C's week has ended by the real clock plus a
//!    grace period, while holding C's exclusive lease.
//!
//! # Why no file is taken from under a live process
//!
//! Weeks are built only from counter files whose counts are final, and deleted only
//! then. Two rules decide it, each in one place:
//! - **The real clock** (`work::settled`): a week is looked at for commitment only
//!   once it ended a day ago by [`RunConfig::now`](crate::RunConfig::now). A process
//!   that outlives its week moves to the next week's file at midnight (the rotation
//!   `telemetry::start` and `open_and_rotate` start; it wakes at least hourly, also
//!   after a sleeping machine wakes), well within that day. A pretended start time
//!   never changes this: a week that is not over by the real clock is only shown
//!   (`ReportStatus::NotOver`), never committed, sent or deleted, and a pretended
//!   future never makes a report too old.
//! - **The lease** (`telemetry_counter::lease`): every process that counts into a
//!   counter file holds a shared `flock` on it, from its first count (from the open,
//!   for `open_dir`) until it stops counting there (rotates, exits or dies). Under the week's lock, the run takes each settled file's exclusive
//!   lease without waiting and reads the file again under it (`work::take_leases`);
//!   if any file is still held (a process that counts with `open_dir` only and never
//!   rotates, one whose machine slept through the day after, one whose clock was set
//!   back), the week is not built (`ReportStatus::InUse`) and waits for a later run.
//!   The leases are held until step 5 has deleted the files, and a process that opens
//!   a file being deleted opens the path again. So a report holds every count its
//!   files will ever hold, and a file is never deleted while a process maps it.
//!   Where there is no `flock` (Windows, and file systems without locks) the real-clock
//!   rule stands alone; Windows also refuses to delete a mapped file.
//!
//! Rules that follow from the order, and that a later run applies:
//! - **No L: the week is not built**, whatever else exists. C is still complete (C is
//!   deleted only after L, in step 5), so the week is rebuilt from it and R, if a dead
//!   run left one, is overwritten or removed. R is never sent without L. So a kill
//!   between steps 1 and 2 cannot make the week look built.
//! - **L and R, no U: the report is ready.** It is sent; the only way it was sent
//!   already is a POST in flight when the previous run died before step 4, the one
//!   duplicate invariant 8 allows (the server dedupes on `Week` and `X`, which R keeps).
//! - **U exists: the report was accepted.** It is never sent again; an R beside it
//!   (only possible after a failed rename fell back to copying) is removed.
//! - **L exists: C may go** once no process can count into it (settled and leased).
//!   Deleting is idempotent, and a delete that fails (or a file still leased) is
//!   logged and tried again by the next run: on Windows a program still running
//!   since that week keeps its file mapped, and Windows refuses to delete a mapped
//!   file.
//! - A full disk makes step 1 or 2 fail: nothing is committed, C stays, the temporary
//!   files are removed, and a later run with space builds the week (item 3).
//! - A passing I/O error (not "not found") never reads as a state: a mode file or
//!   counter file that cannot be read stops the run, and a failed existence check
//!   stops the week, so a fault can make a week neither local-only nor unbuilt.
//! - R read back is sent only if it is the report this code built (it matches L) and
//!   passes the config's check now (invariant 9); its `X` survives writing and reading
//!   bit for bit, so a resent report is the first one byte for byte.
//! - A temporary file or lock left by a dead run is removed by the next run
//!   ([`crate::remove_debris`]); a lock file is removed by the run that finishes its
//!   week, while holding it.
//!
//! Each step is idempotent given the state it reads, so any number of kills followed by
//! ordinary runs ends with L (and, if uploadable and accepted, U) for every week, C
//! deleted, and each report POSTed once, or twice only if the first POST was in flight.

use std::collections::BTreeSet;

use telemetry_internal::Day;

use crate::ReportStatus;
use crate::config::UploadConfig;
use crate::log::{Log, log};
use crate::plan::{Planned, Verdict};
use crate::report::{Report, to_body, to_json};
use crate::runner::Run;
use crate::send::{Sender, remove};
use crate::work::{Expired, Hold};

impl Run<'_> {
    /// Runs week W's transaction as far as it can go now. `files` are W's counter files
    /// that a report may cover (read before the lock: they are no longer written to,
    /// or the run pretends they are not). `None` when there is nothing to say (W was
    /// built before and only files were deleted).
    pub(crate) fn week(
        &self,
        week: Day,
        files: Vec<Expired>,
        config: Option<&UploadConfig>,
        uploaded: &BTreeSet<Day>,
        log: &mut Log,
    ) -> Option<ReportStatus> {
        let dir = &self.dir;
        if let Err(err) = dir.ensure_upload() {
            return Some(ReportStatus::Failed {
                reason: format!("cannot create {}: {err}", dir.upload().display()),
            });
        }
        let lock_path = dir.report_lock(week);
        let open = || telemetry_internal::fs::open_read_write(&lock_path, true);
        let lock_file = match open().or_else(|err| {
            if err.kind() == std::io::ErrorKind::InvalidInput {
                // A link, FIFO or directory planted under the lock's name would block
                // the week forever; a lock holds no data, so replace it (unlinking a
                // link never touches its target).
                std::fs::remove_file(&lock_path).and_then(|()| open())
            } else {
                Err(err)
            }
        }) {
            Ok(file) => file,
            Err(err) => {
                return Some(ReportStatus::Failed {
                    reason: format!("cannot open {}: {err}", lock_path.display()),
                });
            }
        };
        let mut lock = fd_lock::RwLock::new(lock_file);
        // Never wait: whoever holds it is doing this week's work right now.
        let Ok(guard) = lock.try_write() else {
            log!(log, "{week}: another process is working on it");
            return Some(ReportStatus::Busy);
        };

        // Whether a file exists; an error other than "not found" stops the week, so a
        // passing fault can never make a built week look unbuilt or a sent one unsent.
        let exists = |p: std::path::PathBuf| match std::fs::symlink_metadata(&p) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(ReportStatus::KeptForRetry {
                reason: format!("cannot check {}: {err}", p.display()),
            }),
        };
        let (mut built, acknowledged) = match (
            exists(dir.local_report(week)),
            exists(dir.uploaded_report(week)),
        ) {
            (Ok(built), Ok(acknowledged)) => (built, acknowledged),
            (Err(status), _) | (_, Err(status)) => return Some(status),
        };
        let mut status = None;
        let mut fresh = None;
        let mut files = files;
        if let Err(err) = crate::work::take_leases(&mut files, log) {
            return Some(ReportStatus::KeptForRetry {
                reason: format!("cannot read a counter file again: {err}"),
            });
        }
        if !built && files.iter().any(|f| !f.hold.is_final()) {
            // Some file of the week may still be counted into: a report built now
            // would miss those counts, and deleting the file would lose them.
            let in_use = files.iter().filter(|f| !f.hold.is_final()).count();
            log!(
                log,
                "{week}: a process still counts into {in_use} of its counter file(s); \
                 the week waits for a later run"
            );
            return Some(ReportStatus::InUse);
        }
        // What step 5 may delete, with each file's lease taken out of `files` (which
        // building consumes), so that the leases are held until this function returns:
        // a file is deleted while no process can map it.
        let disposal: Vec<(std::path::PathBuf, Hold)> = files
            .iter_mut()
            .map(|f| {
                (
                    f.path.clone(),
                    std::mem::replace(&mut f.hold, Hold::Settled),
                )
            })
            .collect();

        if !built && !files.is_empty() {
            match self.build(week, files, config, uploaded, acknowledged, log) {
                Ok(outcome) => {
                    built = true;
                    status = outcome.status;
                    fresh = outcome.fresh;
                }
                Err(failed) => return Some(failed),
            }
        }

        let ready = match exists(dir.report(week)) {
            Ok(ready) => ready,
            Err(status) => return Some(status),
        };
        if ready && !built {
            // Not one of ours: a report is only ever ready after its local report.
            log!(
                log,
                "{week}: {} has no local report, so this code did not build it; not sending it",
                dir.report(week).display()
            );
            return Some(ReportStatus::Skipped {
                reason: "no local report: not built here".to_owned(),
            });
        }
        if ready {
            status = Some(self.ready(week, acknowledged, config, fresh, log));
        }

        // Step 5: the week's counts are safe in L; delete the files nobody can still
        // count into. The others are deleted by a run after their week has settled.
        let mut kept = 0;
        for (path, hold) in disposal.iter().filter(|_| built) {
            if hold.is_final() {
                remove(path, log);
            } else {
                kept += 1;
            }
        }
        if kept > 0 {
            log!(
                log,
                "{week}: keeping {kept} counter file(s) a process may still count into"
            );
        }
        if built && exists(dir.report(week)) == Ok(false) {
            // Finished: nothing of this week will be sent again; the lock is not needed.
            // Removed while held; see `debris::remove_lock` for why that is safe.
            let _ = std::fs::remove_file(&lock_path);
        }
        drop(guard);
        status
    }

    /// Steps 1 and 2: writes R (if uploadable) and then L. `Err` if nothing was
    /// committed.
    fn build(
        &self,
        week: Day,
        files: Vec<Expired>,
        config: Option<&UploadConfig>,
        uploaded: &BTreeSet<Day>,
        acknowledged: bool,
        log: &mut Log,
    ) -> Result<Built, ReportStatus> {
        let dir = &self.dir;
        let Planned {
            verdict,
            local_report,
            upload_report,
        } = self.plan(week, files, config, uploaded, acknowledged)?;

        let ready = dir.report(week);
        let failed = |what: &std::path::Path, err: std::io::Error, log: &mut Log| {
            log!(
                log,
                "{week}: cannot write {}: {err}; its counter files are kept",
                what.display()
            );
            ReportStatus::Failed {
                reason: err.to_string(),
            }
        };
        // Step 1. An R left by a dead run is replaced, or removed if this build does
        // not upload: R must always belong to the L that commits it.
        let fresh = match upload_report {
            Some(report) => {
                let body = to_body(&report);
                if let Err(err) = telemetry_internal::write_atomic(&ready, &body) {
                    return Err(failed(&ready, err, log));
                }
                Some((report, body))
            }
            None => {
                remove(&ready, log);
                None
            }
        };
        // Step 2: the commit.
        let local_path = dir.local_report(week);
        match telemetry_internal::create_complete(&local_path, &to_json(&local_report)) {
            Ok(true) => {}
            Ok(false) => {
                // Someone wrote L without the lock (an older version of this code):
                // theirs commits the week, and our R does not belong to it.
                log!(log, "{week}: another process built this report");
                remove(&ready, log);
                return Ok(Built::status(ReportStatus::HandledElsewhere));
            }
            Err(err) => {
                remove(&ready, log);
                return Err(failed(&local_path, err, log));
            }
        }
        match verdict {
            Verdict::AlreadyUploaded => Ok(Built::status(ReportStatus::AlreadyUploaded)),
            Verdict::Upload => {
                log!(log, "{week}: report ready to upload");
                Ok(Built {
                    status: None,
                    fresh,
                })
            }
            Verdict::LocalOnly(reason) => {
                log!(log, "{week}: local report only ({reason})");
                Ok(Built::status(ReportStatus::LocalOnly { reason }))
            }
        }
    }

    pub(crate) fn sender(&self) -> Sender<'_> {
        Sender {
            dir: &self.dir,
            upload_url: self.upload_url,
            timeout: self.timeout,
            log_bodies: self.log_bodies,
        }
    }

    /// Steps 3 and 4 for a built week whose R exists; `fresh` is R as just built.
    fn ready(
        &self,
        week: Day,
        acknowledged: bool,
        config: Option<&UploadConfig>,
        fresh: Option<(Report, Vec<u8>)>,
        log: &mut Log,
    ) -> ReportStatus {
        let ready = self.dir.report(week);
        if acknowledged {
            remove(&ready, log);
            return ReportStatus::AlreadyUploaded;
        }
        match self.not_sendable(week) {
            Some(ReportStatus::NotYetDue) => {
                log!(log, "{week}: dated after {}; not sending it", self.today);
                return ReportStatus::NotYetDue;
            }
            Some(discarded @ ReportStatus::Discarded { .. }) => {
                log!(log, "{week}: too old to send; deleting it");
                remove(&ready, log);
                return discarded;
            }
            Some(other) => return other,
            None => {}
        }
        let Some(config) = config else {
            // Built by another process after our listing; the next run sends it.
            return ReportStatus::HandledElsewhere;
        };
        let sender = self.sender();
        sender.send(week, config, fresh, log)
    }
}

/// What building a week did.
struct Built {
    /// `None` if the report will be sent (its status comes from sending); `Some` if it
    /// stays local.
    status: Option<ReportStatus>,
    /// The upload report just written, and its bytes, to send without reading back.
    fresh: Option<(Report, Vec<u8>)>,
}

impl Built {
    fn status(status: ReportStatus) -> Built {
        Built {
            status: Some(status),
            fresh: None,
        }
    }
}
