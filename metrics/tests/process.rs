//! The recorder through a real process: the example `metrics_tool` records through the
//! `metrics` facade, and its counter file, parsed, holds exactly the counters the
//! crate docs promise — and no label value that was not allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example, built next to this test binary by `cargo test`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let profile = exe.parent().and_then(Path::parent).unwrap();
    profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn metrics_land_in_the_counter_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(example("metrics_tool"))
        .arg(tmp.path())
        .env_remove("DO_NOT_TRACK")
        .output()
        .expect("run metrics_tool");
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");

    let files: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("local"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".v1.count"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let file = telemetry_counter::parse(&bytes).unwrap();
    let counts: BTreeMap<&str, u64> = file.counters().collect();
    let expected: BTreeMap<&str, u64> = [
        ("metrics_tool/early", 1),
        ("metrics_tool/cache-miss", 3),
        ("metrics_tool/bytes", 4096),
        ("metrics_tool/seen", 12),
        ("metrics_tool/fetch:kind=disk", 1),
        ("metrics_tool/fetch:kind=network", 2),
        ("metrics_tool/fetch", 2),
        ("telemetry/metrics-dropped-label", 2),
        ("metrics_tool/latency:<1ms", 1),
        ("metrics_tool/latency:<10ms", 1),
        ("metrics_tool/latency:<100ms", 2),
        ("metrics_tool/latency:<10s", 1),
        ("metrics_tool/latency:>=10s", 1),
        ("metrics_tool/latency:kind=disk:<1s", 1),
        ("metrics_tool/files:<10", 1),
        ("metrics_tool/files:<100", 1),
        ("metrics_tool/files:>=100", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    for never in ["alice", "secret", "queue"] {
        assert!(
            !bytes.windows(never.len()).any(|w| w == never.as_bytes()),
            "{never} in the counter file"
        );
    }
}
