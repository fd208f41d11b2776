//! A tool that describes its command line with clap's derive API and counts what a
//! person gave on it with `telemetry::count_flags` and `telemetry::count_subcommands`.
//! The `flags` end-to-end tests run it and read its counter file.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// A tool with options, flags and nested subcommands.
#[derive(Parser)]
struct Cli {
    /// The telemetry directory (from the environment in the tests: never counted).
    #[arg(long, env = "FLAGS_TOOL_DIR")]
    dir: PathBuf,
    /// A value the tool must never count.
    #[arg(long)]
    name: Option<String>,
    /// Say more.
    #[arg(short, long)]
    verbose: bool,
    /// Parallel jobs (a default: never counted unless given).
    #[arg(long, default_value_t = 4)]
    jobs: u32,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Builds.
    Build {
        /// Optimised.
        #[arg(long)]
        release: bool,
        /// A value the tool must never count.
        #[arg(long)]
        target: Option<String>,
    },
    /// Manages remotes.
    Remote {
        #[command(subcommand)]
        command: Remote,
    },
}

#[derive(Subcommand)]
enum Remote {
    /// Adds a remote.
    Add {
        /// Replace an existing one.
        #[arg(long)]
        force: bool,
        /// A value the tool must never count.
        url: String,
    },
}

fn main() {
    // `Cli::parse()` would do; the matches are what `count_flags` reads.
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let config = telemetry::Config::new(telemetry::program!())
        .dir(&cli.dir)
        .report_crashes(false);
    let _ = telemetry::start(config);
    telemetry::count_flags("flags_derive/flag:", &matches);
    telemetry::count_subcommands("flags_derive/command:", &matches);
    let _ = (cli.name, cli.verbose, cli.jobs, cli.command.is_some());
}
