//! `telemetry on`, `off` and `local`: write a mode file and say what it means. On one
//! tool's directory they set its mode; on the telemetry root, `off` and `local` set
//! the user-wide switch and `on` asks which tool (each tool uploads to its own vendor).

use std::process::ExitCode;
use std::time::SystemTime;

use telemetry_internal::{Day, Dir, Mode, Root};

use super::{CmdResult, Context, Failure, Target};
use telemetry_internal::mode_file_says as file_says;

/// Arguments of `on`, `off` and `local`.
#[derive(Debug, clap::Args)]
pub(super) struct ModeArgs {
    /// With --tool: create the directory of a tool that has none yet (without it, a
    /// tool name that matches no directory is an error, so that a typo never looks
    /// like a change).
    #[arg(long)]
    create: bool,
}

/// `--tool NAME` names a tool that has no directory: a typo, or a tool that has not
/// run yet. Setting a mode there would change nothing the real tool reads, and would
/// tell the person it did; so it is an error that lists the known tools, unless
/// `--create` says the directory is meant.
fn check_tool_exists(
    ctx: &Context<'_>,
    dir: &Dir,
    args: &ModeArgs,
    subcommand: &str,
) -> Result<(), Failure> {
    let Some(tool) = &ctx.tool_flag else {
        return Ok(());
    };
    if args.create || std::fs::symlink_metadata(dir.root()).is_ok() {
        return Ok(());
    }
    let known = match ctx.root().ok().and_then(|root| super::known_tools(&root)) {
        Some(names) => format!("tools with a directory: {names}"),
        None => "no tool has a telemetry directory yet".to_owned(),
    };
    Err(Failure::Message(format!(
        "no tool {} has a telemetry directory ({} does not exist), so nothing was changed; \
         {known}. To set the mode of a tool that has not run yet: {} --create",
        super::terminal_safe(tool),
        dir.root().display(),
        ctx.hint(subcommand),
    )))
}

pub(super) fn on(ctx: &mut Context<'_>, args: &ModeArgs) -> CmdResult {
    let dir = match ctx.target()? {
        Target::Tool(dir) => {
            check_tool_exists(ctx, &dir, args, "on")?;
            dir
        }
        Target::Root(root) => {
            let tools = super::listed_tools(&root).unwrap_or_default();
            let example = tools
                .first()
                .map_or_else(|| "NAME".to_owned(), |(name, _)| name.clone());
            let known = match super::known_tools(&root) {
                Some(names) => format!("tools: {names}"),
                None => "no tool has a telemetry directory yet".to_owned(),
            };
            let message = format!(
                "uploading is turned on one tool at a time, since each tool sends its reports \
                 to its own vendor: {} ({known})",
                ctx.tool_hint(&example, "on")
            );
            return ctx.usage_error("on", message);
        }
    };
    let (since, already) = match dir.read_mode() {
        Ok(Mode::On { since }) => (Day::from_date(since), true),
        // The embedding program's pretended clock, if it set one (`Config::clock`):
        // a test that back-dates a week opts in before it.
        _ => (
            Day::of(ctx.config.get_clock().unwrap_or_else(SystemTime::now)),
            false,
        ),
    };
    if !already {
        set(
            &dir,
            Mode::On {
                since: since.date(),
            },
        )?;
    }
    let destination = match ctx.config.get_upload_url() {
        Some(url) if ctx.dir_flag.is_none() && ctx.tool_flag.is_none() => format!("to {url}"),
        _ => "to the upload address the program was built with".to_owned(),
    };
    let first = if already {
        format!(
            "Telemetry uploading was already on since {since}; the opt-in date is unchanged \
             (mode file: {}).",
            dir.mode_file().display()
        )
    } else {
        format!(
            "Telemetry uploading is now on (mode file: {}).",
            dir.mode_file().display()
        )
    };
    writeln!(
        ctx.out,
        "{first}

Once a week, the program counting into {root}
may send a report {destination}.
A report holds only the counters named in that program's public upload config:
counts of events such as which commands and options were used, and where the
program crashed (function names in the program, never your data). It never holds
file contents, paths, arguments or environment variables. Data collected on or
before {since} is never uploaded, and nothing older than three weeks is sent.

To see what has been collected and what would be uploaded: {view}
To stop uploading but keep counting locally: {local}
To turn telemetry off entirely: {off}",
        root = dir.root().display(),
        view = ctx.hint("view"),
        local = ctx.hint("local"),
        off = ctx.hint("off"),
    )?;
    privacy_policy(ctx)?;
    note_other_switches(ctx);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn off(ctx: &mut Context<'_>, args: &ModeArgs) -> CmdResult {
    match ctx.target()? {
        Target::Tool(dir) => {
            check_tool_exists(ctx, &dir, args, "off")?;
            set(&dir, Mode::Off)?;
            writeln!(
                ctx.out,
                "Telemetry is now off: nothing is counted, written or uploaded.
Data already collected stays until you run: {clean}
To count locally again (never uploaded): {local}",
                clean = ctx.hint("clean"),
                local = ctx.hint("local"),
            )?;
        }
        Target::Root(root) => {
            set_root(&root, Mode::Off)?;
            writeln!(
                ctx.out,
                "Telemetry is now off for every tool on this machine (user-wide switch: {}):
nothing is counted, written or uploaded, whatever each tool's own mode says.
Data already collected stays until you run: {clean}
To let each tool's own mode apply again: {local}",
                root.mode_file().display(),
                clean = ctx.hint("clean"),
                local = ctx.hint("local"),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn local(ctx: &mut Context<'_>, args: &ModeArgs) -> CmdResult {
    match ctx.target()? {
        Target::Tool(dir) => {
            check_tool_exists(ctx, &dir, args, "local")?;
            set(&dir, Mode::Local)?;
            writeln!(
                ctx.out,
                "Telemetry is now local: counters are kept on this machine and never uploaded.
To see them: {view}
To allow uploading: {on}
To stop counting: {off}",
                view = ctx.hint("view"),
                on = ctx.hint("on"),
                off = ctx.hint("off"),
            )?;
            note_other_switches(ctx);
        }
        Target::Root(root) => {
            set_root(&root, Mode::Local)?;
            writeln!(
                ctx.out,
                "The user-wide switch no longer turns telemetry off ({}):
each tool's own mode applies, and a tool without one counts locally and never uploads.",
                root.mode_file().display()
            )?;
            // Saying "local" must not hide that some tool still uploads.
            let tools = super::listed_tools(&root).unwrap_or_default();
            for (name, dir) in &tools {
                if let Ok(Mode::On { since }) = dir.read_mode() {
                    writeln!(
                        ctx.out,
                        "{name}: uploading is on (since {}); to keep it local: {}",
                        Day::from_date(since),
                        ctx.tool_hint(name, "local")
                    )?;
                }
            }
            if ctx.ambient.do_not_track {
                ctx.warn("DO_NOT_TRACK is set in this environment, so telemetry stays off wherever it is set");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn set(dir: &Dir, mode: Mode) -> Result<(), Failure> {
    super::check_not_a_file(dir.root())?;
    dir.set_mode(mode).map_err(|err| {
        Failure::io(
            format!("cannot write the mode file {}", dir.mode_file().display()),
            &err,
        )
    })
}

fn set_root(root: &Root, mode: Mode) -> Result<(), Failure> {
    super::check_not_a_file(root.path())?;
    root.set_mode(mode).map_err(|err| {
        Failure::io(
            format!("cannot write the mode file {}", root.mode_file().display()),
            &err,
        )
    })
}

fn privacy_policy(ctx: &mut Context<'_>) -> Result<(), Failure> {
    if let Some(url) = ctx.options.privacy_policy_url() {
        writeln!(ctx.out, "Privacy policy: {url}")?;
    }
    Ok(())
}

/// Warns when a switch above the tool's mode file keeps telemetry off anyway.
fn note_other_switches(ctx: &mut Context<'_>) {
    if ctx.ambient.do_not_track {
        ctx.warn(
            "DO_NOT_TRACK is set in this environment, so telemetry stays off wherever it is set",
        );
    } else if let Some(root) = ctx.ambient.root().filter(Root::is_off) {
        let file = root.mode_file();
        let says = file_says(root.read_mode(), &file);
        ctx.warn(format!(
            "the user-wide switch keeps every tool off ({says}); to lift it: telemetry local"
        ));
    }
}
