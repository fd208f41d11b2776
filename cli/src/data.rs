//! What `view` and `csv` show: the counters kept in a telemetry directory, from
//! counter files not yet reported and from weekly reports, one [`Entry`] per program,
//! version, platform and week.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use telemetry_internal::Dir;

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

/// Reads every counter file and report in `dir`. A missing directory is empty; one
/// that exists but cannot be listed is an error; a file that cannot be read or
/// parsed is skipped with a message.
pub(super) fn load(dir: &Dir) -> Result<LocalData, Failure> {
    let mut data = LocalData::default();
    let local = list(&dir.local())?;
    let upload = list(&dir.upload())?;

    // Reports by week: the full local one if there is one, else the upload copy.
    let mut reports: BTreeMap<String, (PathBuf, Source)> = BTreeMap::new();
    let mut uploaded_weeks = std::collections::BTreeSet::new();
    for path in &upload {
        if let Some(week) = report_week(path, false) {
            uploaded_weeks.insert(week.clone());
            reports.insert(week, (path.clone(), Source::UploadedReport));
        }
    }
    for path in &local {
        if let Some(week) = report_week(path, false) {
            reports.insert(week, (path.clone(), Source::Report));
        }
    }
    for path in &local {
        if let Some(week) = report_week(path, true) {
            reports.insert(week, (path.clone(), Source::Report));
        }
    }

    for path in local.iter().filter(|p| has_suffix(p, ".v1.count")) {
        match read_counter_file(path) {
            Ok(entry) => data.entries.push(entry),
            Err(message) => data.skipped.push(format!("{}: {message}", path.display())),
        }
    }
    for (path, source) in reports.values() {
        match read_report(path, *source) {
            Ok(entries) => data.entries.extend(entries),
            Err(message) => data.skipped.push(format!("{}: {message}", path.display())),
        }
    }
    for entry in &mut data.entries {
        // A counter file is never uploaded itself; a report is if its week's was.
        entry.uploaded =
            entry.source != Source::CounterFile && uploaded_weeks.contains(&entry.week);
    }
    data.entries.sort_by(|a, b| {
        (&a.program, &a.version, &b.week, a.source, &a.file)
            .cmp(&(&b.program, &b.version, &a.week, b.source, &b.file))
    });
    Ok(data)
}

/// The files in `path`, sorted; none if it does not exist.
fn list(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut files: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            Ok(files)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(Failure::io(format!("cannot read {}", path.display()), &err)),
    }
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(suffix))
}

/// The week of a report file named `YYYY-MM-DD.json` (or `local.YYYY-MM-DD.json` when
/// `local`).
pub(super) fn report_week(path: &Path, local: bool) -> Option<String> {
    let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
    let date = if local {
        name.strip_prefix("local.")?
    } else {
        name
    };
    telemetry_internal::parse_date(date).map(|_| date.to_owned())
}

/// Whether `path` is a counter file or a report (what `clean` deletes).
pub(super) fn is_data_file(path: &Path) -> bool {
    has_suffix(path, ".v1.count")
        || report_week(path, false).is_some()
        || report_week(path, true).is_some()
}

fn read_counter_file(path: &Path) -> Result<Entry, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let file = telemetry_counter::read_file(path).map_err(|e| e.to_string())?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| file.meta(k))
            .unwrap_or("")
            .to_owned()
    };
    let day = |key: &str| file.meta(key).and_then(|t| t.get(..10)).map(str::to_owned);
    Ok(Entry {
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
    })
}

fn read_report(path: &Path, source: Source) -> Result<Vec<Entry>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let report = telemetry_upload::Report::parse(&bytes).map_err(|e| e.to_string())?;
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
