//! `telemetry on`, `off` and `local`: write the mode file and say what it means.

use std::process::ExitCode;

use telemetry_internal::{Mode, do_not_track, format_date, today};

use super::{CmdResult, Context, Failure};

pub(super) fn on(ctx: &mut Context<'_>) -> CmdResult {
    let since = today();
    set(ctx, Mode::On { since })?;
    let dir = ctx.dir()?;
    let destination = match ctx.config.upload_url_str() {
        Some(url) => format!("to {url}"),
        None => "to the upload address each program was built with".to_owned(),
    };
    writeln!(
        ctx.out,
        "Telemetry uploading is now on (mode file: {mode}).

Once a week, programs that count into {root}
may send a report {destination}.
A report holds only the counters named in that program's public upload config:
counts of events such as which commands and options were used, and where the
program crashed (function names in the program, never your data). It never holds
file contents, paths, arguments or environment variables. Data collected on or
before {date} is never uploaded, and nothing older than three weeks is sent.

To see what has been collected and what would be uploaded: {view}
To stop uploading but keep counting locally: {local}
To turn telemetry off entirely: {off}",
        mode = ctx.dir()?.mode_file().display(),
        root = dir.root().display(),
        date = format_date(since),
        view = ctx.hint("view"),
        local = ctx.hint("local"),
        off = ctx.hint("off"),
    )?;
    note_do_not_track(ctx);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn off(ctx: &mut Context<'_>) -> CmdResult {
    set(ctx, Mode::Off)?;
    writeln!(
        ctx.out,
        "Telemetry is now off: nothing is counted, written or uploaded.
Data already collected stays until you run: {clean}
To count locally again (never uploaded): {local}",
        clean = ctx.hint("clean"),
        local = ctx.hint("local"),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn local(ctx: &mut Context<'_>) -> CmdResult {
    set(ctx, Mode::Local)?;
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
    note_do_not_track(ctx);
    Ok(ExitCode::SUCCESS)
}

fn set(ctx: &mut Context<'_>, mode: Mode) -> Result<(), Failure> {
    let dir = ctx.dir()?;
    dir.set_mode(mode).map_err(|err| {
        Failure::io(
            format!("cannot write the mode file {}", dir.mode_file().display()),
            &err,
        )
    })
}

fn note_do_not_track(ctx: &mut Context<'_>) {
    if do_not_track() {
        ctx.warn(
            "DO_NOT_TRACK is set in this environment, so telemetry stays off wherever it is set",
        );
    }
}
