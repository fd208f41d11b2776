//! A small tool with telemetry, as a tool author would write it: the example of
//! `cargo xtask demo`, and of the recipe for checking that a tool's counters arrive
//! (the facade's guide, "Checking that your counters arrive").
//!
//! ```text
//! greeter [--clock YYYY-MM-DD] [--server URL] [--wait] COMMAND
//!
//!   greet [NAME]      prints a greeting
//!   crash FILE        reads FILE, and panics if it cannot (FILE is never counted)
//!   telemetry ...     the `telemetry` command, embedded
//! ```
//!
//! `--clock` runs its telemetry as if it were that day (`Config::clock`): the counts go
//! into that day's week, and `greeter --clock DAY telemetry on` dates the opt-in DAY.
//! A real tool would offer this only to its tests (through an environment variable of
//! its own, say). `--server URL` uploads to `URL/upload` under the config at
//! `URL/config.json`; `--wait` waits for the telemetry child (the upload) to finish.

use std::process::ExitCode;

use telemetry::counter::Counter;

static RUNS: Counter = Counter::new("greeter/runs");
static GREET: Counter = Counter::new("greeter/subcommand:greet");
static CRASH: Counter = Counter::new("greeter/subcommand:crash");
// Whether a name was given, never the name itself.
static NAMED: Counter = Counter::new("greeter/name:given");
static UNNAMED: Counter = Counter::new("greeter/name:default");

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    // `program!()` names the calling package (`telemetry-tests` here); a tool's
    // binary is usually its package, and then `program!()` is the right call.
    let program = telemetry::Program::new("greeter", env!("CARGO_PKG_VERSION"));
    let mut config = telemetry::Config::new(program).report_crashes(true);
    let mut wait = false;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(flag) = args.next_if(|a| a.starts_with("--")) {
        if flag == "--wait" {
            wait = true;
            continue;
        }
        let value = args.next().unwrap_or_default();
        config = match flag.as_str() {
            "--clock" => match telemetry_internal::Day::parse(&value) {
                Some(day) => config.clock(day.start()),
                None => return usage(),
            },
            "--server" => config
                .upload(true)
                .upload_url(format!("{value}/upload"))
                .config_url(format!("{value}/config.json")),
            _ => return usage(),
        };
    }
    let rest: Vec<String> = args.collect();
    if rest.first().map(String::as_str) == Some("telemetry") {
        let args = std::iter::once("greeter telemetry".to_owned()).chain(rest[1..].iter().cloned());
        return telemetry_cli::run(args, &config);
    }
    let started = telemetry::start(config);
    RUNS.inc();
    match rest.first().map(String::as_str) {
        Some("greet") => {
            GREET.inc();
            match rest.get(1) {
                Some(name) => {
                    NAMED.inc();
                    println!("Hello, {name}!");
                }
                None => {
                    UNNAMED.inc();
                    println!("Hello, world!");
                }
            }
        }
        Some("crash") => {
            CRASH.inc();
            let settings = read_settings(rest.get(1).map_or("", String::as_str));
            println!("{} bytes of settings", settings.len());
        }
        _ => return usage(),
    }
    if wait {
        started.wait();
    }
    ExitCode::SUCCESS
}

#[inline(never)]
fn read_settings(file: &str) -> String {
    match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => panic!("cannot read the settings in {file}: {err}"),
    }
}

#[allow(clippy::print_stderr)]
fn usage() -> ExitCode {
    eprintln!(
        "usage: greeter [--clock YYYY-MM-DD] [--server URL] [--wait] (greet [NAME] | crash FILE | telemetry ...)"
    );
    ExitCode::from(2)
}
