//! The `telemetry` command as a library: what a person runs to see and control what is
//! collected about them, embeddable in any tool as `mytool telemetry …`.
//!
//! [`run`] parses the arguments with clap and runs one subcommand against a telemetry
//! directory: `--dir PATH` if given, else [`Config::telemetry_dir`] (the tool's own
//! default). The subcommands are:
//!
//! | command | what it does |
//! |---|---|
//! | `on` / `off` / `local` | sets the mode, and says what that means |
//! | `env` | the directory, the effective mode and why, the files in `local/` and `upload/` |
//! | `dump [FILE]...` | counter files as JSON, byte for byte what Go's x/telemetry prints |
//! | `view [--text] [--open] [--output PATH]` | a self-contained HTML page (or a table) of local data |
//! | `csv` | one CSV row per program, version, week and counter |
//! | `clean` | deletes counter files and reports, keeps the mode |
//! | `upload` | one upload run, now |
//!
//! A tool embeds it under its own name by handing over the arguments that follow its
//! `telemetry` subcommand, led by the name to show in usage messages:
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
//!         return telemetry_cli::run(argv, &config);
//!     }
//!     // … the tool's own work …
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! Tests (and tools that capture output) use [`run_with_writers`]:
//!
//! ```
//! let tmp = tempfile::tempdir()?;
//! let config = telemetry::Config::new(telemetry::program!()).dir(tmp.path());
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = telemetry_cli::run_with_writers(["telemetry", "off"], &config, &mut out, &mut err);
//! assert_eq!(code, std::process::ExitCode::SUCCESS);
//! assert_eq!(std::fs::read_to_string(tmp.path().join("mode"))?, "off\n");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Exit status: 0 on success, 1 when a file or directory cannot be read or written
//! (with a one-line message on stderr), 2 for bad usage (with the usage on stderr).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_internal::Dir;

use telemetry::Config;

mod clean;
mod csv;
mod data;
mod dump;
mod env;
mod html;
mod json;
mod mode;
mod upload;
mod view;

/// Runs the `telemetry` command with `args` (including the program name, as in
/// `std::env::args_os()`), printing to this process's stdout and stderr.
///
/// Without `--dir`, it uses `config`'s telemetry directory. It never panics on bad
/// input: bad usage exits with status 2, unreadable or unwritable files with 1.
pub fn run<I, T>(args: I, config: &Config) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let stdout = io::stdout();
    let stderr = io::stderr();
    run_with_writers(args, config, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`], writing what it prints to `stdout` and `stderr` instead of the process's.
pub fn run_with_writers<I, T>(
    args: I,
    config: &Config,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors to stderr, 2.
            let text = err.render().to_string();
            let stream: &mut dyn Write = if err.use_stderr() {
                &mut *stderr
            } else {
                &mut *stdout
            };
            let _ = stream.write_all(text.as_bytes());
            let _ = stream.flush();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let name = command_name(args.first());
    let mut ctx = Context {
        name,
        dir_flag: cli.dir.clone(),
        config,
        out: stdout,
        err: stderr,
    };
    let result = ctx.dispatch(cli.command);
    let _ = ctx.out.flush();
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(ctx.err, "{}: {failure}", ctx.name);
            let _ = ctx.err.flush();
            ExitCode::FAILURE
        }
    }
}

/// See and control the telemetry this machine collects.
///
/// Programs that use this library count events locally, in weekly files. Nothing
/// leaves the machine unless you run `telemetry on`, and even then only the counters
/// named in a public upload config.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, arg_required_else_help = true)]
struct Cli {
    /// The telemetry directory to use instead of the program's default.
    #[arg(long, global = true, value_name = "PATH")]
    dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn uploading on: weekly reports of approved counters may be sent.
    On,
    /// Turn telemetry off: nothing is counted or written, nothing is sent.
    Off,
    /// Count locally only, never upload (the default).
    Local,
    /// Print the telemetry directory, the mode and why, and the files kept.
    Env,
    /// Print counter files as JSON (all counter files in local/ if none are given).
    Dump {
        /// Counter files (`*.v1.count`).
        files: Vec<PathBuf>,
    },
    /// Show local counters and reports: as an HTML page (default) or a table.
    View(view::ViewArgs),
    /// Print local counters as CSV: one row per program, version, week and counter.
    Csv,
    /// Delete local counter files and reports; keep the mode.
    Clean,
    /// Run one upload now: build due reports and send those the mode allows.
    Upload(upload::UploadArgs),
}

/// Why a command failed: printed as one line after the command's name.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure {
    fn io(what: impl std::fmt::Display, err: &io::Error) -> Failure {
        Failure(format!("{what}: {err}"))
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure(format!("cannot write output: {err}"))
    }
}

type CmdResult = Result<ExitCode, Failure>;

/// Everything a subcommand needs: where to print, which directory, what to call itself.
struct Context<'a> {
    /// The command's name for messages: `telemetry`, or e.g. `mytool telemetry`.
    name: String,
    dir_flag: Option<PathBuf>,
    config: &'a Config,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl Context<'_> {
    fn dispatch(&mut self, command: Command) -> CmdResult {
        match command {
            Command::On => mode::on(self),
            Command::Off => mode::off(self),
            Command::Local => mode::local(self),
            Command::Env => env::run(self),
            Command::Dump { files } => dump::run(self, &files),
            Command::View(args) => view::run(self, &args),
            Command::Csv => csv::run(self),
            Command::Clean => clean::run(self),
            Command::Upload(args) => upload::run(self, &args),
        }
    }

    /// The telemetry directory: `--dir`, else the config's.
    fn dir(&self) -> Result<Dir, Failure> {
        match &self.dir_flag {
            Some(path) => Ok(Dir::new(path.clone())),
            None => self.config.telemetry_dir().ok_or_else(|| {
                Failure("no telemetry directory: there is no home directory; use --dir PATH".into())
            }),
        }
    }

    /// How to run another subcommand against the same directory, for hints:
    /// `telemetry view` or `telemetry --dir '/tmp/x' view`.
    fn hint(&self, subcommand: &str) -> String {
        match &self.dir_flag {
            Some(dir) => format!("{} --dir {} {subcommand}", self.name, shell_quote(dir)),
            None => format!("{} {subcommand}", self.name),
        }
    }

    /// Bad usage found after parsing (an option required only when the config does
    /// not supply it): clap's message and the subcommand's usage on stderr, status 2.
    fn usage_error(&mut self, subcommand: &str, message: impl std::fmt::Display) -> CmdResult {
        use clap::CommandFactory;
        let mut command = Cli::command().bin_name(&self.name);
        command.build();
        let error = match command.find_subcommand_mut(subcommand) {
            Some(sub) => sub.error(clap::error::ErrorKind::MissingRequiredArgument, message),
            None => command.error(clap::error::ErrorKind::MissingRequiredArgument, message),
        };
        self.err.write_all(error.render().to_string().as_bytes())?;
        Ok(ExitCode::from(2))
    }

    /// A warning that does not change the exit status.
    fn warn(&mut self, message: impl std::fmt::Display) {
        let _ = writeln!(self.err, "{}: warning: {message}", self.name);
    }
}

/// The name to show in messages, from argv[0]: its file name if it is a path
/// (`/usr/bin/telemetry` → `telemetry`), as given otherwise (`mytool telemetry`).
fn command_name(argv0: Option<&OsString>) -> String {
    let Some(argv0) = argv0 else {
        return "telemetry".into();
    };
    let text = argv0.to_string_lossy();
    if text.contains(' ') {
        return text.into_owned();
    }
    match Path::new(argv0).file_name() {
        Some(name) if !name.is_empty() => name.to_string_lossy().into_owned(),
        _ => "telemetry".into(),
    }
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@%".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Makes untrusted text (counter names, file contents) safe to print on a terminal:
/// control characters, which could move the cursor or recolour the screen, are
/// shown escaped.
fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_argv0() {
        assert_eq!(command_name(None), "telemetry");
        assert_eq!(
            command_name(Some(&"/usr/bin/telemetry".into())),
            "telemetry"
        );
        assert_eq!(
            command_name(Some(&"mytool telemetry".into())),
            "mytool telemetry"
        );
        assert_eq!(command_name(Some(&"".into())), "telemetry");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(Path::new("/tmp/a-b")), "/tmp/a-b");
        assert_eq!(shell_quote(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(shell_quote(Path::new("it's")), r"'it'\''s'");
    }

    #[test]
    fn terminal_escapes() {
        assert_eq!(terminal_safe("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(terminal_safe("plain/ü"), "plain/ü");
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
