//! `Day`: a UTC calendar day, the unit of weeks, file names and reports.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Duration, OffsetDateTime};

use crate::date::{format_date, parse_date};

/// A calendar day in UTC, written `YYYY-MM-DD` everywhere telemetry writes one (file
/// names, the mode file, report names and report fields). Parsing is strict: exactly
/// ten characters, zero-padded, a real date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(Date);

/// The text was not a day in `YYYY-MM-DD` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayError(String);

impl fmt::Display for DayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a date YYYY-MM-DD", self.0)
    }
}

impl std::error::Error for DayError {}

impl Day {
    /// The day of `date`.
    pub const fn from_date(date: Date) -> Day {
        Day(date)
    }

    /// The UTC day `time` falls on. Times before 1970 (a badly set clock) read as
    /// 1970-01-01 rather than failing.
    pub fn of(time: SystemTime) -> Day {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let date =
            OffsetDateTime::from_unix_timestamp(secs).map_or(Date::MAX, OffsetDateTime::date);
        Day(date)
    }

    /// Parses `YYYY-MM-DD` strictly; `None` for anything else.
    pub fn parse(text: &str) -> Option<Day> {
        parse_date(text).map(Day)
    }

    /// The calendar date.
    pub const fn date(self) -> Date {
        self.0
    }

    /// The day `days` later (or earlier, if negative), saturating at the calendar's ends.
    pub fn plus(self, days: i64) -> Day {
        Day(self
            .0
            .checked_add(Duration::days(days))
            .unwrap_or(if days < 0 { Date::MIN } else { Date::MAX }))
    }

    /// Whole days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(self, later: Day) -> i64 {
        (later.0 - self.0).whole_days()
    }

    /// Midnight UTC at the start of this day, as a `SystemTime`.
    pub fn start(self) -> SystemTime {
        let secs = self.0.midnight().assume_utc().unix_timestamp();
        match u64::try_from(secs) {
            Ok(secs) => UNIX_EPOCH + std::time::Duration::from_secs(secs),
            Err(_) => UNIX_EPOCH,
        }
    }
}

impl From<Date> for Day {
    fn from(date: Date) -> Day {
        Day(date)
    }
}

impl From<Day> for Date {
    fn from(day: Day) -> Date {
        day.0
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_date(self.0))
    }
}

impl FromStr for Day {
    type Err = DayError;

    fn from_str(text: &str) -> Result<Day, DayError> {
        Day::parse(text).ok_or_else(|| DayError(text.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_counts() {
        let day: Day = "2026-11-29".parse().unwrap();
        assert_eq!(day.to_string(), "2026-11-29");
        assert_eq!(day.plus(3).to_string(), "2026-12-02");
        assert_eq!(day.days_until(day.plus(-21)), -21);
        assert!("2026-11-31".parse::<Day>().is_err());
        assert_eq!(
            "x".parse::<Day>().unwrap_err().to_string(),
            "\"x\" is not a date YYYY-MM-DD"
        );
    }

    #[test]
    fn of_and_start_round_trip() {
        let day = Day::parse("2026-11-29").unwrap();
        assert_eq!(Day::of(day.start()), day);
        let noon = day.start() + std::time::Duration::from_secs(12 * 3600);
        assert_eq!(Day::of(noon), day);
        assert_eq!(
            Day::of(UNIX_EPOCH - std::time::Duration::from_secs(5)).to_string(),
            "1970-01-01"
        );
    }
}
