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
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use telemetry::Config;
use telemetry_internal::{Dir, Root};

/// The ambient inputs [`run_with_writers`] takes: `DO_NOT_TRACK` and the user's config
/// directory (re-exported so that a caller needs no other crate to name it).
pub use telemetry_internal::Ambient;

mod clean;
mod csv;
mod data;
mod dump;
mod env;
mod generate;
mod html;
mod json;
mod log;
mod mode;
mod upload;
mod view;

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

/// The clap command under the name the user typed, with the tool's version and, if
/// given, its privacy policy.
fn build_command(name: &str, config: &Config, options: &Options) -> clap::Command {
    let mut command = Cli::command()
        .name(name.to_owned())
        .bin_name(name.to_owned())
        .display_name(name.to_owned())
        .version(config.get_program().version().to_owned());
    let mut after = if options.machine_wide {
        "Without --dir or --tool, it works on the telemetry root: every tool's directory, \
         and the user-wide switch that `off` and `local` set."
            .to_owned()
    } else {
        format!(
            "Without --dir or --tool, it works on {}'s own telemetry directory.",
            config.get_program().name()
        )
    };
    if let Some(url) = options.privacy_policy_url() {
        after.push_str(&format!("\n\nPrivacy policy: {url}"));
    }
    command = command.after_help(after);
    command
}

/// See and control the telemetry this machine collects.
///
/// Programs that use this library count events locally, in weekly files, one directory
/// per tool. Nothing leaves the machine unless you turn uploading on for a tool, and
/// even then only the counters named in that tool's public upload config.
#[derive(Debug, Parser)]
#[command(propagate_version = true, arg_required_else_help = true)]
struct Cli {
    /// One telemetry directory to work on.
    #[arg(long, global = true, value_name = "PATH")]
    dir: Option<PathBuf>,

    /// The telemetry directory of the tool NAME (NAME under the telemetry root).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "dir")]
    tool: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn uploading on for one tool: weekly reports of approved counters may be sent.
    On(mode::ModeArgs),
    /// Turn telemetry off: nothing is counted or written, nothing is sent.
    Off(mode::ModeArgs),
    /// Count locally only, never upload (the default).
    Local(mode::ModeArgs),
    /// Print the telemetry directories, the mode in force and why, and the data kept.
    Env,
    /// Print counter files as JSON (all counter files in local/ if none are given).
    ///
    /// The data is what Go's counter.Parse reads from the same files, as Go's
    /// json.MarshalIndent prints it; Go's `gotelemetry dump` prints the same data with
    /// a `-- FILE --` header and tab indentation instead.
    Dump {
        /// Counter files (`*.v1.count`).
        files: Vec<PathBuf>,
    },
    /// Show local counters and reports: as an HTML page (default) or a table.
    View(view::ViewArgs),
    /// Print local counters as CSV: one row per program, version, platform, week and counter.
    Csv,
    /// Delete collected data (counter files, reports, view.html, logs); keep the mode.
    Clean,
    /// Run one upload now: build due reports and send those the mode allows.
    Upload(upload::UploadArgs),
    /// Print the recent lines of the debug log (written only if debug/ exists).
    Log(log::LogArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff).
    Man,
}

/// Why a command failed: printed as one line after the command's name.
#[derive(Debug)]
enum Failure {
    /// Something a person can act on.
    Message(String),
    /// Writing the output failed.
    Output(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Message(text) => f.write_str(text),
            Failure::Output(err) => write!(f, "cannot write output: {err}"),
        }
    }
}

impl Failure {
    fn io(what: impl std::fmt::Display, err: &io::Error) -> Failure {
        Failure::Message(format!("{what}: {err}"))
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Output(err)
    }
}

type CmdResult = Result<ExitCode, Failure>;

/// What the command works on.
enum Target {
    /// The telemetry root: every tool, and the user-wide switch.
    Root(Root),
    /// One telemetry directory.
    Tool(Dir),
}

/// Everything a subcommand needs: where to print, which directory, what to call itself.
struct Context<'a> {
    /// The command's name for messages: `telemetry`, or e.g. `mytool telemetry`.
    name: String,
    dir_flag: Option<PathBuf>,
    tool_flag: Option<String>,
    config: &'a Config,
    options: &'a Options,
    ambient: &'a Ambient,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    err_is_terminal: bool,
}

impl Context<'_> {
    fn dispatch(&mut self, command: Command) -> CmdResult {
        match command {
            Command::On(args) => mode::on(self, &args),
            Command::Off(args) => mode::off(self, &args),
            Command::Local(args) => mode::local(self, &args),
            Command::Env => env::run(self),
            Command::Dump { files } => dump::run(self, &files),
            Command::View(args) => view::run(self, &args),
            Command::Csv => csv::run(self),
            Command::Clean => clean::run(self),
            Command::Upload(args) => upload::run(self, &args),
            Command::Log(args) => log::run(self, &args),
            Command::Completions { shell } => generate::completions(self, shell),
            Command::Man => generate::man(self),
        }
    }

    /// The telemetry root, `<config dir>/telemetry`.
    fn root(&self) -> Result<Root, Failure> {
        self.ambient.root().ok_or_else(|| {
            Failure::Message("no telemetry root: there is no home directory; use --dir PATH".into())
        })
    }

    /// What to work on: `--dir`, `--tool`, else the root (standalone) or the tool's
    /// own directory (embedded). Nothing is checked on disk.
    fn target(&self) -> Result<Target, Failure> {
        if let Some(path) = &self.dir_flag {
            return Ok(Target::Tool(Dir::new(path.clone())));
        }
        if let Some(tool) = &self.tool_flag {
            check_tool_name(tool)?;
            let root = self.root()?;
            let dir = root.tool(tool);
            if std::fs::symlink_metadata(dir.root()).is_err() {
                // A tool with its own directory elsewhere, listed by `start`.
                if let Some((_, listed)) =
                    root.registered().into_iter().rev().find(|(n, _)| n == tool)
                {
                    return Ok(Target::Tool(listed));
                }
            }
            return Ok(Target::Tool(dir));
        }
        if self.options.machine_wide {
            return Ok(Target::Root(self.root()?));
        }
        Ok(Target::Tool(self.own_dir()?))
    }

    /// The embedding tool's directory: the one its config names, else
    /// `<root>/<program>`.
    fn own_dir(&self) -> Result<Dir, Failure> {
        let name = self.config.get_program().name();
        if self.config.get_dir().is_some() {
            // Set with `.dir(..)`; made absolute as the facade does.
            if let Some(dir) = self.config.telemetry_dir_in(self.ambient) {
                return Ok(dir);
            }
        }
        self.root().map(|root| root.tool(name))
    }

    /// The directories to read: one, or every tool's under the root. A directory named
    /// with `--dir` or `--tool` must exist; a missing default is simply empty.
    fn read_targets(&self) -> Result<Vec<Dir>, Failure> {
        match self.target()? {
            Target::Tool(dir) => {
                self.check_readable(&dir)?;
                Ok(vec![dir])
            }
            Target::Root(root) => {
                check_not_a_file(root.path())?;
                let tools: Vec<Dir> = listed_tools(&root)?.into_iter().map(|(_, d)| d).collect();
                for dir in &tools {
                    check_dir(dir)?;
                }
                Ok(tools)
            }
        }
    }

    /// A directory read by a command: a plain file there is an error, and so is a
    /// missing directory named with `--dir` or `--tool` (a typo should not look like
    /// an empty directory).
    fn check_readable(&self, dir: &Dir) -> Result<(), Failure> {
        check_dir(dir)?;
        let explicit = self.dir_flag.is_some() || self.tool_flag.is_some();
        if explicit && !dir.root().exists() {
            let hint = match (&self.tool_flag, self.root()) {
                (Some(_), Ok(root)) => match known_tools(&root) {
                    Some(names) => format!(" (tools with a directory: {names})"),
                    None => String::new(),
                },
                _ => String::new(),
            };
            return Err(Failure::Message(format!(
                "no telemetry directory at {}{hint}",
                dir.root().display()
            )));
        }
        Ok(())
    }

    /// How to run another subcommand against the same directory, for hints:
    /// `telemetry view` or `telemetry --dir '/tmp/x' view`.
    fn hint(&self, subcommand: &str) -> String {
        match (&self.dir_flag, &self.tool_flag) {
            (Some(dir), _) => format!("{} --dir {} {subcommand}", self.name, shell_quote(dir)),
            (None, Some(tool)) => format!(
                "{} --tool {} {subcommand}",
                self.name,
                shell_quote(Path::new(tool))
            ),
            (None, None) => format!("{} {subcommand}", self.name),
        }
    }

    /// `telemetry --tool NAME SUBCOMMAND`, for hints given on the root.
    fn tool_hint(&self, tool: &str, subcommand: &str) -> String {
        format!(
            "{} --tool {} {subcommand}",
            self.name,
            shell_quote(Path::new(tool))
        )
    }

    /// Bad usage found after parsing (an option required only in some cases): clap's
    /// message and the subcommand's usage on stderr, status 2.
    fn usage_error(&mut self, subcommand: &str, message: impl std::fmt::Display) -> CmdResult {
        let mut command = build_command(&self.name, self.config, self.options);
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
        let message = terminal_safe(&message.to_string());
        let _ = writeln!(self.err, "{}: warning: {message}", self.name);
    }

    /// An error about one item (a file) that does not stop the command: one line,
    /// escaped like every other line shown.
    fn error_line(&mut self, message: impl std::fmt::Display) {
        let message = terminal_safe(&message.to_string());
        let _ = writeln!(self.err, "{}: {message}", self.name);
    }
}

/// A tool's name as used below the root: one plain path component.
fn check_tool_name(tool: &str) -> Result<(), Failure> {
    let plain = !tool.is_empty()
        && tool != "."
        && tool != ".."
        && !tool.contains(['/', '\\'])
        && !tool.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(Failure::Message(format!(
            "{:?} is not a tool name (a tool's directory is <telemetry root>/NAME)",
            terminal_safe(tool)
        )))
    }
}

/// Every tool a person can find from the root, with its name: the directories under
/// the root, then those elsewhere (`Config::dir`) that `start` listed in the root's
/// registry.
fn listed_tools(root: &Root) -> Result<Vec<(String, Dir)>, Failure> {
    let mut tools: Vec<(String, Dir)> = root
        .tools()
        .map_err(|err| Failure::io(format!("cannot read {}", root.path().display()), &err))?
        .into_iter()
        .map(|dir| (tool_name(&dir), dir))
        .collect();
    for (name, dir) in root.registered() {
        if !tools.iter().any(|(_, known)| *known == dir) {
            tools.push((terminal_safe(&name), dir));
        }
    }
    Ok(tools)
}

/// `a, b, c`: the tools [`listed_tools`] finds, or `None` if there is none.
fn known_tools(root: &Root) -> Option<String> {
    let names: Vec<String> = listed_tools(root)
        .ok()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The tool's name: its directory's last component.
fn tool_name(dir: &Dir) -> String {
    dir.root()
        .file_name()
        .map(|n| terminal_safe(&n.to_string_lossy()))
        .unwrap_or_default()
}

/// The one check before any command reads or removes anything in a telemetry
/// directory: it is not a file, and its `local/`, `upload/` and `debug/` are real
/// directories of this user where they exist ([`Dir::check_areas`], which the
/// uploader applies too). A link planted there is an error, never followed.
fn check_dir(dir: &Dir) -> Result<(), Failure> {
    check_not_a_file(dir.root())?;
    dir.check_areas()
        .map_err(|err| Failure::Message(format!("refusing to use {}: {err}", dir.root().display())))
}

/// A telemetry directory or root that exists as something other than a directory is
/// a one-line error.
fn check_not_a_file(path: &Path) -> Result<(), Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(Failure::Message(format!(
            "cannot read {}: not a directory",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Failure::io(format!("cannot read {}", path.display()), &err)),
    }
}

/// The name to show in messages, from `argv[0]`: its file name if it is a path
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

/// Makes untrusted text (counter names, file names, file contents) safe to show to a
/// person: every character [`is_unsafe_char`] calls unsafe is shown escaped
/// (`\u{1b}`, `\n`, `\u{202e}`). The one escaping function for text a person reads:
/// stderr messages, `env`, `view --text`, `csv`, `log`; `view`'s page and `dump`'s
/// JSON escape the same characters in their own syntax. Escaping twice changes
/// nothing.
fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`terminal_safe`] for a path (a name found on disk may hold anything).
fn shown(path: &Path) -> String {
    terminal_safe(&path.display().to_string())
}

/// Whether `c` must never reach a terminal or a page as itself:
/// - control characters: C0 (ESC starts every terminal escape), DEL, and C1
///   (U+0080–U+009F: U+009B is an 8-bit CSI, U+009D an 8-bit OSC, which some
///   terminals obey like `ESC [` and `ESC ]`);
/// - the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the
///   invisible direction marks (U+200E, U+200F, U+061C), which make text display in
///   another order than it is read (a name that looks like another: CVE-2021-42574).
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

/// A size for people: `512 bytes`, `48.2 KiB`, `3.1 MiB`.
fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        1 => "1 byte".to_owned(),
        b if b < KIB => format!("{b} bytes"),
        b if b < KIB * KIB => format!("{:.1} KiB", b as f64 / KIB as f64),
        b => format!("{:.1} MiB", b as f64 / (KIB * KIB) as f64),
    }
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
        // C1 controls (U+009B is an 8-bit CSI) and bidi overrides and isolates.
        assert_eq!(terminal_safe("a\u{9b}2Jb"), "a\\u{9b}2Jb");
        assert_eq!(
            terminal_safe("x\u{202e}gpj.exe\u{2066}\u{2069}"),
            "x\\u{202e}gpj.exe\\u{2066}\\u{2069}"
        );
        // Escaping twice changes nothing.
        let once = terminal_safe("\u{1b}]0;PWNED\u{7}\u{202e}");
        assert_eq!(terminal_safe(&once), once);
    }

    #[test]
    fn tool_names_are_one_component() {
        assert!(check_tool_name("mytool").is_ok());
        assert!(check_tool_name("my.tool-2").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x", "a\nb"] {
            assert!(check_tool_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(16_384), "16.0 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn clap_definition_is_valid() {
        let config = Config::new(telemetry::Program::new("mytool", "1.0.0"));
        build_command("mytool telemetry", &config, &Options::new()).debug_assert();
    }
}
