//! Finding work: which counter files a report may cover, which reports exist.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use telemetry_counter::CounterFile;
use telemetry_internal::{Area, Day, Dir, FileKind, parse_date};
use time::{OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::log::{Log, log};

/// The largest counter file read. Real ones are tens of KB; 10 000 long names make a
/// few MB. A larger file is not read whole (invariant 7 of ARCHITECTURE.md).
const MAX_COUNTER_FILE_BYTES: u64 = 64 << 20;

/// How long after its week ends a counter file may still be counted into: a process
/// started just before midnight keeps counting into the file it opened, and a
/// long-running one moves to the next file within the hour. Only after this, by the
/// real clock, is a file complete, and only then may it be deleted.
pub(crate) const GRACE: time::Duration = time::Duration::days(1);

/// The real-clock rule, the one place it is decided: a counter file whose week ended
/// at `end` is **settled** at the real time `now` once `end` is [`GRACE`] behind it.
/// Only a settled week is committed (its `local.DATE.json` written) and only a
/// settled file is deleted, whatever time a run pretends: a pretended time chooses
/// what a run looks at and shows, never what it commits or deletes. A seam that
/// moves the local side into the past moves `now` with it, and this rule holds.
pub(crate) fn settled(end: OffsetDateTime, now: OffsetDateTime) -> bool {
    end.checked_add(GRACE).is_some_and(|t| t <= now)
}

/// A counter file whose week has ended (by the run's clock), parsed.
pub(crate) struct Expired {
    pub(crate) path: PathBuf,
    pub(crate) file: CounterFile,
    /// The first day it counted.
    pub(crate) begin: Day,
    /// Whether its counts are final, and so whether it may be reported and deleted.
    pub(crate) hold: Hold,
    /// What was lost, when some of its records were damaged and only the counts
    /// proven intact are in `file`.
    pub(crate) damage: Option<String>,
}

/// Whether a counter file's counts are final (see `telemetry_counter::lease`).
#[derive(Debug)]
pub(crate) enum Hold {
    /// Settled by the real clock and leased exclusively by this run (the descriptor
    /// holds the lease until it is dropped, after the file is deleted): no process
    /// counts into it, and none can start to. It was read again under the lease.
    Leased(#[allow(dead_code)] std::fs::File),
    /// Settled by the real clock, and not leased: before [`take_leases`], or on a
    /// file system (or platform) without the lease, where the real-clock rule alone
    /// says no process counts into it any more.
    Settled,
    /// Settled by the real clock, but a live process still holds it (one that counts
    /// without rotating, or has not rotated yet): it may still be counted into.
    InUse,
    /// Not settled by the real clock: only a pretended time looks at it.
    NotOver,
}

impl Hold {
    /// Whether its counts are final: it may be reported, and deleted once reported.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self, Hold::Leased(_) | Hold::Settled)
    }
}

/// What `local/` holds.
#[derive(Default)]
pub(crate) struct LocalDir {
    /// Counter files a report may cover, by their week (the expiry day): each group
    /// becomes one week's report.
    pub(crate) weeks: BTreeMap<Day, Vec<Expired>>,
    /// Weeks whose `local.DATE.json` exists: the commit record of a built week.
    pub(crate) built: BTreeSet<Day>,
    /// Weeks whose upload report `DATE.json` exists.
    pub(crate) ready: BTreeSet<Day>,
}

/// Lists `local/`, reading every counter file whose week ended by `report_by`. A file
/// that cannot be read or parsed (or is a link, FIFO or device) is logged and skipped,
/// so it never blocks the other weeks. A missing directory is empty.
pub(crate) fn scan_local(
    dir: &Dir,
    report_by: OffsetDateTime,
    now: OffsetDateTime,
    log: &mut Log,
) -> io::Result<LocalDir> {
    let mut found = LocalDir::default();
    for entry in dir.entries(Area::Local)? {
        match entry.kind {
            FileKind::CounterFile => {
                let name = entry
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match read_expired(entry.path, &name, report_by, now) {
                    Ok(Some((week, expired))) => {
                        found.weeks.entry(week).or_default().push(expired);
                    }
                    Ok(None) => {}
                    Err(Unusable::Garbage(why)) => log!(log, "skipping {name}: {why}"),
                    // A file that could not be read this time (EIO, too many open
                    // files) may be in a week about to be built: building without it
                    // would lose its counts when a later run deletes it. Stop instead.
                    Err(Unusable::NotNow(err)) => return Err(err),
                }
            }
            FileKind::LocalReport(week) => {
                found.built.insert(week);
            }
            FileKind::Report(week) => {
                found.ready.insert(week);
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Weeks whose reports are in `upload/`: acknowledged by the server.
pub(crate) fn scan_uploaded(dir: &Dir) -> io::Result<BTreeSet<Day>> {
    Ok(dir
        .entries(Area::Upload)?
        .into_iter()
        .filter_map(|e| match e.kind {
            FileKind::UploadedReport(week) => Some(week),
            _ => None,
        })
        .collect())
}

/// Reads a counter file opened without following a link, from its start, with a
/// bound, in one allocation of its size (a hundred files a run: growing a buffer for
/// each shows in the benchmark).
fn read_counter_file(mut file: &std::fs::File) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    file.seek(io::SeekFrom::Start(0))?;
    let len = file.metadata()?.len();
    if len > MAX_COUNTER_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_COUNTER_FILE_BYTES} bytes"),
        ));
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_COUNTER_FILE_BYTES).read_to_end(&mut data)?;
    Ok(data)
}

/// Why a counter file cannot be used.
enum Unusable {
    /// Never will be: not a counter file, not a regular file, too big, no dates.
    Garbage(String),
    /// Could not be read now; may be fine next time.
    NotNow(io::Error),
}

/// The file's week and contents if its week ended by `report_by`.
fn read_expired(
    path: PathBuf,
    name: &str,
    report_by: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Option<(Day, Expired)>, Unusable> {
    let unusable = |err: io::Error| match err.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            Unusable::Garbage(err.to_string())
        }
        // Deleted by another run since the listing: nothing to report.
        io::ErrorKind::NotFound => Unusable::Garbage(err.to_string()),
        _ => Unusable::NotNow(io::Error::new(
            err.kind(),
            format!("cannot read {}: {err}", path.display()),
        )),
    };
    let opened = telemetry_internal::fs::open_read(&path).map_err(unusable)?;
    let data = read_counter_file(&opened).map_err(unusable)?;
    let (file, damage) = parse_counts(&data, Some(name)).map_err(Unusable::Garbage)?;
    let time = |key: &str| {
        let text = file.meta(key).ok_or(format!("no {key}"))?;
        parse_rfc3339(text).ok_or(format!("{key} {text:?} is not an RFC 3339 time"))
    };
    let end = time("TimeEnd").map_err(Unusable::Garbage)?;
    if end > report_by {
        return Ok(None); // still being counted into
    }
    let begin = Day::from_date(time("TimeBegin").map_err(Unusable::Garbage)?.date());
    let week = Day::from_date(end.date());
    let hold = if settled(end, now) {
        Hold::Settled
    } else {
        Hold::NotOver
    };
    Ok(Some((
        week,
        Expired {
            path,
            file,
            begin,
            hold,
            damage,
        },
    )))
}

/// A counter file's counts: all of them, or, when some of its records are damaged
/// (another process cut the file short, a bad pointer in a hash chain), every count the
/// parser proved intact, with a line that says what was lost. A week keeps what can be
/// kept; a file with no intact count at all is garbage.
fn parse_counts(
    data: &[u8],
    name: Option<&str>,
) -> Result<(telemetry_counter::CounterFile, Option<String>), String> {
    match telemetry_counter::parse_named(data, name) {
        Ok(file) => Ok((file, None)),
        Err(err) => match err.intact().filter(|intact| !intact.count.is_empty()) {
            Some(intact) => {
                let damage = format!(
                    "{err}; reporting the {} counters proven intact",
                    intact.count.len()
                );
                Ok((intact.clone(), Some(damage)))
            }
            None => Err(err.to_string()),
        },
    }
}

/// Takes the exclusive lease of each settled file of a week (see
/// `telemetry_counter::lease`) and reads it again under the lease, so that the
/// counts a report is built from are all the counts the file will ever hold. The
/// caller holds the week's lock, so no other run competes for these leases. A file
/// a live process holds becomes [`Hold::InUse`]; a file gone since the listing is
/// dropped from `files` (nothing of it can be reported any more).
pub(crate) fn take_leases(files: &mut Vec<Expired>, log: &mut Log) -> io::Result<()> {
    let mut gone = Vec::new();
    for (index, expired) in files.iter_mut().enumerate() {
        if !matches!(expired.hold, Hold::Settled) {
            continue;
        }
        let opened = match telemetry_internal::fs::open_read(&expired.path) {
            Ok(opened) => opened,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                gone.push(index);
                continue;
            }
            Err(err) => return Err(err),
        };
        match telemetry_counter::lease::try_exclusive(&opened) {
            Ok(true) => {
                let name = expired
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                let data = read_counter_file(&opened)?;
                let (file, damage) = parse_counts(&data, name.as_deref())
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
                expired.file = file;
                expired.damage = damage;
                expired.hold = Hold::Leased(opened);
            }
            Ok(false) => expired.hold = Hold::InUse,
            // No locks here: the real-clock rule alone.
            Err(_) => {}
        }
    }
    for index in gone.into_iter().rev() {
        let expired = files.remove(index);
        log!(
            log,
            "{} was deleted since the listing",
            expired.path.display()
        );
    }
    // Read under the lease or, where there is none, at the listing: either way these
    // are the counts the week is built from.
    for expired in files.iter() {
        if let Some(damage) = &expired.damage {
            log!(log, "{}: {damage}", expired.path.display());
        }
    }
    Ok(())
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
}
