//! A [`metrics`] recorder that lands `metrics::counter!` and `metrics::histogram!` in
//! this week's telemetry counter file, so a tool that already records metrics through
//! the `metrics` facade gets telemetry counters without rewriting a line.
//!
//! ```
//! # let tmp = tempfile::tempdir()?;
//! # telemetry_counter::open_dir(tmp.path(), telemetry_counter::program!());
//! // Once, early in `main` (after `telemetry::start`, or before: counts made before
//! // the counter file is open are kept in memory and moved into it when it opens).
//! telemetry_metrics::install(telemetry_metrics::Options::default())?;
//!
//! metrics::counter!("mytool/cache-miss").increment(1); // the counter mytool/cache-miss
//! metrics::histogram!("mytool/latency").record(0.042); // mytool/latency:<100ms
//! metrics::gauge!("mytool/queue").set(3.0); // ignored
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What becomes what
//!
//! | `metrics` | counter file |
//! |---|---|
//! | `counter!("mytool/cache-miss").increment(n)` | `mytool/cache-miss` += n |
//! | `counter!(…).absolute(n)` | raised to the largest `n` this process set |
//! | `histogram!("mytool/latency").record(0.042)` | `mytool/latency:<100ms` += 1 |
//! | `counter!("mytool/fetch", "kind" => "disk")` with `kind` allowed | `mytool/fetch:kind=disk` |
//! | the same with two allowed labels | `mytool/fetch:kind=disk,tier=hot` (keys in order) |
//! | a histogram with allowed labels | `mytool/latency:kind=disk:<100ms` |
//! | a label not allowed, or a value not in its list | dropped from the name; `telemetry/metrics-dropped-label` += 1 per registration |
//! | `gauge!` | ignored: a level at some instant has no meaning summed over a week of runs |
//! | `describe_*!`, units | ignored |
//!
//! **Histograms** become Go-style bucket counters: each recorded value adds one to the
//! counter of its bucket, `<{bound}` for the first bound above it or `>={last}` past
//! the last. Bounds are per metric name ([`Options::histogram`]); the default,
//! [`Buckets::default`], is for durations in seconds (the `metrics` convention):
//! `<1ms`, `<10ms`, `<100ms`, `<1s`, `<10s`, `>=10s`. NaN is not counted.
//!
//! **Labels** could carry anything (a path, a user name) into a counter name, and
//! counter names are what a report uploads. So only label keys the options allow
//! ([`Options::allow_label`]), each with a value from its allowed list, become part of
//! a name; anything else is dropped (the count still lands on the name without it) and
//! `telemetry/metrics-dropped-label` counts the registrations that had one.
//!
//! # Cost
//! `counter!("name").increment(1)` on a key seen before is a lock-free table lookup
//! by the key's precomputed hash, a reference-count increment for the handle, and one
//! atomic add into the mapped file: no lock and no allocation after the first use of
//! a key (`cargo bench -p telemetry-metrics`, beside `Counter::inc` and a raw atomic
//! add). A key seen for the first time takes a mutex and allocates its name, once. A
//! key with a dropped label is never remembered (its values may be anything), so it
//! pays that first-use cost on every registration: hold its handle, or allow the label.
//!
//! # Guarantees
//! - Never panics, never prints, never blocks on anything but a short mutex the first
//!   time a key is seen.
//! - No label value outside the allowed lists ever enters a counter name.
//! - Counting follows the counter crate: exact across threads and processes, in
//!   memory until a counter file is open, nothing at all under mode `off` (the file is
//!   never opened).
#![forbid(unsafe_code)]

mod handles;
mod naming;
mod options;
mod recorder;
mod table;

use std::fmt;

pub use options::{Buckets, Options};
pub use recorder::TelemetryRecorder;

/// Installs a [`TelemetryRecorder`] built from `options` as the process's global
/// `metrics` recorder. Fails only if a global recorder is already installed (by this
/// or any other crate): `metrics` allows one per process.
pub fn install(options: Options) -> Result<(), InstallError> {
    metrics::set_global_recorder(TelemetryRecorder::new(options))
        .map_err(|_| InstallError::AlreadyInstalled)
}

/// Why [`install`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The process already has a global `metrics` recorder; only one can be installed.
    AlreadyInstalled,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::AlreadyInstalled => f.write_str(
                "a global metrics recorder is already installed: install the telemetry recorder first, or use TelemetryRecorder with metrics::with_local_recorder",
            ),
        }
    }
}

impl std::error::Error for InstallError {}
