//! Calendar days as they appear in file names, mode files and report names.

use time::{Date, Month, OffsetDateTime};

/// Today's date in UTC: counter files and weeks are all in UTC so that a laptop
/// crossing time zones does not split or merge weeks.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// `YYYY-MM-DD`, the only date format telemetry writes. Digits are placed by hand for
/// years 0 to 9999 (every `start` spells a few dates, and the formatting machinery
/// cost it ten times the instructions); other years go through `format!`.
pub fn format_date(date: Date) -> String {
    let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
    let Ok(year @ 0..=9999) = u16::try_from(year) else {
        return format!("{year:04}-{month:02}-{day:02}");
    };
    let digit = |n: u16| char::from(b'0' + (n % 10) as u8);
    let mut text = String::with_capacity(10);
    for n in [year / 1000, year / 100, year / 10, year] {
        text.push(digit(n));
    }
    text.push('-');
    text.push(digit(u16::from(month) / 10));
    text.push(digit(u16::from(month)));
    text.push('-');
    text.push(digit(u16::from(day) / 10));
    text.push(digit(u16::from(day)));
    text
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
    fn spelled_as_format_spells_it() {
        let spelled =
            |d: Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
        for text in [
            "0000-01-01",
            "0009-10-31",
            "1999-12-31",
            "2026-02-28",
            "9999-12-31",
        ] {
            let d = parse_date(text).unwrap();
            assert_eq!(format_date(d), text);
            assert_eq!(format_date(d), spelled(d));
        }
        let before_year_zero = Date::from_calendar_date(-1, Month::March, 4).unwrap();
        assert_eq!(format_date(before_year_zero), spelled(before_year_zero));
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
