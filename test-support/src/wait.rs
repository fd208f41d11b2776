//! Waiting for an event with a deadline: the one way a test waits for something
//! another thread or process does (a file appears, a line is logged, a count
//! arrives, a process exits), instead of sleeping for a fixed time and hoping.

use std::time::{Duration, Instant};

/// The longest pause between two checks of a condition: short enough that a test
/// waits little past its event, long enough not to busy a loaded machine.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Checks `condition` until it holds, and says whether it did before `timeout`
/// passed. The first check is immediate; the pause between checks grows from 1 ms to
/// 20 ms. For a test that must act on a time-out (kill a child, say what it saw).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Waits until `condition` holds, failing the test with `what` if it does not within
/// `timeout`.
///
/// ```
/// use std::time::Duration;
/// use telemetry_test_support::eventually;
///
/// let dir = std::env::temp_dir().join(format!("eventually-{}", std::process::id()));
/// let made = dir.clone();
/// let writer = std::thread::spawn(move || std::fs::create_dir_all(made));
/// eventually(Duration::from_secs(20), "the directory", || dir.is_dir());
/// writer.join().unwrap().unwrap();
/// std::fs::remove_dir(&dir).unwrap();
/// ```
#[track_caller]
pub fn eventually(timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(timeout, condition),
        "timed out after {timeout:?} waiting for {what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_holds_at_once_is_not_waited_for() {
        let began = Instant::now();
        assert!(wait_until(Duration::from_secs(20), || true));
        assert!(began.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_condition_that_never_holds_ends_at_the_deadline() {
        let began = Instant::now();
        let mut checks = 0;
        assert!(!wait_until(Duration::from_millis(100), || {
            checks += 1;
            false
        }));
        assert!(began.elapsed() >= Duration::from_millis(100));
        assert!(checks > 1, "checked again before giving up: {checks}");
    }

    #[test]
    fn the_condition_is_checked_until_it_holds() {
        let mut left = 5;
        assert!(wait_until(Duration::from_secs(20), || {
            left -= 1;
            left == 0
        }));
        assert_eq!(left, 0);
    }
}
