//! The user's choice: `on YYYY-MM-DD`, `local` or `off`.

use std::fmt;
use std::io;

use time::Date;

use crate::date::{format_date, parse_date};

/// What the user allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Write nothing at all.
    Off,
    /// Count locally; never upload. The default.
    Local,
    /// Count and upload approved counters collected strictly after `since`.
    On {
        /// The day the user opted in. Data from this day or earlier is never uploaded.
        since: Date,
    },
}

/// Why a mode file could not be used. Callers fall back to [`Mode::Local`].
#[derive(Debug)]
pub enum ModeError {
    /// The file exists but could not be read.
    Unreadable(io::Error),
    /// The file does not hold `on YYYY-MM-DD`, `local` or `off`.
    Malformed(String),
}

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeError::Unreadable(err) => write!(f, "cannot read the mode file: {err}"),
            ModeError::Malformed(text) => write!(
                f,
                "the mode file holds {text:?}, not `on YYYY-MM-DD`, `local` or `off`"
            ),
        }
    }
}

impl std::error::Error for ModeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModeError::Unreadable(err) => Some(err),
            ModeError::Malformed(_) => None,
        }
    }
}

impl Mode {
    /// Parses `on YYYY-MM-DD`, `local` or `off`, ignoring surrounding white space.
    /// A bare `on` has no opt-in date, so it cannot say which data may leave: it is
    /// rejected, and callers fall back to `local`. Go's tools write the date after
    /// every mode (`off 2024-03-01`, its `SetModeAsOf`), so `off` and `local` may carry
    /// one too, which says nothing more and is ignored.
    pub fn parse(text: &str) -> Result<Mode, ModeError> {
        let trimmed = text.trim();
        let malformed = || ModeError::Malformed(trimmed.chars().take(64).collect());
        let (word, date) = match trimmed.split_once(' ') {
            Some((word, date)) => (word, Some(parse_date(date.trim()).ok_or_else(malformed)?)),
            None => (trimmed, None),
        };
        match (word, date) {
            ("off", _) => Ok(Mode::Off),
            ("local", _) => Ok(Mode::Local),
            ("on", Some(since)) => Ok(Mode::On { since }),
            _ => Err(malformed()),
        }
    }

    pub(crate) fn parse_file(bytes: &[u8]) -> Result<Mode, ModeError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ModeError::Malformed(String::from_utf8_lossy(bytes).into_owned()))?;
        Mode::parse(text)
    }

    /// Whether anything is written at all.
    pub fn collects(self) -> bool {
        self != Mode::Off
    }

    /// Whether data collected on `day` may be uploaded: only when on, and only for days
    /// strictly after the opt-in date.
    pub fn allows_upload_of(self, day: Date) -> bool {
        matches!(self, Mode::On { since } if day > since)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Off => f.write_str("off"),
            Mode::Local => f.write_str("local"),
            Mode::On { since } => write!(f, "on {}", format_date(*since)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dir;

    fn day(text: &str) -> Date {
        parse_date(text).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        for text in ["off", "local", "on 2026-11-25"] {
            assert_eq!(Mode::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Mode::parse(" on 2026-11-25\n").unwrap(),
            Mode::On {
                since: day("2026-11-25")
            }
        );
        // Go's mode files carry a date after every mode.
        assert_eq!(Mode::parse("off 2024-03-01").unwrap(), Mode::Off);
        assert_eq!(Mode::parse("local 2024-03-01\n").unwrap(), Mode::Local);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "on",
            "ON 2026-01-01",
            "on 2026-1-1",
            "yes",
            "off please",
            "off 2026-13-01",
            "on  ",
        ] {
            assert!(
                matches!(Mode::parse(bad), Err(ModeError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(Mode::parse_file(b"\xff\xfe").is_err());
    }

    #[test]
    fn garbage_file_reads_as_local() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        std::fs::write(dir.mode_file(), b"\0\0garbage").unwrap();
        assert!(dir.read_mode().is_err());
        let mode = dir.effective_mode(&crate::Ambient::default()).mode;
        assert_eq!(mode, Mode::Local);
    }

    #[test]
    fn unreadable_file_reads_as_local() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        // A directory where the file should be cannot be read as a file.
        std::fs::create_dir(dir.mode_file()).unwrap();
        assert!(matches!(dir.read_mode(), Err(ModeError::Unreadable(_))));
    }

    #[test]
    fn upload_only_after_opt_in() {
        let on = Mode::On {
            since: day("2026-11-10"),
        };
        assert!(!on.allows_upload_of(day("2026-11-09")));
        assert!(!on.allows_upload_of(day("2026-11-10")));
        assert!(on.allows_upload_of(day("2026-11-11")));
        assert!(!Mode::Local.allows_upload_of(day("2030-01-01")));
        assert!(!Mode::Off.collects());
    }
}
