//! `telemetry clean`: delete collected data, keep the choice.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use telemetry_internal::{Area, Dir, FileKind};

use super::{CmdResult, Context, Failure, Target};

/// Deletes everything in a telemetry directory that holds collected data: counter
/// files, reports (local, ready and uploaded copies), the page `view` wrote and the
/// debug logs (they can hold report bodies); and, through
/// [`telemetry_upload::remove_debris`], the one judge of debris, what interrupted
/// writes and runs left: temporary files nobody can finish and week locks nobody
/// needs (removed while held, never from under a run). The mode, `weekends`, the
/// upload token, the last upload config and the locks a run may still use stay: they
/// are settings, not data. On the root, every tool's directory is cleaned.
pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let (dirs, root_dir, extra, place) = match ctx.target()? {
        Target::Tool(dir) => {
            super::check_dir(&dir)?;
            let place = dir.root().display().to_string();
            (vec![dir], None, Vec::new(), place)
        }
        Target::Root(root) => {
            super::check_not_a_file(root.path())?;
            // Also the tools elsewhere that the root's registry lists: each is a
            // telemetry directory, checked below like every other.
            let dirs: Vec<Dir> = super::listed_tools(&root)?
                .into_iter()
                .map(|(_, d)| d)
                .collect();
            // The root read as one tool's directory: its debris (an interrupted write
            // of the user-wide mode file leaves `mode.tmp-…`), and the page `view`
            // writes on the root.
            let as_dir = Dir::new(root.path());
            let page = as_dir.view_html();
            let extra = if std::fs::symlink_metadata(&page).is_ok() {
                vec![page]
            } else {
                Vec::new()
            };
            let place = format!("{} ({} tools)", root.path().display(), dirs.len());
            (dirs, Some(as_dir), extra, place)
        }
    };
    let mut removed = 0usize;
    if let Some(root) = &root_dir {
        removed += telemetry_upload::remove_debris(root)
            .map_err(|err| unreadable(root, &err))?
            .len();
    }
    let mut doomed = extra;
    let mut failed = false;
    for dir in &dirs {
        // A tool whose `local/` (or `upload/`, `debug/`) is a link is left alone: what
        // is removed below is found by listing those directories.
        if let Err(failure) = super::check_dir(dir) {
            failed = true;
            ctx.error_line(failure);
            continue;
        }
        // Debris first: a week's lock is stray while its reports still show the week
        // finished, which they no longer do once its data is gone.
        removed += telemetry_upload::remove_debris(dir)
            .map_err(|err| unreadable(dir, &err))?
            .len();
        doomed.extend(data_files(dir).map_err(|err| unreadable(dir, &err))?);
    }
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            // Another process (an upload) removed it first: it is gone either way.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                failed = true;
                ctx.error_line(format_args!("cannot remove {}: {err}", path.display()));
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

fn unreadable(dir: &Dir, err: &io::Error) -> Failure {
    Failure::io(format!("cannot read {}", dir.root().display()), err)
}

/// Every file of `dir` that holds data, sorted: what `clean` removes and `env` sizes.
pub(super) fn data_files(dir: &Dir) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for area in [Area::Local, Area::Upload] {
        found.extend(
            dir.entries(area)?
                .into_iter()
                // Temporary files are debris, which `remove_debris` judges: one a live
                // process is writing is not removed from under it.
                .filter(|e| e.kind.holds_data() && e.kind != FileKind::Temporary)
                .map(|e| e.path),
        );
    }
    let page = dir.view_html();
    if std::fs::symlink_metadata(&page).is_ok() {
        found.push(page);
    }
    found.extend(super::log::log_files(dir).into_iter().map(|l| l.path));
    found.sort();
    Ok(found)
}
