//! The cost of counting, against a raw atomic add measured in the same run.
//!
//! `cargo bench -p telemetry-counter --bench inc`

use std::sync::Once;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use divan::counter::ItemsCount;
use telemetry_counter::{Counter, program};

fn main() {
    divan::main();
}

static RAW: AtomicU64 = AtomicU64::new(0);
static HITS: Counter = Counter::new("bench/hits");

/// Opens a counter file in a directory that lives as long as the process.
fn open_once() {
    static OPEN: Once = Once::new();
    OPEN.call_once(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let status = telemetry_counter::open_dir(dir.path(), program!());
        assert!(status.path().is_some(), "{status:?}");
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
    open_once();
    HITS.inc();
    bencher.bench(|| divan::black_box(&HITS).inc());
}

/// `inc(name)` for a name already interned: a hash lookup, then the add.
#[divan::bench]
fn named_inc_repeated(bencher: divan::Bencher) {
    open_once();
    telemetry_counter::inc("bench/named");
    bencher.bench(|| telemetry_counter::inc(divan::black_box("bench/named")));
}

const NEW_NAMES: usize = 10_000;

/// The first increment of 10 000 new names in a freshly opened file: interning, the
/// record's allocation in the file, its hash-chain insertion, and page extension.
/// Reported per name.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn first_inc_of_new_names(bencher: divan::Bencher) {
    static ROUND: AtomicUsize = AtomicUsize::new(0);
    bencher
        .counter(ItemsCount::new(NEW_NAMES))
        .with_inputs(|| {
            let round = ROUND.fetch_add(1, Ordering::Relaxed);
            let names: Vec<String> = (0..NEW_NAMES)
                .map(|i| format!("bench/new/{round}/{i}"))
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let status = telemetry_counter::open_dir(dir.path(), program!());
            assert!(status.path().is_some(), "{status:?}");
            (dir, names)
        })
        .bench_local_values(|(dir, names)| {
            for name in &names {
                telemetry_counter::inc(name);
            }
            (dir, names)
        });
}
