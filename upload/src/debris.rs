//! Removing what interrupted runs leave behind: temporary files of atomic writes whose
//! writer is gone, and week locks nobody needs any more.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use telemetry_internal::fs::TEMP_MARKER;
use telemetry_internal::{Area, Day, Dir, FileKind};

/// A temporary file older than this is debris whoever wrote it: writing a report takes
/// milliseconds.
const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// Locks of weeks that ended this many days before `now` are removed whatever their
/// state: no run uploads a week that old.
const LOCK_MAX_AGE_DAYS: i64 = 2 * crate::MAX_REPORT_AGE_DAYS;

/// Removes the debris of interrupted runs from the telemetry directory `dir`, and
/// returns what it removed:
/// - temporary files (`*.tmp-<pid>-<random>`, see [`TEMP_MARKER`]) in the directory,
///   `local/` and `upload/` whose writing process is gone (on Linux, checked through
///   `/proc`) or that are older than an hour;
/// - week locks (`upload/DATE.lock`) of weeks that are finished (reported, and no
///   upload report waiting) or too old to upload, each removed while holding it, so
///   never from under a run that is using it.
///
/// Counter files and reports are never touched. Every upload run does this first;
/// `telemetry clean` can call it too. Errors on single files are skipped; only an
/// unreadable directory is an error.
pub fn remove_debris(dir: &Dir) -> io::Result<Vec<PathBuf>> {
    sweep(dir, SystemTime::now())
}

pub(crate) fn sweep(dir: &Dir, now: SystemTime) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let mut temporaries = Vec::new();
    for area in [Area::Local, Area::Upload] {
        temporaries.extend(
            dir.entries(area)?
                .into_iter()
                .filter(|e| e.kind == FileKind::Temporary)
                .map(|e| e.path),
        );
    }
    // The mode file is written atomically in the directory itself.
    if let Ok(entries) = std::fs::read_dir(dir.root()) {
        for entry in entries.flatten() {
            if FileKind::classify(Area::Local, &entry.file_name()) == FileKind::Temporary {
                temporaries.push(entry.path());
            }
        }
    }
    for path in temporaries {
        if temp_is_debris(&path, now) && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }

    let today = Day::of(now);
    for entry in dir.entries(Area::Upload)? {
        let FileKind::ReportLock(week) = entry.kind else {
            continue;
        };
        let exists = |p: PathBuf| std::fs::symlink_metadata(p).is_ok();
        let finished = !exists(dir.report(week))
            && (exists(dir.local_report(week)) || exists(dir.uploaded_report(week)));
        let too_old = week.days_until(today) > LOCK_MAX_AGE_DAYS;
        if (finished || too_old) && remove_lock(&entry.path) {
            removed.push(entry.path);
        }
    }
    Ok(removed)
}

/// Unlinks a lock file while holding it. Someone who opened it before the unlink and
/// takes it after finds the week finished when it re-checks under the lock, which
/// every holder does; someone who opens the name afterwards gets a new file.
fn remove_lock(path: &Path) -> bool {
    let Ok(file) = telemetry_internal::fs::open_read_write(path, false) else {
        return false;
    };
    let mut lock = fd_lock::RwLock::new(file);
    let Ok(_guard) = lock.try_write() else {
        return false; // in use
    };
    std::fs::remove_file(path).is_ok()
}

/// Whether a temporary file can no longer be completed by its writer.
fn temp_is_debris(path: &Path, now: SystemTime) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let old = meta
        .modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age > TEMP_MAX_AGE);
    old || writer_is_gone(path)
}

/// `<name>.tmp-<pid>-<random>`: whether process `pid` has exited. Only Linux can tell
/// cheaply and without `unsafe` (through `/proc`); elsewhere the age decides. Our own
/// process is never gone: another thread may be writing.
fn writer_is_gone(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(pid) = name
        .rsplit_once(TEMP_MARKER)
        .and_then(|(_, rest)| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    cfg!(target_os = "linux")
        && Path::new("/proc/self").exists()
        && !Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_what_nobody_can_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let local = dir.ensure_local().unwrap();
        let upload = dir.ensure_upload().unwrap();
        let week = Day::parse("2026-11-20").unwrap();
        // A writer that has exited (pid 0 is never a process's), one that is us.
        let dead = local.join(format!("2026-11-20.json{TEMP_MARKER}0-ab"));
        let ours = local.join(format!(
            "local.2026-11-20.json{TEMP_MARKER}{}-cd",
            std::process::id()
        ));
        let in_upload = upload.join(format!("2026-11-20.json{TEMP_MARKER}0-ef"));
        let in_root = tmp.path().join(format!("mode{TEMP_MARKER}0-01"));
        for p in [&dead, &ours, &in_upload, &in_root] {
            std::fs::write(p, "x").unwrap();
        }
        // A finished week's lock, a lock in use, a lock of a week still to build.
        std::fs::write(dir.local_report(week), "{}").unwrap();
        std::fs::write(dir.report_lock(week), "").unwrap();
        let busy_week = week.plus(7);
        std::fs::write(dir.local_report(busy_week), "{}").unwrap();
        let busy =
            telemetry_internal::fs::open_read_write(&dir.report_lock(busy_week), true).unwrap();
        let mut busy = fd_lock::RwLock::new(busy);
        let _held = busy.try_write().unwrap();
        let pending = week.plus(14);
        std::fs::write(dir.report_lock(pending), "").unwrap();
        let counter = local.join("tool@1-x-2026-11-13.v1.count");
        std::fs::write(&counter, "data").unwrap();

        let now = week.plus(1).start();
        let mut removed = sweep(&dir, now).unwrap();
        removed.sort();
        // A dead writer is recognised at once only where `/proc` says who is alive;
        // elsewhere its files wait for the age limit, like ours.
        let mut want = vec![dir.report_lock(week)];
        if cfg!(target_os = "linux") {
            want.extend([dead, in_upload, in_root]);
        }
        want.sort();
        assert_eq!(removed, want);
        assert!(ours.exists() && counter.exists());
        assert!(dir.report_lock(busy_week).exists() && dir.report_lock(pending).exists());

        // An hour later even our own temporary file is debris; a month later every lock.
        let later = now + Duration::from_secs(60 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&ours)
            .unwrap()
            .set_modified(now)
            .unwrap();
        let removed = sweep(&dir, later).unwrap();
        assert!(removed.contains(&ours), "{removed:?}");
        assert!(removed.contains(&dir.report_lock(pending)), "{removed:?}");
        assert!(dir.report_lock(busy_week).exists(), "held: never removed");
    }
}
