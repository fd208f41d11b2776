//! Test helpers: telemetry directories with real counter files, dates, and the
//! loopback server of `telemetry_upload::testing`.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use telemetry_internal::{Ambient, Date, Dir, Mode, Program, parse_date};
pub use telemetry_upload::testing::LoopbackServer;
use telemetry_upload::{ConfigSource, RunConfig, RunSummary};

pub fn day(text: &str) -> Date {
    parse_date(text).unwrap_or_else(|| panic!("bad date {text}"))
}

/// Midnight UTC of `text`.
pub fn at(text: &str) -> SystemTime {
    SystemTime::from(day(text).midnight().assume_utc())
}

pub const TOOL: Program = Program::new("tool", "1.0.0");

/// A config approving `counters` (and stack `stacks`) of `tool@1.0.0` on this platform.
pub fn config_json(counters: &[&str], stacks: &[&str]) -> String {
    let list = |names: &[&str], depth: bool| {
        names
            .iter()
            .map(|n| {
                let extra = if depth { ", \"Depth\": 16" } else { "" };
                format!(
                    "{{\"Name\": {}, \"Rate\": 1{extra}}}",
                    serde_json::to_string(n).unwrap()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"{{"OS": ["{}"], "Arch": ["{}"], "Toolchain": ["{}"], "SampleRate": 1,
  "Programs": [{{"Name": "tool", "Versions": ["1.0.0"], "Counters": [{}], "Stacks": [{}]}}]}}"#,
        telemetry_internal::OS,
        telemetry_internal::ARCH,
        telemetry_internal::toolchain(),
        list(counters, false),
        list(stacks, true),
    )
}

/// A telemetry directory, a server, and a config file.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub server: LoopbackServer,
    pub config_file: PathBuf,
}

impl Env {
    /// Mode `on` since 2026-01-01, a 200 server, a config approving `counters`.
    pub fn new(counters: &[&str]) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let config_file = tmp.path().join("upload-config.json");
        std::fs::write(&config_file, config_json(counters, &[])).unwrap();
        let env = Env {
            server: LoopbackServer::start(),
            tmp,
            config_file,
        };
        env.set_mode(Mode::On {
            since: day("2026-01-01"),
        });
        env
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("telemetry")
    }

    pub fn dir(&self) -> Dir {
        Dir::new(self.root())
    }

    pub fn local(&self) -> PathBuf {
        self.dir().local()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.dir().set_mode(mode).unwrap();
    }

    /// A counter file of `program` for `begin..end`.
    pub fn count(
        &self,
        program: &Program,
        begin: &str,
        end: &str,
        counts: &[(&str, u64)],
    ) -> PathBuf {
        telemetry_counter::testing::write_file(&self.local(), program, day(begin), day(end), counts)
            .unwrap()
    }

    /// The surroundings of every test run: `DO_NOT_TRACK` unset and a user config
    /// directory of its own, whatever the environment of the test process says.
    pub fn ambient(&self) -> Ambient {
        Ambient::with_config_dir(self.tmp.path().join("config"))
    }

    /// A run that happens at midnight of `start`, by the real clock too.
    pub fn config(&self, start: &str) -> RunConfig {
        let mut config = RunConfig::new(
            self.root(),
            self.server.upload_url(),
            ConfigSource::File(self.config_file.clone()),
        );
        config.ambient = self.ambient();
        config.now = at(start);
        config.start_time = Some(at(start));
        config.timeout = Duration::from_secs(10);
        config
    }

    pub fn run(&self, start: &str) -> RunSummary {
        telemetry_upload::run(self.config(start)).expect("the run succeeds")
    }

    /// [`Env::run`], and what it logged.
    pub fn run_logged(&self, start: &str) -> (RunSummary, String) {
        let log = SharedLog::default();
        let mut config = self.config(start);
        config.log = Some(Box::new(log.clone()));
        let summary = telemetry_upload::run(config).expect("the run succeeds");
        (summary, log.text())
    }

    /// Names of the files in `local/` (or `upload/`), sorted.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    pub fn local_names(&self) -> Vec<String> {
        self.names(&self.local())
            .into_iter()
            .filter(|n| n != "weekends")
            .collect()
    }

    pub fn upload_names(&self) -> Vec<String> {
        self.names(&self.dir().upload())
    }

    /// Every file left under the directory, relative to it, sorted.
    pub fn all_files(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    walk(base, &path, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root(), &self.root(), &mut out);
        out.sort();
        out
    }

    pub fn count_files(&self) -> usize {
        self.local_names()
            .iter()
            .filter(|n| n.ends_with(".v1.count"))
            .count()
    }
}

/// A writer that tests can read back: the run's log.
#[derive(Clone, Default)]
pub struct SharedLog(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedLog {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The statuses of a summary as text, one per report.
pub fn lines(summary: &RunSummary) -> Vec<String> {
    summary.reports.iter().map(ToString::to_string).collect()
}
