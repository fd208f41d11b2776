//! What becomes of a week, decided without changing anything: whether it may be
//! uploaded ([`Run::policy`]), its reports built in memory ([`Run::plan`]), and why a
//! built report is not sent now ([`Run::not_sendable`]). A real run applies the
//! decisions (`week`); a dry run only reports them (`dry_run`).

use std::collections::BTreeSet;

use telemetry_internal::{Day, Mode};

use crate::config::UploadConfig;
use crate::report::{Report, aggregate, approved_only, has_counts, random_x};
use crate::runner::Run;
use crate::work::Expired;
use crate::{LocalOnlyReason, MAX_REPORT_AGE_DAYS, ReportStatus};

impl Run<'_> {
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

    /// The week's reports, in memory: the local report with every counter, and the
    /// upload report if the week may be uploaded (`verdict` says why not otherwise).
    pub(crate) fn plan(
        &self,
        week: Day,
        files: Vec<Expired>,
        config: Option<&UploadConfig>,
        uploaded: &BTreeSet<Day>,
        acknowledged: bool,
    ) -> Result<Planned, ReportStatus> {
        let x = random_x();
        let last_week = uploaded
            .range(..week)
            .next_back()
            .map(ToString::to_string)
            .unwrap_or_default();
        let first_day = files.iter().map(|f| f.begin).min().unwrap_or(week);
        let mut verdict = self.policy(week, first_day);
        let programs = aggregate(files.into_iter().map(|f| f.file));
        let config_version = config.map(|c| c.version().to_owned()).unwrap_or_default();

        let mut upload_report = None;
        // An `upload/W.json` without L is not ours (we write U only after L), but it
        // says the week was sent: build L only, never send twice.
        if verdict.is_ok() && !acknowledged {
            match config {
                Some(config) => {
                    let kept = approved_only(&programs, config, x);
                    verdict = if !config.samples(x) {
                        Err(LocalOnlyReason::NotSampled)
                    } else if !has_counts(&kept) {
                        Err(LocalOnlyReason::NothingApproved)
                    } else {
                        Ok(())
                    };
                    upload_report = verdict.is_ok().then(|| Report {
                        week: week.to_string(),
                        last_week: last_week.clone(),
                        x,
                        config: config_version.clone(),
                        programs: kept,
                    });
                }
                None => {
                    // Another process built the week between our listing and our lock
                    // would be the only way here; leave it for the next run.
                    return Err(ReportStatus::KeptForRetry {
                        reason: "the upload config was not loaded".to_owned(),
                    });
                }
            }
        }
        Ok(Planned {
            verdict: match verdict {
                Ok(()) if acknowledged => Verdict::AlreadyUploaded,
                Ok(()) => Verdict::Upload,
                Err(reason) => Verdict::LocalOnly(reason),
            },
            local_report: Report {
                week: week.to_string(),
                last_week,
                x,
                config: config_version,
                programs,
            },
            upload_report,
        })
    }

    /// Why a built, ready report is not sent now, if it is not. A real run deletes a
    /// report that is too old (`Discarded`); a dry run only says so.
    pub(crate) fn not_sendable(&self, week: Day) -> Option<ReportStatus> {
        if week > self.today {
            return Some(ReportStatus::NotYetDue);
        }
        if self.too_old(week) {
            return Some(ReportStatus::Discarded {
                reason: LocalOnlyReason::TooOld.to_string(),
            });
        }
        if !matches!(self.mode, Mode::On { .. }) {
            return Some(ReportStatus::LocalOnly {
                reason: LocalOnlyReason::ModeNotOn,
            });
        }
        if !self.mode.allows_upload_of(week.date()) {
            // Built under an earlier opt-in; the current one is later.
            return Some(ReportStatus::LocalOnly {
                reason: LocalOnlyReason::BeforeOptIn,
            });
        }
        None
    }
}

/// What may become of a week's report.
pub(crate) enum Verdict {
    /// Uploadable: the upload report is built.
    Upload,
    /// Stays on this machine.
    LocalOnly(LocalOnlyReason),
    /// `upload/W.json` exists: never send it again.
    AlreadyUploaded,
}

/// A week's reports, built in memory.
pub(crate) struct Planned {
    pub(crate) verdict: Verdict,
    pub(crate) local_report: Report,
    pub(crate) upload_report: Option<Report>,
}
