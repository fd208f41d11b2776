//! The command line: clap's definitions of the global flags and subcommands, the
//! command built under the name the user typed (with the tool's version and privacy
//! policy), and that name from `argv[0]`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
use telemetry::Config;

use crate::{Options, log, mode, upload, view};

/// The clap command under the name the user typed, with the tool's version and, if
/// given, its privacy policy.
pub(crate) fn build_command(name: &str, config: &Config, options: &Options) -> clap::Command {
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
pub(crate) struct Cli {
    /// One telemetry directory to work on.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) dir: Option<PathBuf>,

    /// The telemetry directory of the tool NAME (NAME under the telemetry root).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "dir")]
    pub(crate) tool: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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

/// The name to show in messages, from `argv[0]`: its file name if it is a path
/// (`/usr/bin/telemetry` → `telemetry`), as given otherwise (`mytool telemetry`).
pub(crate) fn command_name(argv0: Option<&OsString>) -> String {
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
    fn clap_definition_is_valid() {
        let config = Config::new(telemetry::Program::new("mytool", "1.0.0"));
        build_command("mytool telemetry", &config, &Options::new()).debug_assert();
    }
}
