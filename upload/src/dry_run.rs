//! A dry run's week: what a run would do with it (the decisions of `plan`, and the
//! body it would POST), reading only: no lock, no lease, no file written or deleted.

use std::collections::BTreeSet;

use telemetry_internal::Day;

use crate::config::UploadConfig;
use crate::log::Log;
use crate::plan::Verdict;
use crate::report::to_body;
use crate::runner::Run;
use crate::work::Expired;
use crate::{LocalOnlyReason, ReportStatus};

impl Run<'_> {
    /// What a dry run says of week W: the body it would POST, or why none. Reads only.
    pub(crate) fn dry_week(
        &self,
        week: Day,
        files: Vec<Expired>,
        config: Option<&UploadConfig>,
        uploaded: &BTreeSet<Day>,
        log: &mut Log,
    ) -> (Option<ReportStatus>, Option<Vec<u8>>) {
        let dir = &self.dir;
        let exists = |p: std::path::PathBuf| std::fs::symlink_metadata(p).is_ok();
        let built = exists(dir.local_report(week));
        let acknowledged = exists(dir.uploaded_report(week));
        if !built && !files.is_empty() {
            return match self.plan(week, files, config, uploaded, acknowledged) {
                Err(status) => (Some(status), None),
                Ok(planned) => match planned.verdict {
                    Verdict::AlreadyUploaded => (Some(ReportStatus::AlreadyUploaded), None),
                    Verdict::LocalOnly(reason) => (Some(ReportStatus::LocalOnly { reason }), None),
                    Verdict::Upload => {
                        let body = planned.upload_report.as_ref().map(to_body);
                        (Some(ReportStatus::WouldBeSent), body)
                    }
                },
            };
        }
        let ready = exists(dir.report(week));
        if !ready {
            return (None, None);
        }
        if !built {
            return (
                Some(ReportStatus::Skipped {
                    reason: "no local report: not built here".to_owned(),
                }),
                None,
            );
        }
        if acknowledged {
            return (Some(ReportStatus::AlreadyUploaded), None);
        }
        if let Some(status) = self.not_sendable(week) {
            let status = match status {
                // Nothing is deleted in a dry run.
                ReportStatus::Discarded { .. } => ReportStatus::LocalOnly {
                    reason: LocalOnlyReason::TooOld,
                },
                other => other,
            };
            return (Some(status), None);
        }
        let Some(config) = config else {
            return (Some(ReportStatus::HandledElsewhere), None);
        };
        match self.sender().checked_body(week, config, true, log) {
            Ok(body) => (Some(ReportStatus::WouldBeSent), Some(body)),
            Err(status) => (Some(status), None),
        }
    }
}
