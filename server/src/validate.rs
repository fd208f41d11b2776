//! Deciding whether an uploaded body is a report this collector stores. Approval is
//! [`UploadConfig::check_report`], the rule the uploader re-checks every report with
//! before sending it, so what a client may send and what the collector accepts cannot
//! drift apart. The collector adds what only it can judge: the URL's date, the
//! week's age by its own clock, and an `X` that can name an object.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use telemetry_internal::Day;
use telemetry_upload::{MAX_REPORT_AGE_DAYS, Report, UploadConfig};

/// How many days past [`MAX_REPORT_AGE_DAYS`] a week may be: uploaders judge a
/// report's age by their own clocks, which may be a little behind ours.
const CLOCK_SLACK_DAYS: i64 = 2;
/// How far ahead of our today a week may end: a client's UTC clock may be ahead.
const FUTURE_DAYS: i64 = 1;

/// Why an upload was refused; its `Display` is the one-line body of the answer (`400`,
/// or `425` for [`Rejection::InFuture`]).
#[derive(Debug, PartialEq)]
pub(crate) enum Rejection {
    TooLarge {
        limit: usize,
    },
    NotADate {
        segment: String,
    },
    NotAReport {
        reason: String,
    },
    WeekMismatch {
        url: Day,
        week: String,
    },
    TooOld {
        week: Day,
    },
    /// The week has not ended by our clock: `wait` is how long until this server
    /// takes it (`Retry-After`).
    InFuture {
        week: Day,
        wait: Duration,
    },
    BadX {
        x: f64,
    },
    NoCounts,
    Unapproved(telemetry_upload::Rejection),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::TooLarge { limit } => {
                write!(f, "the body is larger than the limit of {limit} bytes")
            }
            Rejection::NotADate { segment } => {
                write!(f, "{segment:?} is not a date: expected /upload/YYYY-MM-DD")
            }
            Rejection::NotAReport { reason } => {
                write!(f, "not a report: {}", reason.replace('\n', " "))
            }
            Rejection::WeekMismatch { url, week } => write!(
                f,
                "the report's Week {week:?} is not the date in the URL, {url}"
            ),
            Rejection::TooOld { week } => write!(
                f,
                "week {week} is too old: reports older than {MAX_REPORT_AGE_DAYS} days are not accepted"
            ),
            Rejection::InFuture { week, .. } => {
                write!(f, "week {week} has not ended yet")
            }
            Rejection::BadX { x } => write!(f, "X {x} is not in (0, 1]"),
            Rejection::NoCounts => f.write_str("the report has no counters above 0"),
            Rejection::Unapproved(why) => {
                write!(f, "refused by the current upload config: {why}")
            }
        }
    }
}

/// The date of `/upload/<segment>`, which must be exactly `YYYY-MM-DD`: the storage
/// key is built from the parsed date, never from the text, so no path can escape.
pub(crate) fn url_date(segment: &str) -> Result<Day, Rejection> {
    Day::parse(segment).ok_or_else(|| Rejection::NotADate {
        segment: segment.chars().take(64).collect(),
    })
}

/// Parses and checks a report posted to `/upload/<url_date>` at `now`.
pub(crate) fn check_report(
    body: &[u8],
    url_date: Day,
    config: &UploadConfig,
    now: SystemTime,
) -> Result<Report, Rejection> {
    let report = Report::parse(body).map_err(|err| Rejection::NotAReport {
        reason: match err {
            telemetry_upload::UploadError::ReportParse { reason } => reason,
            other => other.to_string(),
        },
    })?;
    // A map keeps the last of two equal keys, so a report naming a counter twice
    // would be stored with one of its counts silently dropped.
    serde_json::from_slice::<CountMaps>(body).map_err(|err| Rejection::NotAReport {
        reason: err.to_string(),
    })?;
    let today = Day::of(now);
    if Day::parse(&report.week) != Some(url_date) {
        return Err(Rejection::WeekMismatch {
            url: url_date,
            week: report.week.chars().take(64).collect(),
        });
    }
    let age = url_date.days_until(today);
    if age > MAX_REPORT_AGE_DAYS + CLOCK_SLACK_DAYS {
        return Err(Rejection::TooOld { week: url_date });
    }
    if age < -FUTURE_DAYS {
        let accepted_from = url_date.plus(-FUTURE_DAYS).start();
        return Err(Rejection::InFuture {
            week: url_date,
            wait: accepted_from.duration_since(now).unwrap_or_default(),
        });
    }
    // Go's server refuses X == 0 too; X is the report's name in storage.
    if !(report.x > 0.0 && report.x <= 1.0) {
        return Err(Rejection::BadX { x: report.x });
    }
    config
        .check_report(&report)
        .map_err(Rejection::Unapproved)?;
    // The uploader never sends a report without counts (it stays local); counts of
    // 0 say nothing either.
    if report.programs.iter().all(|p| {
        p.counters
            .values()
            .chain(p.stacks.values())
            .all(|&n| n == 0)
    }) {
        return Err(Rejection::NoCounts);
    }
    Ok(report)
}

/// The count maps of a report, read only to find a key given twice (the field names
/// and aliases of [`Report`]; everything else is ignored).
#[derive(Deserialize)]
struct CountMaps {
    #[serde(rename = "Programs", default)]
    #[allow(dead_code)] // Read for its check, not its value.
    programs: Option<Vec<ProgramCountMaps>>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // Read for their check, not their values.
struct ProgramCountMaps {
    #[serde(rename = "Counters", default)]
    counters: Option<UniqueKeys>,
    #[serde(rename = "Stacks", default)]
    stacks: Option<UniqueKeys>,
}

/// A JSON object whose keys are all different.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = UniqueKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of counts")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        let key: String = key.chars().take(200).collect();
                        return Err(serde::de::Error::custom(format_args!(
                            "counter {key:?} appears twice"
                        )));
                    }
                    seen.insert(key);
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(UniqueKeys)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}
