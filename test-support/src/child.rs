//! One way for a test binary to run part of a test in another process: the test
//! re-runs itself, alone, with a role in the environment, and in that child the
//! test's first line plays the role instead of the test's own part.
//!
//! So no test exists only to be re-run: the harness's own run of every test is the
//! parent's part, which checks something, and a role is only ever played in a child
//! that a test started. A test binary keeps its roles in one function:
//!
//! ```no_run
//! use telemetry_test_support::child;
//!
//! /// What a child of this test binary does.
//! fn play(role: &str) {
//!     match role {
//!         "count" => println!("> 3"),
//!         other => panic!("unknown role {other}"),
//!     }
//! }
//!
//! #[test]
//! fn counts_in_another_process() {
//!     if child::play_role(play) {
//!         return;
//!     }
//!     let out = child::command("count").output().unwrap();
//!     assert!(out.status.success());
//!     assert!(String::from_utf8_lossy(&out.stdout).contains("> 3"));
//! }
//! ```

use std::process::Command;

/// The environment variable that carries a child's role.
pub const ROLE_ENV: &str = "TELEMETRY_TEST_CHILD_ROLE";

/// The role this process was started in by [`command`]; `None` in the harness's own
/// run of the tests.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// In a child started by [`command`], plays its role and returns `true` (the test
/// then returns: its parent's part is not the child's); in the harness's own run,
/// returns `false` at once. Called first thing in every test that starts children.
pub fn play_role(play: impl FnOnce(&str)) -> bool {
    match role() {
        Some(role) => {
            play(&role);
            true
        }
        None => false,
    }
}

/// This test binary, running only the calling test, in `role`: the child's
/// [`play_role`] plays it. Must be called on the thread the harness runs the test on
/// (libtest names it after the test), not on a thread the test started. The child's
/// output is not captured by its harness, so what the role prints reaches the parent.
#[track_caller]
pub fn command(role: &str) -> Command {
    let thread = std::thread::current();
    let test = thread
        .name()
        .filter(|name| *name != "main")
        .expect("child::command is called on the thread of the test that plays the role");
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([
            test,
            "--exact",
            "--nocapture",
            "--quiet",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, role);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(role: &str) {
        match role {
            "say" => println!("> played {role}"),
            "fail" => panic!("the role failed"),
            other => panic!("unknown role {other}"),
        }
    }

    #[test]
    fn a_test_runs_itself_in_a_role_and_sees_it_succeed_or_fail() {
        if play_role(play) {
            return;
        }
        let out = command("say").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("> played say"), "{stdout}");
        // Only this test ran in the child.
        assert!(!stdout.contains("ci_or_the_tools"), "{stdout}");

        let out = command("fail").output().unwrap();
        assert!(!out.status.success(), "{out:?}");
    }

    #[test]
    fn the_harness_run_has_no_role() {
        if play_role(play) {
            return;
        }
        assert_eq!(role(), None);
        assert!(!play_role(|_| panic!("played without a role")));
    }
}
