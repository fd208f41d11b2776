//! `telemetry env`: where telemetry lives, which mode is in effect and which switch
//! decided it, and what is kept. On the root: every tool's directory.

use std::io;
use std::process::ExitCode;

use telemetry_internal::{Ambient, Area, Dir, EffectiveMode, Mode};

use super::{CmdResult, Context, Failure, Target, human_size, shown, terminal_safe};

pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    match ctx.target()? {
        Target::Tool(dir) => {
            ctx.check_readable(&dir)?;
            tool(ctx, &dir)?;
        }
        Target::Root(root) => {
            super::check_not_a_file(root.path())?;
            let tools = super::listed_tools(&root)?;
            writeln!(ctx.out, "root: {}", root.path().display())?;
            let switch = match root.read_mode() {
                Ok(Mode::Off) => format!(
                    "off ({}): every tool is off, whatever its own mode says",
                    root.mode_file().display()
                ),
                Ok(_) if root.mode_file().exists() => format!(
                    "not off ({} says {}): each tool's own mode applies",
                    root.mode_file().display(),
                    root.read_mode().map(|m| m.to_string()).unwrap_or_default()
                ),
                Ok(_) => format!(
                    "not set ({} is absent): each tool's own mode applies",
                    root.mode_file().display()
                ),
                Err(err) => format!("{err}; each tool's own mode applies"),
            };
            writeln!(ctx.out, "user-wide switch: {switch}")?;
            if ctx.ambient.do_not_track {
                writeln!(
                    ctx.out,
                    "DO_NOT_TRACK: set, so telemetry is off for every program started from this environment"
                )?;
            }
            if let Some(url) = ctx.options.privacy_policy_url() {
                writeln!(ctx.out, "privacy policy: {url}")?;
            }
            if tools.is_empty() {
                writeln!(ctx.out, "tools: none has counted anything yet")?;
            }
            let mut refused = false;
            for (name, dir) in &tools {
                let elsewhere = if dir.root().parent() == Some(root.path()) {
                    String::new()
                } else {
                    format!(" (elsewhere, listed in {})", shown(&root.registry_file()))
                };
                writeln!(ctx.out, "\n{name}: {}{elsewhere}", shown(dir.root()))?;
                writeln!(ctx.out, "  mode: {}", mode_line(dir, ctx.ambient))?;
                if let Err(failure) = super::check_dir(dir) {
                    // Nothing is listed through a planted link.
                    refused = true;
                    writeln!(
                        ctx.out,
                        "  data: not read: {}",
                        terminal_safe(&failure.to_string())
                    )?;
                    continue;
                }
                writeln!(ctx.out, "  data: {}", data_line(dir))?;
                if dir.debug_if_enabled().is_some() {
                    let line = log_line(dir).unwrap_or_else(|| "none written yet".to_owned());
                    writeln!(
                        ctx.out,
                        "  debug: on, log: {line}; to stop: {}",
                        ctx.tool_hint(name, "log --off")
                    )?;
                }
            }
            if !tools.is_empty() {
                writeln!(
                    ctx.out,
                    "\nOne tool in detail: {}",
                    ctx.tool_hint(&tools[0].0, "env")
                )?;
            }
            if refused {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tool(ctx: &mut Context<'_>, dir: &Dir) -> Result<(), Failure> {
    let root = dir.root();
    writeln!(ctx.out, "dir: {}", root.display())?;
    writeln!(ctx.out, "mode: {}", mode_line(dir, ctx.ambient))?;
    writeln!(ctx.out, "mode file: {}", dir.mode_file().display())?;
    if let Some(top) = ctx.ambient.root() {
        let state = if top.is_off() { "off" } else { "not off" };
        writeln!(
            ctx.out,
            "user-wide switch: {} ({state})",
            top.mode_file().display()
        )?;
    }
    for (label, area) in [("local", Area::Local), ("upload", Area::Upload)] {
        list(ctx, label, dir, area)?;
    }
    writeln!(ctx.out, "data: {}", data_line(dir))?;
    match telemetry_upload::last_config(root) {
        Some(config) => writeln!(
            ctx.out,
            "upload config: version {} (the last one fetched)",
            terminal_safe(config.version())
        )?,
        None => writeln!(ctx.out, "upload config: none fetched yet")?,
    }
    if let Some(url) = ctx.options.privacy_policy_url() {
        writeln!(ctx.out, "privacy policy: {url}")?;
    }
    match dir.debug_if_enabled() {
        Some(debug) => {
            // Once `TELEMETRY_DEBUG=1` (or a person) made it, it stays on: say so.
            writeln!(
                ctx.out,
                "debug: {} on: telemetry's background process and upload runs log here \
                 on every run, with or without TELEMETRY_DEBUG; to stop: {}",
                debug.display(),
                ctx.hint("log --off")
            )?;
            match log_line(dir) {
                Some(line) => writeln!(
                    ctx.out,
                    "log: {line}; its recent lines: {}",
                    ctx.hint("log")
                )?,
                None => writeln!(ctx.out, "log: none written yet")?,
            }
        }
        None => writeln!(
            ctx.out,
            "debug: {} off (TELEMETRY_DEBUG=1 prints what telemetry decides; a run that \
             starts telemetry's background process then creates this directory, which \
             keeps a log from then on)",
            dir.debug().display()
        )?,
    }
    Ok(())
}

/// The effective mode and why: `off (DO_NOT_TRACK is set; the mode file says on …)`.
pub(super) fn mode_line(dir: &Dir, ambient: &Ambient) -> String {
    let effective = dir.effective_mode(ambient);
    format!("{} ({})", effective.mode, why(dir, ambient, effective))
}

/// Which switch decided the mode, and what the tool's own file says when it did not:
/// the words the decision log of `start` uses too.
pub(super) fn why(dir: &Dir, ambient: &Ambient, effective: EffectiveMode) -> String {
    effective.explain(dir, ambient)
}

/// `3 files, 48.2 KiB`: what `clean` would remove.
fn data_line(dir: &Dir) -> String {
    let (files, bytes) = super::clean::data_files(dir)
        .map(|paths| {
            let bytes = paths
                .iter()
                .filter_map(|p| std::fs::symlink_metadata(p).ok())
                .map(|m| m.len())
                .sum::<u64>();
            (paths.len(), bytes)
        })
        .unwrap_or((0, 0));
    let noun = if files == 1 { "file" } else { "files" };
    format!("{files} {noun}, {}", human_size(bytes))
}

/// The debug logs, if any: `/dir/debug (2 files, 3.0 KiB)`.
fn log_line(dir: &Dir) -> Option<String> {
    let logs = super::log::log_files(dir);
    if logs.is_empty() {
        return None;
    }
    let bytes: u64 = logs.iter().map(|l| l.len).sum();
    let noun = if logs.len() == 1 { "file" } else { "files" };
    Some(format!(
        "{} ({} {noun}, {})",
        dir.debug().display(),
        logs.len(),
        human_size(bytes)
    ))
}

fn list(ctx: &mut Context<'_>, label: &str, dir: &Dir, area: Area) -> Result<(), Failure> {
    let path = match area {
        Area::Local => dir.local(),
        Area::Upload => dir.upload(),
    };
    let entries = match dir.entries(area) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(Failure::io(format!("cannot read {}", path.display()), &err)),
    };
    if entries.is_empty() && !path.exists() {
        writeln!(ctx.out, "{label}: {} (absent)", path.display())?;
        return Ok(());
    }
    let files = if entries.len() == 1 { "file" } else { "files" };
    writeln!(
        ctx.out,
        "{label}: {} ({} {files})",
        path.display(),
        entries.len()
    )?;
    for entry in entries {
        let name = entry.path.file_name().unwrap_or_default().to_string_lossy();
        writeln!(ctx.out, "  {}", terminal_safe(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_the_mode() {
        let home = tempfile::tempdir().unwrap();
        let ambient = Ambient::with_config_dir(home.path());
        let dir = ambient.root().unwrap().tool("mytool");
        assert_eq!(
            mode_line(&dir, &ambient),
            "local (no mode file; local is the default)"
        );
        dir.set_mode(Mode::Off).unwrap();
        assert_eq!(mode_line(&dir, &ambient), "off (the mode file says off)");
        std::fs::write(dir.mode_file(), "yes please").unwrap();
        let line = mode_line(&dir, &ambient);
        assert!(
            line.starts_with("local (the mode file holds \"yes please\""),
            "{line}"
        );
        assert!(line.ends_with("read as local)"), "{line}");
        let since = telemetry_internal::parse_date("2026-11-20").unwrap();
        dir.set_mode(Mode::On { since }).unwrap();
        assert_eq!(
            mode_line(&dir, &ambient.clone().do_not_track(true)),
            "off (DO_NOT_TRACK is set; the mode file says on 2026-11-20)"
        );
        let root = ambient.root().unwrap();
        root.set_mode(Mode::Off).unwrap();
        assert_eq!(
            mode_line(&dir, &ambient),
            format!(
                "off (the user-wide switch {} is off; the mode file says on 2026-11-20)",
                root.mode_file().display()
            )
        );
    }
}
