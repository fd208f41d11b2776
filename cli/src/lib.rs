//! The `telemetry` command as a library: what a person runs to see and control what is
//! collected about them, standalone for every tool on the machine, or embedded in one
//! tool as `mytool telemetry …`.
//!
//! Programs that use the telemetry library keep their data in the telemetry root,
//! `<user config dir>/telemetry/`, one directory per tool. The command works on:
//! - `--dir PATH`: one telemetry directory;
//! - `--tool NAME`: the directory of the tool `NAME`, `<root>/NAME`, or the directory
//!   elsewhere (`Config::dir`) that `start` listed for `NAME` in `<root>/directories`;
//! - neither: the whole root for the standalone `telemetry` command (every tool's
//!   directory and the user-wide switch), the tool's own directory when embedded.
//!
//! | command | what it does |
//! |---|---|
//! | `on` / `off` / `local` `[--create]` | sets the mode, and says what that means; on the root, `off` / `local` set the user-wide switch and `on` asks for `--tool` (each tool uploads to its own vendor); `--tool NAME` for a tool without a directory changes nothing and fails (a typo must not look like an opt-out) unless `--create` |
//! | `env` | every directory, the mode in force and which switch decided it, the data kept, the debug log |
//! | `dump [FILE]...` | counter files as JSON: the data Go's `counter.Parse` reads, in the JSON Go's `encoding/json` writes |
//! | `view [--text] [--open] [--output PATH] [--config-file F \| --config-url U]` | a self-contained HTML page (or a table) of the local data |
//! | `csv` | one CSV row per program, version, platform, week and counter |
//! | `clean` | deletes everything that holds data (counter files, reports, `view.html`, logs, leftovers); keeps the mode |
//! | `upload [--dry-run] [-v]` | one upload run, now; `--dry-run` prints the exact bodies and sends nothing, needs no upload URL, and always reads and checks the upload config |
//! | `log [-n N]`, `log --off` | the recent lines of the debug log (`debug/` in a telemetry directory, which once created keeps a log on every run); `--off` removes `debug/` |
//! | `completions SHELL`, `man` | shell completions and a man page, from the same definitions |
//!
//! `dump` prints the same data as Go's `gotelemetry dump` but not the same bytes: Go's
//! command prints a `-- FILE --` header and tab-indented JSON per file, ours prints
//! one JSON document (an object, or an array for several files) indented by one
//! space, exactly as Go's `json.MarshalIndent(counter.Parse(…), "", " ")` would.
//!
//! A tool embeds it under its own name by handing over the arguments that follow its
//! `telemetry` subcommand, led by the name to show in usage messages; help, messages
//! and `--version` are then the tool's:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     let config = telemetry::Config::new(telemetry::program!());
//!     let mut args = std::env::args_os().skip(1);
//!     if args.next().is_some_and(|a| a == "telemetry") {
//!         // `mytool telemetry view`, `mytool telemetry off`, … in mytool's own directory.
//!         let argv = std::iter::once("mytool telemetry".into()).chain(args);
//!         let options = telemetry_cli::Options::new()
//!             .privacy_policy("https://example.com/mytool/telemetry-privacy");
//!         return telemetry_cli::run_with(argv, &config, &options);
//!     }
//!     // … the tool's own work …
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! Tests (and tools that capture output) use [`run_with_writers`], which also takes
//! the [`Ambient`] inputs (`DO_NOT_TRACK`, the user's config directory) that [`run`]
//! reads from the process once:
//!
//! ```
//! use telemetry_cli::Ambient;
//!
//! let home = tempfile::tempdir()?;
//! let ambient = Ambient::with_config_dir(home.path());
//! let config = telemetry::Config::new(telemetry::program!());
//! let options = telemetry_cli::Options::new();
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = telemetry_cli::run_with_writers(
//!     ["mytool telemetry", "off"], &config, &options, &ambient, &mut out, &mut err,
//! );
//! assert_eq!(code, std::process::ExitCode::SUCCESS);
//! let mode = home.path().join("telemetry").join(config.get_program().name()).join("mode");
//! assert_eq!(std::fs::read_to_string(mode)?, "off\n");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! What it reads, it reads carefully: a telemetry directory whose `local/`, `upload/`
//! or `debug/` is a link (or a directory of another user) is refused by every command,
//! so nothing is read, listed or removed through it; counter files are read without
//! following links, at most 64 MiB, refused from their size. Every name shown to a
//! person (file and counter names, in messages and output) goes through one escaping
//! function that shows control characters (C0, DEL, C1) and bidirectional overrides,
//! isolates and marks as `\u{…}` escapes; `dump`'s JSON writes the same characters as
//! `\uXXXX` escapes.
//!
//! Exit status: 0 on success (also when the reader of the output went away, as in
//! `telemetry env | head -1`), 1 when a file or directory cannot be read or written
//! (with a one-line message on stderr), 2 for bad usage (with the usage on stderr).

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::FromArgMatches;
use telemetry::Config;

/// The ambient inputs [`run_with_writers`] takes: `DO_NOT_TRACK` and the user's config
/// directory (re-exported so that a caller needs no other crate to name it).
pub use telemetry_internal::Ambient;

mod args;
mod clean;
mod context;
mod csv;
mod data;
mod dump;
mod env;
mod failure;
mod generate;
mod html;
mod json;
mod log;
mod mode;
mod text;
mod upload;
mod view;

use crate::args::{Cli, build_command, command_name};
use crate::context::{Context, Target, check_dir, check_not_a_file, known_tools, listed_tools};
use crate::failure::{CmdResult, Failure};
use crate::text::{human_size, is_unsafe_char, shown, terminal_safe};

/// How a tool embeds the command, beyond its [`Config`]: built with chained calls.
///
/// ```
/// let options = telemetry_cli::Options::new()
///     .privacy_policy("https://example.com/privacy");
/// assert_eq!(options.privacy_policy_url(), Some("https://example.com/privacy"));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Options {
    privacy_policy: Option<String>,
    machine_wide: bool,
}

impl Options {
    /// The defaults: no privacy policy; without `--dir`/`--tool`, the tool's own
    /// directory.
    pub fn new() -> Options {
        Options::default()
    }

    /// A privacy-policy URL that `on`, `env` and `--help` show.
    pub fn privacy_policy(mut self, url: impl Into<String>) -> Options {
        self.privacy_policy = Some(url.into());
        self
    }

    /// Without `--dir` or `--tool`, work on the telemetry root (every tool's directory
    /// and the user-wide switch) instead of the tool's own directory: what the
    /// standalone `telemetry` command does.
    pub fn machine_wide(mut self, on: bool) -> Options {
        self.machine_wide = on;
        self
    }

    /// The privacy-policy URL, if set.
    pub fn privacy_policy_url(&self) -> Option<&str> {
        self.privacy_policy.as_deref()
    }

    /// Whether the command works on the whole root without `--dir` or `--tool`.
    pub fn is_machine_wide(&self) -> bool {
        self.machine_wide
    }
}

/// Runs the `telemetry` command with `args` (including the program name, as in
/// `std::env::args_os()`) for the tool described by `config`, printing to this
/// process's stdout and stderr.
///
/// Without `--dir` or `--tool`, it uses `config`'s telemetry directory. It never
/// panics on bad input: bad usage exits with status 2, unreadable or unwritable files
/// with 1.
pub fn run<I, T>(args: I, config: &Config) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(args, config, &Options::new())
}

/// [`run`] with [`Options`].
pub fn run_with<I, T>(args: I, config: &Config, options: &Options) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // The one place the command reads DO_NOT_TRACK and the config directory.
    let ambient = Ambient::from_process();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let terminal = stderr.is_terminal();
    run_inner(
        args,
        config,
        options,
        &ambient,
        Streams {
            out: &mut stdout.lock(),
            err: &mut stderr.lock(),
            err_is_terminal: terminal,
        },
    )
}

/// [`run_with`], with the ambient inputs given and what it prints written to `stdout`
/// and `stderr` instead of the process's.
pub fn run_with_writers<I, T>(
    args: I,
    config: &Config,
    options: &Options,
    ambient: &Ambient,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(
        args,
        config,
        options,
        ambient,
        Streams {
            out: stdout,
            err: stderr,
            err_is_terminal: false,
        },
    )
}

struct Streams<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// Whether progress may be drawn on `err` (it is a terminal).
    err_is_terminal: bool,
}

fn run_inner<I, T>(
    args: I,
    config: &Config,
    options: &Options,
    ambient: &Ambient,
    streams: Streams<'_>,
) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let Streams {
        out,
        err,
        err_is_terminal,
    } = streams;
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let name = command_name(args.first());
    let command = build_command(&name, config, options);
    let cli = match command
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to stderr, 2.
            let text = error.render().to_string();
            let stream: &mut dyn Write = if error.use_stderr() { err } else { out };
            let _ = stream.write_all(text.as_bytes());
            let _ = stream.flush();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let mut ctx = Context {
        name,
        dir_flag: cli.dir.clone(),
        tool_flag: cli.tool.clone(),
        config,
        options,
        ambient,
        out,
        err,
        err_is_terminal,
    };
    let result = ctx.dispatch(cli.command);
    let flushed = ctx.out.flush();
    let result = match (result, flushed) {
        (Ok(_), Err(error)) => Err(Failure::Output(error)),
        (result, _) => result,
    };
    match result {
        Ok(code) => code,
        // The reader went away (`telemetry env | head -1`): nothing to say to anyone.
        Err(Failure::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let _ = writeln!(
                ctx.err,
                "{}: {}",
                ctx.name,
                terminal_safe(&failure.to_string())
            );
            let _ = ctx.err.flush();
            ExitCode::FAILURE
        }
    }
}
