//! Calendar days as they appear in file names, mode files and report names.

use time::{Date, Month, OffsetDateTime};

/// Today's date in UTC: counter files and weeks are all in UTC so that a laptop
/// crossing time zones does not split or merge weeks.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// `YYYY-MM-DD`, the only date format telemetry writes.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses exactly `YYYY-MM-DD`; anything else (extra spaces, missing zeros, a time of
/// day, an impossible date) is `None`.
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &text[range];
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let d = parse_date("2026-02-28").unwrap();
        assert_eq!(format_date(d), "2026-02-28");
        assert_eq!(format_date(parse_date("0999-01-01").unwrap()), "0999-01-01");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-2-28",
            "2026-02-30",
            "2026-13-01",
            " 2026-02-28",
            "2026-02-28T00:00:00Z",
            "+026-02-28",
            "2026/02/28",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }
}
