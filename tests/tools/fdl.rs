//! `fdl`, a small `fd`: finds files whose names contain a pattern. It is the binary
//! `fdl` of the package `telemetry-tests`, as `fd` is the binary of the package
//! `fd-find`, and it takes telemetry the way a maintainer adds it to such a tool:
//! `start` first in `main` with crash reporting on, the default telemetry directory,
//! and counters for runs, options, errors and result buckets.
//!
//! ```text
//! fdl [-e EXT]... [-H] [-t f|d] [-d DEPTH] [PATTERN] [PATH]
//! ```
//!
//! The end-to-end scenario `tests/tests/binary_name.rs` runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use telemetry::counter::Counter;

static RUNS: Counter = Counter::new("fdl/runs");
static NO_SUCH_PATH: Counter = Counter::new("fdl/error:no-such-path");
static UNREADABLE_DIR: Counter = Counter::new("fdl/error:unreadable-dir");

/// Finds entries whose names contain PATTERN, under PATH.
#[derive(Parser)]
#[command(name = "fdl", version)]
struct Cli {
    /// What names must contain (everything if empty).
    #[arg(default_value = "")]
    pattern: String,
    /// Where to search.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Only files with this extension.
    #[arg(short = 'e', long = "extension")]
    extension: Vec<String>,
    /// Include hidden entries.
    #[arg(short = 'H', long)]
    hidden: bool,
    /// Only files (`f`) or directories (`d`).
    #[arg(short = 't', long = "type")]
    kind: Option<Kind>,
    /// Descend at most this deep.
    #[arg(short = 'd', long)]
    max_depth: Option<usize>,
    /// Panics: the bug a crash report is for.
    #[arg(long, hide = true)]
    panic_for_tests: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    #[value(name = "f")]
    File,
    #[value(name = "d")]
    Directory,
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let _ = telemetry::start(telemetry::Config::new(telemetry::program!()).report_crashes(true));
    RUNS.inc();
    let matches = Cli::command().get_matches();
    count_options(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    if cli.panic_for_tests {
        boom();
    }
    if !cli.path.is_dir() {
        NO_SUCH_PATH.inc();
        eprintln!("fdl: '{}' is not a directory", cli.path.display());
        return ExitCode::FAILURE;
    }
    let mut found = Vec::new();
    search(&cli, &cli.path, 1, &mut found);
    found.sort();
    for path in &found {
        println!("{}", path.display());
    }
    telemetry::counter::inc(bucket(found.len()));
    ExitCode::SUCCESS
}

/// `fdl/option:NAME` for each option given on the command line, by its long name:
/// which options people use, never their values.
fn count_options(matches: &clap::ArgMatches) {
    for arg in Cli::command().get_arguments() {
        let id = arg.get_id().as_str();
        if let Some(long) = arg.get_long()
            && matches.value_source(id) == Some(ValueSource::CommandLine)
        {
            telemetry::counter::inc(&format!("fdl/option:{long}"));
        }
    }
}

/// The result count as a chart bucket.
fn bucket(n: usize) -> &'static str {
    match n {
        0 => "fdl/results:0",
        1..=9 => "fdl/results:1-9",
        10..=99 => "fdl/results:10-99",
        _ => "fdl/results:100+",
    }
}

fn search(cli: &Cli, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        UNREADABLE_DIR.inc();
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !cli.hidden {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if matches(cli, &name, &path, is_dir) {
            found.push(path.clone());
        }
        if is_dir && cli.max_depth.is_none_or(|max| depth < max) {
            search(cli, &path, depth + 1, found);
        }
    }
}

fn matches(cli: &Cli, name: &str, path: &Path, is_dir: bool) -> bool {
    let kind_ok = match cli.kind {
        None => true,
        Some(Kind::File) => !is_dir,
        Some(Kind::Directory) => is_dir,
    };
    let extension_ok = cli.extension.is_empty()
        || path
            .extension()
            .is_some_and(|e| cli.extension.iter().any(|want| e == want.as_str()));
    kind_ok && extension_ok && name.contains(&cli.pattern)
}

#[inline(never)]
fn boom() -> ! {
    panic!("fdl: internal error");
}
