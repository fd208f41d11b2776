//! Building a week's reports: `local.DATE.json` with every counter, and `DATE.json`
//! with only the approved ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telemetry_counter::CounterFile;
use telemetry_counter::stack_name::is_stack;

use crate::UploadError;
use crate::config::{Origin, UploadConfig};

/// A weekly report as written to `local/` and uploaded: the JSON shape of Go's
/// `telemetry.Report`, with our field names. The one definition of the format, for
/// the reports this crate writes and for tools that read them (`telemetry view`).
///
/// Reading is lenient where Go's writer differs: `"Programs": null` (Go's encoding of
/// an empty week), `null` counter maps, and Go's `GOOS`, `GOARCH`, `GoVersion` field
/// names are accepted. Counts are `u64` here, but reports this crate writes never hold
/// one above `i64::MAX`, the most Go's report type can decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The day the week ended, `YYYY-MM-DD`.
    #[serde(rename = "Week")]
    pub week: String,
    /// The previous report's week, if known.
    #[serde(rename = "LastWeek", default)]
    pub last_week: String,
    /// The random number in [0, 1) that sampled this report and its counters.
    #[serde(rename = "X", default)]
    pub x: f64,
    /// The version of the upload config that filtered it.
    #[serde(rename = "Config", default)]
    pub config: String,
    /// Counts by program and platform.
    #[serde(rename = "Programs", deserialize_with = "null_as_default")]
    pub programs: Vec<ProgramReport>,
}

impl Report {
    /// Reads a report from its JSON.
    pub fn parse(bytes: &[u8]) -> Result<Report, UploadError> {
        serde_json::from_slice(bytes).map_err(|err| UploadError::ReportParse {
            reason: err.to_string(),
        })
    }
}

/// One program on one platform, with its counts for the week.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramReport {
    /// The program's name.
    #[serde(rename = "Program")]
    pub program: String,
    /// Its version.
    #[serde(rename = "Version")]
    pub version: String,
    /// The toolchain it was built with.
    #[serde(rename = "Toolchain", alias = "GoVersion")]
    pub toolchain: String,
    /// The operating system.
    #[serde(rename = "OS", alias = "GOOS")]
    pub os: String,
    /// The architecture.
    #[serde(rename = "Arch", alias = "GOARCH")]
    pub arch: String,
    /// Plain counters.
    #[serde(rename = "Counters", deserialize_with = "null_as_default")]
    pub counters: BTreeMap<String, u64>,
    /// Stack counters, names decoded.
    #[serde(rename = "Stacks", deserialize_with = "null_as_default")]
    pub stacks: BTreeMap<String, u64>,
}

/// Go encodes a nil slice or map as `null`; read it as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The largest count a report holds: Go's report type is `int64`, so a larger count
/// would make the report unreadable to Go's tools and server.
pub const MAX_REPORT_COUNT: u64 = i64::MAX as u64;

impl ProgramReport {
    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin {
            program: &self.program,
            version: &self.version,
            toolchain: &self.toolchain,
            os: &self.os,
            arch: &self.arch,
        }
    }

    pub(crate) fn key(&self) -> [&str; 5] {
        [
            &self.program,
            &self.version,
            &self.toolchain,
            &self.os,
            &self.arch,
        ]
    }
}

/// Sums the counter files of one week by program, version and platform. Takes the
/// files by value so the first file of each program gives its map away instead of
/// copying 1000 names.
pub(crate) fn aggregate(files: impl IntoIterator<Item = CounterFile>) -> Vec<ProgramReport> {
    let mut programs: BTreeMap<[String; 5], ProgramReport> = BTreeMap::new();
    for file in files {
        let origin = Origin::from_meta(&file.meta);
        let key = [
            origin.program,
            origin.version,
            origin.toolchain,
            origin.os,
            origin.arch,
        ]
        .map(str::to_owned);
        let report = programs.entry(key).or_insert_with_key(|k| ProgramReport {
            program: k[0].clone(),
            version: k[1].clone(),
            toolchain: k[2].clone(),
            os: k[3].clone(),
            arch: k[4].clone(),
            ..ProgramReport::default()
        });
        let count = file.count;
        if report.counters.is_empty()
            && report.stacks.is_empty()
            && !count.keys().any(|k| is_stack(k))
        {
            // The common case: give the map away instead of copying every name.
            report.counters = count;
            for n in report.counters.values_mut() {
                *n = (*n).min(MAX_REPORT_COUNT);
            }
            continue;
        }
        for (name, n) in count {
            let into = if is_stack(&name) {
                &mut report.stacks
            } else {
                &mut report.counters
            };
            let total = into.entry(name).or_insert(0);
            *total = total.saturating_add(n).min(MAX_REPORT_COUNT);
        }
    }
    let mut programs: Vec<ProgramReport> = programs.into_values().collect();
    programs.sort_by(|a, b| a.key().cmp(&b.key()));
    programs
}

/// The uploadable subset: approved programs on approved platforms, and within them
/// only the counters whose rate is at least `x`. Nothing else is copied, so nothing
/// else can leave the machine.
pub(crate) fn approved_only(
    programs: &[ProgramReport],
    config: &UploadConfig,
    x: f64,
) -> Vec<ProgramReport> {
    let mut out = Vec::new();
    for p in programs {
        let Some(approved) = config.approved(p.origin()) else {
            continue;
        };
        let keep = |map: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            map.iter()
                .filter(|(name, _)| approved.rate(name).is_some_and(|rate| x <= rate))
                .map(|(name, &n)| (name.clone(), n))
                .collect()
        };
        out.push(ProgramReport {
            program: p.program.clone(),
            version: p.version.clone(),
            toolchain: p.toolchain.clone(),
            os: p.os.clone(),
            arch: p.arch.clone(),
            counters: keep(&p.counters),
            stacks: keep(&p.stacks),
        });
    }
    out
}

/// Whether any program in the report has a counter or stack to send.
pub(crate) fn has_counts(programs: &[ProgramReport]) -> bool {
    programs
        .iter()
        .any(|p| !p.counters.is_empty() || !p.stacks.is_empty())
}

/// A random number in [0, 1): which reports are sampled, and which counters within
/// them, as Go's `X`.
pub(crate) fn random_x() -> f64 {
    // 53 random bits are exactly what an f64 mantissa holds.
    (telemetry_internal::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The local report as written for people to read: indented.
pub(crate) fn to_json(report: &Report) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The upload report as written to `local/DATE.json` and POSTed: one line of JSON, so
/// that the debug log can show the exact body on one line.
pub(crate) fn to_body(report: &Report) -> Vec<u8> {
    serde_json::to_vec(report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(program: &str, counts: &[(&str, u64)]) -> CounterFile {
        let mut f = CounterFile::default();
        for (k, v) in [
            ("Program", program),
            ("Version", "1.0.0"),
            ("Toolchain", "1.95.0"),
            ("OS", "linux"),
            ("Arch", "x86_64"),
        ] {
            f.meta.insert(k.into(), v.into());
        }
        for &(name, n) in counts {
            f.count.insert(name.into(), n);
        }
        f
    }

    #[test]
    fn sums_by_program_and_splits_stacks() {
        let programs = aggregate([
            file("a", &[("x", 1), ("s\nmain.rs:1", 2)]),
            file("b", &[("x", 10)]),
            file("a", &[("x", 3), ("y", u64::MAX), ("s\nmain.rs:1", 1)]),
            file("a", &[("y", 5)]),
        ]);
        assert_eq!(programs.len(), 2);
        let a = &programs[0];
        assert_eq!(a.program, "a");
        assert_eq!(a.counters["x"], 4);
        assert_eq!(
            a.counters["y"],
            i64::MAX as u64,
            "saturates at what Go can read"
        );
        assert_eq!(a.stacks["s\nmain.rs:1"], 3);
        assert_eq!(programs[1].counters["x"], 10);
    }

    #[test]
    fn rates_and_approval() {
        let config = UploadConfig::parse(
            br#"{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
            "Programs": [{"Name": "a", "Versions": ["1.0.0"],
              "Counters": [{"Name": "x", "Rate": 1}, {"Name": "rare", "Rate": 0.25}],
              "Stacks": [{"Name": "s", "Rate": 1}]}]}"#,
        )
        .unwrap();
        let programs = aggregate([
            file(
                "a",
                &[
                    ("x", 1),
                    ("rare", 1),
                    ("secret", 1),
                    ("s\nf", 1),
                    ("t\nf", 1),
                ],
            ),
            file("b", &[("x", 1)]),
        ]);
        let kept = approved_only(&programs, &config, 0.5);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].counters.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!(kept[0].stacks.keys().collect::<Vec<_>>(), ["s\nf"]);
        let low_x = approved_only(&programs, &config, 0.1);
        assert!(low_x[0].counters.contains_key("rare"));
        assert!(has_counts(&kept));
        assert!(!has_counts(&approved_only(
            &aggregate([file("a", &[])]),
            &config,
            0.0
        )));
    }

    #[test]
    fn counts_saturate_at_i64_max_even_alone() {
        let programs = aggregate([file("a", &[("big", u64::MAX), ("s\nf", u64::MAX - 1)])]);
        assert_eq!(programs[0].counters["big"], MAX_REPORT_COUNT);
        assert_eq!(programs[0].stacks["s\nf"], MAX_REPORT_COUNT);
        let programs = aggregate([file("a", &[("big", u64::MAX)])]);
        assert_eq!(
            programs[0].counters["big"], MAX_REPORT_COUNT,
            "the fast path too"
        );
        let json = String::from_utf8(to_json(&Report {
            week: "2026-11-20".into(),
            last_week: String::new(),
            x: 0.5,
            config: String::new(),
            programs,
        }))
        .unwrap();
        assert!(json.contains("9223372036854775807"), "{json}");
    }

    #[test]
    fn go_reports_parse() {
        // What Go's uploader writes for an empty week, and Go's field names.
        let empty = Report::parse(
            br#"{"Week": "2026-11-20", "LastWeek": "", "X": 0.1, "Config": "v0", "Programs": null}"#,
        )
        .unwrap();
        assert!(empty.programs.is_empty());
        let go = Report::parse(
            br#"{"Week": "2026-11-20", "LastWeek": "2026-11-13", "X": 0.1, "Config": "v0",
              "Programs": [{"Program": "cmd/go", "Version": "go1.23.0", "GOOS": "linux",
                "GOARCH": "amd64", "GoVersion": "go1.23.0", "Counters": {"go/x": 9223372036854775807},
                "Stacks": null}]}"#,
        )
        .unwrap();
        let p = &go.programs[0];
        assert_eq!(
            (p.os.as_str(), p.arch.as_str(), p.toolchain.as_str()),
            ("linux", "amd64", "go1.23.0")
        );
        assert_eq!(p.counters["go/x"], MAX_REPORT_COUNT);
        assert!(p.stacks.is_empty());
    }

    #[test]
    fn x_survives_writing_and_reading_exactly() {
        // A resent report must be byte for byte the first one (the server dedupes on
        // Week and X); serde_json's default float parser can be one ulp off.
        for _ in 0..10_000 {
            let report = Report {
                week: "2026-11-20".into(),
                last_week: String::new(),
                x: random_x(),
                config: String::new(),
                programs: Vec::new(),
            };
            let body = to_body(&report);
            let back = Report::parse(&body).unwrap();
            assert_eq!(back.x.to_bits(), report.x.to_bits(), "{}", report.x);
            assert_eq!(to_body(&back), body);
        }
    }

    #[test]
    fn random_x_is_in_range() {
        for _ in 0..1000 {
            let x = random_x();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
