//! The upload token: at most one upload child per telemetry directory per day.
//!
//! `local/upload.token` holds the time (Unix seconds) the last token was taken. Taking
//! the token means: lock the file without waiting, check that the recorded time is at
//! least a day old, and record now. A process that cannot get the lock at once has
//! lost to the one holding it, so when ten processes start together exactly one wins.
//!
//! The cheap path, taken by nearly every run, is one `stat`: a token file modified in
//! the last day means no upload is due, and nothing is opened or locked.
//!
//! The race we accept: the clock. If the system clock jumps back more than a day, the
//! recorded time is in the future; we treat a time more than a day ahead as stale, so
//! uploads resume instead of stopping until the clock catches up. A jump forward makes
//! one upload early. Neither can make two processes win the same day on one clock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry_internal::Dir;

/// How often an upload may run.
pub(crate) const PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// Takes the token if a day has passed since it was last taken. Errors (an unwritable
/// directory, say) mean no upload: never retry in a loop, never block.
pub(crate) fn take(dir: &Dir, now: SystemTime) -> bool {
    let path = dir.local().join("upload.token");
    if recently_modified(&path, now) {
        return false;
    }
    take_locked(&path, now).unwrap_or(false)
}

fn recently_modified(path: &Path, now: SystemTime) -> bool {
    let Ok(modified) = path.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    is_recent(modified, now)
}

/// Whether `then` is less than a day before `now` (and not absurdly in the future).
fn is_recent(then: SystemTime, now: SystemTime) -> bool {
    match now.duration_since(then) {
        Ok(age) => age < PERIOD,
        Err(ahead) => ahead.duration() < PERIOD,
    }
}

fn take_locked(path: &Path, now: SystemTime) -> std::io::Result<bool> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let mut lock = fd_lock::RwLock::new(file);
    let Ok(mut guard) = lock.try_write() else {
        return Ok(false); // another process is taking it right now
    };
    let file: &mut File = &mut guard;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let last = text
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
    if last.is_some_and(|last| is_recent(last, now)) {
        return Ok(false);
    }
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{secs}")?;
    // The fast path reads the modification time; make it match the recorded time even
    // when `now` is pretended (tests, `upload_start_time`).
    file.set_modified(now)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_day() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let now = SystemTime::now();
        assert!(take(&dir, now));
        assert!(!take(&dir, now));
        assert!(!take(&dir, now + Duration::from_secs(23 * 3600)));
        assert!(take(&dir, now + Duration::from_secs(25 * 3600)));
    }

    #[test]
    fn clock_far_behind_the_token_takes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let now = SystemTime::now();
        assert!(take(&dir, now));
        assert!(!take(&dir, now - Duration::from_secs(3600)));
        assert!(take(&dir, now - Duration::from_secs(3 * 24 * 3600)));
    }

    #[test]
    fn garbage_token_is_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        std::fs::create_dir_all(dir.local()).unwrap();
        let path = dir.local().join("upload.token");
        std::fs::write(&path, "not a time").unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(take(&dir, SystemTime::now()));
    }

    #[test]
    fn ten_threads_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let now = SystemTime::now();
        let barrier = std::sync::Barrier::new(10);
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        usize::from(take(&dir, now))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn unwritable_dir_takes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), "").unwrap();
        let dir = Dir::new(tmp.path().join("file"));
        assert!(!take(&dir, SystemTime::now()));
    }
}
