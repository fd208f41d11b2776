//! What opening the counter file and counting once adds to a whole process: this
//! binary runs again as a plain hello world and as a hello world that counts,
//! alternately, so both see the same machine state.
//!
//! `cargo bench -p telemetry-counter --bench process_start`

mod alternate;

use telemetry_counter::{Counter, program};

const RUNS: usize = 300;
const WARMUP: usize = 10;

static STARTS: Counter = Counter::new("bench/starts");

#[allow(clippy::print_stdout)]
fn main() {
    match std::env::var(alternate::ROLE).as_deref() {
        Ok("plain") => println!("hello"),
        Ok("count") => {
            let dir = std::env::var_os("TELEMETRY_BENCH_DIR").unwrap();
            telemetry_counter::open_dir(dir, program!());
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
    // The first counting run creates the file; the steady state is a file that exists.
    let m = alternate::medians(&["plain", "count"], RUNS, WARMUP, &env);
    let counted = alternate::counted(dir.path());
    assert_eq!(counted.count["bench/starts"], (RUNS + WARMUP) as u64);
    println!("process start, median of {RUNS} alternating runs:");
    println!("  hello world:                    {:>10.1?}", m[0]);
    println!("  hello world + open_dir + inc:   {:>10.1?}", m[1]);
    println!(
        "  added:                          {:>10.1?}",
        m[1].saturating_sub(m[0])
    );
}
