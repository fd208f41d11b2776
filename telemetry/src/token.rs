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

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry_internal::Dir;
use telemetry_internal::fs::{SMALL_FILE_LIMIT, open_read_write};

/// How often an upload may run.
pub(crate) const PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// What trying to take the token came to.
#[derive(Debug)]
pub(crate) enum Token {
    /// Taken: this process starts the upload child.
    Taken,
    /// Taken less than a day ago.
    NotDue,
    /// Another process holds the lock right now, and wins.
    Busy,
    /// The token file could not be used (unwritable directory, a link, a FIFO, a
    /// huge file): no upload, never a retry in a loop.
    Failed(io::Error),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Taken => f.write_str("upload due: token taken"),
            Token::NotDue => f.write_str("upload not due: the token was taken less than a day ago"),
            Token::Busy => f.write_str("upload not due: another process is taking the token"),
            Token::Failed(err) => write!(f, "upload not started: the token is unusable: {err}"),
        }
    }
}

/// Takes the token if a day has passed since it was last taken. Never blocks: the
/// file is opened non-blocking, without following links, and locked without waiting.
pub(crate) fn take(dir: &Dir, now: SystemTime) -> Token {
    let path = dir.upload_token();
    if recently_modified(&path, now) {
        return Token::NotDue;
    }
    match take_locked(dir, &path, now) {
        Ok(token) => token,
        Err(err) => Token::Failed(err),
    }
}

/// The cheap path: one `lstat`. Only a regular file counts; anything else (a link, a
/// FIFO) falls through to the careful open, which refuses it.
fn recently_modified(path: &Path, now: SystemTime) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file() && meta.modified().is_ok_and(|m| is_recent(m, now))
}

/// Whether `then` is less than a day before `now` (and not absurdly in the future).
fn is_recent(then: SystemTime, now: SystemTime) -> bool {
    match now.duration_since(then) {
        Ok(age) => age < PERIOD,
        Err(ahead) => ahead.duration() < PERIOD,
    }
}

fn take_locked(dir: &Dir, path: &Path, now: SystemTime) -> io::Result<Token> {
    dir.ensure_local()?;
    let file = open_read_write(path, true)?;
    let mut lock = fd_lock::RwLock::new(file);
    let Ok(mut guard) = lock.try_write() else {
        return Ok(Token::Busy);
    };
    let file: &mut File = &mut guard;
    // A real token is a dozen bytes; a huge one is garbage, read no further.
    let mut bytes = Vec::new();
    Read::by_ref(file)
        .take(SMALL_FILE_LIMIT)
        .read_to_end(&mut bytes)?;
    let last = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
    if last.is_some_and(|last| is_recent(last, now)) {
        return Ok(Token::NotDue);
    }
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{secs}")?;
    // The fast path reads the modification time; make it match the recorded time even
    // when `now` is pretended (tests, `upload_start_time`).
    file.set_modified(now)?;
    Ok(Token::Taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Token {
        fn is_taken(&self) -> bool {
            matches!(self, Token::Taken)
        }
    }

    #[test]
    fn once_a_day() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let now = SystemTime::now();
        assert!(take(&dir, now).is_taken());
        assert!(!take(&dir, now).is_taken());
        assert!(!take(&dir, now + Duration::from_secs(23 * 3600)).is_taken());
        assert!(take(&dir, now + Duration::from_secs(25 * 3600)).is_taken());
    }

    #[test]
    fn clock_far_behind_the_token_takes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        let now = SystemTime::now();
        assert!(take(&dir, now).is_taken());
        assert!(!take(&dir, now - Duration::from_secs(3600)).is_taken());
        assert!(take(&dir, now - Duration::from_secs(3 * 24 * 3600)).is_taken());
    }

    #[test]
    fn garbage_token_is_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path());
        dir.ensure_local().unwrap();
        let path = dir.upload_token();
        std::fs::write(&path, "not a time").unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(take(&dir, SystemTime::now()).is_taken());
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
                        usize::from(take(&dir, now).is_taken())
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
        assert!(!take(&dir, SystemTime::now()).is_taken());
    }

    #[cfg(unix)]
    #[test]
    fn links_fifos_and_huge_files_are_refused_without_blocking() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path().join("t"));
        dir.ensure_local().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.upload_token()).unwrap();
        assert!(matches!(take(&dir, SystemTime::now()), Token::Failed(_)));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

        std::fs::remove_file(dir.upload_token()).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.upload_token())
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(take(&dir, SystemTime::now()), Token::Failed(_)));

        std::fs::remove_file(dir.upload_token()).unwrap();
        let huge = File::create(dir.upload_token()).unwrap();
        huge.set_len(1 << 30).unwrap(); // sparse: 1 GiB of zeros, never read whole
        huge.set_modified(SystemTime::now() - 2 * PERIOD).unwrap();
        drop(huge);
        let started = std::time::Instant::now();
        assert!(take(&dir, SystemTime::now()).is_taken(), "garbage is stale");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(std::fs::metadata(dir.upload_token()).unwrap().len() < 32);
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path().join("t"));
        assert!(take(&dir, SystemTime::now()).is_taken());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.upload_token()) & !0o600, 0);
        assert_eq!(mode(&dir.local()) & !0o700, 0);
    }
}
