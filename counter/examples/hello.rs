//! A tiny tool that counts: it greets each NAME (or the world) and counts its runs and
//! greetings into the telemetry directory DIR, then says which counter file it wrote,
//! for `telemetry dump` to show.
//!
//! `cargo run -p telemetry-counter --features stack --example hello -- /tmp/telemetry-demo Ada Grace`
//!
//! What is counted says how the tool was used, never what it was given: how many names,
//! not which ones.

use telemetry_counter::{Counter, Program, StackCounter};

static RUNS: Counter = Counter::new("hello/runs");
static GREETINGS: Counter = Counter::new("hello/greetings");
static NAMED: Counter = Counter::new("hello/name:given");
static UNNAMED: Counter = Counter::new("hello/name:default");
/// Where long names are greeted from, by the two innermost frames.
static LONG_NAME: StackCounter = StackCounter::new("hello/long-name", 2);

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: hello TELEMETRY_DIR [NAME...]");
        return std::process::ExitCode::from(2);
    };
    // `program!()` would name the package (`telemetry-counter`); this example is its
    // own program. A tool whose binary is its package calls `program!()`.
    let status = telemetry_counter::open_dir(
        dir,
        Program::new(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION")),
    );
    RUNS.inc();
    let names: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    if names.is_empty() {
        UNNAMED.inc();
        greet("world");
    } else {
        NAMED.add(names.len() as u64);
        for name in &names {
            greet(name);
        }
    }
    match status.path() {
        Some(path) => println!("(counted into {})", path.display()),
        None => eprintln!("not counting into a file: {status:?}"),
    }
    std::process::ExitCode::SUCCESS
}

#[inline(never)]
#[allow(clippy::print_stdout)]
fn greet(name: &str) {
    GREETINGS.inc();
    if name.chars().count() > 4 {
        LONG_NAME.inc();
    }
    println!("Hello, {name}!");
}
