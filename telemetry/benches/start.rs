//! What `telemetry::start` adds to a whole process: this binary runs again as a plain
//! hello world and as hello worlds that call `start`, alternately, so all see the same
//! machine state.
//!
//! `cargo bench -p telemetry --bench start`

#[path = "../../counter/benches/alternate.rs"]
mod alternate;

use telemetry::counter::Counter;

const RUNS: usize = 200;
const WARMUP: usize = 10;

static STARTS: Counter = Counter::new("bench/starts");

#[allow(clippy::print_stdout)]
fn main() {
    let config = || {
        let dir = std::env::var_os("TELEMETRY_BENCH_DIR").unwrap();
        telemetry::Config::new(telemetry::program!()).dir(dir)
    };
    match std::env::var(alternate::ROLE).as_deref() {
        Ok("plain") => println!("hello"),
        Ok("local") => {
            let _ = telemetry::start(config());
            STARTS.inc();
            println!("hello");
        }
        Ok("crashes") => {
            let _ = telemetry::start(config().report_crashes(true));
            STARTS.inc();
            println!("hello");
        }
        _ if alternate::listing() => {}
        _ => measure(),
    }
}

#[allow(clippy::print_stdout)]
fn measure() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TELEMETRY_BENCH_DIR", dir.path().as_os_str())];
    let m = alternate::medians(&["plain", "local", "crashes"], RUNS, WARMUP, &env);
    let counted = alternate::counted(dir.path());
    assert_eq!(counted.count["bench/starts"], 2 * (RUNS + WARMUP) as u64);
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let added = |i: usize| us(m[i]) - us(m[0]);
    println!("process start, median of {RUNS} alternating runs (µs):");
    println!("  hello world:                          {:8.1}", us(m[0]));
    println!(
        "  + start (local mode, no child):       {:8.1}  ({:+.1})",
        us(m[1]),
        added(1)
    );
    println!(
        "  + start with crash reporting (child): {:8.1}  ({:+.1})",
        us(m[2]),
        added(2)
    );
}
