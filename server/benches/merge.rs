//! Merging a week of 100 000 stored reports (about 1 KB each) with file storage:
//! wall time and the process's peak resident memory during the merge. The baseline
//! in the same run is reading the same files with plain `std::fs::read` on one thread
//! (what the merge cannot avoid doing).
//!
//! `cargo bench -p telemetry-server --bench merge` (add `-- N` for N reports). Without
//! `--bench` it merges 200 reports, as a smoke test.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::Instant;

use telemetry_server::{Storage, merge};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let reports: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 100_000 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let week_dir = dir.path().join("data/uploaded/2026-11-20");
    std::fs::create_dir_all(&week_dir).unwrap();
    let generated = Instant::now();
    for i in 0..reports {
        let x = (i as f64 + 1.0) / (reports as f64 + 1.0);
        let counters: Vec<String> = (0..20)
            .map(|c| format!("\"mytool/flag:{}\":{}", c % (1 + i % 20), i % 97 + c))
            .collect();
        let report = format!(
            r#"{{"Week":"2026-11-20","LastWeek":"","X":{x:?},"Config":"v1","Programs":[{{"Program":"mytool","Version":"1.{}.0","Toolchain":"1.95.0","OS":"linux","Arch":"x86_64","Counters":{{{}}},"Stacks":{{"mytool/bug\nmytool::f{}+0x1\nmytool::main+0x2":1}}}}]}}"#,
            i % 5,
            counters.join(","),
            i % 300
        );
        std::fs::write(week_dir.join(format!("{x:?}.json")), report).unwrap();
    }
    println!(
        "machine load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("generated {reports} reports in {:.2?}", generated.elapsed());

    let baseline = Instant::now();
    let mut bytes = 0;
    for entry in std::fs::read_dir(&week_dir).unwrap() {
        bytes += std::fs::read(entry.unwrap().path()).unwrap().len();
    }
    println!(
        "baseline: read {reports} files ({} MB) in {:.2?}",
        bytes / 1_000_000,
        baseline.elapsed()
    );

    let storage =
        Storage::open(&format!("file://{}", dir.path().join("data").display()), []).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Peak memory of the merge alone: reset the high-water mark (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let started = Instant::now();
    let merged = runtime.block_on(merge(&storage, None)).unwrap();
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert_eq!(merged[0].reports as usize, reports);
    let merged_size = std::fs::metadata(dir.path().join("data/merged/2026-11-20.json"))
        .unwrap()
        .len();
    println!(
        "merge: {reports} reports in {elapsed:.2?} ({:.0} reports/s), merged file {} MB, peak RSS {} MB (before merge {} MB)",
        reports as f64 / elapsed.as_secs_f64(),
        merged_size / 1_000_000,
        peak / 1024,
        before / 1024
    );
}
