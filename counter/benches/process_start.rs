//! What opening the counter file and counting once adds to a whole process, measured
//! by alternating runs of this binary as a plain hello world and as a hello world that
//! counts, so both see the same machine state.
//!
//! `cargo bench -p telemetry-counter --bench process_start`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use telemetry_counter::{Counter, program};

const ROLE: &str = "TELEMETRY_BENCH_ROLE";
const RUNS: usize = 300;

static STARTS: Counter = Counter::new("bench/starts");

#[allow(clippy::print_stdout)]
fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("plain") => println!("hello"),
        Ok("count") => {
            let dir = std::env::var_os("TELEMETRY_BENCH_DIR").unwrap();
            telemetry_counter::open_dir(dir, program!());
            STARTS.inc();
            println!("hello");
        }
        _ => measure(),
    }
}

#[allow(clippy::print_stdout)]
fn measure() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test runners probing benches
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |role: &str| {
        let start = Instant::now();
        let status = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .env("TELEMETRY_BENCH_DIR", dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed()
    };
    // Warm up, and create the file once: the steady state is a file that exists.
    for _ in 0..10 {
        run("plain");
        run("count");
    }
    let (mut plain, mut count) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        plain.push(run("plain"));
        count.push(run("count"));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (p, c) = (median(&mut plain), median(&mut count));
    let counted = telemetry_counter::read_file(
        std::fs::read_dir(dir.path().join("local"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "count"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(counted.count["bench/starts"], (RUNS + 10) as u64);
    println!("process start, median of {RUNS} alternating runs:");
    println!("  hello world:                    {p:>10.1?}");
    println!("  hello world + open_dir + inc:   {c:>10.1?}");
    println!("  added:                          {:>10.1?}", c.saturating_sub(p));
}
