//! No allocation after the first use of a key: `counter!` and `histogram!` on keys
//! seen before, counted by an instrumented global allocator (this test binary's own,
//! so nothing else runs in it).

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn increments_on_seen_keys_do_not_allocate() {
    let tmp = tempfile::tempdir().unwrap();
    telemetry_counter::open_dir(tmp.path(), telemetry_counter::program!());
    let options = telemetry_metrics::Options::default().allow_label("kind", &["disk"]);
    let recorder = telemetry_metrics::TelemetryRecorder::new(options);
    let record = || {
        metrics::counter!("alloc/plain").increment(1);
        metrics::counter!("alloc/labelled", "kind" => "disk").increment(1);
        metrics::histogram!("alloc/latency").record(0.02);
    };
    metrics::with_local_recorder(&recorder, || {
        record();
        let region = Region::new(GLOBAL);
        for _ in 0..1000 {
            record();
        }
        let change = region.change();
        assert_eq!(
            (change.allocations, change.reallocations),
            (0, 0),
            "{change:?}"
        );
    });
}
