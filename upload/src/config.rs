//! The upload config: which programs, versions, platforms and counters may leave the
//! machine, and at what sampling rate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use telemetry_internal::Day;

use crate::UploadError;
use crate::expand::{Budget, MAX_EXPANDED_BYTES, expand};
use crate::report::{ProgramReport, Report};

/// The largest config accepted, downloaded or read from a file. Go's real one is about
/// 20 KB; a config is parsed into memory several times its size, so a hostile or broken
/// server must not be able to hand us hundreds of megabytes.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The most counter names a config may name once `chart:{a,b,…}` is expanded (Go's real
/// config names about 230). A few hundred bytes of braces can otherwise name millions.
pub const MAX_EXPANDED_NAMES: usize = 100_000;

/// The public list of what may be uploaded, in the JSON format of Go's upload config.
///
/// Field names are ours (`OS`, `Arch`, `Toolchain`), and Go's (`GOOS`, `GOARCH`,
/// `GoVersion`) are accepted too, so Go's real config parses. Everything not listed is
/// refused: an empty or missing list approves nothing.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    raw: RawConfig,
    index: Index,
    version: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(rename = "OS", alias = "GOOS", default)]
    os: Vec<String>,
    #[serde(rename = "Arch", alias = "GOARCH", default)]
    arch: Vec<String>,
    #[serde(rename = "Toolchain", alias = "GoVersion", default)]
    toolchain: Vec<String>,
    // Go decodes a missing number as 0, and Go's uploader treats a rate of 0 as "no
    // sampling": every report is sent (internal/upload/reports.go: a report is held
    // back only if `X > SampleRate && SampleRate > 0`). So do we.
    #[serde(rename = "SampleRate", default)]
    sample_rate: f64,
    #[serde(rename = "Programs", default)]
    programs: Vec<RawProgram>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawProgram {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Versions", default)]
    versions: Vec<String>,
    #[serde(rename = "Counters", default)]
    counters: Vec<RawCounter>,
    #[serde(rename = "Stacks", default)]
    stacks: Vec<RawCounter>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawCounter {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Rate", default)]
    rate: f64,
    // Stacks only; Go does not use it when uploading either.
    #[serde(rename = "Depth", default)]
    #[allow(dead_code)]
    depth: u32,
}

/// Lookup tables built once per parse, so filtering a report costs one hash lookup
/// per counter.
#[derive(Clone, Debug, Default)]
struct Index {
    os: HashSet<String>,
    arch: HashSet<String>,
    toolchain: HashSet<String>,
    programs: HashMap<String, ProgramIndex>,
}

#[derive(Clone, Debug, Default)]
struct ProgramIndex {
    versions: HashSet<String>,
    /// Counter name (after `{a,b}` expansion) → rate.
    counters: HashMap<String, f64>,
    /// Stack counter prefix → rate.
    stacks: HashMap<String, f64>,
}

/// The identity of a program report: whose counters these are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'a> {
    pub(crate) program: &'a str,
    pub(crate) version: &'a str,
    pub(crate) toolchain: &'a str,
    pub(crate) os: &'a str,
    pub(crate) arch: &'a str,
}

impl<'a> Origin<'a> {
    /// Reads the identity from counter file metadata, ours or Go's.
    pub(crate) fn from_meta(meta: &'a BTreeMap<String, String>) -> Origin<'a> {
        let get = |ours: &str, go: &str| {
            meta.get(ours)
                .or_else(|| meta.get(go))
                .map_or("", String::as_str)
        };
        Origin {
            program: get("Program", "Program"),
            version: get("Version", "Version"),
            toolchain: get("Toolchain", "GoVersion"),
            os: get("OS", "GOOS"),
            arch: get("Arch", "GOARCH"),
        }
    }
}

/// The rates for one program on one platform, or nothing if it is not approved.
pub(crate) struct Approved<'c> {
    program: &'c ProgramIndex,
}

impl Approved<'_> {
    /// The rate of a counter or, for a stack counter (`prefix\nframes…`), of its prefix.
    pub(crate) fn rate(&self, counter: &str) -> Option<f64> {
        match counter.split_once('\n') {
            Some((prefix, _)) => self.program.stacks.get(prefix).copied(),
            None => self.program.counters.get(counter).copied(),
        }
    }
}

impl UploadConfig {
    /// Parses a config from JSON.
    pub fn parse(bytes: &[u8]) -> Result<UploadConfig, UploadError> {
        let parse_error = |reason: String| UploadError::ConfigParse {
            origin: String::new(),
            reason,
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(parse_error(format!(
                "{} bytes is more than the {MAX_CONFIG_BYTES} a config may have",
                bytes.len()
            )));
        }
        // serde would also take a JSON array for a struct; a config is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(UploadError::ConfigParse {
                origin: String::new(),
                reason: "expected a JSON object".to_owned(),
            });
        }
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|err| UploadError::ConfigParse {
                origin: String::new(),
                reason: err.to_string(),
            })?;
        if !(0.0..=1.0).contains(&raw.sample_rate) {
            return Err(UploadError::ConfigParse {
                origin: String::new(),
                reason: format!("SampleRate {} is not between 0 and 1", raw.sample_rate),
            });
        }
        let index = Index::build(&raw).map_err(parse_error)?;
        Ok(UploadConfig {
            raw,
            index,
            version: format!("fnv1a64:{:016x}", fnv1a64(bytes)),
        })
    }

    /// Whether a counter (or a stack counter, by its prefix) from a counter file with
    /// this metadata (keys `Program`, `Version`, `OS`, `Arch`, `Toolchain`, or Go's
    /// `GOOS`, `GOARCH`, `GoVersion`) is approved, ignoring the sampling rate.
    pub fn approves(&self, meta: &BTreeMap<String, String>, counter: &str) -> bool {
        self.approved(Origin::from_meta(meta))
            .is_some_and(|a| a.rate(counter).is_some())
    }

    /// The fraction of reports that may be uploaded: a report is sent only if its
    /// random `X` is at most this. `0` (or missing) means every report, as in Go.
    pub fn sample_rate(&self) -> f64 {
        self.raw.sample_rate
    }

    /// Whether a report with this `X` is in the sample: `X <= SampleRate`, or always
    /// when the rate is 0 or missing (Go's rule).
    pub fn samples(&self, x: f64) -> bool {
        self.raw.sample_rate <= 0.0 || x <= self.raw.sample_rate
    }

    /// Whether `counter` (a plain counter, or a stack counter `prefix\nframes…` by its
    /// prefix) of `program` may be uploaded in a report whose random number is `x`:
    /// the program is approved, the counter is listed, and `x` is at most its rate.
    pub fn approves_counter(&self, program: &ProgramReport, counter: &str, x: f64) -> bool {
        self.approved(program.origin())
            .and_then(|a| a.rate(counter))
            .is_some_and(|rate| x <= rate)
    }

    /// Whether `report` holds nothing this config does not approve: the one rule that
    /// decides what may leave a machine, shared by the uploader (which re-checks every
    /// report just before sending it) and by a collector (which refuses anything else).
    ///
    /// Checked: `Week` is a day (and `LastWeek` empty or a day), `X` is in [0, 1] and in the sample, every program is
    /// approved on its platform, every counter and stack is approved at `X`, no count
    /// exceeds `i64::MAX` (Go cannot read it), and no program appears twice. The
    /// report's `Config` version is not compared: a report filtered by an older config
    /// is fine as long as this one approves everything in it.
    pub fn check_report(&self, report: &Report) -> Result<(), Rejection> {
        let bad = |week: &str| Rejection::BadWeek(week.chars().take(32).collect());
        if Day::parse(&report.week).is_none() {
            return Err(bad(&report.week));
        }
        // `LastWeek` is empty in a first report.
        if !report.last_week.is_empty() && Day::parse(&report.last_week).is_none() {
            return Err(bad(&report.last_week));
        }
        let x = report.x;
        if !(0.0..=1.0).contains(&x) {
            return Err(Rejection::BadX(x));
        }
        if !self.samples(x) {
            return Err(Rejection::NotSampled {
                x,
                rate: self.sample_rate(),
            });
        }
        let mut seen = HashSet::new();
        for program in &report.programs {
            let origin = program.origin();
            let who = || format!("{}@{}", program.program, program.version);
            if !seen.insert(program.key()) {
                return Err(Rejection::DuplicateProgram(who()));
            }
            let Some(approved) = self.approved(origin) else {
                return Err(Rejection::ProgramNotApproved(who()));
            };
            for (map, stacks) in [(&program.counters, false), (&program.stacks, true)] {
                for (name, &n) in map {
                    // A stack in Counters (or a plain counter in Stacks) is not what
                    // the config approved.
                    let is_stack = telemetry_counter::stack_name::is_stack(name);
                    let ok = is_stack == stacks && approved.rate(name).is_some_and(|r| x <= r);
                    if !ok {
                        return Err(Rejection::CounterNotApproved {
                            program: who(),
                            counter: name.chars().take(200).collect(),
                        });
                    }
                    if n > i64::MAX as u64 {
                        return Err(Rejection::CountTooLarge {
                            program: who(),
                            counter: name.chars().take(200).collect(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The part of `report` this config approves at the report's `X`: approved
    /// programs on approved platforms, and in them only approved counters. Nothing
    /// else is copied. The result passes [`check_report`](UploadConfig::check_report)
    /// unless the report is not in the sample or its `Week` or `X` is malformed.
    pub fn approved_part(&self, report: &Report) -> Report {
        Report {
            week: report.week.clone(),
            last_week: report.last_week.clone(),
            x: report.x,
            config: report.config.clone(),
            programs: crate::report::approved_only(&report.programs, self, report.x),
        }
    }

    /// What reports record as their `Config`: a hash of the config's bytes, so the
    /// server can tell which config a report was filtered with.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether a collector should serve this config: every `Rate` is within 0..=1,
    /// and something can be approved (an OS, an arch, a toolchain, and a program with
    /// a version and a counter or stack whose rate is above 0). Uploaders take any
    /// config that parses (a config that approves nothing only uploads nothing); a
    /// collector's operator wants to hear about the typo. `Err` is a one-line reason.
    pub fn check_servable(&self) -> Result<(), String> {
        let raw = &self.raw;
        for p in &raw.programs {
            for c in p.counters.iter().chain(&p.stacks) {
                if !(0.0..=1.0).contains(&c.rate) {
                    return Err(format!(
                        "the Rate {} of {:?} in program {:?} is not between 0 and 1",
                        c.rate, c.name, p.name
                    ));
                }
            }
        }
        let approves_some = |p: &RawProgram| {
            !p.versions.is_empty() && p.counters.iter().chain(&p.stacks).any(|c| c.rate > 0.0)
        };
        if raw.os.is_empty()
            || raw.arch.is_empty()
            || raw.toolchain.is_empty()
            || !raw.programs.iter().any(approves_some)
        {
            return Err(
                "it approves nothing: it needs an OS, an Arch, a Toolchain and a \
                 program with a version and a counter or stack of Rate above 0"
                    .to_owned(),
            );
        }
        Ok(())
    }

    pub(crate) fn approved(&self, origin: Origin<'_>) -> Option<Approved<'_>> {
        let index = &self.index;
        if !index.os.contains(origin.os)
            || !index.arch.contains(origin.arch)
            || !index.toolchain.contains(origin.toolchain)
        {
            return None;
        }
        let program = index.programs.get(origin.program)?;
        program
            .versions
            .contains(origin.version)
            .then_some(Approved { program })
    }
}

impl Index {
    /// The lookup tables, or why the config names too much to index.
    fn build(raw: &RawConfig) -> Result<Index, String> {
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        let mut programs: HashMap<String, ProgramIndex> = HashMap::new();
        let mut budget = Budget {
            names: MAX_EXPANDED_NAMES,
            bytes: MAX_EXPANDED_BYTES,
        };
        for p in &raw.programs {
            let entry = programs.entry(p.name.clone()).or_default();
            entry.versions.extend(p.versions.iter().cloned());
            // A counter listed twice takes the rate of its last listing, as in Go
            // (internal/config: the rate map is simply overwritten).
            for c in &p.counters {
                for name in expand(&c.name, &mut budget)? {
                    entry.counters.insert(name, c.rate);
                }
            }
            for s in &p.stacks {
                entry.stacks.insert(s.name.clone(), s.rate);
            }
        }
        Ok(Index {
            os: set(&raw.os),
            arch: set(&raw.arch),
            toolchain: set(&raw.toolchain),
            programs,
        })
    }
}

/// Why [`UploadConfig::check_report`] refuses a report.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Rejection {
    /// `Week` (or a non-empty `LastWeek`) is not a day `YYYY-MM-DD`.
    BadWeek(String),
    /// `X` is not a number in [0, 1].
    BadX(f64),
    /// `X` is above the config's `SampleRate`.
    NotSampled {
        /// The report's `X`.
        x: f64,
        /// The config's rate.
        rate: f64,
    },
    /// The same program, version and platform appear twice.
    DuplicateProgram(String),
    /// A program (`name@version`) or its platform is not approved.
    ProgramNotApproved(String),
    /// A counter or stack is not approved for the program at the report's `X`.
    CounterNotApproved {
        /// `name@version`.
        program: String,
        /// The counter (at most 200 characters of it).
        counter: String,
    },
    /// A count above `i64::MAX`, which Go's report type cannot hold.
    CountTooLarge {
        /// `name@version`.
        program: String,
        /// The counter.
        counter: String,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::BadWeek(week) => write!(f, "Week {week:?} is not a date YYYY-MM-DD"),
            Rejection::BadX(x) => write!(f, "X {x} is not between 0 and 1"),
            Rejection::NotSampled { x, rate } => {
                write!(f, "X {x} is above the config's SampleRate {rate}")
            }
            Rejection::DuplicateProgram(p) => write!(f, "{p} appears twice"),
            Rejection::ProgramNotApproved(p) => {
                write!(f, "{p} on its platform is not in the upload config")
            }
            Rejection::CounterNotApproved { program, counter } => {
                write!(f, "{program}: counter {counter:?} is not approved")
            }
            Rejection::CountTooLarge { program, counter } => {
                write!(f, "{program}: the count of {counter:?} exceeds i64::MAX")
            }
        }
    }
}

impl std::error::Error for Rejection {}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::source::ConfigSource;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const CONFIG: &str = r#"{
        "OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
        "Programs": [{"Name": "tool", "Versions": ["1.0.0"],
            "Counters": [{"Name": "tool/flag:{a,b}", "Rate": 1}, {"Name": "tool/runs", "Rate": 0.5}],
            "Stacks": [{"Name": "tool/bug", "Rate": 1, "Depth": 16}]}]
    }"#;

    fn tool_meta() -> BTreeMap<String, String> {
        meta(&[
            ("Program", "tool"),
            ("Version", "1.0.0"),
            ("OS", "linux"),
            ("Arch", "x86_64"),
            ("Toolchain", "1.95.0"),
        ])
    }

    #[test]
    fn approves_expanded_counters_and_stack_prefixes() {
        let c = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        let m = tool_meta();
        assert!(c.approves(&m, "tool/flag:a"));
        assert!(c.approves(&m, "tool/flag:b"));
        assert!(!c.approves(&m, "tool/flag:c"));
        assert!(!c.approves(&m, "tool/flag:{a,b}"));
        assert!(c.approves(&m, "tool/runs"));
        assert!(c.approves(&m, "tool/bug\nmain.rs:1\nlib.rs:2"));
        assert!(
            !c.approves(&m, "tool/bug"),
            "a plain counter is not a stack"
        );
        assert!(!c.approves(&m, "tool/bugs\nmain.rs:1"));
    }

    #[test]
    fn refuses_other_programs_versions_and_platforms() {
        let c = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        for (key, value) in [
            ("Program", "other"),
            ("Version", "1.0.1"),
            ("OS", "windows"),
            ("Arch", "aarch64"),
            ("Toolchain", "nightly"),
        ] {
            let mut m = tool_meta();
            m.insert(key.into(), value.into());
            assert!(!c.approves(&m, "tool/runs"), "{key}={value}");
        }
        let mut missing = tool_meta();
        missing.remove("OS");
        assert!(!c.approves(&missing, "tool/runs"));
    }

    #[test]
    fn go_field_names_are_aliases() {
        let go = r#"{"GOOS": ["linux"], "GOARCH": ["amd64"], "GoVersion": ["go1.23.0"],
            "SampleRate": 1, "Programs": [{"Name": "cmd/go", "Versions": ["go1.23.0"],
            "Counters": [{"Name": "go/invocations", "Rate": 1}]}]}"#;
        let c = UploadConfig::parse(go.as_bytes()).unwrap();
        let m = meta(&[
            ("Program", "cmd/go"),
            ("Version", "go1.23.0"),
            ("GOOS", "linux"),
            ("GOARCH", "amd64"),
            ("GoVersion", "go1.23.0"),
        ]);
        assert!(c.approves(&m, "go/invocations"));
    }

    #[test]
    fn go_real_config_parses() {
        // The repository's copy of shared/fixtures/go-upload-config.json, Go's real config.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/go-upload-config.json"
        );
        let bytes = std::fs::read(path).unwrap();
        let c = UploadConfig::parse(&bytes).unwrap();
        assert_eq!(c.sample_rate(), 1.0);
        let m = meta(&[
            ("Program", "golang.org/x/tools/gopls"),
            ("Version", "v0.16.1"),
            ("GOOS", "linux"),
            ("GOARCH", "amd64"),
            ("GoVersion", "go1.22.5"),
        ]);
        assert!(c.approves(&m, "gopls/client:vscode"));
        assert!(c.approves(
            &m,
            "gopls/bug\ngolang.org/x/tools/gopls/internal/cache.f:+12"
        ));
        assert!(!c.approves(&m, "gopls/client:notepad"));
        assert!(c.version().starts_with("fnv1a64:"));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "[]",
            "{\"SampleRate\": \"high\"}",
            "{\"SampleRate\": 2}",
            "{",
        ] {
            let err = UploadConfig::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, UploadError::ConfigParse { .. }), "{bad:?}");
            assert!(err.to_string().contains("not valid"));
        }
    }

    #[test]
    fn hostile_configs_are_refused_cheaply() {
        // 2 MB of buckets behind a 1 KB prefix would expand to 2 GB of names.
        let prefix = "p".repeat(1000);
        let buckets = vec!["a"; 1 << 20].join(",");
        let config = format!(
            r#"{{"SampleRate": 1, "Programs": [{{"Name": "t", "Counters": [{{"Name": "{prefix}:{{{buckets}}}", "Rate": 1}}]}}]}}"#
        );
        let err = UploadConfig::parse(config.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("counters"), "{err}");
        // Bigger than the cap: refused before parsing.
        let huge = format!("{{\"Programs\": [], \"X\": \"{}\"}}", "x".repeat(5 << 20));
        let err = UploadConfig::parse(huge.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
        // The same from a file: read with a bound, not whole.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        std::fs::write(&path, &huge).unwrap();
        let err = ConfigSource::File(path)
            .load(Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, UploadError::ConfigRead { .. }), "{err}");
    }

    #[test]
    fn sample_rate_as_go_decides() {
        let with = |rate: &str| {
            UploadConfig::parse(format!("{{{rate}\"Programs\": []}}").as_bytes()).unwrap()
        };
        // Missing or zero: every report (Go: `X > SampleRate && SampleRate > 0`).
        for config in [with(""), with("\"SampleRate\": 0,")] {
            assert!(config.samples(0.999_999) && config.samples(0.0));
        }
        let half = with("\"SampleRate\": 0.5,");
        assert!(half.samples(0.5) && !half.samples(0.500_001));
    }

    #[test]
    fn a_counter_listed_twice_takes_the_last_rate() {
        let config = |first: f64, last: f64| {
            let text = format!(
                r#"{{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"],
                "Programs": [{{"Name": "tool", "Versions": ["1.0.0"],
                  "Counters": [{{"Name": "tool/{{runs,x}}", "Rate": {first}}}, {{"Name": "tool/runs", "Rate": {last}}}],
                  "Stacks": [{{"Name": "tool/bug", "Rate": {first}}}, {{"Name": "tool/bug", "Rate": {last}}}]}}]}}"#
            );
            UploadConfig::parse(text.as_bytes()).unwrap()
        };
        let program = crate::testing::program_report("tool", "1.0.0");
        // Go overwrites: the last listing wins, whether higher or lower.
        let lowered = config(1.0, 0.1);
        assert!(!lowered.approves_counter(&program, "tool/runs", 0.5));
        assert!(lowered.approves_counter(&program, "tool/runs", 0.1));
        assert!(
            lowered.approves_counter(&program, "tool/x", 0.5),
            "other buckets keep theirs"
        );
        assert!(!lowered.approves_counter(&program, "tool/bug\nmain.rs:1", 0.5));
        let raised = config(0.1, 1.0);
        assert!(raised.approves_counter(&program, "tool/runs", 0.5));
        assert!(raised.approves_counter(&program, "tool/bug\nmain.rs:1", 0.5));
    }

    #[test]
    fn check_report_is_the_one_rule() {
        let c = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        let program = |counters: &[(&str, u64)], stacks: &[(&str, u64)]| {
            crate::testing::program_report("tool", "1.0.0")
                .with_counters(counters)
                .with_stacks(stacks)
        };
        let report = |x: f64, programs: Vec<ProgramReport>| {
            crate::testing::report("2026-11-20", x, programs)
        };
        let good = report(
            0.4,
            vec![program(
                &[("tool/flag:a", 1), ("tool/runs", 2)],
                &[("tool/bug\nf", 3)],
            )],
        );
        assert_eq!(c.check_report(&good), Ok(()));
        assert_eq!(c.check_report(&report(0.4, vec![])), Ok(()));
        let bad = [
            report(0.9, vec![program(&[("tool/runs", 1)], &[])]), // rate 0.5 < X
            report(0.4, vec![program(&[("tool/secret", 1)], &[])]),
            report(0.4, vec![program(&[("tool/bug\nf", 1)], &[])]),
            report(0.4, vec![program(&[], &[("tool/runs", 1)])]),
            report(0.4, vec![program(&[("tool/runs", u64::MAX)], &[])]),
            report(0.4, vec![program(&[], &[]), program(&[], &[])]),
            report(f64::NAN, vec![]),
            report(1.5, vec![]),
        ];
        for r in &bad {
            assert!(c.check_report(r).is_err(), "{r:?}");
        }
        let mut other = program(&[], &[]);
        other.version = "6.6.6".into();
        assert!(matches!(
            c.check_report(&report(0.1, vec![other])),
            Err(Rejection::ProgramNotApproved(p)) if p == "tool@6.6.6"
        ));
        let mut week = report(0.1, vec![]);
        week.week = "../../etc".into();
        assert!(matches!(c.check_report(&week), Err(Rejection::BadWeek(_))));
        let mut last = report(0.1, vec![]);
        last.last_week = "2026-11-13".into();
        assert_eq!(c.check_report(&last), Ok(()));
        last.last_week = "<script>".into();
        assert!(matches!(c.check_report(&last), Err(Rejection::BadWeek(_))));
        // What approved_part keeps always passes.
        let mut mixed = good;
        mixed.programs[0].counters.insert("tool/secret".into(), 1);
        let part = c.approved_part(&mixed);
        assert_eq!(c.check_report(&part), Ok(()));
        assert!(!part.programs[0].counters.contains_key("tool/secret"));
    }
}
