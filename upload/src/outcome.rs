//! What a run did: a [`RunSummary`] of one [`ReportOutcome`] per week, the
//! [`ReportStatus`] of each, and the one-line text a person reads.

use std::fmt;

use telemetry_internal::{Day, ModeSwitch};

#[cfg(doc)]
use crate::{MAX_REPORT_AGE_DAYS, RunConfig};

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

#[cfg(test)]
mod tests {
    use super::*;

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
