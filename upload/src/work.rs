//! Finding work: which counter files have expired, which reports exist.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use telemetry_counter::CounterFile;
use telemetry_internal::{Date, parse_date};
use time::{OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::log::{Log, log};

/// An expired counter file, parsed.
pub(crate) struct Expired {
    pub(crate) path: PathBuf,
    pub(crate) file: CounterFile,
    /// The first day it counted.
    pub(crate) begin: Date,
}

/// What `local/` holds.
#[derive(Default)]
pub(crate) struct LocalDir {
    /// Expired counter files by expiry date: each group becomes one week's report.
    pub(crate) weeks: BTreeMap<Date, Vec<Expired>>,
    /// Weeks whose `local.DATE.json` exists: their reports were built already.
    pub(crate) built: BTreeSet<Date>,
    /// Reports waiting to be sent: `DATE.json`.
    pub(crate) ready: BTreeMap<Date, PathBuf>,
}

/// Lists `local/`, reading every counter file that has expired by `start`. A file
/// that cannot be read or parsed is logged and skipped, so it never blocks the other
/// weeks. A missing directory is empty.
pub(crate) fn scan_local(
    local: &Path,
    start: OffsetDateTime,
    log: &mut Log,
) -> io::Result<LocalDir> {
    let mut found = LocalDir::default();
    for (name, path) in list(local)? {
        if name.ends_with(".v1.count") {
            match read_expired(&path, start) {
                Ok(Some((week, expired))) => found.weeks.entry(week).or_default().push(expired),
                Ok(None) => {}
                Err(why) => log!(log, "skipping {name}: {why}"),
            }
        } else if let Some(week) = report_date(&name, "local.") {
            found.built.insert(week);
        } else if let Some(week) = report_date(&name, "") {
            found.ready.insert(week, path);
        }
    }
    Ok(found)
}

/// Only the reports ready to send in `local/`, after this run built its own.
pub(crate) fn scan_ready(local: &Path) -> io::Result<BTreeMap<Date, PathBuf>> {
    Ok(list(local)?
        .into_iter()
        .filter_map(|(name, path)| Some((report_date(&name, "")?, path)))
        .collect())
}

/// Weeks whose reports are in `upload/`: sent already. Other files there (locks, the
/// saved config) are not reports.
pub(crate) fn scan_uploaded(upload: &Path) -> io::Result<BTreeSet<Date>> {
    Ok(list(upload)?
        .into_iter()
        .filter_map(|(name, _)| report_date(&name, ""))
        .collect())
}

/// Lock files in `upload/` for weeks ended before `cutoff`: no run will upload those
/// weeks again, so nobody can hold or wait for these locks.
pub(crate) fn stale_locks(upload: &Path, cutoff: Date) -> io::Result<Vec<PathBuf>> {
    Ok(list(upload)?
        .into_iter()
        .filter(|(name, _)| {
            name.strip_suffix(".lock")
                .and_then(parse_date)
                .is_some_and(|week| week < cutoff)
        })
        .map(|(_, path)| path)
        .collect())
}

fn list(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        // Names that are not UTF-8 are nothing we wrote.
        if let Ok(name) = entry.file_name().into_string() {
            names.push((name, entry.path()));
        }
    }
    names.sort();
    Ok(names)
}

/// `<prefix>YYYY-MM-DD.json` → the date.
pub(crate) fn report_date(name: &str, prefix: &str) -> Option<Date> {
    parse_date(name.strip_prefix(prefix)?.strip_suffix(".json")?)
}

/// The file's week and contents if it expired at or before `start`.
fn read_expired(path: &Path, start: OffsetDateTime) -> Result<Option<(Date, Expired)>, String> {
    let file = telemetry_counter::read_file(path).map_err(|err| err.to_string())?;
    let time = |key: &str| {
        let text = file.meta(key).ok_or(format!("no {key}"))?;
        parse_rfc3339(text).ok_or(format!("{key} {text:?} is not an RFC 3339 time"))
    };
    let end = time("TimeEnd")?;
    if end > start {
        return Ok(None); // still being counted into
    }
    let begin = time("TimeBegin")?.date();
    let week = end.date();
    let path = path.to_owned();
    Ok(Some((week, Expired { path, file, begin })))
}

/// Parses the RFC 3339 times counter files hold: `YYYY-MM-DDTHH:MM:SS` with an
/// optional fraction and `Z` or a `±HH:MM` offset; the result is in UTC.
pub(crate) fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    let date = parse_date(text.get(..10)?)?;
    let rest = text.get(10..)?.strip_prefix(['T', 't'])?;
    let num = |s: &str| -> Option<u8> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (hour, minute, second) = (
        num(rest.get(0..2)?)?,
        num(rest.get(3..5)?)?,
        num(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" {
        return None;
    }
    let mut zone = rest.get(8..)?;
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = &fraction[digits..];
    }
    let offset = match zone {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.get(3..4)? != ":" {
                return None;
            }
            let (h, m) = (num(zone.get(1..3)?)?, num(zone.get(4..6)?)?);
            let (h, m) = (i8::try_from(h).ok()?, i8::try_from(m).ok()?);
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        let t = |s| parse_rfc3339(s).map(|t| (telemetry_internal::format_date(t.date()), t.hour()));
        assert_eq!(t("2026-11-20T00:00:00Z"), Some(("2026-11-20".into(), 0)));
        assert_eq!(
            t("2026-11-20T23:30:00.123Z"),
            Some(("2026-11-20".into(), 23))
        );
        assert_eq!(
            t("2026-11-20T23:00:00-02:00"),
            Some(("2026-11-21".into(), 1))
        );
        assert_eq!(
            t("2026-11-20T01:00:00+02:00"),
            Some(("2026-11-19".into(), 23))
        );
        for bad in [
            "",
            "2026-11-20",
            "2026-11-20T00:00:00",
            "2026-11-20T25:00:00Z",
            "2026-11-20T00:00:00+2",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn report_names() {
        let d = parse_date("2026-11-20");
        assert_eq!(report_date("2026-11-20.json", ""), d);
        assert_eq!(report_date("local.2026-11-20.json", "local."), d);
        assert_eq!(report_date("local.2026-11-20.json", ""), None);
        assert_eq!(report_date("config.json", ""), None);
        assert_eq!(report_date("2026-11-20.lock", ""), None);
        assert_eq!(report_date("2026-11-20.json.tmp-1-2", ""), None);
    }
}
