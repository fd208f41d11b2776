//! The cost of `metrics::counter!(…).increment(1)` through the telemetry recorder on a
//! key seen before, against `Counter::inc` and a raw atomic add in the same run. The
//! allocation columns (divan's `AllocProfiler`) show that no increment allocates.
//!
//! `cargo bench -p telemetry-metrics --bench increment`

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use telemetry_counter::{Counter, program};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

static RAW: AtomicU64 = AtomicU64::new(0);
static HITS: Counter = Counter::new("bench/hits");

/// Opens a counter file in a directory that lives as long as the process, and
/// installs the recorder.
fn setup() {
    static SETUP: Once = Once::new();
    SETUP.call_once(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let status = telemetry_counter::open_dir(dir.path(), program!());
        assert!(status.path().is_some(), "{status:?}");
        let options = telemetry_metrics::Options::default().allow_label("kind", &["disk"]);
        telemetry_metrics::install(options).unwrap();
    });
}

/// The baseline: what an increment cannot beat.
#[divan::bench]
fn raw_atomic_fetch_add() {
    divan::black_box(&RAW).fetch_add(1, Ordering::Relaxed);
}

/// `Counter::inc` on an open file.
#[divan::bench]
fn counter_inc(bencher: divan::Bencher) {
    setup();
    HITS.inc();
    bencher.bench(|| divan::black_box(&HITS).inc());
}

/// `metrics::counter!("…").increment(1)` on a key seen before: the recorder's lookup,
/// the handle, the add.
#[divan::bench]
fn metrics_counter_increment(bencher: divan::Bencher) {
    setup();
    metrics::counter!("bench/metrics-hits").increment(1);
    bencher.bench(|| metrics::counter!("bench/metrics-hits").increment(divan::black_box(1)));
}

/// The same with an allowed label: the key's labels are compared too.
#[divan::bench]
fn metrics_counter_increment_labelled(bencher: divan::Bencher) {
    setup();
    metrics::counter!("bench/metrics-labelled", "kind" => "disk").increment(1);
    bencher.bench(|| {
        metrics::counter!("bench/metrics-labelled", "kind" => "disk").increment(divan::black_box(1))
    });
}

/// A handle the program keeps: no lookup at all.
#[divan::bench]
fn metrics_held_handle_increment(bencher: divan::Bencher) {
    setup();
    let handle = metrics::counter!("bench/metrics-held");
    bencher.bench(|| handle.increment(divan::black_box(1)));
}

/// `metrics::histogram!("…").record(…)` on a key seen before (default buckets).
#[divan::bench]
fn metrics_histogram_record(bencher: divan::Bencher) {
    setup();
    metrics::histogram!("bench/metrics-latency").record(0.02);
    bencher.bench(|| metrics::histogram!("bench/metrics-latency").record(divan::black_box(0.02)));
}
