//! `telemetry clean`: delete collected data, keep the choice.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use telemetry_internal::fs::TEMP_MARKER;
use telemetry_internal::{Area, Dir};

use super::{CmdResult, Context, Failure, Target};

/// Deletes everything in a telemetry directory that holds collected data: counter
/// files, reports (local, ready and uploaded copies), the page `view` wrote, the debug
/// logs (they can hold report bodies) and temporary files left by interrupted writes.
/// The mode, `weekends`, the upload token, the last upload config and per-report locks
/// stay: removing a lock an upload holds could let a report be sent twice, and the
/// rest are settings, not data. On the root, every tool's directory is cleaned.
pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let (dirs, extra, place) = match ctx.target()? {
        Target::Tool(dir) => {
            super::check_not_a_file(dir.root())?;
            let place = dir.root().display().to_string();
            (vec![dir], Vec::new(), place)
        }
        Target::Root(root) => {
            super::check_not_a_file(root.path())?;
            let read = |err: io::Error| {
                Failure::io(format!("cannot read {}", root.path().display()), &err)
            };
            let dirs = root.tools().map_err(read)?;
            let mut extra = temporaries(root.path()).map_err(read)?;
            // The page `view` writes on the root, named by `Dir` as for one tool.
            let page = Dir::new(root.path()).view_html();
            if std::fs::symlink_metadata(&page).is_ok() {
                extra.push(page);
            }
            let place = format!("{} ({} tools)", root.path().display(), dirs.len());
            (dirs, extra, place)
        }
    };
    let mut doomed = extra;
    for dir in &dirs {
        doomed.extend(
            data_files(dir).map_err(|err| {
                Failure::io(format!("cannot read {}", dir.root().display()), &err)
            })?,
        );
    }
    let mut removed = 0usize;
    let mut failed = false;
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            // Another process (an upload) removed it first: it is gone either way.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                failed = true;
                let _ = writeln!(
                    ctx.err,
                    "{}: cannot remove {}: {err}",
                    ctx.name,
                    path.display()
                );
            }
        }
    }
    let files = if removed == 1 { "file" } else { "files" };
    writeln!(
        ctx.out,
        "Removed {removed} {files} of counters, reports and logs from {place}; the mode is unchanged."
    )?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Every file of `dir` that holds data, sorted: what `clean` removes and `env` sizes.
pub(super) fn data_files(dir: &Dir) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for area in [Area::Local, Area::Upload] {
        found.extend(
            dir.entries(area)?
                .into_iter()
                .filter(|e| e.kind.holds_data())
                .map(|e| e.path),
        );
    }
    let page = dir.view_html();
    if std::fs::symlink_metadata(&page).is_ok() {
        found.push(page);
    }
    // An interrupted write of the mode file leaves `mode.tmp-…` beside it.
    found.extend(temporaries(dir.root())?);
    found.extend(super::log::log_files(dir).into_iter().map(|l| l.path));
    found.sort();
    Ok(found)
}

/// Temporary files of interrupted atomic writes directly in `path`.
fn temporaries(path: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let temporary = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.contains(TEMP_MARKER));
        if temporary && !entry.file_type()?.is_dir() {
            found.push(entry.path());
        }
    }
    Ok(found)
}
