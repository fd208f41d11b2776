//! `telemetry clean`: delete collected data, keep the choice.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use super::data::is_data_file;
use super::{CmdResult, Context, Failure};

/// Deletes counter files (`*.v1.count`) and reports (`YYYY-MM-DD.json`,
/// `local.YYYY-MM-DD.json`) in `local/` and `upload/`. The mode, `weekends`, the
/// upload token and per-report locks stay: removing a lock an upload holds could let
/// a report be sent twice, and the rest are settings, not data.
pub(super) fn run(ctx: &mut Context<'_>) -> CmdResult {
    let dir = ctx.dir()?;
    let mut removed = 0usize;
    let mut failed = false;
    for folder in [dir.local(), dir.upload()] {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(Failure::io(
                    format!("cannot read {}", folder.display()),
                    &err,
                ));
            }
        };
        let mut doomed: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| is_data_file(p))
            .collect();
        doomed.sort();
        for path in doomed {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
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
    }
    let files = if removed == 1 { "file" } else { "files" };
    writeln!(
        ctx.out,
        "Removed {removed} {files} of counters and reports from {}; the mode is unchanged.",
        dir.root().display()
    )?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
