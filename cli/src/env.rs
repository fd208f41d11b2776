//! `telemetry env`: where telemetry lives, which mode is in effect and why, and what
//! is kept.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use telemetry_internal::{Mode, ModeError, do_not_track};

use super::{CmdResult, Context, Failure};

pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let dir = ctx.dir()?;
    let root = dir.root();
    // A root that exists but is not a readable directory is an error; a missing root
    // only means nothing has been collected yet.
    match std::fs::read_dir(root) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(Failure::io(format!("cannot read {}", root.display()), &err));
        }
    }
    writeln!(ctx.out, "dir: {}", root.display())?;
    writeln!(ctx.out, "mode: {}", mode_line(&dir, do_not_track()))?;
    writeln!(ctx.out, "mode file: {}", dir.mode_file().display())?;
    for (label, path) in [("local", dir.local()), ("upload", dir.upload())] {
        list(ctx, label, &path)?;
    }
    match telemetry_upload::last_config(root) {
        Some(config) => writeln!(
            ctx.out,
            "upload config: version {} (the last one fetched)",
            super::terminal_safe(config.version())
        )?,
        None => writeln!(ctx.out, "upload config: none fetched yet")?,
    }
    let debug = match dir.debug_if_enabled() {
        Some(_) => "on (logs are written here)",
        None => "off (create this directory to enable logs)",
    };
    writeln!(ctx.out, "debug: {} {debug}", dir.debug().display())?;
    Ok(ExitCode::SUCCESS)
}

/// The effective mode and why: `off (DO_NOT_TRACK is set; the mode file says on …)`.
fn mode_line(dir: &telemetry_internal::Dir, dnt: bool) -> String {
    let read = dir.read_mode();
    let file_says = match &read {
        Ok(mode) if dir.mode_file().exists() => Ok(format!("the mode file says {mode}")),
        Ok(_) => Ok("no mode file; local is the default".to_owned()),
        Err(err @ ModeError::Malformed(_)) => Err(format!("{err}; read as local")),
        Err(err @ ModeError::Unreadable(_)) => Err(format!("{err}; read as local")),
    };
    let effective = if dnt {
        Mode::Off
    } else {
        read.unwrap_or(Mode::Local)
    };
    let why = match file_says {
        Ok(text) | Err(text) => text,
    };
    if dnt {
        format!("{effective} (DO_NOT_TRACK is set; {why})")
    } else {
        format!("{effective} ({why})")
    }
}

fn list(ctx: &mut Context<'_>, label: &str, path: &Path) -> Result<(), Failure> {
    let mut names: Vec<String> = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            writeln!(ctx.out, "{label}: {} (absent)", path.display())?;
            return Ok(());
        }
        Err(err) => return Err(Failure::io(format!("cannot read {}", path.display()), &err)),
    };
    names.sort();
    let files = if names.len() == 1 { "file" } else { "files" };
    writeln!(
        ctx.out,
        "{label}: {} ({} {files})",
        path.display(),
        names.len()
    )?;
    for name in names {
        writeln!(ctx.out, "  {}", super::terminal_safe(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry_internal::Dir;

    #[test]
    fn explains_the_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        assert_eq!(
            mode_line(&dir, false),
            "local (no mode file; local is the default)"
        );
        dir.set_mode(Mode::Off).unwrap();
        assert_eq!(mode_line(&dir, false), "off (the mode file says off)");
        std::fs::write(dir.mode_file(), "yes please").unwrap();
        let line = mode_line(&dir, false);
        assert!(
            line.starts_with("local (the mode file holds \"yes please\""),
            "{line}"
        );
        assert!(line.ends_with("read as local)"), "{line}");
        let since = telemetry_internal::parse_date("2026-11-20").unwrap();
        dir.set_mode(Mode::On { since }).unwrap();
        assert_eq!(
            mode_line(&dir, true),
            "off (DO_NOT_TRACK is set; the mode file says on 2026-11-20)"
        );
    }
}
