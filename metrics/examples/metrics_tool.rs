//! A tool that records through the `metrics` facade, with the telemetry recorder
//! installed: counters, labels (allowed and not), histograms, a gauge. The crate's
//! process tests run it and read its counter file.
//!
//! `metrics_tool DIR`: counts into the telemetry directory DIR.

use telemetry_metrics::{Buckets, Options};

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        std::process::exit(2);
    };
    // Before the file is open: kept in memory, moved into the file when it opens.
    let options = Options::default()
        .allow_label("kind", &["disk", "network"])
        .histogram("metrics_tool/files", Buckets::values(&[10.0, 100.0]));
    if telemetry_metrics::install(options).is_err() {
        std::process::exit(3);
    }
    metrics::counter!("metrics_tool/early").increment(1);
    telemetry_counter::open_dir(dir, telemetry_counter::program!());

    for _ in 0..3 {
        metrics::counter!("metrics_tool/cache-miss").increment(1);
    }
    metrics::counter!("metrics_tool/bytes").increment(4096);
    metrics::counter!("metrics_tool/seen").absolute(10);
    metrics::counter!("metrics_tool/seen").absolute(7);
    metrics::counter!("metrics_tool/seen").absolute(12);
    metrics::counter!("metrics_tool/fetch", "kind" => "disk").increment(1);
    metrics::counter!("metrics_tool/fetch", "kind" => "network").increment(2);
    // Not allowed: the value, then the key. Both count on the bare name.
    let path = String::from("/home/alice/secret.txt");
    metrics::counter!("metrics_tool/fetch", "kind" => path.clone()).increment(1);
    metrics::counter!("metrics_tool/fetch", "user" => "alice").increment(1);

    for seconds in [0.0005, 0.002, 0.05, 0.05, 3.0, 60.0, f64::NAN] {
        metrics::histogram!("metrics_tool/latency").record(seconds);
    }
    for files in [1.0, 50.0, 1000.0] {
        metrics::histogram!("metrics_tool/files").record(files);
    }
    metrics::histogram!("metrics_tool/latency", "kind" => "disk").record(0.2);
    metrics::gauge!("metrics_tool/queue").set(5.0);
}
