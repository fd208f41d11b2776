//! A tool written the common way: clap parses the command line first — a required
//! subcommand, no room for anything else — and only then calls `telemetry::start`.
//!
//! The telemetry child is this program re-executed with `** telemetry **` as its
//! first argument, which `Cli::parse()` would reject (exit 2). It never gets that far:
//! the facade runs the child before `main`. The end-to-end tests check that this
//! tool's panics are counted and its uploads happen.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use telemetry::counter::Counter;

static GREET: Counter = Counter::new("clap_tool/subcommand:greet");
static PANIC: Counter = Counter::new("clap_tool/subcommand:panic");

/// A tool with a required subcommand.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The telemetry directory.
    #[arg(long)]
    dir: PathBuf,
    /// Upload to `URL/upload` under the config at `URL/config.json`.
    #[arg(long)]
    server: Option<String>,
    /// Pretend the upload runs on this day (YYYY-MM-DD).
    #[arg(long)]
    upload_time: Option<String>,
    /// Wait for the telemetry child before exiting, and say whether one started.
    #[arg(long)]
    wait: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints a greeting.
    Greet,
    /// Panics with a message holding SECRET.
    Panic {
        /// Never counted.
        secret: String,
    },
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() {
    let cli = Cli::parse();
    let mut config = telemetry::Config::new(telemetry::program!())
        .dir(&cli.dir)
        .report_crashes(true);
    if let Some(url) = &cli.server {
        config = config
            .upload(true)
            .upload_url(format!("{url}/upload"))
            .config_url(format!("{url}/config.json"));
    }
    if let Some(day) = cli.upload_time.as_deref().and_then(parse_day) {
        config = config.upload_start_time(day);
    }
    let started = telemetry::start(config);
    match cli.command {
        Command::Greet => {
            GREET.inc();
            println!("hello");
        }
        Command::Panic { secret } => {
            PANIC.inc();
            boom(&secret);
        }
    }
    if cli.wait {
        eprintln!("child: {}", started.started_child());
        started.wait();
    }
}

#[inline(never)]
fn boom(secret: &str) -> ! {
    panic!("clap_tool failed with {secret}");
}

fn parse_day(text: &str) -> Option<SystemTime> {
    Some(telemetry_internal::Day::parse(text)?.start())
}
