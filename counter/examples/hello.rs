//! Counts into the telemetry directory given as the first argument, then prints the
//! counter file's path, for `telemetry dump` to show.
//!
//! `cargo run -p telemetry-counter --example hello -- /tmp/telemetry-demo`

use telemetry_counter::{Counter, StackCounter, program};

static RUNS: Counter = Counter::new("hello/runs");
static WHERE: StackCounter = StackCounter::new("hello/where", 4);

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: hello TELEMETRY_DIR");
        return std::process::ExitCode::from(2);
    };
    let status = telemetry_counter::open_dir(dir, program!());
    RUNS.inc();
    telemetry_counter::inc(&format!("hello/args:{}", std::env::args().len() - 2));
    WHERE.inc();
    match status.path() {
        Some(path) => println!("{}", path.display()),
        None => eprintln!("not counting into a file: {status:?}"),
    }
    std::process::ExitCode::SUCCESS
}
