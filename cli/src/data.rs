//! What `view` and `csv` show: the counters kept in a telemetry directory, from
//! counter files not yet reported and from weekly reports, one [`Entry`] per program,
//! version, platform and week.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use telemetry_counter::CounterFile;
use telemetry_internal::{Area, Day, Dir, FileKind};
use telemetry_upload::Report;

use super::Failure;

/// Where an entry's numbers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Source {
    /// A counter file in `local/`: this week's, or an expired one not yet reported.
    CounterFile,
    /// A weekly report in `local/` (`local.YYYY-MM-DD.json`, or the upload copy
    /// `YYYY-MM-DD.json` when the full one is missing).
    Report,
    /// A report that was uploaded (`upload/YYYY-MM-DD.json`).
    UploadedReport,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::CounterFile => "counter file",
            Source::Report => "report",
            Source::UploadedReport => "uploaded report",
        })
    }
}

/// The counters of one program, version and platform for one week.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) program: String,
    pub(super) version: String,
    pub(super) toolchain: String,
    pub(super) os: String,
    pub(super) arch: String,
    /// The day the week ends (`YYYY-MM-DD`): a counter file's `TimeEnd`, a report's
    /// `Week`.
    pub(super) week: String,
    pub(super) source: Source,
    /// Whether a report for this week was uploaded (`upload/<week>.json` exists).
    pub(super) uploaded: bool,
    pub(super) file: PathBuf,
    pub(super) counters: BTreeMap<String, u64>,
    pub(super) stacks: BTreeMap<String, u64>,
}

impl Entry {
    /// The metadata an upload config matches against.
    pub(super) fn meta(&self) -> BTreeMap<String, String> {
        [
            ("Program", &self.program),
            ("Version", &self.version),
            ("Toolchain", &self.toolchain),
            ("OS", &self.os),
            ("Arch", &self.arch),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// Everything found, and what could not be read (one message per file).
#[derive(Debug, Default)]
pub(super) struct LocalData {
    pub(super) entries: Vec<Entry>,
    pub(super) skipped: Vec<String>,
}

/// The largest report read; the upload crate refuses to send anything near this.
const MAX_REPORT: u64 = 16 << 20;

/// Reads every counter file and report in `dir`. A missing directory is empty; one
/// that exists but cannot be listed is an error; a file that cannot be read or
/// parsed is skipped with a message.
pub(super) fn load(dir: &Dir) -> Result<LocalData, Failure> {
    let mut data = LocalData::default();
    let listing = |area| {
        dir.entries(area).map_err(|err| {
            let path = match area {
                Area::Local => dir.local(),
                Area::Upload => dir.upload(),
            };
            Failure::io(format!("cannot read {}", path.display()), &err)
        })
    };
    let local = listing(Area::Local)?;
    let upload = listing(Area::Upload)?;

    // Reports by week: the full local one if there is one, else the ready or
    // uploaded copy (which holds only approved counters).
    let mut reports: BTreeMap<Day, (PathBuf, Source, u8)> = BTreeMap::new();
    let mut uploaded_weeks = BTreeSet::new();
    let mut offer = |week: Day, path: &Path, source: Source, rank: u8| {
        let better = reports.get(&week).is_none_or(|(_, _, r)| rank > *r);
        if better {
            reports.insert(week, (path.to_owned(), source, rank));
        }
    };
    for entry in &upload {
        if let FileKind::UploadedReport(week) = entry.kind {
            uploaded_weeks.insert(week);
            offer(week, &entry.path, Source::UploadedReport, 0);
        }
    }
    for entry in &local {
        match entry.kind {
            FileKind::Report(week) => offer(week, &entry.path, Source::Report, 1),
            FileKind::LocalReport(week) => offer(week, &entry.path, Source::Report, 2),
            _ => {}
        }
    }

    for entry in local.iter().filter(|e| e.kind == FileKind::CounterFile) {
        match read_counter_file(&entry.path) {
            Ok((read, damage)) => {
                if let Some(damage) = damage {
                    data.skipped
                        .push(format!("{}: {damage}", entry.path.display()));
                }
                data.entries.push(read);
            }
            Err(message) => data
                .skipped
                .push(format!("{}: {message}", entry.path.display())),
        }
    }
    for (path, source, _) in reports.values() {
        match read_report(path, *source) {
            Ok(entries) => data.entries.extend(entries),
            Err(message) => data.skipped.push(format!("{}: {message}", path.display())),
        }
    }
    for entry in &mut data.entries {
        // A counter file is never uploaded itself; a report is if its week's was.
        entry.uploaded = entry.source != Source::CounterFile
            && Day::parse(&entry.week).is_some_and(|w| uploaded_weeks.contains(&w));
    }
    data.entries.sort_by(|a, b| {
        (&a.program, &a.version, &b.week, a.source, &a.file)
            .cmp(&(&b.program, &b.version, &a.week, b.source, &b.file))
    });
    Ok(data)
}

/// Reads and parses one counter file, for every command that does (`dump`, `view`,
/// `csv`): never through a link, never a FIFO or device, never more than
/// [`COUNTER_FILE_LIMIT`](telemetry_internal::fs::COUNTER_FILE_LIMIT) bytes (a larger
/// file is refused from its size, before anything is read). The message does not
/// repeat the path, which the caller puts first.
pub(super) fn parse_counter_file(path: &Path) -> Result<ReadCounterFile, String> {
    use telemetry_internal::fs::COUNTER_FILE_LIMIT;
    let bytes =
        telemetry_internal::fs::read_bounded(path, COUNTER_FILE_LIMIT).map_err(|err| match err
            .kind()
        {
            io::ErrorKind::InvalidData => format!(
                "larger than {} bytes, so not a counter file",
                COUNTER_FILE_LIMIT
            ),
            io::ErrorKind::InvalidInput if path.is_dir() => {
                "is a directory, not a counter file".to_owned()
            }
            io::ErrorKind::InvalidInput => {
                "not a regular file (links, FIFOs and devices are never read)".to_owned()
            }
            _ => err.to_string(),
        })?;
    let name = path.file_name().and_then(|n| n.to_str());
    match telemetry_counter::parse_named(&bytes, name) {
        Ok(file) => Ok(ReadCounterFile { file, damage: None }),
        // A file whose every record is lost is shown as the error it is.
        Err(err) => match err.intact().filter(|intact| !intact.count.is_empty()) {
            Some(intact) => Ok(ReadCounterFile {
                file: intact.clone(),
                damage: Some(format!(
                    "{err}; shown: the {} counters proven intact",
                    intact.count.len()
                )),
            }),
            None => Err(err.to_string()),
        },
    }
}

/// A counter file as read: all of it, or, when some of its records are damaged, every
/// count the parser could prove intact and a line that says what was lost.
pub(super) struct ReadCounterFile {
    pub(super) file: CounterFile,
    pub(super) damage: Option<String>,
}

/// Reads one counter file as [`parse_counter_file`] does, as `view` and `csv` show it.
pub(super) fn read_counter_file(path: &Path) -> Result<(Entry, Option<String>), String> {
    let ReadCounterFile { file, damage } = parse_counter_file(path)?;
    // Go's files say GoVersion, GOOS and GOARCH where ours say Toolchain, OS and Arch.
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| file.meta(k))
            .unwrap_or("")
            .to_owned()
    };
    let day = |key: &str| file.meta(key).and_then(|t| t.get(..10)).map(str::to_owned);
    let entry = Entry {
        program: get(&["Program"]),
        version: get(&["Version"]),
        toolchain: get(&["Toolchain", "GoVersion"]),
        os: get(&["OS", "GOOS"]),
        arch: get(&["Arch", "GOARCH"]),
        week: day("TimeEnd")
            .or_else(|| day("TimeBegin"))
            .unwrap_or_default(),
        source: Source::CounterFile,
        uploaded: false,
        file: path.to_owned(),
        counters: file.counters().map(|(k, v)| (k.to_owned(), v)).collect(),
        stacks: file.stacks().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    Ok((entry, damage))
}

fn read_report(path: &Path, source: Source) -> Result<Vec<Entry>, String> {
    let bytes =
        telemetry_internal::fs::read_bounded(path, MAX_REPORT).map_err(|e| e.to_string())?;
    // `Report::parse` reads Go's reports too (`"Programs": null`, `GOOS`, ...).
    let report = Report::parse(&bytes).map_err(|e| e.to_string())?;
    Ok(report
        .programs
        .into_iter()
        .map(|p| Entry {
            program: p.program,
            version: p.version,
            toolchain: p.toolchain,
            os: p.os,
            arch: p.arch,
            week: report.week.clone(),
            source,
            uploaded: false,
            file: path.to_owned(),
            counters: p.counters,
            stacks: p.stacks,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `view`, `csv` and `dump` read reports Go's x/telemetry wrote.
    #[test]
    fn reads_go_reports() {
        let parse_report = Report::parse;
        let empty =
            br#"{"Week":"2024-01-07","LastWeek":"","X":0.3,"Programs":null,"Config":"v0.0.1"}"#;
        let report = parse_report(empty).unwrap();
        assert_eq!(report.week, "2024-01-07");
        assert!(report.programs.is_empty());

        let go = br#"{"Week":"2024-01-07","LastWeek":"2023-12-31","X":0.3,"Config":"v0.0.1",
            "Programs":[{"Program":"golang.org/x/tools/gopls","Version":"v0.14.2",
            "GoVersion":"go1.21.5","GOOS":"linux","GOARCH":"amd64",
            "Counters":{"gopls/client:vscode":3},"Stacks":null}]}"#;
        let report = parse_report(go).unwrap();
        let p = &report.programs[0];
        assert_eq!(
            (&*p.toolchain, &*p.os, &*p.arch),
            ("go1.21.5", "linux", "amd64")
        );
        assert_eq!(p.counters["gopls/client:vscode"], 3);
        assert!(p.stacks.is_empty());

        assert!(parse_report(b"{}").is_err());
        assert!(parse_report(b"not json").is_err());
    }
}
