//! `telemetry log`: the recent lines of the debug logs in `debug/`, which telemetry
//! writes (the telemetry child's, each upload run's) only if that directory exists.
//!
//! Reading is bounded whatever is on disk: at most [`MAX_FILES`] files, the last
//! [`TAIL_BYTES`] of each, never through a link, never blocking on a FIFO.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use telemetry_internal::Dir;

use super::{CmdResult, Context, Failure, shown, terminal_safe};

/// The most log files shown per directory: the most recently written.
const MAX_FILES: usize = 16;
/// The most read from the end of one log.
const TAIL_BYTES: u64 = 256 * 1024;
/// The most lines `-n` may ask for per file.
const MAX_LINES: usize = 10_000;

/// Arguments of `telemetry log`.
#[derive(Debug, clap::Args)]
pub(super) struct LogArgs {
    /// How many of the last lines of each log to print.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..=MAX_LINES as i64))]
    lines: u32,
    /// Stop logging: remove debug/ and its logs (once created, by TELEMETRY_DEBUG=1 or
    /// by hand, it keeps a log on every run).
    #[arg(long, conflicts_with = "lines")]
    off: bool,
}

/// One log file in `debug/`.
pub(super) struct LogFile {
    pub(super) path: PathBuf,
    pub(super) len: u64,
    modified: SystemTime,
}

/// The regular files in `dir`'s `debug/` (if it is enabled), oldest first, at most
/// [`MAX_FILES`] of the newest.
pub(super) fn log_files(dir: &Dir) -> Vec<LogFile> {
    let Some(debug) = dir.debug_if_enabled() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(debug) else {
        return Vec::new();
    };
    let mut logs: Vec<LogFile> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            // symlink_metadata: a link is not a log of ours.
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            meta.is_file().then(|| LogFile {
                path: e.path(),
                len: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect();
    logs.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
    let excess = logs.len().saturating_sub(MAX_FILES);
    logs.drain(..excess);
    logs
}

pub(super) fn run(ctx: &mut Context<'_>, args: &LogArgs) -> CmdResult {
    if args.off {
        return off(ctx);
    }
    let dirs = ctx.read_targets()?;
    let mut shown = 0;
    for dir in &dirs {
        for log in log_files(dir) {
            let lines = match tail(&log, args.lines as usize) {
                Ok(lines) => lines,
                Err(err) => {
                    ctx.warn(format!("cannot read {}: {err}", log.path.display()));
                    continue;
                }
            };
            if shown > 0 {
                writeln!(ctx.out)?;
            }
            shown += 1;
            writeln!(ctx.out, "==> {} <==", super::shown(&log.path))?;
            for line in lines {
                writeln!(ctx.out, "{}", terminal_safe(&line))?;
            }
        }
    }
    if shown == 0 {
        let place = match dirs.as_slice() {
            [one] => format!(
                "{} (telemetry writes one only if {} exists: create it to keep a log)",
                one.root().display(),
                one.debug().display()
            ),
            _ => "any tool's directory (telemetry writes one only if the tool's debug/ exists)"
                .to_owned(),
        };
        writeln!(ctx.out, "No debug log in {place}.")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The last `n` lines of a log, reading at most [`TAIL_BYTES`] from its end.
fn tail(log: &LogFile, n: usize) -> std::io::Result<Vec<String>> {
    let mut file = telemetry_internal::fs::open_read(&log.path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut by the seek.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|l| (*l).to_owned()).collect())
}

/// `log --off`: removes `debug/` (checked first to be a real directory of ours, and
/// removed without following any link in it), which ends the logging it turns on.
fn off(ctx: &mut Context<'_>) -> CmdResult {
    let dirs = ctx.read_targets()?;
    let mut stopped = 0;
    for dir in &dirs {
        let debug = dir.debug();
        if std::fs::symlink_metadata(&debug).is_err() {
            continue;
        }
        // `read_targets` checked that debug/ is a real directory of ours; std's
        // `remove_dir_all` removes links inside it, never what they point to.
        std::fs::remove_dir_all(&debug)
            .map_err(|err| Failure::io(format!("cannot remove {}", debug.display()), &err))?;
        stopped += 1;
        writeln!(
            ctx.out,
            "Debug logging is off for {}: {} and its logs are removed.",
            shown(dir.root()),
            shown(&debug)
        )?;
    }
    if stopped == 0 {
        let place = match dirs.as_slice() {
            [one] => shown(one.root()),
            _ => "any tool's directory".to_owned(),
        };
        writeln!(
            ctx.out,
            "Debug logging was already off in {place} (no debug/)."
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
