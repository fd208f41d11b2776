//! What only Windows has: exceptions instead of signals. How a status shows a
//! fault, the C runtime's abort, and the test that races counting children on one
//! crash. Run under Wine by `cargo xtask cross`.

use std::env;
use std::process::{Command, ExitStatus, Stdio};

use crate::crashes::c_abort;
use crate::orchestrator::{DirectCheck, Run, crash_into, ensure, one_counter, read_counts};
use crate::scenarios::Fault;
use crate::{DIR, GO, ROLE};

/// Wine writes its own diagnostics (`fixme:`, `err:`) to a program's stderr, which
/// differ from run to run: only the statuses are compared with and without the
/// monitor.
pub(crate) const COMPARES_STDERR: bool = false;

/// Windows ends no process with a signal.
pub(crate) fn signal(_: &ExitStatus) -> Option<i32> {
    None
}

/// `STATUS_ACCESS_VIOLATION`, the exit code of a process killed by a bad access.
const ACCESS_VIOLATION: i32 = 0xC000_0005_u32 as i32;
/// `STATUS_ILLEGAL_INSTRUCTION`.
const ILLEGAL_INSTRUCTION: i32 = 0xC000_001D_u32 as i32;

/// The run ended with `fault`'s exception code.
pub(crate) fn ended_by(run: &Run, fault: Fault) -> Result<(), String> {
    let code = match fault {
        Fault::Segv => ACCESS_VIOLATION,
        Fault::Ill => ILLEGAL_INSTRUCTION,
        Fault::Abort | Fault::Fpe => {
            return Err(format!("no Windows scenario ends with {fault:?}"));
        }
    };
    ensure(run.status.code() == Some(code), || {
        format!("status {:?}, want {fault:?}", run.status)
    })
}

/// A Windows host does nothing before crash reporting starts in these scenarios:
/// none is played whole here.
pub(crate) fn prepare(_: &str) -> bool {
    false
}

/// The crashes of the scenarios only Windows has.
pub(crate) fn crash(scenario: &str) {
    match scenario {
        "c-abort" => c_abort(),
        other => panic!("unknown scenario {other}"),
    }
}

/// The tests that are not one scenario's crash and count.
pub(crate) const DIRECT: &[(&str, DirectCheck)] = &[("racing-children", racing_children)];

/// Counting children racing on one crash.
const RACERS: usize = 4;

/// One crash, then [`RACERS`] counting children started together on its journal (as
/// a build system starts a tool many times at once right after a crash): the crash is
/// counted once, by one child; each other finds the journal busy or already empty.
fn racing_children() -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env::current_exe().expect("current_exe");
    let status = crash_into(&exe, "segv", dir.path());
    ensure(status.code() == Some(ACCESS_VIOLATION), || {
        format!("{status:?}")
    })?;
    let go = dir.path().join("go");
    let children: Vec<_> = (0..RACERS)
        .map(|_| {
            Command::new(&exe)
                .env(ROLE, "child")
                .env(DIR, dir.path())
                .env(GO, &go)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a counting child")
        })
        .collect();
    std::fs::write(&go, b"").expect("write the go file");
    let mut outcomes: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("wait for a counting child");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        })
        .collect();
    outcomes.sort();
    let counts = read_counts(dir.path());
    let counted = outcomes
        .iter()
        .filter(|o| o.starts_with("Counted {"))
        .count();
    let others_ok = outcomes
        .iter()
        .all(|o| o.starts_with("Counted {") || o == "Busy" || o == "Empty");
    ensure(
        one_counter(&counts, "crash/") == Some(1) && counted == 1 && others_ok,
        || format!("want one count by one child: {counts:?}, outcomes {outcomes:?}"),
    )
}
