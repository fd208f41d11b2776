//! Naming raw crash frames against one large debug file: this benchmark's own
//! executable (built with `debug = 1`, unstripped), or the file named by
//! `SYMBOLIZE_FILE` (e.g. a debug build of a workspace binary).
//!
//! 1. Reading the file into a function table (what `symbols add` does), the stored
//!    table's size, and loading it back (what a merge does once per build).
//! 2. 100 000 frames looked up and spelled (`FunctionTable::function` then
//!    `stack_name::frame`), the per-frame cost.
//! 3. A merge of 10 000 reports, each with a raw `crash/panic` stack of 10 frames of
//!    that build (100 000 frames), with the symbols stored: wall time and peak
//!    resident memory, beside the same merge with no symbols stored.
//!
//! `cargo bench -p telemetry-server --bench symbolize` (add `-- N` for N reports in
//! step 3). Without `--bench` it runs 200 reports, as a smoke test.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::Instant;

use telemetry_counter::stack_name;
use telemetry_server::{FunctionTable, Storage, add_symbols, merge, read_symbol_file};

const FRAMES_PER_STACK: usize = 10;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A small deterministic generator, so that runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Addresses inside functions of the table (start + 1 .. start + length), from its
/// stored text.
fn addresses(text: &str, n: usize) -> Vec<u64> {
    let funcs: Vec<(u64, u64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let start = u64::from_str_radix(parts.next()?, 16).ok()?;
            let len = u64::from_str_radix(parts.next()?, 16).ok()?;
            (len > 1).then_some((start, len))
        })
        .collect();
    let mut random = Lcg(42);
    (0..n)
        .map(|_| {
            let (start, len) = funcs[random.next() as usize % funcs.len()];
            start + 1 + random.next() % (len - 1)
        })
        .collect()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let reports: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 10_000 } else { 200 });
    let exe = std::env::var_os("SYMBOLIZE_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_exe().unwrap());
    let size = std::fs::metadata(&exe).unwrap().len();
    println!(
        "machine load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // 1. Reading and storing.
    let data = std::fs::read(&exe).unwrap();
    let started = Instant::now();
    let module = read_symbol_file(&data)
        .expect("the benchmark is built unstripped with a build ID")
        .remove(0);
    let read = started.elapsed();
    drop(data);
    let text = module.table.to_text();
    let started = Instant::now();
    let table = FunctionTable::from_text(&text).unwrap();
    let loaded = started.elapsed();
    println!(
        "symbols: {} ({} MB, build ID {}): {} functions read in {read:.2?}; stored table {:.1} MB, loaded in {loaded:.2?}",
        exe.file_name().unwrap().to_string_lossy(),
        size / 1_000_000,
        module.build_id,
        table.len(),
        text.len() as f64 / 1e6,
    );

    // 2. Lookups.
    let addrs = addresses(&text, 100_000);
    let started = Instant::now();
    let mut named = 0usize;
    let mut bytes = 0usize;
    for &addr in &addrs {
        if let Some((function, start)) = table.function(addr - 1) {
            bytes += stack_name::frame(function, (addr - start) as usize).len();
            named += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(named, addrs.len());
    println!(
        "lookups: {} frames named in {elapsed:.2?} ({:.0} ns/frame, {} bytes of names)",
        addrs.len(),
        elapsed.as_nanos() as f64 / addrs.len() as f64,
        bytes
    );

    // 3. Merges, without and with the symbols stored.
    let week_reports = |dir: &std::path::Path| {
        let week_dir = dir.join("data/uploaded/2026-11-20");
        std::fs::create_dir_all(&week_dir).unwrap();
        let frames = addresses(&text, reports * FRAMES_PER_STACK);
        for i in 0..reports {
            let x = (i as f64 + 1.0) / (reports as f64 + 1.0);
            let stack: Vec<String> = frames[i * FRAMES_PER_STACK..(i + 1) * FRAMES_PER_STACK]
                .iter()
                .map(|a| format!("{}+{a:#x}", module.build_id))
                .collect();
            let report = format!(
                r#"{{"Week":"2026-11-20","LastWeek":"","X":{x:?},"Config":"v1","Programs":[{{"Program":"mytool","Version":"1.0.0","Toolchain":"1.95.0","OS":"linux","Arch":"x86_64","Counters":{{"mytool/runs":1}},"Stacks":{{"crash/panic\n?+0x0\n{}":1}}}}]}}"#,
                stack.join("\\n")
            );
            std::fs::write(week_dir.join(format!("{x:?}.json")), report).unwrap();
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for with_symbols in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        week_reports(dir.path());
        let storage =
            Storage::open(&format!("file://{}", dir.path().join("data").display()), []).unwrap();
        if with_symbols {
            let today = telemetry_internal::Day::parse("2026-11-23").unwrap();
            runtime
                .block_on(add_symbols(&storage, &[&exe], today))
                .unwrap();
        }
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let started = Instant::now();
        let merged = runtime.block_on(merge(&storage, None)).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(merged[0].reports as usize, reports, "{:?}", merged[0]);
        let lines =
            std::fs::read_to_string(dir.path().join("data/merged/2026-11-20.json")).unwrap();
        assert_eq!(lines.contains(&module.build_id), !with_symbols);
        println!(
            "merge {} symbols: {reports} reports, {} raw frames, in {elapsed:.2?}, peak RSS {} MB",
            if with_symbols { "with" } else { "without" },
            reports * FRAMES_PER_STACK,
            peak_rss_kib() / 1024
        );
    }
}
