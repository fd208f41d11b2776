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
///
/// A damaged file is repaired rather than refused (refusing it would disable counting into
/// files for good): garbage is read as Go reads it, the first byte's distance
/// from `'0'` modulo 7, so that Go and we agree on the day, and the file is rewritten
/// with that day; an empty or oversized file gets a new random day. A link, FIFO or
/// device in its place is an error (counting stays in memory); reads are bounded.
pub fn weekend(local: &Path) -> io::Result<Weekday> {
    let path = local.join("weekends");
    match crate::fs::read_bounded(&path, crate::fs::SMALL_FILE_LIMIT) {
        Ok(bytes) => match parse_weekend(&bytes) {
            Parsed::Canonical(day) => Ok(day),
            Parsed::Repaired(day) => {
                crate::fs::write_atomic(&path, &weekend_file(day))?;
                Ok(day)
            }
            Parsed::Empty => replace_with_random(&path),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            crate::fs::ensure_private_dir(local)?;
            let day = random_day();
            crate::fs::create_complete(&path, &weekend_file(day))?;
            // Whoever won the race, the file is complete now: read what it says.
            match parse_weekend(&crate::fs::read_bounded(
                &path,
                crate::fs::SMALL_FILE_LIMIT,
            )?) {
                Parsed::Canonical(day) | Parsed::Repaired(day) => Ok(day),
                Parsed::Empty => Ok(day),
            }
        }
        // Too large to be anything but garbage.
        Err(err) if err.kind() == io::ErrorKind::InvalidData => replace_with_random(&path),
        Err(err) => Err(err),
    }
}

fn random_day() -> Weekday {
    Weekday::Sunday.nth_next((crate::random_u64() % 7) as u8)
}

fn replace_with_random(path: &Path) -> io::Result<Weekday> {
    let day = random_day();
    crate::fs::write_atomic(path, &weekend_file(day))?;
    Ok(day)
}

/// The file's contents for `day`: its number from Sunday and a newline, as Go writes.
fn weekend_file(day: Weekday) -> Vec<u8> {
    format!("{}\n", day.number_days_from_sunday()).into_bytes()
}

/// What a `weekends` file says.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A digit 0-6 (0 is Sunday, as in Go), with optional white space.
    Canonical(Weekday),
    /// Anything else that is not empty: Go's reading of it.
    Repaired(Weekday),
    /// Nothing but white space: Go fails on it.
    Empty,
}

fn parse_weekend(bytes: &[u8]) -> Parsed {
    let text = bytes.trim_ascii();
    match text {
        [] => Parsed::Empty,
        [d @ b'0'..=b'6'] => Parsed::Canonical(Weekday::Sunday.nth_next(d - b'0')),
        // Go: `time.Weekday(buf[0] - '0') % 7`, the subtraction on a byte.
        [first, ..] => Parsed::Repaired(Weekday::Sunday.nth_next(first.wrapping_sub(b'0') % 7)),
    }
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
    fn garbage_weekends_is_repaired_as_go_reads_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("weekends");
        let read = |contents: &[u8]| {
            std::fs::write(&path, contents).unwrap();
            let day = weekend(tmp.path()).unwrap();
            let now = std::fs::read(&path).unwrap();
            if now != contents {
                assert_eq!(now, weekend_file(day), "{contents:?} is rewritten");
            } else {
                assert_eq!(now.trim_ascii().len(), 1, "{contents:?} is not rewritten");
            }
            day
        };
        assert_eq!(read(b"4\n"), Weekday::Thursday);
        assert_eq!(read(b" 0 "), Weekday::Sunday);
        // Go: ('9' - '0') % 7 = 2, Tuesday; ('a' - '0') % 7 = 49 % 7 = 0.
        assert_eq!(read(b"9\n"), Weekday::Tuesday);
        assert_eq!(read(b"abc"), Weekday::Sunday);
        // A byte below '0' wraps, as Go's byte arithmetic does: (0x21 - 0x30) as u8 = 241.
        assert_eq!(read(b"!"), Weekday::Sunday.nth_next((241 % 7) as u8));
        // Empty or oversized: a fresh day, and counting goes on.
        read(b"");
        read(b"  \n");
        read(&vec![b'7'; 10_000]);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_link_is_refused_not_waited_on() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("weekends");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(weekend(tmp.path()).is_err());
        std::fs::remove_file(&path).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "3\n").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(weekend(tmp.path()).is_err());
    }
}
