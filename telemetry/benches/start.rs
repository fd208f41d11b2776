//! What `telemetry::start` adds to a whole process: this binary runs again as a plain
//! hello world and as hello worlds that call `start`, alternately, so all see the same
//! machine state. Each run that calls `start` also times the call itself, in-process,
//! which is what the program pays and is far less noisy on a busy machine than
//! whole-process wall time, and then the program's first count (which starts the
//! rotation thread, so a run that counts pays for it there).
//!
//! Two more hello worlds call `start` and count nothing, as a tool asked for its
//! `--version` may, one of them with crash reporting on: neither opens the counter
//! file (that waits for the first count) nor starts the rotation thread.
//!
//! `cargo bench -p telemetry --bench start`

#[path = "../../counter/benches/alternate.rs"]
mod alternate;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use telemetry::counter::Counter;

const RUNS: usize = 1000;
const WARMUP: usize = 10;

static STARTS: Counter = Counter::new("bench/starts");

#[allow(clippy::print_stdout)]
fn main() {
    let dir = || std::env::var_os("TELEMETRY_BENCH_DIR").unwrap();
    let config = || telemetry::Config::new(telemetry::program!()).dir(dir());
    match std::env::var(alternate::ROLE).as_deref() {
        Ok("plain") => println!("hello"),
        Ok(role @ ("uncounted" | "crashes-uncounted")) => {
            let started = telemetry::start(config().report_crashes(role == "crashes-uncounted"));
            println!("hello");
            drop(started);
        }
        Ok(role @ ("local" | "crashes")) => {
            let config = config().report_crashes(role == "crashes");
            let begin = Instant::now();
            let started = telemetry::start(config);
            let took = begin.elapsed();
            let counting = Instant::now();
            STARTS.inc();
            let first_count = counting.elapsed();
            println!("hello");
            drop(started);
            record(&Path::new(&dir()).join(format!("{role}.ns")), took);
            record(
                &Path::new(&dir()).join(format!("{role}-count.ns")),
                first_count,
            );
        }
        _ if alternate::listing() => {}
        _ => measure(),
    }
}

/// Appends one in-process timing (after the program's work, outside what is timed).
fn record(path: &Path, took: Duration) {
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{}", took.as_nanos()).unwrap();
}

/// The minimum and median of the timings recorded in `path`, skipping the warm-up
/// runs. On a busy machine the minimum is the better estimate of the unloaded cost.
fn recorded(path: &Path) -> (Duration, Duration) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ns: Vec<u64> = text
        .lines()
        .skip(WARMUP)
        .map(|l| l.parse().unwrap())
        .collect();
    ns.sort_unstable();
    (
        Duration::from_nanos(ns[0]),
        Duration::from_nanos(ns[ns.len() / 2]),
    )
}

#[allow(clippy::print_stdout)]
fn measure() {
    let dir = tempfile::tempdir().unwrap();
    // An empty DO_NOT_TRACK does not turn telemetry off, whatever the shell exported.
    // The user's own telemetry root (its `off` switch, the registry that `start`
    // lists this directory in) is left alone: the runs get one of their own.
    let root = dir.path().join("config");
    let env = [
        ("TELEMETRY_BENCH_DIR", dir.path().as_os_str()),
        ("DO_NOT_TRACK", std::ffi::OsStr::new("")),
        ("XDG_CONFIG_HOME", root.as_os_str()),
    ];
    // Two groups of three, each with plain runs of its own: local mode, then crash
    // reporting (neither starts a child: no crash waits, no upload is asked for).
    let quiet = alternate::medians(&["plain", "local", "uncounted"], RUNS, WARMUP, &env);
    let crashing = alternate::medians(
        &["plain", "crashes", "crashes-uncounted"],
        RUNS,
        WARMUP,
        &env,
    );
    let m = [quiet[0], quiet[1], crashing[1], quiet[2], crashing[2]];
    let counted = alternate::counted(dir.path());
    assert_eq!(counted.count["bench/starts"], 2 * (RUNS + WARMUP) as u64);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let added = |i: usize| {
        let plain = if matches!(i, 2 | 4) {
            crashing[0]
        } else {
            m[0]
        };
        us(m[i]) - us(plain)
    };
    println!("process start, median of {RUNS} alternating runs (µs):");
    println!("  hello world:                            {:8.1}", us(m[0]));
    println!(
        "  + start (local mode, no child):         {:8.1}  ({:+.1})",
        us(m[1]),
        added(1)
    );
    println!(
        "  + start with crash reporting (journal): {:8.1}  ({:+.1})",
        us(m[2]),
        added(2)
    );
    println!(
        "  + start (local mode), counting nothing:{:7.1}  ({:+.1})",
        us(m[3]),
        added(3)
    );
    println!(
        "  + start with crash reporting, counting nothing:{:7.1}  ({:+.1})",
        us(m[4]),
        added(4)
    );
    println!("in-process (µs):                                min    median");
    for role in ["local", "crashes"] {
        let (min, median) = recorded(&dir.path().join(format!("{role}.ns")));
        println!(
            "  start, {role:8}                       {:8.1}  {:8.1}",
            us(min),
            us(median)
        );
        let (min, median) = recorded(&dir.path().join(format!("{role}-count.ns")));
        println!(
            "  then the first count, {role:8}        {:8.1}  {:8.1}",
            us(min),
            us(median)
        );
    }
}
