//! A small tool with telemetry: it counts its subcommands, reports crashes, and
//! uploads to the server given on its command line.
//!
//! ```text
//! mytool [--dir D] [--server URL] [--crashes] [--upload-time YYYY-MM-DD] [--wait] [--log] [--close-stdio] SUBCOMMAND
//!
//!   greet          prints a greeting
//!   panic SECRET   panics with a message holding SECRET (which must never be counted)
//!   sleep MS       sleeps, holding stdout open
//!   noisy N        writes N lines to stdout and N to stderr
//!   telemetry ...  the `telemetry` command, embedded
//! ```
//!
//! `--server URL` uploads reports to `URL/upload` under the config at `URL/config.json`;
//! `--wait` waits for the telemetry child before exiting, and says on stderr whether
//! one was started (tests use both); `--log` hands stderr to `Config::logger`;
//! `--close-stdio` closes fds 0-2 before `start`, as daemons do.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use telemetry::counter::Counter;

static GREET: Counter = Counter::new("mytool/subcommand:greet");
static PANIC: Counter = Counter::new("mytool/subcommand:panic");
static SLEEP: Counter = Counter::new("mytool/subcommand:sleep");
static NOISY: Counter = Counter::new("mytool/subcommand:noisy");
static OTHER: Counter = Counter::new("mytool/subcommand:other");

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut config = telemetry::Config::new(telemetry::program!());
    let mut wait = false;
    while let Some(flag) = args.next_if(|a| a.starts_with("--")) {
        let mut value = || args.next().unwrap_or_default();
        config = match flag.as_str() {
            "--dir" => config.dir(value()),
            "--server" => {
                let url = value();
                config
                    .upload(true)
                    .upload_url(format!("{url}/upload"))
                    .config_url(format!("{url}/config.json"))
            }
            "--crashes" => config.report_crashes(true),
            "--upload-time" => match parse_day(&value()) {
                Some(t) => config.upload_start_time(t),
                None => return usage(),
            },
            "--wait" => {
                wait = true;
                config
            }
            "--log" => config.logger(std::io::stderr()),
            "--close-stdio" => {
                // A daemon that closed its stdio before `start` (std reopens closed
                // fds 0-2 on /dev/null before `main`, so only `main` can do this).
                for fd in 0..3 {
                    // SAFETY: closing descriptors this program owns and no longer uses;
                    // std's handles then fail with EBADF, which std tolerates.
                    unsafe { libc::close(fd) };
                }
                config
            }
            _ => return usage(),
        };
    }
    let rest: Vec<String> = args.collect();
    if rest.first().map(String::as_str) == Some("telemetry") {
        let args = std::iter::once("mytool telemetry".to_owned()).chain(rest[1..].iter().cloned());
        return telemetry_cli::run(args, &config);
    }
    let started = telemetry::start(config);

    match rest.first().map(String::as_str) {
        Some("greet") => {
            GREET.inc();
            println!("hello");
        }
        Some("panic") => {
            PANIC.inc();
            let secret = rest.get(1).cloned().unwrap_or_default();
            boom(&secret);
        }
        Some("noisy") => {
            NOISY.inc();
            let n: usize = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
            for i in 0..n {
                println!("out {i}");
                eprintln!("err {i}");
            }
        }
        Some("sleep") => {
            SLEEP.inc();
            let ms = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
            std::thread::sleep(Duration::from_millis(ms));
        }
        _ => {
            OTHER.inc();
            return usage();
        }
    }
    if wait {
        eprintln!("child: {}", started.started_child());
        started.wait();
    }
    ExitCode::SUCCESS
}

#[inline(never)]
fn boom(secret: &str) -> ! {
    panic!("something went wrong with {secret}");
}

/// Midnight UTC of `YYYY-MM-DD`.
fn parse_day(text: &str) -> Option<SystemTime> {
    Some(telemetry_internal::Day::parse(text)?.start())
}

#[allow(clippy::print_stderr)]
fn usage() -> ExitCode {
    eprintln!(
        "usage: mytool [--dir D] [--server URL] [--crashes] [--upload-time YYYY-MM-DD] [--wait] [--log] [--close-stdio] (greet | panic SECRET | sleep MS | noisy N | telemetry ...)"
    );
    ExitCode::from(2)
}
