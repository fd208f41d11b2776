//! Weeks: a counter file begins today and expires on the user's `weekends` day.

use std::io;
use std::path::Path;

use time::{Date, Duration, Weekday};

/// The days a counter file covers: from `begin` (inclusive, today) to `end` (the
/// expiry day, exclusive). Both are UTC midnights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// The first day counted in the file.
    pub begin: Date,
    /// The day the file expires; reports are built once this day has come.
    pub end: Date,
}

/// The span of a file begun on `today`: it ends on the next `weekend` day, one to
/// seven days later.
pub fn file_span(today: Date, weekend: Weekday) -> FileSpan {
    let ahead =
        (7 + weekend.number_days_from_sunday() - today.weekday().number_days_from_sunday()) % 7;
    let days = if ahead == 0 { 7 } else { ahead };
    FileSpan {
        begin: today,
        end: today + Duration::days(i64::from(days)),
    }
}

/// The weekday this installation's weeks end on, read from `<local>/weekends`. A new
/// installation picks a random day (so uploads spread over the week) and publishes the
/// file atomically: a concurrent first run reads the same complete day, never an empty
/// file (golang/go#68390).
pub fn weekend(local: &Path) -> io::Result<Weekday> {
    let path = local.join("weekends");
    match std::fs::read(&path) {
        Ok(bytes) => parse_weekend(&bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(local)?;
            let day = crate::random_u64() % 7;
            crate::fs::create_complete(&path, format!("{day}\n").as_bytes())?;
            // Whoever won the race, the file is complete now: read what it says.
            parse_weekend(&std::fs::read(&path)?)
        }
        Err(err) => Err(err),
    }
}

fn parse_weekend(bytes: &[u8]) -> io::Result<Weekday> {
    let text = std::str::from_utf8(bytes).unwrap_or("").trim();
    let day = match text.as_bytes() {
        [d @ b'0'..=b'6'] => d - b'0',
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the weekends file holds {text:?}, not a weekday 0-6"),
            ));
        }
    };
    // 0 is Sunday, as in Go's file.
    Ok(Weekday::Sunday.nth_next(day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_date;

    #[test]
    fn spans_end_on_the_next_weekend_day() {
        let wed = parse_date("2026-11-25").unwrap();
        assert_eq!(wed.weekday(), Weekday::Wednesday);
        let end = |w| crate::format_date(file_span(wed, w).end);
        assert_eq!(end(Weekday::Thursday), "2026-11-26");
        assert_eq!(end(Weekday::Sunday), "2026-11-29");
        assert_eq!(end(Weekday::Tuesday), "2026-12-01");
        // On the weekend day itself, the file lasts a whole week.
        assert_eq!(end(Weekday::Wednesday), "2026-12-02");
        assert_eq!(file_span(wed, Weekday::Monday).begin, wed);
    }

    #[test]
    fn weekend_file_is_created_once_and_reread() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("local");
        let first = weekend(&local).unwrap();
        for _ in 0..5 {
            assert_eq!(weekend(&local).unwrap(), first);
        }
        let text = std::fs::read_to_string(local.join("weekends")).unwrap();
        assert_eq!(
            text.trim().parse::<u8>().unwrap(),
            first.number_days_from_sunday()
        );
    }

    #[test]
    fn concurrent_first_runs_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("local");
        let days: Vec<Weekday> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| weekend(&local).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(days.windows(2).all(|w| w[0] == w[1]), "{days:?}");
    }

    #[test]
    fn garbage_weekends_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("weekends"), "").unwrap();
        assert!(weekend(tmp.path()).is_err());
        std::fs::write(tmp.path().join("weekends"), "9\n").unwrap();
        assert!(weekend(tmp.path()).is_err());
        std::fs::write(tmp.path().join("weekends"), "4\n").unwrap();
        assert_eq!(weekend(tmp.path()).unwrap(), Weekday::Thursday);
    }
}
