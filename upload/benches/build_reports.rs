//! Building a week's reports from 100 counter files of 1000 counters each: reading
//! and parsing the files, summing by program, filtering by the config, and writing
//! `local.DATE.json` and `DATE.json`. The target is 100 ms.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use divan::Bencher;
use telemetry_internal::{Dir, Mode, Program, parse_date};
use telemetry_upload::{ConfigSource, RunConfig};

const PROGRAMS: usize = 20;
const DAYS: usize = 5; // 20 programs × 5 begin days = 100 files
const COUNTERS: usize = 1000;

fn main() {
    divan::main();
}

/// A telemetry directory with the 100 counter files, made once and copied per sample.
fn template() -> &'static (tempfile::TempDir, PathBuf) {
    static TEMPLATE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("local");
        let names: Vec<String> = (0..COUNTERS).map(|i| format!("bench/counter-{i:04}")).collect();
        let end = parse_date("2026-11-20").unwrap();
        for p in 0..PROGRAMS {
            let program = Program::owned(format!("prog{p}"), "1.0.0");
            for d in 0..DAYS {
                let begin = parse_date(&format!("2026-11-{:02}", 14 + d)).unwrap();
                let counts: Vec<(&str, u64)> =
                    names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u64 + 1)).collect();
                telemetry_counter::testing::write_file(&local, &program, begin, end, &counts).unwrap();
            }
        }
        // Half of every program's counters are approved.
        let approved: Vec<String> = names
            .iter()
            .step_by(2)
            .map(|n| format!("{{\"Name\": \"{n}\", \"Rate\": 1}}"))
            .collect();
        let programs: Vec<String> = (0..PROGRAMS)
            .map(|p| {
                format!(
                    "{{\"Name\": \"prog{p}\", \"Versions\": [\"1.0.0\"], \"Counters\": [{}]}}",
                    approved.join(",")
                )
            })
            .collect();
        let config = format!(
            "{{\"OS\": [\"{}\"], \"Arch\": [\"{}\"], \"Toolchain\": [\"{}\"], \"SampleRate\": 1, \"Programs\": [{}]}}",
            telemetry_internal::OS,
            telemetry_internal::ARCH,
            telemetry_internal::toolchain(),
            programs.join(",")
        );
        let config_path = tmp.path().join("config.json");
        std::fs::write(&config_path, config).unwrap();
        (tmp, config_path)
    })
}

fn fresh_copy(mode: Mode) -> tempfile::TempDir {
    let (template, _) = template();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    std::fs::create_dir(&local).unwrap();
    for entry in std::fs::read_dir(template.path().join("local")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), local.join(entry.file_name())).unwrap();
    }
    Dir::new(tmp.path()).set_mode(mode).unwrap();
    tmp
}

fn run(root: &Path) {
    let (_, config_path) = template();
    // Nothing listens on port 1: the one POST is refused at once, so this measures
    // building, not the network.
    let mut config = RunConfig::new(
        root,
        "http://127.0.0.1:1/upload",
        ConfigSource::File(config_path.clone()),
    );
    let nov_21 = SystemTime::from(parse_date("2026-11-21").unwrap().midnight().assume_utc());
    config.start_time = Some(nov_21);
    config.now = nov_21;
    config.ambient = telemetry_internal::Ambient::default();
    config.timeout = Duration::from_secs(5);
    let summary = telemetry_upload::run(config).unwrap();
    assert_eq!(summary.reports.len(), 1);
}

/// Mode `on`: both reports, with the approval filter, and one refused POST.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn build_and_filter_100_files(bencher: Bencher<'_, '_>) {
    let since = parse_date("2026-01-01").unwrap();
    bencher
        .with_inputs(|| fresh_copy(Mode::On { since }))
        .bench_values(|tmp| {
            run(tmp.path());
            tmp // dropped outside the timing
        });
}

/// The floor, measured in the same run: only reading the 100 files' bytes.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn baseline_read_100_files(bencher: Bencher<'_, '_>) {
    bencher
        .with_inputs(|| fresh_copy(Mode::Local))
        .bench_values(|tmp| {
            let mut bytes = 0;
            for entry in std::fs::read_dir(tmp.path().join("local")).unwrap() {
                bytes += std::fs::read(entry.unwrap().path()).unwrap().len();
            }
            assert!(bytes > 0);
            tmp
        });
}

/// Mode `local`: the local report only.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn build_local_100_files(bencher: Bencher<'_, '_>) {
    bencher
        .with_inputs(|| fresh_copy(Mode::Local))
        .bench_values(|tmp| {
            run(tmp.path());
            tmp
        });
}
